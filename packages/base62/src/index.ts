/**
 * Base62 codec of the OpenSynaptic wire format.
 *
 * Alphabet `0-9a-zA-Z` (digit values 0..61), sign first, most significant digit first, zero is
 * `"0"`. Sensor values travel as fixed-point integers: `round_half_even(value × 10^precision)`
 * (precision 4 by default), computed on the binary product exactly as the reference does.
 *
 * The functions exported here use the backend chosen by `OPENSYNAPTIC_CORE` (`ts`, `native` or
 * `auto`); `getCodec()` returns a specific one.
 */
import { type BackendMode, type BackendName, NativeUnavailableError, selectBackend } from '@opensynaptic/internal';
import type { Base62Codec } from './codec.js';
import { nativeCodec } from './native-codec.js';
import { tsCodec } from './ts-codec.js';

export type { Base62Codec } from './codec.js';
export { Base62RangeError, Base62TypeError, InvalidBase62Error } from './errors.js';
export { ALPHABET, DEFAULT_PRECISION, MAX_PRECISION, roundHalfEven } from './ts-codec.js';
export { NativeUnavailableError };
export type { BackendMode, BackendName };

/**
 * Which operations `auto` hands to the addon. A call into native code costs more than a whole
 * TypeScript encode of one value, so single values stay in TypeScript; batches go native only
 * where `bench/` measured the addon faster per item.
 */
const AUTO_NATIVE = { single: false, batch: false } as const;

const selection = selectBackend('@opensynaptic/base62', tsCodec, nativeCodec);
const pick = (useNativeInAuto: boolean): Base62Codec =>
  selection.mode === 'native' || (selection.mode === 'auto' && useNativeInAuto && selection.native)
    ? selection.native!
    : tsCodec;
const single = pick(AUTO_NATIVE.single);
const batch = pick(AUTO_NATIVE.batch);

/** The requested mode: `OPENSYNAPTIC_CORE`, or `auto` when unset. */
export const backendMode: BackendMode = selection.mode;
/** Backend serving the single-value functions below. */
export const backend: BackendName = single.backend;
/** Backend serving `encodeBatch` / `decodeBatch`. */
export const batchBackend: BackendName = batch.backend;
/** Whether the native addon loaded (it is optional). */
export const nativeAvailable: boolean = selection.native !== null;

/** A specific implementation; `'native'` throws `NativeUnavailableError` when the addon is missing. */
export function getCodec(name: BackendName): Base62Codec {
  if (name === 'ts') return tsCodec;
  if (!selection.native) throw new NativeUnavailableError('@opensynaptic/base62', selection.nativeError);
  return selection.native;
}

/** Exact signed 64-bit integer → text (RangeError outside int64). */
export const encodeBigInt = (value: bigint): string => single.encodeBigInt(value);
/** Text → exact signed 64-bit integer. */
export const decodeBigInt = (text: string): bigint => single.decodeBigInt(text);
/** Number → text without precision, truncated toward zero (coefficients, route ids). */
export const encodeInt = (value: number): string => single.encodeInt(value);
/** Text → number without precision. */
export const decodeInt = (text: string): number => single.decodeInt(text);
/** Fixed-point value → text: `round_half_even(value × 10^precision)`; precision defaults to 4. */
export const encode = (value: number, precision?: number): string => single.encode(value, precision);
/** Text → fixed-point value: integer ÷ 10^precision, rounded to 8 decimals; precision defaults to 4. */
export const decode = (text: string, precision?: number): number => single.decode(text, precision);
/** `encode` over many values. */
export const encodeBatch = (values: ArrayLike<number>, precision?: number): string[] =>
  batch.encodeBatch(values, precision);
/** `decode` over many texts. */
export const decodeBatch = (texts: readonly string[], precision?: number): Float64Array =>
  batch.decodeBatch(texts, precision);
