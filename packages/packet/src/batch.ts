import { isData, isSecureData } from '@opensynaptic/cmd';
import { crc16Unchecked, crc8Unchecked } from '@opensynaptic/crc';
import { readU32 } from './bytes.js';
import { encodedLength, MAX_TIMESTAMP } from './constants.js';
import { FrameFieldError } from './errors.js';

/**
 * Many single-route plain frames in one call, as parallel arrays (one entry per frame). Body
 * `i` is `bodies[bodyOffsets[i]..bodyOffsets[i+1])`.
 */
export interface FrameBatch {
  cmds: Uint8Array;
  aids: Uint32Array;
  tids: Uint8Array;
  timestamps: Float64Array;
  bodies: Uint8Array;
  bodyOffsets: Uint32Array;
}

/** Per-frame result of `decodeFrames`. */
export const FrameStatus = Object.freeze({
  OK: 0,
  TOO_SHORT: 1,
  INCOMPLETE_HEADER: 2,
  CRC16_MISMATCH: 3,
  MISSING_KEY: 4,
  CRC8_MISMATCH: 5,
  UNKNOWN_CMD: 6,
  /** Secure frame whose CRC-16 passed; decrypt it with its key and check CRC-8 (`decodeFrame`). */
  SECURE_UNCHECKED: 7,
} as const);

/**
 * Numbers written per frame by `decodeFrames`, at `out[i * DECODED_FIELDS + k]`:
 * 0 status, 1 cmd, 2 routeCount, 3 sourceAid, 4 tid, 5 timestamp, 6 bodyOffset (within the
 * frame), 7 bodyLength, 8 crc8 as carried, 9 crc16 as carried, 10 computed CRC of a mismatch.
 */
export const DECODED_FIELDS = 11;

/** Total bytes `encodeFrames` produces for a batch. */
export function batchLength(batch: FrameBatch): number {
  const n = batch.cmds.length;
  return 16 * n + batch.bodyOffsets[n]! - batch.bodyOffsets[0]!;
}

/** Checks the parallel arrays agree; returns the frame count. */
export function checkBatch(batch: FrameBatch): number {
  const { cmds, aids, tids, timestamps, bodies, bodyOffsets } = batch;
  const n = cmds.length;
  if (aids.length !== n || tids.length !== n || timestamps.length !== n || bodyOffsets.length !== n + 1) {
    throw new FrameFieldError('batch', 'cmds, aids, tids and timestamps need one entry per frame and bodyOffsets n+1');
  }
  for (let i = 0; i < n; i++) {
    const t = timestamps[i]!;
    if (!(t >= 0 && t <= MAX_TIMESTAMP && Math.floor(t) === t)) {
      throw new FrameFieldError('timestamps', `item ${i}: ${t} is not an integer in 0..2^48-1`);
    }
    const a = bodyOffsets[i]!;
    const b = bodyOffsets[i + 1]!;
    if (b < a || b > bodies.length) throw new FrameFieldError('bodyOffsets', `item ${i}: [${a}, ${b}) is not inside bodies`);
  }
  return n;
}

/** TypeScript batch encoder: frames back to back, frame i is `16 + body_i` bytes long. */
export function encodeFramesTs(batch: FrameBatch): Uint8Array {
  const n = checkBatch(batch);
  const { cmds, aids, tids, timestamps, bodies, bodyOffsets } = batch;
  const out = new Uint8Array(16 * n + bodyOffsets[n]! - bodyOffsets[0]!);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const start = p;
    const a = bodyOffsets[i]!;
    const b = bodyOffsets[i + 1]!;
    out[p++] = cmds[i]!;
    out[p++] = 1;
    const aid = aids[i]!;
    out[p++] = aid >>> 24;
    out[p++] = aid >>> 16;
    out[p++] = aid >>> 8;
    out[p++] = aid;
    out[p++] = tids[i]!;
    const ts = timestamps[i]!;
    const hi = Math.floor(ts / 0x100000000);
    const lo = ts >>> 0;
    out[p++] = hi >>> 8;
    out[p++] = hi;
    out[p++] = lo >>> 24;
    out[p++] = lo >>> 16;
    out[p++] = lo >>> 8;
    out[p++] = lo;
    for (let j = a; j < b; j++) out[p++] = bodies[j]!;
    out[p++] = crc8Unchecked(bodies, a, b);
    const c16 = crc16Unchecked(out, start, p);
    out[p++] = c16 >>> 8;
    out[p++] = c16;
  }
  return out;
}

/** TypeScript batch decoder: header checks and CRCs of frame i = `buf[offsets[i]..offsets[i+1])`. */
export function decodeFramesTs(buf: Uint8Array, offsets: Uint32Array, out: Float64Array): number {
  const n = offsets.length - 1;
  if (n < 0) throw new FrameFieldError('offsets', 'expected n+1 boundaries');
  if (out.length < n * DECODED_FIELDS) throw new FrameFieldError('out', `needs ${n * DECODED_FIELDS} entries for ${n} frames`);
  for (let i = 0; i < n; i++) {
    const s = offsets[i]!;
    const e = offsets[i + 1]!;
    if (e < s || e > buf.length) throw new FrameFieldError('offsets', `item ${i}: [${s}, ${e}) is not inside the buffer`);
    const o = i * DECODED_FIELDS;
    out.fill(0, o, o + DECODED_FIELDS);
    const len = e - s;
    if (len < 5) {
      out[o] = 1;
      continue;
    }
    const rc = buf[s + 1]!;
    if (len < encodedLength(rc, 0)) {
      out[o] = 2;
      continue;
    }
    const cmd = buf[s]!;
    out[o + 1] = cmd;
    out[o + 2] = rc;
    out[o + 3] = rc === 0 ? 0 : readU32(buf, s + 4 * rc - 2);
    const wire16 = (buf[e - 2]! << 8) | buf[e - 1]!;
    out[o + 9] = wire16;
    const c16 = crc16Unchecked(buf, s, e - 2);
    if (c16 !== wire16) {
      out[o] = 3;
      out[o + 10] = c16;
      continue;
    }
    const p = s + 2 + 4 * rc;
    out[o + 4] = buf[p]!;
    out[o + 5] = ((buf[p + 1]! << 8) | buf[p + 2]!) * 0x100000000 + readU32(buf, p + 3);
    out[o + 6] = p + 7 - s;
    out[o + 7] = e - 3 - (p + 7);
    const wire8 = buf[e - 3]!;
    out[o + 8] = wire8;
    if (isSecureData(cmd)) {
      out[o] = 7;
      continue;
    }
    const c8 = crc8Unchecked(buf, p + 7, e - 3);
    if (c8 !== wire8) {
      out[o] = 5;
      out[o + 10] = c8;
      continue;
    }
    out[o] = isData(cmd) ? 0 : 6;
  }
  return n;
}
