/**
 * The `os-node` command line as a library: `run(argv)` resolves to the exit code (the bin is
 * `process.exit(await run(process.argv.slice(2)))`), and `EXIT` is the table of exit codes.
 */
export { buildProgram, run } from './cli.js';
export { CliError, type CliErrorCode, EXIT, type ExitCode } from './errors.js';
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
