/**
 * Checksums and session helpers of the OpenSynaptic wire format.
 *
 * - `crc8`: CRC-8/SMBUS over the plain body of a data frame (1 byte on the wire).
 * - `crc16`: CRC-16/CCITT-FALSE over every preceding wire byte (2 bytes, big-endian).
 * - `xorPayload`: the body transform of secure frames.
 * - `deriveSessionKey`: SHA-256 of the decimal `(aid × ts) mod 2^64`.
 *
 * The "secure" mode obfuscates: its key derives from values visible in the plaintext FULL frame.
 */
import { type BackendInfo, type BackendMode, type BackendName, isOpenSynapticError, NativeBackendError, type NativeBackendErrorCode, type NativeUnavailability, NativeUnavailableError, type OpenSynapticError, packageBackends } from '@opensynaptic/internal';
import type { CrcCodec } from './codec.js';
import { CrcArgumentError } from './errors.js';
import { nativeCodec } from './native-codec.js';
import { type SessionKeyInput, sessionSeed } from './session.js';
import { tsCodec } from './ts-codec.js';

export type { CrcCodec } from './codec.js';
export { CrcArgumentError, SyncDigestUnavailableError } from './errors.js';
export { deriveSessionKeyAsync, type SessionKeyInput, seedText, sessionSeed } from './session.js';
export { CRC16_PARAMS, CRC8_PARAMS, crc16Unchecked, crc8Unchecked, xorInto } from './ts-codec.js';
export { isOpenSynapticError, NativeBackendError, NativeUnavailableError };
export type { BackendInfo, BackendMode, BackendName, NativeBackendErrorCode, NativeUnavailability, OpenSynapticError };

/** Length of a session key in bytes (a SHA-256 digest). */
export const SESSION_KEY_LENGTH = 32;

/**
 * Operations `auto` hands to the addon, because `bench/` measured them faster per item there:
 * CRC-8 batches (2.9x) and SHA-256 (up to 2x `node:crypto`'s one-shot `hash`, 3-4x the pure-JS one).
 * A single 40-byte CRC or XOR is cheaper in TypeScript than the call into native code, and CRC-16
 * batches gain only ~1.2x.
 */
const AUTO_NATIVE: readonly (keyof CrcCodec)[] = ['crc8Batch', 'digestSeed'];

const b = packageBackends('@opensynaptic/crc', tsCodec, nativeCodec, AUTO_NATIVE);
// `OPENSYNAPTIC_CORE` is read, and the addon loaded, on the first call, never at import.
let impl: CrcCodec = b.deferred((chosen) => {
  impl = chosen;
});

/** Which backend serves each operation, whether the addon loaded, the requested mode (chosen on first use). */
export const backendInfo: () => BackendInfo = b.info;
/** A specific implementation; `'native'` throws `NativeUnavailableError` when the addon is missing. */
export const getCodec: (name: BackendName) => CrcCodec = b.getCodec;

/** CRC-8/SMBUS of `data[start..end)` (whole array by default). */
export const crc8 = (data: Uint8Array, start?: number, end?: number): number => impl.crc8(data, start, end);
/** CRC-16/CCITT-FALSE of `data[start..end)` (whole array by default). */
export const crc16 = (data: Uint8Array, start?: number, end?: number): number => impl.crc16(data, start, end);
/** CRC-8 of many slices: item i is `data[offsets[i]..offsets[i+1])`. */
export const crc8Batch = (data: Uint8Array, offsets: Uint32Array): Uint8Array => impl.crc8Batch(data, offsets);
/** CRC-16 of many slices: item i is `data[offsets[i]..offsets[i+1])`. */
export const crc16Batch = (data: Uint8Array, offsets: Uint32Array): Uint16Array => impl.crc16Batch(data, offsets);

/**
 * The secure-frame body transform, its own inverse: `out[i] = payload[i] ^ key[(i + off) %
 * key.length] ^ off` where `off = offset & 31` (the frame passes `crc8 & 31`). An empty key
 * returns an unchanged copy. Returns a new array.
 */
export function xorPayload(payload: Uint8Array, key: Uint8Array, offset: number): Uint8Array {
  if (typeof offset !== 'number' || !Number.isFinite(offset)) {
    throw new CrcArgumentError('offset', `expected a finite number, got ${String(offset)}`);
  }
  return impl.xorPayload(payload, key, offset);
}

/**
 * Session key of a device, synchronously, on every platform: SHA-256 of the ASCII decimal of
 * `(aid × ts) mod 2^64`, 32 bytes. Negative or missing inputs count as 0, inputs of 2^64 or more
 * keep their low 64 bits. The addon hashes where installed (`auto`), pure JS elsewhere.
 */
export function deriveSessionKey(aid: SessionKeyInput, ts: SessionKeyInput): Uint8Array {
  return impl.digestSeed(sessionSeed(aid, ts));
}
