import { isData, isSecureData } from '@opensynaptic/cmd';
import { crc16Unchecked, crc8Unchecked } from '@opensynaptic/crc';
import { DecodeField, FrameStatus } from '@opensynaptic/internal';
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

/**
 * Per-frame result of `decodeFrames` (`OK`, `TOO_SHORT`, `INCOMPLETE_HEADER`, `CRC16_MISMATCH`,
 * `MISSING_KEY`, `CRC8_MISMATCH`, `UNKNOWN_CMD`, and `SECURE_UNCHECKED`: a secure frame whose
 * CRC-16 passed, to decrypt with its key and check with `decodeFrame`). The numbers the native
 * codec writes too: generated from the Rust side (crates/opensynaptic-contract).
 */
export { FrameStatus };

/**
 * Numbers written per frame by `decodeFrames`, at `out[i * DECODED_FIELDS + k]`:
 * 0 status, 1 cmd, 2 routeCount, 3 sourceAid, 4 tid, 5 timestamp, 6 bodyOffset (within the
 * frame), 7 bodyLength, 8 crc8 as carried, 9 crc16 as carried, 10 computed CRC of a mismatch
 * (`DecodeField` of the contract with the Rust side).
 */
export const DECODED_FIELDS: 11 = DecodeField.COUNT;

const { STATUS, CMD, ROUTE_COUNT, SOURCE_AID, TID, TIMESTAMP, BODY_OFFSET, BODY_LENGTH, CRC8, CRC16, COMPUTED_CRC } = DecodeField;
const { OK, TOO_SHORT, INCOMPLETE_HEADER, CRC16_MISMATCH, CRC8_MISMATCH, UNKNOWN_CMD, SECURE_UNCHECKED } = FrameStatus;

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
      out[o + STATUS] = TOO_SHORT;
      continue;
    }
    const rc = buf[s + 1]!;
    if (len < encodedLength(rc, 0)) {
      out[o + STATUS] = INCOMPLETE_HEADER;
      continue;
    }
    const cmd = buf[s]!;
    out[o + CMD] = cmd;
    out[o + ROUTE_COUNT] = rc;
    out[o + SOURCE_AID] = rc === 0 ? 0 : readU32(buf, s + 4 * rc - 2);
    const wire16 = (buf[e - 2]! << 8) | buf[e - 1]!;
    out[o + CRC16] = wire16;
    const c16 = crc16Unchecked(buf, s, e - 2);
    if (c16 !== wire16) {
      out[o + STATUS] = CRC16_MISMATCH;
      out[o + COMPUTED_CRC] = c16;
      continue;
    }
    const p = s + 2 + 4 * rc;
    out[o + TID] = buf[p]!;
    out[o + TIMESTAMP] = ((buf[p + 1]! << 8) | buf[p + 2]!) * 0x100000000 + readU32(buf, p + 3);
    out[o + BODY_OFFSET] = p + 7 - s;
    out[o + BODY_LENGTH] = e - 3 - (p + 7);
    const wire8 = buf[e - 3]!;
    out[o + CRC8] = wire8;
    if (isSecureData(cmd)) {
      out[o + STATUS] = SECURE_UNCHECKED;
      continue;
    }
    const c8 = crc8Unchecked(buf, p + 7, e - 3);
    if (c8 !== wire8) {
      out[o + STATUS] = CRC8_MISMATCH;
      out[o + COMPUTED_CRC] = c8;
      continue;
    }
    out[o + STATUS] = isData(cmd) ? OK : UNKNOWN_CMD;
  }
  return n;
}
