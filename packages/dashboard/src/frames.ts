import { cmdName, isSecureData } from '@opensynaptic/cmd';
import { decodeFrame } from '@opensynaptic/packet';
import type { DecodedFields } from './decoded.js';

/** One inbound data frame as the inspector shows it. */
export interface InspectedFrame {
  receivedAtMs: number;
  via: string;
  /** The peer's address (`host:port`, or the medium's key). */
  peer: string;
  length: number;
  hex: string;
  cmd: number;
  /** The command's name (`DATA_FULL`, `DATA_DIFF_SEC`...), or `null` for an unknown byte. */
  command: string | null;
  strategy: 'FULL' | 'DIFF' | 'HEART' | null;
  secure: boolean;
  tid: number | null;
  /** The wire timestamp field. */
  timestamp: number | null;
  crc8: number | null;
  crc16: number | null;
  /** The checks the frame passed without its session key: `ok`, or the failed check's code. */
  check: string;
  /** The plain body when it is text (a FULL body); `null` for a binary or a secure one (the inspector has no key). */
  body: string | null;
  /** The fields the server decoded from this frame (sensors, which a DIFF changed, the template of a DIFF or HEART); `null` until its reading came, or when it did not decode. */
  decoded: DecodedFields | null;
}

function strategyOf(name: string | null): InspectedFrame['strategy'] {
  if (name === null) return null;
  return name.includes('FULL') ? 'FULL' : name.includes('DIFF') ? 'DIFF' : name.includes('HEART') ? 'HEART' : null;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function inspectFrame(frame: Uint8Array, meta: { receivedAtMs: number; via: string; peer: string }): InspectedFrame {
  const cmd = frame[0] ?? 0;
  const command = cmdName(cmd) ?? null;
  let hex = '';
  for (const b of frame) hex += HEX[b];
  const out: InspectedFrame = { ...meta, length: frame.length, hex, cmd, command, strategy: strategyOf(command), secure: isSecureData(cmd), tid: null, timestamp: null, crc8: null, crc16: frame.length >= 2 ? ((frame[frame.length - 2] as number) << 8) | (frame[frame.length - 1] as number) : null, check: 'ok', body: null, decoded: null };
  try {
    const d = decodeFrame(frame);
    out.tid = d.tid;
    out.timestamp = d.timestamp;
    out.crc8 = d.crc8;
    out.crc16 = d.crc16;
    // A FULL body is text; a DIFF or HEART body is binary: shown only in the hex.
    const body = d.body;
    const binary = body.some((b) => b < 0x20 || b === 0x7f);
    const text = binary ? '' : new TextDecoder('utf-8', { fatal: false }).decode(body);
    out.body = binary || text.includes('\ufffd') ? null : text;
  } catch (e) {
    const err = e as { code?: string; header?: { tid?: number; timestamp?: number } };
    out.check = err.code ?? 'ERR_FRAME';
    if (err.header?.tid !== undefined) out.tid = err.header.tid;
    if (err.header?.timestamp !== undefined) out.timestamp = err.header.timestamp;
    // A secure frame without its key: the CRC-16 over the whole frame was checked before the key.
    if (err.code === 'ERR_FRAME_MISSING_KEY') out.check = 'ok (secure: body not shown)';
  }
  return out;
}

/**
 * A kept frame: its bytes (a copy: a receive batch's view would hold the whole batch) and where
 * it came from; everything else (hex, header, CRC checks, body text, the decoded fields) is
 * worked out when someone asks (`GET /api/frames`), not for every frame received: at 10,000
 * frames/s that work cost the server's thread more than its own decoding (bench/page.bench.mjs).
 */
export class KeptFrame implements InspectedFrame {
  readonly receivedAtMs: number;
  readonly via: string;
  readonly peer: string;
  readonly bytes: Uint8Array;
  #full: InspectedFrame | null = null;
  #decoded: DecodedFields | null = null;
  #decode: (() => DecodedFields | null) | null = null;

  constructor(bytes: Uint8Array, meta: { receivedAtMs: number; via: string; peer: string }) {
    this.bytes = bytes;
    this.receivedAtMs = meta.receivedAtMs;
    this.via = meta.via;
    this.peer = meta.peer;
  }

  #inspect(): InspectedFrame {
    this.#full ??= inspectFrame(this.bytes, { receivedAtMs: this.receivedAtMs, via: this.via, peer: this.peer });
    return this.#full;
  }

  get length(): number {
    return this.bytes.length;
  }
  get cmd(): number {
    return this.bytes[0] ?? 0;
  }
  get secure(): boolean {
    return isSecureData(this.cmd);
  }
  /** The template id byte, read without the CRC checks (`tid` checks them). */
  get rawTid(): number | null {
    const routes = this.bytes[1];
    const at = routes === undefined ? -1 : 2 + 4 * routes;
    return at >= 2 && at < this.bytes.length - 3 ? (this.bytes[at] as number) : null;
  }
  get hex(): string {
    return this.#inspect().hex;
  }
  get command(): string | null {
    return this.#inspect().command;
  }
  get strategy(): InspectedFrame['strategy'] {
    return this.#inspect().strategy;
  }
  get tid(): number | null {
    return this.#inspect().tid;
  }
  get timestamp(): number | null {
    return this.#inspect().timestamp;
  }
  get crc8(): number | null {
    return this.#inspect().crc8;
  }
  get crc16(): number | null {
    return this.#inspect().crc16;
  }
  get check(): string {
    return this.#inspect().check;
  }
  get body(): string | null {
    return this.#inspect().body;
  }
  get decoded(): DecodedFields | null {
    if (this.#decode !== null) {
      this.#decoded = this.#decode();
      this.#decode = null;
    }
    return this.#decoded;
  }
  set decoded(value: DecodedFields | null) {
    this.#decode = null;
    this.#decoded = value;
  }
  /** Sets `decoded` to what `build` gives, built on first read. */
  decodeLater(build: () => DecodedFields | null): void {
    this.#decode = build;
  }

  toJSON(): InspectedFrame {
    return { ...this.#inspect(), decoded: this.decoded };
  }
}

/** The last frames of each device (by source aid), bounded per device and in devices. */
export class FrameLog {
  readonly #byAid = new Map<number, KeptFrame[]>();
  constructor(
    readonly perDevice: number,
    readonly maxDevices: number,
  ) {}

  /** Keeps the frame (a copy of its bytes); returns what it keeps (`null` with `perDevice` 0). */
  add(aid: number, frame: Uint8Array, meta: { receivedAtMs: number; via: string; peer: string }): KeptFrame | null {
    if (this.perDevice === 0) return null;
    let list = this.#byAid.get(aid);
    if (list === undefined) {
      if (this.#byAid.size >= this.maxDevices) {
        const oldest = this.#byAid.keys().next().value;
        if (oldest !== undefined) this.#byAid.delete(oldest);
      }
      list = [];
      this.#byAid.set(aid, list);
    }
    const kept = new KeptFrame(frame.slice(), meta);
    list.push(kept);
    if (list.length > this.perDevice) list.shift();
    return kept;
  }

  /** The kept frames of `aid`, inspected now (oldest first). */
  get(aid: number): InspectedFrame[] {
    return (this.#byAid.get(aid) ?? []).map((f) => f.toJSON());
  }
}
