import { isData, isSecureData, normalizeData, secureVariant } from '@opensynaptic/cmd';
import { crc16Unchecked, crc8Unchecked, xorInto } from '@opensynaptic/crc';
import { readU32, readU48 } from './bytes.js';
import { encodedLength, MAX_ROUTES, MAX_TIMESTAMP } from './constants.js';
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

/** What a data frame carries, for `encodeFrame`. */
export interface FrameFields {
  /** Data command (plain: 63, 170, 127). With a key it goes out as its secure twin. */
  cmd: number;
  /** The sender's id (one route), or the whole route list whose last id is the source. */
  routes: number | ArrayLike<number>;
  /** Template id, 0..255. */
  tid: number;
  /** Milliseconds, 0..2^48-1. 0 asks the receiver to stamp the frame with its own clock. */
  timestamp: number;
  /** The plain body. */
  body: Uint8Array;
  /** Session key: when given and non-empty the body is XORed and the command made secure. */
  key?: Uint8Array | null | undefined;
}

/** Where decode finds session keys: a `Map<number, Uint8Array>` fits. */
export interface KeyLookup {
  get(aid: number): Uint8Array | null | undefined;
}

export interface DecodeOptions {
  /** Session keys by source aid; needed for secure frames only. */
  keys?: KeyLookup | undefined;
}

/**
 * A decoded data frame. It keeps the received bytes and reads from them (zero copy); only a
 * secure frame's body is a new array, the decrypted one.
 */
export class DecodedFrame {
  constructor(
    /** The whole frame as received. */
    readonly bytes: Uint8Array,
    /** Command byte as on the wire. */
    readonly cmd: number,
    readonly routeCount: number,
    /** The last route id: the device that sent the frame (0 without routes). */
    readonly sourceAid: number,
    /** Template id. */
    readonly tid: number,
    /** Wire timestamp in ms; 0 means the sender had no clock. */
    readonly timestamp: number,
    /** Offset of the body in `bytes`. */
    readonly bodyOffset: number,
    readonly bodyLength: number,
    /** CRC-8 of the plain body, as carried. */
    readonly crc8: number,
    /** CRC-16 of the frame, as carried. */
    readonly crc16: number,
    private readonly plain: Uint8Array | null,
  ) {}

  /** The command with the secure bit removed (63, 170 or 127). */
  get baseCmd(): number {
    return normalizeData(this.cmd);
  }

  get secure(): boolean {
    return isSecureData(this.cmd);
  }

  /** True when the sender sent no timestamp and the receiver must stamp it. */
  get needsServerStamp(): boolean {
    return this.timestamp === 0;
  }

  /**
   * The array that holds the plain body, from `plainBodyStart` for `bodyLength` bytes: `bytes`
   * itself, or the decrypted copy of a secure frame. For readers that take offsets (no view).
   */
  get plainBodySource(): Uint8Array {
    return this.plain ?? this.bytes;
  }

  get plainBodyStart(): number {
    return this.plain === null ? this.bodyOffset : 0;
  }

  /** The plain body: a view into `bytes`, or the decrypted copy of a secure frame. */
  get body(): Uint8Array {
    return this.plain ?? this.bytes.subarray(this.bodyOffset, this.bodyOffset + this.bodyLength);
  }

  /** Route id `i` (0-based). */
  routeAt(i: number): number {
    if (!(i >= 0 && i < this.routeCount)) throw new FrameFieldError('route', `index ${i} outside 0..${this.routeCount - 1}`);
    return readU32(this.bytes, 2 + 4 * i);
  }

  /** All route ids, oldest hop first; the last one is `sourceAid`. */
  get routes(): number[] {
    const out = new Array<number>(this.routeCount);
    for (let i = 0; i < this.routeCount; i++) out[i] = readU32(this.bytes, 2 + 4 * i);
    return out;
  }
}


function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

function checkByte(field: string, v: number): void {
  if (!((v & 0xff) === v)) throw new FrameFieldError(field, `${v} is not an integer in 0..255`);
}

function checkU32(v: number, i: number): void {
  if (!(v >>> 0 === v)) throw new FrameFieldError('routes', `route ${i} (${v}) is not an integer in 0..4294967295`);
}

/** Validates the fields of a frame and returns its route count; throws `FrameFieldError`. */
export function validateFrameFields(fields: FrameFields): number {
  const { cmd, routes, tid, timestamp, body } = fields;
  checkByte('cmd', cmd);
  checkByte('tid', tid);
  if (!(timestamp >= 0 && timestamp <= MAX_TIMESTAMP && Math.floor(timestamp) === timestamp)) {
    throw new FrameFieldError('timestamp', `${timestamp} is not an integer in 0..2^48-1`);
  }
  if (!(body instanceof Uint8Array)) throw new FrameFieldError('body', 'expected a Uint8Array');
  if (typeof routes === 'number') {
    checkU32(routes, 0);
    return 1;
  }
  const n = routes.length;
  if (!(n <= MAX_ROUTES)) throw new FrameFieldError('routes', `${n} routes, at most ${MAX_ROUTES} fit`);
  for (let i = 0; i < n; i++) checkU32(routes[i]!, i);
  return n;
}

/** Writes a frame into `out` at `offset`; returns its length. `out` must have room. */
export function encodeFrameInto(fields: FrameFields, out: Uint8Array, offset = 0): number {
  const rc = validateFrameFields(fields);
  const { cmd, routes, tid, timestamp, body, key } = fields;
  const bl = body.length;
  const len = encodedLength(rc, bl);
  if (!(offset >= 0 && offset + len <= out.length)) {
    throw new FrameFieldError('out', `${len} bytes do not fit at offset ${offset} of a ${out.length}-byte array`);
  }
  const secure = key != null && key.length > 0;
  const c8 = crc8Unchecked(body, 0, bl);
  let p = offset;
  out[p++] = secure ? secureVariant(cmd) : cmd;
  out[p++] = rc;
  if (typeof routes === 'number') {
    writeU32(out, p, routes);
    p += 4;
  } else {
    for (let i = 0; i < rc; i++, p += 4) writeU32(out, p, routes[i]!);
  }
  out[p++] = tid;
  const hi = Math.floor(timestamp / 0x100000000);
  out[p++] = hi >>> 8;
  out[p++] = hi;
  writeU32(out, p, timestamp >>> 0);
  p += 4;
  if (secure) xorInto(body, 0, bl, key, c8, out, p);
  else if (bl <= 32) for (let i = 0; i < bl; i++) out[p + i] = body[i]!;
  else out.set(body, p);
  p += bl;
  out[p++] = c8;
  const c16 = crc16Unchecked(out, offset, p);
  out[p++] = c16 >>> 8;
  out[p++] = c16;
  return len;
}

/** Where the body of a single-route frame starts: cmd, route count, route, tid, 6-byte timestamp. */
export const SINGLE_ROUTE_BODY_OFFSET = 2 + 4 + 1 + 6;

/**
 * Finishes a single-route frame in place whose body the caller wrote at
 * `out[SINGLE_ROUTE_BODY_OFFSET .. out.length - 3]`: the header, the body's CRC-8, its encryption
 * with `key` (when given; `cmd` becomes its secure variant) and the CRC-16. The same bytes as
 * `encodeFrame` with that body; lets a sender build its body where the frame holds it, so a frame
 * costs one allocation. Throws `FrameFieldError` for a field out of range or an `out` too short.
 */
export function sealFrame(out: Uint8Array, cmd: number, route: number, tid: number, timestamp: number, key: Uint8Array | null): void {
  checkByte('cmd', cmd);
  checkByte('tid', tid);
  checkU32(route, 0);
  if (!(timestamp >= 0 && timestamp <= MAX_TIMESTAMP && Math.floor(timestamp) === timestamp)) {
    throw new FrameFieldError('timestamp', `${timestamp} is not an integer in 0..2^48-1`);
  }
  const start = SINGLE_ROUTE_BODY_OFFSET;
  const end = out.length - 3;
  if (!(end >= start)) throw new FrameFieldError('out', `${out.length} bytes cannot hold a single-route frame (${start + 3} at least)`);
  const secure = key != null && key.length > 0;
  const c8 = crc8Unchecked(out, start, end);
  out[0] = secure ? secureVariant(cmd) : cmd;
  out[1] = 1;
  writeU32(out, 2, route);
  out[6] = tid;
  const hi = Math.floor(timestamp / 0x100000000);
  out[7] = hi >>> 8;
  out[8] = hi;
  writeU32(out, 9, timestamp >>> 0);
  if (secure) xorInto(out, start, end, key, c8, out, start);
  out[end] = c8;
  const c16 = crc16Unchecked(out, 0, end + 1);
  out[end + 1] = c16 >>> 8;
  out[end + 2] = c16;
}

/** Encodes one data frame into a new array. */
export function encodeFrame(fields: FrameFields): Uint8Array {
  const rc = typeof fields.routes === 'number' ? 1 : (fields.routes?.length ?? 0);
  const out = new Uint8Array(encodedLength(rc, fields.body?.length ?? 0));
  encodeFrameInto(fields, out, 0);
  return out;
}

/**
 * Decodes a data frame, running the checks in the reference's order: length, header, CRC-16,
 * session key, CRC-8, command. Throws a `FrameError` subclass naming the failed check.
 */
export function decodeFrame(frame: Uint8Array, options?: DecodeOptions): DecodedFrame {
  if (!(frame instanceof Uint8Array)) throw new FrameFieldError('frame', 'expected a Uint8Array');
  const len = frame.length;
  if (len < 5) throw new FrameTooShortError(len);
  const rc = frame[1]!;
  const need = encodedLength(rc, 0);
  if (len < need) throw new IncompleteHeaderError(len, need, rc, isSecureData(frame[0]!));
  const cmd = frame[0]!;
  const sourceAid = rc === 0 ? 0 : readU32(frame, 4 * rc - 2);
  const wire16 = (frame[len - 2]! << 8) | frame[len - 1]!;
  const c16 = crc16Unchecked(frame, 0, len - 2);
  const secure = isSecureData(cmd);
  if (c16 !== wire16) {
    throw new Crc16MismatchError(wire16, c16, { cmd, baseCmd: normalizeData(cmd), secure, sourceAid });
  }
  const p = 2 + 4 * rc;
  const tid = frame[p]!;
  const timestamp = readU48(frame, p + 1);
  const bodyOffset = p + 7;
  const bodyEnd = len - 3;
  const wire8 = frame[bodyEnd]!;
  let plain: Uint8Array | null = null;
  let c8: number;
  if (secure) {
    const key = options?.keys?.get(sourceAid);
    if (!key || key.length === 0) {
      throw new MissingSecureKeyError(sourceAid, header(cmd, sourceAid, tid, timestamp));
    }
    plain = new Uint8Array(bodyEnd - bodyOffset);
    xorInto(frame, bodyOffset, bodyEnd, key, wire8, plain, 0);
    c8 = crc8Unchecked(plain, 0, plain.length);
  } else {
    c8 = crc8Unchecked(frame, bodyOffset, bodyEnd);
  }
  if (c8 !== wire8) throw new Crc8MismatchError(wire8, c8, header(cmd, sourceAid, tid, timestamp));
  if (!isData(cmd)) throw new UnknownCommandError(cmd, header(cmd, sourceAid, tid, timestamp));
  return new DecodedFrame(frame, cmd, rc, sourceAid, tid, timestamp, bodyOffset, bodyEnd - bodyOffset, wire8, wire16, plain);
}

function header(cmd: number, sourceAid: number, tid: number, timestamp: number): PartialFrameHeader {
  return { cmd, baseCmd: normalizeData(cmd), secure: isSecureData(cmd), sourceAid, tid, timestamp };
}
