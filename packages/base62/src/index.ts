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
import { type BackendMode, type BackendName, NativeBackendError, type NativeBackendErrorCode, NativeUnavailableError, type NativeUnavailability, packageBackends } from '@opensynaptic/internal';
import type { Base62Codec } from './codec.js';
import { nativeCodec } from './native-codec.js';
import { tsCodec } from './ts-codec.js';

export type { Base62Codec } from './codec.js';
export { Base62RangeError, Base62TypeError, InvalidBase62Error } from './errors.js';
export { ALPHABET, DEFAULT_PRECISION, MAX_PRECISION, roundHalfEven } from './ts-codec.js';
export { NativeBackendError, NativeUnavailableError };
export type { BackendMode, BackendName, NativeBackendErrorCode, NativeUnavailability };

/**
 * Operations `auto` hands to the addon: none. `bench/` measured every one slower through the
 * addon (a call into native code and a new JS string cost more than a whole TypeScript
 * encode), batches included.
 */
const AUTO_NATIVE: readonly (keyof Base62Codec)[] = [];

const b = packageBackends('@opensynaptic/base62', tsCodec, nativeCodec, AUTO_NATIVE);
const impl = b.impl;

/** The requested mode: `OPENSYNAPTIC_CORE` (`ts`, `native`), or `auto` when unset. */
export const backendMode: BackendMode = b.backendMode;
/** Backend serving the single-value functions. */
export const backend: BackendName = b.backends.encode ?? 'ts';
/** Backend serving each operation (`auto` mixes them where measurements say so). */
export const backends: Readonly<Record<string, BackendName>> = b.backends;
/** Whether the native addon loaded (it is optional). */
export const nativeAvailable: boolean = b.nativeAvailable;
/** Why the native addon is not in use (`reason`, `message`, the platform and the package looked for), or `null`. */
export const nativeUnavailable: NativeUnavailability | null = b.nativeUnavailable;
/** A specific implementation; `'native'` throws `NativeUnavailableError` when the addon is missing. */
export const getCodec: (name: BackendName) => Base62Codec = b.getCodec;

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
