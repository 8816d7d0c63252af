import type { CaseResult } from './types.js';

export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Python literal (as the vectors record `*_repr` inputs) → the closest JS value. */
export function fromPythonRepr(repr: string): unknown {
  if (repr === 'None') return null;
  if (repr === 'True') return true;
  if (repr === 'False') return false;
  if (repr === 'nan') return Number.NaN;
  if (repr === 'inf') return Number.POSITIVE_INFINITY;
  if (repr === '-inf') return Number.NEGATIVE_INFINITY;
  if (/^'.*'$/s.test(repr)) return JSON.parse(`"${repr.slice(1, -1).replace(/"/g, '\\"')}"`);
  if (/^-?\d+$/.test(repr)) return BigInt(repr);
  const n = Number(repr);
  if (!Number.isNaN(n)) return n;
  throw new Error(`unsupported Python literal ${repr}`);
}

/** Same value, with -0 equal to 0 and NaN equal to NaN. */
export function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b));
  if (typeof a === 'bigint' && typeof b === 'bigint') return a === b;
  return a === b;
}

function show(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : JSON.stringify(v);
}

/**
 * Collects named checks for one case: `eq` compares, `throws` expects one of our typed errors.
 * Any unexpected exception fails the case with its message.
 */
export class Checker {
  private readonly problems: string[] = [];
  eq(what: string, actual: () => unknown, expected: unknown): void {
    try {
      const a = actual();
      if (!same(a, expected)) this.problems.push(`${what}: got ${show(a)}, expected ${show(expected)}`);
    } catch (e) {
      this.problems.push(`${what}: threw ${(e as Error).name}: ${(e as Error).message}; expected ${show(expected)}`);
    }
  }
  throws(what: string, run: () => unknown, isTyped: (e: unknown) => boolean): void {
    try {
      const v = run();
      this.problems.push(`${what}: returned ${show(v)}, expected a typed error`);
    } catch (e) {
      if (!isTyped(e)) this.problems.push(`${what}: threw untyped ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
  }
  fail(what: string): void {
    this.problems.push(what);
  }
  result(id: string, partial?: string): CaseResult {
    if (this.problems.length) return { id, status: 'fail', detail: this.problems.join('; ') };
    return partial ? { id, status: 'partial', detail: partial } : { id, status: 'pass' };
  }
}

/** True for errors our packages define: they all carry a string `code` starting with ERR_. */
export function isOurError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('ERR_');
}

/**
 * The boundary between the reference's clock units and ours. The reference's clocks and its
 * standardized `t` are seconds, and its compressor takes a `t` below 1e11 as seconds (multiplied
 * by 1000) and anything else as ms; every API of ours takes ms, without guessing. Cases recorded
 * from the reference are converted here, never in the library.
 */
export const referenceTime = {
  /** A reference clock reading (seconds) → ms. */
  clockMs: (seconds: number): number => seconds * 1000,
  /** A `t` as the reference's compressor reads it → the ms it sends; null and undefined pass. */
  tMs<T extends number | null | undefined>(t: T): T {
    return (typeof t === 'number' && t < 1e11 ? t * 1000 : t) as T;
  },
};
