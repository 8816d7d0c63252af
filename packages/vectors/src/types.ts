/** One recorded case: `{id, input, expected, note?}`. */
export interface VectorCase {
  id: string;
  input: Record<string, unknown>;
  expected: Record<string, unknown>;
  note?: string;
}

/** A vector file: `{source, generatedBy, ..., cases}`. */
export interface VectorFile {
  source?: string;
  cases: VectorCase[];
  [key: string]: unknown;
}

export type BackendName = 'ts' | 'native';

/**
 * Outcome of one case: `pass`; `fail` with the reason; or `partial`, a pass of everything this
 * layer can check, with what it could not (e.g. a decoded fact needs the fusion layer).
 */
export interface CaseResult {
  id: string;
  status: 'pass' | 'fail' | 'partial';
  detail?: string;
}

/** A suite checks every case of one file kind against one backend. */
export interface Suite {
  /** File kind: the stem of the reference's file name (`base62` for base62.json). */
  kind: string;
  /** True when a file of unknown name has cases of this suite's shape. */
  sniff(file: VectorFile): boolean;
  run(file: VectorFile, backend: BackendName): CaseResult[];
}
