/**
 * Receiving through the native addon: one call checks the frame (length, CRC-16, key, CRC-8,
 * command) and, for a DIFF frame, reads its body (mask and value lengths, with the same overrun
 * checks as the TypeScript engine) for the value count the template is expected to have.
 *
 * The count comes from the last frame of the same AID and tid, so nothing is looked up before the
 * frame has passed its checks; the engine uses the reading only when the template it then finds
 * has that count, and reads the body itself otherwise. A frame that fails a check is decoded again
 * by the engine's frame codec, which throws the exact typed error.
 *
 * Layout of the `io` buffer: crates/opensynaptic-napi/src/fusion.rs.
 */
import { isSecureData } from '@opensynaptic/cmd';
import { DecodedFrame, encodedLength, type KeyLookup, readU32 } from '@opensynaptic/packet';
import type { FusionBinding } from './native-binding.js';
import { NATIVE_MAX_FRAME, NativeIo, nativeFailure, nativeStatusError } from './native-io.js';
import { CTRL } from './native-sender.js';

const NONE = 0xffffffff;
const MIN_IO = 4096;
const MAX_REMEMBERED = 65536;

/** A DIFF body as the addon read it, for a template of `count` values. */
export interface DiffReading {
  count: number;
  /** 1 read fine; 2 mask cut short; 3 mask marks a value past the end; 4 a value overruns. */
  status: number;
  a: number;
  b: number;
  c: number;
  /** `index, start, end` (into the body) per changed value read (before the fault, on an error). */
  changed: number[];
}

/** The `DiffOverrunError` detail for a failed reading (the same text the TypeScript engine writes). */
export function diffErrorDetail(r: DiffReading): string {
  switch (r.status) {
    case 2:
      return `the ${r.a}-byte mask for ${r.b} values is cut short (${r.c} bytes)`;
    case 3:
      return `the mask marks value ${r.a} but the body ends at byte ${r.b}`;
    default:
      return `value ${r.a} claims ${r.b} bytes but ${r.c} remain`;
  }
}

/** Bytes of key the io buffer has room for at most (session keys are 32 bytes). */
const MAX_KEY = 1024;
/** Highest status `fusionReceive` returns (6: unknown command). */
const MAX_STATUS = 6;

/**
 * Bytes of `io` a call needs: control words, key, the plain body of a secure frame (at most the
 * frame), and a changed-list entry (12 bytes) per value read, which is never more than the body
 * has bytes (each value read takes at least its length byte). 16 covers the word alignments.
 */
function ioNeed(keyLen: number, len: number, count: number): number {
  return CTRL + keyLen + 16 + len + (count === NONE ? 0 : 12 * Math.min(count, len));
}

export class NativeReceiver {
  readonly #b: FusionBinding;
  readonly #io = new NativeIo(MIN_IO, ioNeed(MAX_KEY, NATIVE_MAX_FRAME, NATIVE_MAX_FRAME));
  /** Value count of the last frame per `aid * 256 + tid`. */
  readonly #counts = new Map<number, number>();
  /** The reading of the last frame `decode` returned, until `take`n. */
  #diff: DiffReading | null = null;

  constructor(binding: FusionBinding) {
    this.#b = binding;
  }

  /**
   * The checked frame, or `null` when a check failed or the frame (or key) is larger than the io
   * buffer is made for (decode it with the frame codec, for the error or the frame). A DIFF frame's body reading
   * waits for `take`. A native failure throws `NativeBackendError` and changes nothing here.
   */
  decode(frame: Uint8Array, keys: KeyLookup): DecodedFrame | null {
    this.#diff = null;
    if (!(frame instanceof Uint8Array)) return null;
    const len = frame.length;
    // Larger frames are checked by the frame codec alone (which allocates for each one).
    if (len > NATIVE_MAX_FRAME) return null;
    let key: Uint8Array | null = null;
    let count = NONE;
    if (len >= 5 && len >= encodedLength(frame[1]!, 0)) {
      const rc = frame[1]!;
      const aid = rc === 0 ? 0 : readU32(frame, 4 * rc - 2);
      if (isSecureData(frame[0]!)) {
        key = keys.get(aid) ?? null;
        if (key !== null && key.length === 0) key = null;
        if (key !== null && key.length > MAX_KEY) return null;
      }
      count = this.#counts.get(aid * 256 + frame[2 + 4 * rc]!) ?? NONE;
    }
    const keyLen = key === null ? 0 : key.length;
    // Within the bound by the checks above; a frame the buffer cannot take goes to the frame codec.
    if (!this.#io.reserve(ioNeed(keyLen, len, count))) return null;
    const io = this.#io.bytes;
    const w = this.#io.words;
    w[0] = keyLen;
    w[1] = count;
    if (key !== null) io.set(key, CTRL);
    let status: number;
    try {
      status = this.#b.fusionReceive(frame, io);
    } catch (e) {
      throw nativeFailure('fusionReceive', e);
    }
    if (status !== 0) {
      if (status > 0 && status <= MAX_STATUS) return null;
      throw nativeStatusError('fusionReceive', `unknown status ${status}`);
    }
    const bodyOffset = w[8]!;
    const bodyLength = w[9]!;
    const plainAt = w[12]!;
    const diffStatus = w[13]!;
    // The results must describe this frame; nothing is decoded from anything else.
    if (bodyOffset + bodyLength > len || (plainAt !== 0 && plainAt + bodyLength > io.length) || diffStatus > 4) {
      throw nativeStatusError('fusionReceive', `results out of range (body ${bodyOffset}+${bodyLength} of ${len} bytes, DIFF status ${diffStatus})`);
    }
    let diff: DiffReading | null = null;
    if (diffStatus !== 0) {
      const n = w[17]! * 3;
      const p = w[18]! >> 2;
      if (count === NONE || w[17]! > count || p + n > w.length) {
        throw nativeStatusError('fusionReceive', `DIFF reading out of range (${w[17]} values for ${count})`);
      }
      const changed = new Array<number>(n);
      for (let i = 0; i < n; i++) changed[i] = w[p + i]!;
      diff = { count, status: diffStatus, a: w[14]!, b: w[15]!, c: w[16]!, changed };
    }
    const f = new DecodedFrame(
      frame,
      w[2]!,
      w[3]!,
      w[4]!,
      w[5]!,
      w[6]! * 0x100000000 + w[7]!,
      bodyOffset,
      bodyLength,
      w[10]!,
      w[11]!,
      plainAt === 0 ? null : io.slice(plainAt, plainAt + bodyLength),
    );
    this.#diff = diff;
    return f;
  }

  /**
   * The reading of the DIFF frame just decoded if it was made for `count` values, else `null`
   * (the engine reads the body itself). Remembers `count` for the template's next frame.
   */
  take(aid: number, tid: number, count: number): DiffReading | null {
    const d = this.#diff;
    this.#diff = null;
    if (d !== null && d.count === count) return d;
    const counts = this.#counts;
    if (counts.size >= MAX_REMEMBERED) counts.clear();
    counts.set(aid * 256 + tid, count);
    return null;
  }
}
