import { brandError } from '@opensynaptic/internal';

/**
 * What a script can rely on: each outcome has its own exit code. Documented in the README's
 * table; `os-node --help` prints it too.
 */
export const EXIT = Object.freeze({
  /** Done. */
  OK: 0,
  /** An unexpected failure (a bug, or an error no other code describes). */
  FAILURE: 1,
  /** Bad command line: an unknown command or option, a missing or malformed argument. */
  USAGE: 2,
  /** Bad input data: a frame that does not decode, a reading the node refuses, bad hex or JSON. */
  BAD_INPUT: 3,
  /** The peer did not answer in time (ensure-id, time-sync), or `watch` received nothing before `--timeout`. */
  TIMEOUT: 4,
  /** A resource is unavailable: a file or database that is missing or damaged, a socket that cannot bind or send. */
  UNAVAILABLE: 5,
  /** The peer answered with a refusal (a NACK to an id request). */
  REFUSED: 6,
  /** Stopped by a signal (Ctrl-C) before the work was done. */
  INTERRUPTED: 130,
});

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export type CliErrorCode = 'ERR_CLI_USAGE' | 'ERR_CLI_INPUT' | 'ERR_CLI_TIMEOUT' | 'ERR_CLI_UNAVAILABLE' | 'ERR_CLI_REFUSED';

const EXIT_OF: Record<CliErrorCode, ExitCode> = {
  ERR_CLI_USAGE: EXIT.USAGE,
  ERR_CLI_INPUT: EXIT.BAD_INPUT,
  ERR_CLI_TIMEOUT: EXIT.TIMEOUT,
  ERR_CLI_UNAVAILABLE: EXIT.UNAVAILABLE,
  ERR_CLI_REFUSED: EXIT.REFUSED,
};

/** A failure the CLI reports with a message and the exit code of its kind. */
export class CliError extends Error {
  static {
    brandError(CliError);
  }
  override readonly name: string = 'CliError';
  readonly code: CliErrorCode;
  readonly exitCode: ExitCode;
  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.exitCode = EXIT_OF[code];
  }
}
