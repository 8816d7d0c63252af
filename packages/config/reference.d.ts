/** The reference implementation the benchmarks compare against. */
export declare const REFERENCE_PACKAGE: 'opensynaptic';
export declare const REFERENCE_VERSION: '1.4.2';

export type ReferencePython = { python: string } | { python: null; reason: string };

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

/**
 * Prints the reference's figures beside ours: `measure(python)` returns the reference's median ns
 * keyed by operation name (the `operation` of each row `compare` returned). When no reference
 * Python can be had, or it fails, says why and leaves our figures alone.
 */
export declare function sideBySide(rows: readonly { operation: string; 'ts ns': string }[], measure: (python: string) => Record<string, number>): Promise<void>;
