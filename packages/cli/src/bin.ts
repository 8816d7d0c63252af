#!/usr/bin/env node
import { run } from './cli.js';
import { EXIT } from './errors.js';

// Ctrl-C stops a long command cleanly (sockets closed, result printed); a second one exits at once.
const controller = new AbortController();
process.once('SIGINT', () => {
  controller.abort();
  process.once('SIGINT', () => process.exit(EXIT.INTERRUPTED));
});
// A reader that went away (`os-node watch | head -3`) ends the command quietly, as Unix tools do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.OK);
  throw error;
});
const code = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, controller.signal);
// Let stdout drain (a pipe) before exiting with the code.
process.exitCode = code;
