#!/usr/bin/env node
import { run } from './cli.js';
import { EXIT } from './errors.js';

// Ctrl-C stops a long command cleanly (sockets closed, result printed); a second one exits at once.
// SIGTERM stops the same way (serve then ends with 0: the normal stop of a service); the reason
// tells the command which one it was.
const controller = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    controller.abort(sig);
    process.once(sig, () => process.exit(EXIT.INTERRUPTED));
  });
}
// A reader that went away (`os-node watch | head -3`) ends the command quietly, as Unix tools do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.OK);
  throw error;
});
const code = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, controller.signal);
// Let stdout drain (a pipe) before exiting with the code.
process.exitCode = code;
