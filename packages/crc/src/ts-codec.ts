import type { CrcCodec } from './codec.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { nodeBuiltin } from '@opensynaptic/internal';
import { CrcArgumentError } from './errors.js';
import { seedText } from './session.js';

/**
 * CRC-8/SMBUS: width 8, poly 0x07, init 0x00, no reflection, xorout 0x00; check value of
 * ASCII "123456789" is 0xF4. Covers the plain (un-XORed) body of a data frame.
 */
export const CRC8_PARAMS = Object.freeze({ width: 8, poly: 0x07, init: 0x00, refin: false, refout: false, xorout: 0x00, check: 0xf4 });

/**
 * CRC-16/CCITT-FALSE: width 16, poly 0x1021, init 0xFFFF, no reflection, xorout 0x0000; check
 * value of ASCII "123456789" is 0x29B1. Covers every wire byte before it; sent big-endian.
 */
export const CRC16_PARAMS = Object.freeze({ width: 16, poly: 0x1021, init: 0xffff, refin: false, refout: false, xorout: 0x0000, check: 0x29b1 });

const T8 = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  T8[i] = c;
}

// Slicing-by-4: four tables let the loop fold four bytes per step (T16[k] is the CRC of a byte
// followed by k zero bytes), which halves the time on 40-byte frames.
const T16 = new Uint16Array(256 * 4);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  T16[i] = c;
}
for (let i = 0; i < 256; i++) {
  for (let t = 1; t < 4; t++) {
    const prev = T16[(t - 1) * 256 + i]!;
    T16[t * 256 + i] = ((prev << 8) & 0xffff) ^ T16[prev >>> 8]!;
  }
}

function range(data: Uint8Array, start: number | undefined, end: number | undefined): [number, number] {
  if (!(data instanceof Uint8Array)) throw new CrcArgumentError('data', 'expected a Uint8Array');
  const s = start ?? 0;
  const e = end ?? data.length;
  if (!(Number.isInteger(s) && Number.isInteger(e) && s >= 0 && s <= e && e <= data.length)) {
    throw new CrcArgumentError('range', `[${s}, ${e}) is not inside a ${data.length}-byte array`);
  }
  return [s, e];
}

/** CRC-8/SMBUS over `data[start..end)` without argument checks (hot path for callers that checked). */
export function crc8Unchecked(data: Uint8Array, start: number, end: number): number {
  let c = 0;
  for (let i = start; i < end; i++) c = T8[c ^ data[i]!]!;
  return c;
}

/** CRC-16/CCITT-FALSE over `data[start..end)` without argument checks. */
export function crc16Unchecked(data: Uint8Array, start: number, end: number): number {
  let c = 0xffff;
  let i = start;
  const end4 = end - 3;
  for (; i < end4; i += 4) {
    const a = (c >>> 8) ^ data[i]!;
    const b = (c & 0xff) ^ data[i + 1]!;
    c = T16[768 + a]! ^ T16[512 + b]! ^ T16[256 + data[i + 2]!]! ^ T16[data[i + 3]!]!;
  }
  for (; i < end; i++) c = ((c << 8) & 0xffff) ^ T16[(c >>> 8) ^ data[i]!]!;
  return c;
}

/** XOR with the session key into `out` (may be `payload` itself). Empty key: plain copy. */
export function xorInto(payload: Uint8Array, pStart: number, pEnd: number, key: Uint8Array, offset: number, out: Uint8Array, oStart: number): void {
  const kl = key.length;
  if (kl === 0) {
    out.set(payload.subarray(pStart, pEnd), oStart);
    return;
  }
  const off = offset & 31;
  let k = off % kl;
  for (let i = pStart, o = oStart; i < pEnd; i++, o++) {
    out[o] = payload[i]! ^ key[k]! ^ off;
    if (++k === kl) k = 0;
  }
}

function checkOffsets(data: Uint8Array, offsets: Uint32Array): number {
  if (!(offsets instanceof Uint32Array) || offsets.length === 0) {
    throw new CrcArgumentError('offsets', 'expected a Uint32Array of n+1 boundaries');
  }
  let prev = 0;
  for (let i = 0; i < offsets.length; i++) {
    const o = offsets[i]!;
    if (o < prev || o > data.length) {
      throw new CrcArgumentError('offsets', `boundary ${i} (${o}) is decreasing or past the ${data.length}-byte data`);
    }
    prev = o;
  }
  return offsets.length - 1;
}

interface NodeCrypto {
  hash?(alg: string, data: string, enc: 'buffer'): Uint8Array;
}

type Digest = (seed: bigint) => Uint8Array;

/** Pure JS, every platform: @noble/hashes, bundled into this package's build (see tsup.config). */
const portableDigest: Digest = (seed) => sha256(seedText(seed));

let digest: Digest | undefined;

/**
 * SHA-256 of the seed's decimal text. bench/ measured `node:crypto`'s one-shot `hash` about 1.5-2x
 * faster than the pure-JS one on these 14-20 byte inputs (`createHash` barely faster), so Node
 * uses it; everywhere else (browsers, Deno without Node built-ins, Node before 20.16) the pure-JS one
 * runs, never an error. Looked up on first use, not at import.
 */
function digestFor(): Digest {
  if (digest) return digest;
  const hash = nodeBuiltin<NodeCrypto>('node:crypto')?.hash;
  digest = typeof hash === 'function' ? (seed) => new Uint8Array(hash('sha256', seed.toString(), 'buffer')) : portableDigest;
  return digest;
}

/** The TypeScript implementation; SHA-256 as `digestFor` says. */
export const tsCodec: CrcCodec = {
  backend: 'ts',
  crc8(data, start, end) {
    const [s, e] = range(data, start, end);
    return crc8Unchecked(data, s, e);
  },
  crc16(data, start, end) {
    const [s, e] = range(data, start, end);
    return crc16Unchecked(data, s, e);
  },
  crc8Batch(data, offsets) {
    range(data, 0, data.length);
    const n = checkOffsets(data, offsets);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = crc8Unchecked(data, offsets[i]!, offsets[i + 1]!);
    return out;
  },
  crc16Batch(data, offsets) {
    range(data, 0, data.length);
    const n = checkOffsets(data, offsets);
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i++) out[i] = crc16Unchecked(data, offsets[i]!, offsets[i + 1]!);
    return out;
  },
  xorPayload(payload, key, offset) {
    range(payload, 0, payload.length);
    if (!(key instanceof Uint8Array)) throw new CrcArgumentError('key', 'expected a Uint8Array');
    const out = new Uint8Array(payload.length);
    xorInto(payload, 0, payload.length, key, offset, out, 0);
    return out;
  },
  digestSeed(seed) {
    return digestFor()(seed);
  },
};
