/** The reference implementation the benchmarks compare against. */
export declare const REFERENCE_PACKAGE: 'opensynaptic';
export declare const REFERENCE_VERSION: '1.4.2';

/** Installed into the reference's virtualenv beside it, pinned (`pyserial` for its UART listener, `paho-mqtt` 1.x for its MQTT transporter). */
export declare const REFERENCE_EXTRAS: readonly { spec: string; distribution: string; version: string; module: string }[];

/** `extrasMissing`: each of `REFERENCE_EXTRAS` (by spec) that could not be had, and why. */
export type ReferencePython = { python: string; extrasMissing: Record<string, string> } | { python: null; reason: string };

export interface ReferencePythonOptions {
  /** Virtualenv directory; default `<repo root>/.cache/reference-venv`. */
  venv?: string;
  /** Interpreter that creates the virtualenv; default `python3` (`python` on Windows). */
  basePython?: string;
  /** Progress while the virtualenv is created; default: lines on stderr. */
  log?: (message: string) => void;
}

/**
 * A Python that imports `opensynaptic` 1.4.2: `OPENSYNAPTIC_REFERENCE_PYTHON` as is when set, else
 * the virtualenv, created and installed on first use (not when `OPENSYNAPTIC_REFERENCE=off`).
 * Never rejects: when no such Python can be had, `reason` says why.
 */
export declare function referencePython(options?: ReferencePythonOptions): Promise<ReferencePython>;

/**
 * Runs `python -c code ...args` and returns the JSON parsed from the last line of its stdout (typed `T`, unchecked).
 * Throws an Error carrying the stderr tail when the script fails or that line is not JSON.
 */
export declare function runReferenceJson<T = unknown>(python: string, code: string, args?: readonly string[]): T;

export interface ReferenceChild<Ready = unknown, Result = unknown> {
  readonly child: import('node:child_process').ChildProcess;
  /** The JSON after `READY` (null when none), once the script printed it. */
  readonly ready: Promise<Ready>;
  /** The JSON after `RESULT`; rejects with the script's stderr tail when there is none. */
  readonly result: Promise<Result>;
  /** Kills the script (SIGTERM). */
  stop(): void;
}

/**
 * Starts `python -c <prelude + code> ...args` beside the caller: a reference peer that prints
 * `READY <json>` once it listens and `RESULT <json>` at the end. Killed after `timeoutMs` (60 s);
 * `onLine` gets each line of its output as it comes.
 */
export declare function spawnReference<Ready = unknown, Result = unknown>(
  python: string,
  code: string,
  args?: readonly string[],
  options?: { timeoutMs?: number; onLine?: (line: string) => void },
): ReferenceChild<Ready, Result>;

/**
 * Prints the reference's figures beside ours: `measure(python)` returns the reference's median ns
 * keyed by operation name (the `operation` of each row `compare` returned). When no reference
 * Python can be had, or it fails, says why and leaves our figures alone.
 */
export declare function sideBySide(rows: readonly { operation: string; 'ts ns': string }[], measure: (python: string) => Record<string, number>): Promise<void>;
