/**
 * OpenSynaptic data frames.
 *
 * ```
 * [cmd:1][route_count:1][route_id:4 BE]*route_count[tid:1][ts:6 BE][body:N][crc8:1][crc16:2 BE]
 * ```
 *
 * `crc8` is CRC-8/SMBUS of the plain body; `crc16` is CRC-16/CCITT-FALSE of every byte before
 * it. Secure commands (64, 171, 128) carry the body XORed with the session key at offset
 * `crc8 & 31`. Decoding returns a view on the received bytes and throws a typed `FrameError`
 * naming the failed check.
 */
import { type BackendInfo, type BackendMode, type BackendName, isOpenSynapticError, NativeBackendError, type NativeBackendErrorCode, type NativeUnavailability, NativeUnavailableError, type OpenSynapticError, packageBackends } from '@opensynaptic/internal';
import {
  decodeFramesTs,
  encodeFramesTs,
  type FrameBatch,
} from './batch.js';
import type { FrameCodec } from './codec.js';
import { type DecodedFrame, type DecodeOptions, decodeFrame as decodeFrameTs, encodeFrame as encodeFrameTs, type FrameFields, validateFrameFields } from './frame.js';
import { nativeCodec } from './native-codec.js';

export { batchLength, DECODED_FIELDS, type FrameBatch, FrameStatus } from './batch.js';
export type { FrameCodec } from './codec.js';
export { readU16, readU32, readU48 } from './bytes.js';
export * from './constants.js';
export * from './errors.js';
export { DecodedFrame, type DecodeOptions, encodeFrameInto, type FrameFields, type KeyLookup, SINGLE_ROUTE_BODY_OFFSET, sealFrame, validateFrameFields } from './frame.js';
export { frameErrorMeta, type PacketMeta, type StampedTimestamp, stampTimestamp, type TimestampStamp, tidText } from './meta.js';
export { parseRouteId } from './route-id.js';
export { checkFrameSize, sizeLimit } from './size-limit.js';
export { decodeTimestampToken, encodeTimestampToken, TIMESTAMP_TOKEN_LENGTH } from './timestamp-token.js';
export { isOpenSynapticError, NativeBackendError, NativeUnavailableError };
export type { BackendInfo, BackendMode, BackendName, NativeBackendErrorCode, NativeUnavailability, OpenSynapticError };

/** The pure TypeScript frame codec. */
const tsCodec: FrameCodec = {
  backend: 'ts',
  encodeFrame: encodeFrameTs,
  decodeFrame: decodeFrameTs,
  encodeFrames: encodeFramesTs,
  decodeFrames: decodeFramesTs,
};

/**
 * Operations `auto` hands to the addon: batch decoding, which `bench/` measured ~2.5x faster per
 * frame there. A single frame is several times cheaper in TypeScript than the call into native
 * code, and batch encoding breaks even.
 */
const AUTO_NATIVE: readonly (keyof FrameCodec)[] = ['decodeFrames'];

const b = packageBackends('@opensynaptic/packet', tsCodec, (b) => nativeCodec(b, validateFrameFields), AUTO_NATIVE);
// `OPENSYNAPTIC_CORE` is read, and the addon loaded, on the first call, never at import.
let impl: FrameCodec = b.deferred((chosen) => {
  impl = chosen;
});

/** Which backend serves each operation, whether the addon loaded, the requested mode (chosen on first use). */
export const backendInfo: () => BackendInfo = b.info;
/** A specific implementation; `'native'` throws `NativeUnavailableError` when the addon is missing. */
export const getCodec: (name: BackendName) => FrameCodec = b.getCodec;

/** Encodes one data frame (secure when `fields.key` is a non-empty key). */
export const encodeFrame = (fields: FrameFields): Uint8Array => impl.encodeFrame(fields);
/** Decodes and checks one data frame; the result reads from `frame` without copying. */
export const decodeFrame = (frame: Uint8Array, options?: DecodeOptions): DecodedFrame => impl.decodeFrame(frame, options);
/** Encodes many plain single-route frames back to back. */
export const encodeFrames = (b: FrameBatch): Uint8Array => impl.encodeFrames(b);
/** Checks many frames at once, writing `DECODED_FIELDS` numbers per frame into `out`. */
export const decodeFrames = (buf: Uint8Array, offsets: Uint32Array, out: Float64Array): number =>
  impl.decodeFrames(buf, offsets, out);
