import { isSecureData, normalizeData } from '@opensynaptic/cmd';
import { NativeBackendError, nativeCallError } from '@opensynaptic/internal';
import { checkBatch, DECODED_FIELDS, type FrameBatch } from './batch.js';
import type { FrameCodec } from './codec.js';
import { encodedLength } from './constants.js';
import {
  Crc16MismatchError,
  Crc8MismatchError,
  FrameFieldError,
  FrameTooShortError,
  IncompleteHeaderError,
  MissingSecureKeyError,
  type PartialFrameHeader,
  UnknownCommandError,
} from './errors.js';
import { DecodedFrame, type FrameFields, readU32 } from './frame.js';

/** The part of `@opensynaptic/binding` this package calls. */
export interface FrameBinding {
  encodeFrame(cmd: number, routes: Uint32Array, tid: number, timestamp: number, body: Uint8Array, key?: Uint8Array | null): Uint8Array;
  decodeFrame(frame: Uint8Array, key: Uint8Array | null | undefined, out: Float64Array, plainOut: Uint8Array): number;
  decodeFrames(buf: Uint8Array, offsets: Uint32Array, out: Float64Array): number;
  encodeFrames(cmds: Uint8Array, aids: Uint32Array, tids: Uint8Array, timestamps: Float64Array, bodies: Uint8Array, bodyOffsets: Uint32Array): Uint8Array;
}

const EMPTY = new Uint8Array(0);

function fail(status: number, frame: Uint8Array, f: Float64Array): never {
  const cmd = f[1]!;
  const sourceAid = f[3]!;
  const base: PartialFrameHeader = { cmd, baseCmd: normalizeData(cmd), secure: isSecureData(cmd), sourceAid };
  const full: PartialFrameHeader = { ...base, tid: f[4]!, timestamp: f[5]! };
  switch (status) {
    case 1:
      throw new FrameTooShortError(frame.length);
    case 2:
      throw new IncompleteHeaderError(frame.length, encodedLength(frame[1]!, 0), frame[1]!, isSecureData(frame[0]!));
    case 3:
      throw new Crc16MismatchError(f[9]!, f[10]!, base);
    case 4:
      throw new MissingSecureKeyError(sourceAid, full);
    case 5:
      throw new Crc8MismatchError(f[8]!, f[10]!, full);
    case 6:
      throw new UnknownCommandError(cmd, full);
    default:
      throw new NativeBackendError('@opensynaptic/packet', 'decodeFrame', 'ERR_OPENSYNAPTIC_NATIVE_STATUS', `unknown status ${status}`);
  }
}

/** Wraps the addon in the codec interface, raising the same typed errors as the TS codec. */
export function nativeCodec(binding: unknown, validate: (fields: FrameFields) => void): FrameCodec | null {
  const b = binding as Partial<FrameBinding> | null;
  if (!b || typeof b.decodeFrames !== 'function') return null;
  const n = b as FrameBinding;
  const fields = new Float64Array(DECODED_FIELDS);
  return {
    backend: 'native',
    encodeFrame(input) {
      validate(input);
      const { cmd, routes, tid, timestamp, body, key } = input;
      const r = typeof routes === 'number' ? Uint32Array.of(routes) : Uint32Array.from(routes);
      try {
        return n.encodeFrame(cmd, r, tid, timestamp, body, key && key.length > 0 ? key : null);
      } catch (error) {
        // `validate` has checked every field: a throw here is the addon's, never a plain Error to the caller.
        throw nativeCallError('@opensynaptic/packet', 'encodeFrame', error);
      }
    },
    decodeFrame(frame, options) {
      if (!(frame instanceof Uint8Array)) throw new FrameFieldError('frame', 'expected a Uint8Array');
      let key: Uint8Array | null = null;
      let plainOut = EMPTY;
      const len = frame.length;
      // The key depends on the source aid, which only the frame knows: read it here first.
      if (len >= 5 && isSecureData(frame[0]!) && len >= encodedLength(frame[1]!, 0)) {
        const rc = frame[1]!;
        key = options?.keys?.get(rc === 0 ? 0 : readU32(frame, 4 * rc - 2)) ?? null;
        if (key && key.length === 0) key = null;
        plainOut = new Uint8Array(len);
      }
      let status: number;
      try {
        status = n.decodeFrame(frame, key, fields, plainOut);
      } catch (error) {
        throw nativeCallError('@opensynaptic/packet', 'decodeFrame', error);
      }
      if (status !== 0) fail(status, frame, fields);
      const bodyLength = fields[7]!;
      return new DecodedFrame(
        frame,
        fields[1]!,
        fields[2]!,
        fields[3]!,
        fields[4]!,
        fields[5]!,
        fields[6]!,
        bodyLength,
        fields[8]!,
        fields[9]!,
        key ? plainOut.subarray(0, bodyLength) : null,
      );
    },
    encodeFrames(batch: FrameBatch) {
      checkBatch(batch);
      try {
        return n.encodeFrames(batch.cmds, batch.aids, batch.tids, batch.timestamps, batch.bodies, batch.bodyOffsets);
      } catch (error) {
        throw nativeCallError('@opensynaptic/packet', 'encodeFrames', error);
      }
    },
    decodeFrames(buf, offsets, out) {
      try {
        return n.decodeFrames(buf, offsets, out);
      } catch (error) {
        throw new FrameFieldError('offsets', error instanceof Error ? error.message.replace(/^\[[^\]]*\]\s*/, '') : String(error));
      }
    },
  };
}
