/**
 * Control packets (all integers big-endian):
 *
 * | packet | layout |
 * |---|---|
 * | ID_REQUEST | `[1][seq:2][json meta utf-8]` |
 * | ID_ASSIGN | `[2][seq:2][aid:4]([server_time:8])` |
 * | ID_POOL_REQ | `[3][seq:2][count:2][json meta]` (count as given; a server grants at most 256) |
 * | ID_POOL_RES | `[4][seq:2][count:2][aid:4]*count` |
 * | ACK / NACK | `[5][seq:2]` / `[6][seq:2][reason utf-8]` |
 * | PING / PONG | `[9][seq:2]` / `[10][seq:2]` |
 * | TIME_REQUEST / RESPONSE | `[11][seq:2]` / `[12][seq:2][unix seconds:8]` |
 * | SECURE_DICT_READY | `[13][aid:4][ts:8]` |
 * | SECURE_CHANNEL_ACK | `[14][aid:4]` |
 *
 * Builders validate their arguments and throw `HandshakeFieldError`; parsers are strict (exact
 * layout, typed `TruncatedPacketError` / `OversizedPacketError` / `WrongCommandError`). The
 * manager reads inbound packets with the reference's leniency instead (see `manager.ts`).
 */
import {
  HANDSHAKE_ACK,
  HANDSHAKE_NACK,
  ID_ASSIGN,
  ID_POOL_REQ,
  ID_POOL_RES,
  ID_REQUEST,
  PING,
  PONG,
  SECURE_CHANNEL_ACK,
  SECURE_DICT_READY,
  TIME_REQUEST,
  TIME_RESPONSE,
} from '@opensynaptic/cmd';
import { readU16, readU32 } from '@opensynaptic/packet';
import {
  HandshakeFieldError,
  MetaTooLargeError,
  OversizedPacketError,
  TruncatedPacketError,
  WrongCommandError,
} from './errors.js';
import { type JsonInput, pyJsonDumps } from './json.js';
import { utf8DecodeIgnore, utf8Encode } from './utf8.js';

/** Default limit of JSON meta in ID_REQUEST / ID_POOL_REQ, in UTF-8 bytes. Larger meta is refused. */
export const DEFAULT_MAX_META_BYTES = 4096;
/** Longest NACK reason built or accepted by the strict parser, in UTF-8 bytes. */
export const MAX_NACK_REASON_BYTES = 1024;
/** Largest pool a server grants for one ID_POOL_REQ; a larger count asked for is capped (as the reference's server does). */
export const MAX_POOL_COUNT = 256;
/** Pool size asked for when none is given (the reference's default). */
export const DEFAULT_POOL_COUNT = 10;
/** Largest id list an ID_POOL_RES can carry (its count field is 16 bits). */
export const MAX_POOL_RESPONSE_IDS = 0xffff;

/**
 * An 8-byte field: a `number` when it fits in 2^53 - 1 (always, for real clocks), else an exact
 * `bigint`, so key derivation from a hostile timestamp still matches the reference.
 */
export type U64 = number | bigint;

const U64_MAX = 2n ** 64n - 1n;

/** 16-bit sequence counter, pre-incremented: the first value is 1, 65535 is followed by 0. */
export class SeqCounter {
  #value: number;
  /** @param value the last value handed out (the next `next()` returns value + 1). */
  constructor(value = 0) {
    this.#value = checkSeq(value);
  }
  /** Advances and returns the new value. */
  next(): number {
    this.#value = (this.#value + 1) & 0xffff;
    return this.#value;
  }
  /** The last value handed out. */
  get current(): number {
    return this.#value;
  }
  /** Makes `value` the last value handed out. */
  set(value: number): void {
    this.#value = checkSeq(value);
  }
}

function checkSeq(seq: number): number {
  if (!(Number.isInteger(seq) && seq >= 0 && seq <= 0xffff)) {
    throw new HandshakeFieldError('seq', `${String(seq)} is not an integer in 0..65535`);
  }
  return seq;
}

function checkU32(field: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
    throw new HandshakeFieldError(field, `${String(v)} is not an integer in 0..4294967295`);
  }
  return v;
}

function checkU64(field: string, v: U64): U64 {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) throw new HandshakeFieldError(field, `${v} is outside 0..2^64-1`);
    return v;
  }
  if (!(Number.isSafeInteger(v) && v >= 0)) {
    throw new HandshakeFieldError(field, `${String(v)} is not an integer in 0..2^53-1 (pass a bigint for more)`);
  }
  return v;
}

// One implementation for every package, the frame codec's; still exported from here as before.
export { readU16, readU32 };

/** Reads a big-endian uint64 at `p`: a number when at most 2^53 - 1, else a bigint. */
export function readU64(b: Uint8Array, p: number): U64 {
  const hi = readU32(b, p);
  const lo = readU32(b, p + 4);
  if (hi < 0x200000) return hi * 0x100000000 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function writeU16(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 8;
  b[p + 1] = v;
}

function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

function writeU64(b: Uint8Array, p: number, v: U64): void {
  if (typeof v === 'bigint') {
    writeU32(b, p, Number(v >> 32n));
    writeU32(b, p + 4, Number(v & 0xffffffffn));
  } else {
    writeU32(b, p, Math.floor(v / 0x100000000));
    writeU32(b, p + 4, v >>> 0);
  }
}

function header(cmd: number, seq: number, extra: number): Uint8Array {
  const out = new Uint8Array(3 + extra);
  out[0] = cmd;
  writeU16(out, 1, checkSeq(seq));
  return out;
}

/** Options of the builders and parsers that carry JSON meta. */
export interface MetaOptions {
  /** Largest meta accepted, in UTF-8 bytes (default `DEFAULT_MAX_META_BYTES`, 4096). */
  maxMetaBytes?: number;
}

/** JSON text of a meta object as the reference writes it; `null`/`undefined` give `{}`. */
export function metaText(meta: JsonInput | null | undefined): string {
  return meta === null || meta === undefined ? '{}' : pyJsonDumps(meta);
}

function metaBytes(meta: JsonInput | null | undefined, options: MetaOptions | undefined): Uint8Array {
  const bytes = utf8Encode(metaText(meta));
  const limit = options?.maxMetaBytes ?? DEFAULT_MAX_META_BYTES;
  if (bytes.length > limit) throw new MetaTooLargeError(bytes.length, limit);
  return bytes;
}

/** `[1][seq:2][json meta]`: a device asks for an id. */
export function buildIdRequest(seq: number, meta?: JsonInput | null, options?: MetaOptions): Uint8Array {
  const m = metaBytes(meta, options);
  const out = header(ID_REQUEST, seq, m.length);
  out.set(m, 3);
  return out;
}

/** `[2][seq:2][aid:4]([server_time:8])`: the server's answer to ID_REQUEST. */
export function buildIdAssign(seq: number, aid: number, serverTime?: U64 | null): Uint8Array {
  checkU32('aid', aid);
  const withTime = serverTime !== undefined && serverTime !== null;
  const out = header(ID_ASSIGN, seq, withTime ? 12 : 4);
  writeU32(out, 3, aid);
  if (withTime) writeU64(out, 7, checkU64('serverTime', serverTime));
  return out;
}

/**
 * `[3][seq:2][count:2][json meta]`. The count is written as given, as the reference does (only the
 * server caps a pool, at `MAX_POOL_COUNT`); one that does not fit the 16-bit field is refused.
 */
export function buildIdPoolRequest(
  seq: number,
  count: number = DEFAULT_POOL_COUNT,
  meta?: JsonInput | null,
  options?: MetaOptions,
): Uint8Array {
  if (!(Number.isInteger(count) && count >= 0 && count <= 0xffff)) {
    throw new HandshakeFieldError('count', `${String(count)} is not an integer in 0..65535 (a 16-bit field)`);
  }
  const m = metaBytes(meta, options);
  const out = header(ID_POOL_REQ, seq, 2 + m.length);
  writeU16(out, 3, count);
  out.set(m, 5);
  return out;
}

/** `[4][seq:2][count:2][aid:4]*count`. */
export function buildIdPoolResponse(seq: number, ids: ArrayLike<number>): Uint8Array {
  const n = ids.length;
  if (n > MAX_POOL_RESPONSE_IDS) throw new HandshakeFieldError('ids', `${n} ids, at most ${MAX_POOL_RESPONSE_IDS} fit`);
  const out = header(ID_POOL_RES, seq, 2 + 4 * n);
  writeU16(out, 3, n);
  for (let i = 0; i < n; i++) writeU32(out, 5 + 4 * i, checkU32(`ids[${i}]`, ids[i]!));
  return out;
}

/** `[5][seq:2]`. */
export function buildAck(seq: number): Uint8Array {
  return header(HANDSHAKE_ACK, seq, 0);
}

/** `[6][seq:2][reason utf-8]`; the reason is at most `MAX_NACK_REASON_BYTES`. */
export function buildNack(seq = 0, reason = ''): Uint8Array {
  const r = utf8Encode(reason);
  if (r.length > MAX_NACK_REASON_BYTES) {
    throw new HandshakeFieldError('reason', `${r.length} bytes, at most ${MAX_NACK_REASON_BYTES}`);
  }
  const out = header(HANDSHAKE_NACK, seq, r.length);
  out.set(r, 3);
  return out;
}

/** `[9][seq:2]`. */
export function buildPing(seq: number): Uint8Array {
  return header(PING, seq, 0);
}

/** `[10][seq:2]`. */
export function buildPong(seq: number): Uint8Array {
  return header(PONG, seq, 0);
}

/** `[11][seq:2]`. */
export function buildTimeRequest(seq: number): Uint8Array {
  return header(TIME_REQUEST, seq, 0);
}

/** `[12][seq:2][unix seconds:8]`. */
export function buildTimeResponse(seq: number, serverTime: U64): Uint8Array {
  const out = header(TIME_RESPONSE, seq, 8);
  writeU64(out, 3, checkU64('serverTime', serverTime));
  return out;
}

/** `[13][aid:4][ts:8]`: the receiver holds the session key derived from `ts`. */
export function buildSecureDictReady(aid: number, timestamp: U64): Uint8Array {
  const out = new Uint8Array(13);
  out[0] = SECURE_DICT_READY;
  writeU32(out, 1, checkU32('aid', aid));
  writeU64(out, 5, checkU64('timestamp', timestamp));
  return out;
}

/** `[14][aid:4]`: the receiver decoded a secure frame. */
export function buildSecureChannelAck(aid: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = SECURE_CHANNEL_ACK;
  writeU32(out, 1, checkU32('aid', aid));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Strict parsers

export interface IdRequestPacket {
  cmd: typeof ID_REQUEST;
  seq: number;
  /** The meta text, invalid UTF-8 dropped (as the reference decodes it). */
  metaText: string;
  /** The parsed meta: `{}` when the text is empty or not JSON (the reference's fallback). */
  meta: unknown;
  /** False when the text was not empty and not JSON. */
  metaValid: boolean;
}

export interface IdAssignPacket {
  cmd: typeof ID_ASSIGN;
  seq: number;
  aid: number;
  /** Unix seconds as on the wire (the packet parsers give wire fields), or `null` in the short form. */
  serverTime: U64 | null;
}

export interface IdPoolRequestPacket {
  cmd: typeof ID_POOL_REQ;
  seq: number;
  /** The count on the wire. */
  requested: number;
  /** `min(requested, 256)`. */
  count: number;
  metaText: string;
  meta: unknown;
  metaValid: boolean;
}

export interface IdPoolResponsePacket {
  cmd: typeof ID_POOL_RES;
  seq: number;
  ids: number[];
}

export interface SeqPacket<C extends number> {
  cmd: C;
  seq: number;
}

export interface NackPacket {
  cmd: typeof HANDSHAKE_NACK;
  seq: number;
  /** The reason, invalid UTF-8 dropped. */
  reason: string;
}

export interface TimeResponsePacket {
  cmd: typeof TIME_RESPONSE;
  seq: number;
  /** Unix seconds as on the wire (`HandshakeRequester.requestTime` gives ms). */
  serverTime: U64;
}

export interface SecureDictReadyPacket {
  cmd: typeof SECURE_DICT_READY;
  aid: number;
  /** The timestamp the key derives from, or `null` in the 5-byte form. */
  timestamp: U64 | null;
}

export interface SecureChannelAckPacket {
  cmd: typeof SECURE_CHANNEL_ACK;
  aid: number;
}

/** Every control packet, by command. */
export type ControlPacket =
  | IdRequestPacket
  | IdAssignPacket
  | IdPoolRequestPacket
  | IdPoolResponsePacket
  | SeqPacket<typeof HANDSHAKE_ACK>
  | NackPacket
  | SeqPacket<typeof PING>
  | SeqPacket<typeof PONG>
  | SeqPacket<typeof TIME_REQUEST>
  | TimeResponsePacket
  | SecureDictReadyPacket
  | SecureChannelAckPacket;

const NAMES: Record<number, string> = {
  [ID_REQUEST]: 'ID_REQUEST',
  [ID_ASSIGN]: 'ID_ASSIGN',
  [ID_POOL_REQ]: 'ID_POOL_REQ',
  [ID_POOL_RES]: 'ID_POOL_RES',
  [HANDSHAKE_ACK]: 'HANDSHAKE_ACK',
  [HANDSHAKE_NACK]: 'HANDSHAKE_NACK',
  [PING]: 'PING',
  [PONG]: 'PONG',
  [TIME_REQUEST]: 'TIME_REQUEST',
  [TIME_RESPONSE]: 'TIME_RESPONSE',
  [SECURE_DICT_READY]: 'SECURE_DICT_READY',
  [SECURE_CHANNEL_ACK]: 'SECURE_CHANNEL_ACK',
};

function expectCmd(b: Uint8Array, cmd: number): void {
  if (!(b instanceof Uint8Array)) throw new HandshakeFieldError('packet', 'expected a Uint8Array');
  if (b[0] !== cmd) throw new WrongCommandError(cmd, b[0]);
}

function exact(b: Uint8Array, cmd: number, len: number): void {
  expectCmd(b, cmd);
  if (b.length < len) throw new TruncatedPacketError(NAMES[cmd]!, b.length, len);
  if (b.length > len) throw new OversizedPacketError(NAMES[cmd]!, b.length, len);
}

function atLeast(b: Uint8Array, cmd: number, len: number): void {
  expectCmd(b, cmd);
  if (b.length < len) throw new TruncatedPacketError(NAMES[cmd]!, b.length, len);
}

/**
 * Decodes JSON meta the reference's way: invalid UTF-8 dropped, empty or non-JSON text read as
 * `{}`. Throws `MetaTooLargeError` above the limit, before decoding anything.
 */
export function parseMeta(
  b: Uint8Array,
  start: number,
  end: number = b.length,
  options?: MetaOptions,
): { text: string; value: unknown; valid: boolean } {
  const size = Math.max(0, end - start);
  const limit = options?.maxMetaBytes ?? DEFAULT_MAX_META_BYTES;
  if (size > limit) throw new MetaTooLargeError(size, limit);
  const text = utf8DecodeIgnore(b, start, end);
  if (text.trim() === '') return { text, value: {}, valid: text === '' };
  try {
    return { text, value: JSON.parse(text) as unknown, valid: true };
  } catch {
    return { text, value: {}, valid: false };
  }
}

export function parseIdRequest(b: Uint8Array, options?: MetaOptions): IdRequestPacket {
  atLeast(b, ID_REQUEST, 3);
  const m = parseMeta(b, 3, b.length, options);
  return { cmd: ID_REQUEST, seq: readU16(b, 1), metaText: m.text, meta: m.value, metaValid: m.valid };
}

/** Accepts the 7-byte form and the 15-byte form with server time. */
export function parseIdAssign(b: Uint8Array): IdAssignPacket {
  atLeast(b, ID_ASSIGN, 7);
  if (b.length > 15) throw new OversizedPacketError('ID_ASSIGN', b.length, 15);
  if (b.length > 7 && b.length < 15) throw new TruncatedPacketError('ID_ASSIGN', b.length, 15);
  return { cmd: ID_ASSIGN, seq: readU16(b, 1), aid: readU32(b, 3), serverTime: b.length === 15 ? readU64(b, 7) : null };
}

export function parseIdPoolRequest(b: Uint8Array, options?: MetaOptions): IdPoolRequestPacket {
  atLeast(b, ID_POOL_REQ, 5);
  const requested = readU16(b, 3);
  const m = parseMeta(b, 5, b.length, options);
  return {
    cmd: ID_POOL_REQ,
    seq: readU16(b, 1),
    requested,
    count: Math.min(requested, MAX_POOL_COUNT),
    metaText: m.text,
    meta: m.value,
    metaValid: m.valid,
  };
}

/** Exactly `count` ids must follow. */
export function parseIdPoolResponse(b: Uint8Array): IdPoolResponsePacket {
  atLeast(b, ID_POOL_RES, 5);
  const n = readU16(b, 3);
  exact(b, ID_POOL_RES, 5 + 4 * n);
  const ids = new Array<number>(n);
  for (let i = 0; i < n; i++) ids[i] = readU32(b, 5 + 4 * i);
  return { cmd: ID_POOL_RES, seq: readU16(b, 1), ids };
}

export function parseAck(b: Uint8Array): SeqPacket<typeof HANDSHAKE_ACK> {
  exact(b, HANDSHAKE_ACK, 3);
  return { cmd: HANDSHAKE_ACK, seq: readU16(b, 1) };
}

export function parseNack(b: Uint8Array): NackPacket {
  atLeast(b, HANDSHAKE_NACK, 3);
  if (b.length - 3 > MAX_NACK_REASON_BYTES) throw new OversizedPacketError('HANDSHAKE_NACK', b.length, 3 + MAX_NACK_REASON_BYTES);
  return { cmd: HANDSHAKE_NACK, seq: readU16(b, 1), reason: utf8DecodeIgnore(b, 3) };
}

export function parsePing(b: Uint8Array): SeqPacket<typeof PING> {
  exact(b, PING, 3);
  return { cmd: PING, seq: readU16(b, 1) };
}

export function parsePong(b: Uint8Array): SeqPacket<typeof PONG> {
  exact(b, PONG, 3);
  return { cmd: PONG, seq: readU16(b, 1) };
}

export function parseTimeRequest(b: Uint8Array): SeqPacket<typeof TIME_REQUEST> {
  exact(b, TIME_REQUEST, 3);
  return { cmd: TIME_REQUEST, seq: readU16(b, 1) };
}

export function parseTimeResponse(b: Uint8Array): TimeResponsePacket {
  exact(b, TIME_RESPONSE, 11);
  return { cmd: TIME_RESPONSE, seq: readU16(b, 1), serverTime: readU64(b, 3) };
}

/** Accepts the 13-byte form and the 5-byte form without timestamp. */
export function parseSecureDictReady(b: Uint8Array): SecureDictReadyPacket {
  atLeast(b, SECURE_DICT_READY, 5);
  if (b.length > 13) throw new OversizedPacketError('SECURE_DICT_READY', b.length, 13);
  if (b.length > 5 && b.length < 13) throw new TruncatedPacketError('SECURE_DICT_READY', b.length, 13);
  return { cmd: SECURE_DICT_READY, aid: readU32(b, 1), timestamp: b.length === 13 ? readU64(b, 5) : null };
}

export function parseSecureChannelAck(b: Uint8Array): SecureChannelAckPacket {
  exact(b, SECURE_CHANNEL_ACK, 5);
  return { cmd: SECURE_CHANNEL_ACK, aid: readU32(b, 1) };
}

/**
 * Parses any control packet by its first byte. Throws `WrongCommandError` for a data command
 * or an unassigned byte, and the strict parsers' errors otherwise.
 */
export function parseControlPacket(b: Uint8Array, options?: MetaOptions): ControlPacket {
  if (!(b instanceof Uint8Array)) throw new HandshakeFieldError('packet', 'expected a Uint8Array');
  switch (b[0]) {
    case ID_REQUEST:
      return parseIdRequest(b, options);
    case ID_ASSIGN:
      return parseIdAssign(b);
    case ID_POOL_REQ:
      return parseIdPoolRequest(b, options);
    case ID_POOL_RES:
      return parseIdPoolResponse(b);
    case HANDSHAKE_ACK:
      return parseAck(b);
    case HANDSHAKE_NACK:
      return parseNack(b);
    case PING:
      return parsePing(b);
    case PONG:
      return parsePong(b);
    case TIME_REQUEST:
      return parseTimeRequest(b);
    case TIME_RESPONSE:
      return parseTimeResponse(b);
    case SECURE_DICT_READY:
      return parseSecureDictReady(b);
    case SECURE_CHANNEL_ACK:
      return parseSecureChannelAck(b);
    default:
      throw new WrongCommandError(null, b[0]);
  }
}
