/**
 * Base62 codec of the OpenSynaptic wire format.
 *
 * Alphabet `0-9a-zA-Z` (digit values 0..61), sign first, most significant digit first, zero is
 * `"0"`. Sensor values travel as fixed-point integers: `round_half_even(value × 10^precision)`
 * (precision 4 by default), computed on the binary product exactly as the reference does.
 *
 * Pure TypeScript, the same everywhere (no native backend: see below).
 */
import { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
import { tsCodec as impl } from './ts-codec.js';

export type { Base62Codec } from './codec.js';
export { Base62RangeError, Base62TypeError, InvalidBase62Error } from './errors.js';
export { ALPHABET, DEFAULT_PRECISION, MAX_PRECISION, roundHalfEven } from './ts-codec.js';
export { isOpenSynapticError };
export type { OpenSynapticError };

// One implementation, in TypeScript: a native one existed, and `bench/` measured every operation
// slower or no faster through the addon (0.2-1.1x, batches included: a call into native code and
// a new JS string cost more than a whole encode), so no workload ever chose it.

/** Exact signed 64-bit integer → text (RangeError outside int64). */
export const encodeBigInt = (value: bigint): string => impl.encodeBigInt(value);
/** Text → exact signed 64-bit integer. */
export const decodeBigInt = (text: string): bigint => impl.decodeBigInt(text);
/** Number → text without precision, truncated toward zero (coefficients, route ids). */
export const encodeInt = (value: number): string => impl.encodeInt(value);
/** Text → number without precision. */
export const decodeInt = (text: string): number => impl.decodeInt(text);
/** Fixed-point value → text: `round_half_even(value × 10^precision)`; precision defaults to 4. */
export const encode = (value: number, precision?: number): string => impl.encode(value, precision);
/** Text → fixed-point value: integer ÷ 10^precision, rounded to 8 decimals; precision defaults to 4. */
export const decode = (text: string, precision?: number): number => impl.decode(text, precision);
/** `encode` over many values. */
export const encodeBatch = (values: ArrayLike<number>, precision?: number): string[] =>
  impl.encodeBatch(values, precision);
/** `decode` over many texts. */
export const decodeBatch = (texts: readonly string[], precision?: number): Float64Array =>
  impl.decodeBatch(texts, precision);
