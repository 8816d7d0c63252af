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
import { type BackendInfo, type BackendMode, type BackendName, isOpenSynapticError, NativeBackendError, type NativeBackendErrorCode, type NativeUnavailability, NativeUnavailableError, type OpenSynapticError, packageBackends } from '@opensynaptic/internal';
import type { Base62Codec } from './codec.js';
import { nativeCodec } from './native-codec.js';
import { tsCodec } from './ts-codec.js';

export type { Base62Codec } from './codec.js';
export { Base62RangeError, Base62TypeError, InvalidBase62Error } from './errors.js';
export { ALPHABET, DEFAULT_PRECISION, MAX_PRECISION, roundHalfEven } from './ts-codec.js';
export { isOpenSynapticError, NativeBackendError, NativeUnavailableError };
export type { BackendInfo, BackendMode, BackendName, NativeBackendErrorCode, NativeUnavailability, OpenSynapticError };

/**
 * Operations `auto` hands to the addon: none. `bench/` measured every one slower through the
 * addon (a call into native code and a new JS string cost more than a whole TypeScript
 * encode), batches included.
 */
const AUTO_NATIVE: readonly (keyof Base62Codec)[] = [];

const b = packageBackends('@opensynaptic/base62', tsCodec, nativeCodec, AUTO_NATIVE);
// `OPENSYNAPTIC_CORE` is read, and the addon loaded, on the first call, never at import.
let impl: Base62Codec = b.deferred((chosen) => {
  impl = chosen;
});

/** Which backend serves each operation, whether the addon loaded, the requested mode (chosen on first use). */
export const backendInfo: () => BackendInfo = b.info;
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
