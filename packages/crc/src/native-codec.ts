import type { CrcCodec } from './codec.js';
import { CrcArgumentError } from './errors.js';

/** The part of `@opensynaptic/binding` this package calls. */
export interface CrcBinding {
  crc8(data: Uint8Array): number;
  crc16(data: Uint8Array): number;
  crc8Batch(data: Uint8Array, offsets: Uint32Array): Uint8Array;
  crc16Batch(data: Uint8Array, offsets: Uint32Array): Uint16Array;
  xorPayload(payload: Uint8Array, key: Uint8Array, offset: number): Uint8Array;
  deriveSessionKey(aid: bigint, ts: bigint): Uint8Array;
}

function view(data: Uint8Array, start: number | undefined, end: number | undefined): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new CrcArgumentError('data', 'expected a Uint8Array');
  if (start === undefined && end === undefined) return data;
  const s = start ?? 0;
  const e = end ?? data.length;
  if (!(Number.isInteger(s) && Number.isInteger(e) && s >= 0 && s <= e && e <= data.length)) {
    throw new CrcArgumentError('range', `[${s}, ${e}) is not inside a ${data.length}-byte array`);
  }
  return data.subarray(s, e);
}

function guard<T>(field: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new CrcArgumentError(field, message.replace(/^\[[^\]]*\]\s*/, ''));
  }
}

/** Wraps the addon in the codec interface. */
export function nativeCodec(binding: unknown): CrcCodec | null {
  const b = binding as Partial<CrcBinding> | null;
  if (!b || typeof b.crc16Batch !== 'function') return null;
  const n = b as CrcBinding;
  return {
    backend: 'native',
    crc8: (data, start, end) => n.crc8(view(data, start, end)),
    crc16: (data, start, end) => n.crc16(view(data, start, end)),
    crc8Batch: (data, offsets) => guard('offsets', () => n.crc8Batch(view(data, 0, undefined), offsets)),
    crc16Batch: (data, offsets) => guard('offsets', () => n.crc16Batch(view(data, 0, undefined), offsets)),
    xorPayload(payload, key, offset) {
      view(payload, 0, undefined);
      if (!(key instanceof Uint8Array)) throw new CrcArgumentError('key', 'expected a Uint8Array');
      return n.xorPayload(payload, key, offset & 31);
    },
    digestSeed: (seed) => n.deriveSessionKey(seed, 1n),
  };
}
