/**
 * Framings of byte streams. OpenSynaptic frames carry no length of their own, so a stream
 * (TCP, a Unix socket, a serial line) needs one:
 *
 * - **length prefix** (TCP and Unix streaming mode): `[u32 big-endian length][frame]`, repeated;
 *   a length of 0 is a heartbeat and carries no frame. A length over the receiver's
 *   `maxFrameBytes` is a protocol error (the stream cannot be resynchronised; the connection is
 *   closed) and is refused before anything is allocated, so a prefix announcing 4 GiB costs nothing.
 * - **COBS** (serial default): consistent overhead byte stuffing, `0x00` as delimiter, each frame
 *   sent as `00 <cobs(frame)> 00`, so a receiver that starts mid-stream or after noise finds the
 *   next frame at the next `00`. Overhead: 2 + ceil(n / 254) bytes.
 * - **SLIP** (RFC 1055): `C0 <frame with C0 → DB DC, DB → DB DD> C0`. Worst case twice the size.
 * - **STX/ETX** (the reference listener's UART framing): `02 <frame> 03`, no escaping, so it
 *   cannot carry a frame that contains `03` (sending one is an `ERR_TRANSPORT_FRAME`).
 * - **STX/ETX with LRC** (the reference's RS-485 driver): `02 <frame> <lrc> 03`, the LRC being the
 *   sum of the frame's bytes mod 256; the same limit, and a frame whose LRC is `03` cannot be sent
 *   either. A received frame whose LRC does not match is dropped as a protocol error.
 */
import { FrameError, TransportProtocolError } from './errors.js';

/** Where a stream decoder puts what it finds. */
export interface DecoderSink {
  /** A frame: a view into the input where it arrived whole (no copy), else a new array. */
  frame(frame: Uint8Array): void;
  /** Bytes or frames that were discarded (bounded: nothing is kept past the limit). */
  drop(reason: 'noise' | 'oversize' | 'protocol', count: number, detail: string): void;
}

/** A stream decoder: feed it chunks as they come. */
export interface FrameDecoder {
  push(chunk: Uint8Array, sink: DecoderSink): void;
  /** Forgets a partial frame (a reconnection). */
  reset(): void;
}

/** A framing for serial lines. */
export type SerialFraming = 'cobs' | 'slip' | 'stx-etx' | 'stx-etx-lrc';

// ---------------------------------------------------------------------------------------------
// Length prefix

export const LENGTH_PREFIX_BYTES = 4;

/** Writes `[u32 BE length][frame]` for each frame into one array (one write for a batch). */
export function encodeLengthPrefixed(frames: readonly Uint8Array[], totalBytes?: number): Uint8Array {
  let size = totalBytes ?? 0;
  if (totalBytes === undefined) for (const f of frames) size += f.byteLength;
  const out = new Uint8Array(size + LENGTH_PREFIX_BYTES * frames.length);
  let at = 0;
  for (const f of frames) {
    const n = f.byteLength;
    out[at] = n >>> 24;
    out[at + 1] = (n >>> 16) & 0xff;
    out[at + 2] = (n >>> 8) & 0xff;
    out[at + 3] = n & 0xff;
    // A byte loop beats TypedArray.set's call for the small frames this protocol mostly has.
    if (n <= 64) for (let i = 0; i < n; i++) out[at + 4 + i] = f[i]!;
    else out.set(f, at + 4);
    at += 4 + n;
  }
  return out;
}

/** A heartbeat record: a zero length. */
export const HEARTBEAT = new Uint8Array(LENGTH_PREFIX_BYTES);

/**
 * Decodes `[u32 BE length][frame]` records. Frames that arrive whole in one chunk are views of
 * it; a frame split over chunks is gathered into one array of its announced size. Throws
 * `TransportProtocolError` for a length over `maxFrameBytes` (nothing allocated for it).
 */
export class LengthPrefixDecoder {
  readonly maxFrameBytes: number;
  #header = new Uint8Array(LENGTH_PREFIX_BYTES);
  #headerFill = 0;
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  /** Heartbeats seen (zero-length records). */
  heartbeats = 0;

  constructor(maxFrameBytes: number) {
    this.maxFrameBytes = maxFrameBytes;
  }

  reset(): void {
    this.#headerFill = 0;
    this.#body = undefined;
    this.#bodyFill = 0;
  }

  #checkLength(n: number): void {
    if (n > this.maxFrameBytes) {
      this.reset();
      throw new TransportProtocolError(`a length prefix announces ${n} bytes, over maxFrameBytes (${this.maxFrameBytes}); the stream cannot be resynchronised`);
    }
  }

  push(chunk: Uint8Array, onFrame: (frame: Uint8Array) => void): void {
    let at = 0;
    const end = chunk.byteLength;
    while (at < end) {
      if (this.#body !== undefined) {
        const take = Math.min(this.#body.byteLength - this.#bodyFill, end - at);
        this.#body.set(chunk.subarray(at, at + take), this.#bodyFill);
        this.#bodyFill += take;
        at += take;
        if (this.#bodyFill === this.#body.byteLength) {
          const body = this.#body;
          this.#body = undefined;
          this.#bodyFill = 0;
          onFrame(body);
        }
        continue;
      }
      if (this.#headerFill === 0 && end - at >= LENGTH_PREFIX_BYTES) {
        // Fast path: the whole header is here.
        const n = ((chunk[at]! << 24) | (chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!) >>> 0;
        this.#checkLength(n);
        at += LENGTH_PREFIX_BYTES;
        if (n === 0) {
          this.heartbeats++;
          continue;
        }
        if (end - at >= n) {
          onFrame(chunk.subarray(at, at + n));
          at += n;
        } else {
          this.#body = new Uint8Array(n);
          this.#bodyFill = 0;
        }
        continue;
      }
      const take = Math.min(LENGTH_PREFIX_BYTES - this.#headerFill, end - at);
      this.#header.set(chunk.subarray(at, at + take), this.#headerFill);
      this.#headerFill += take;
      at += take;
      if (this.#headerFill < LENGTH_PREFIX_BYTES) break;
      const h = this.#header;
      const n = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
      this.#headerFill = 0;
      this.#checkLength(n);
      if (n === 0) {
        this.heartbeats++;
        continue;
      }
      this.#body = new Uint8Array(n);
      this.#bodyFill = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// COBS

/** The largest COBS encoding of `n` bytes, delimiters included. */
export function cobsMaxEncodedLength(n: number): number {
  return n + Math.ceil(n / 254) + 3;
}

/** `00 <cobs(frame)> 00`. */
export function cobsEncode(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(cobsMaxEncodedLength(frame.byteLength));
  let o = 1; // out[0] = 0: the leading delimiter
  let codeAt = o++;
  let code = 1;
  for (let i = 0; i < frame.byteLength; i++) {
    const b = frame[i]!;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
      continue;
    }
    out[o++] = b;
    if (++code === 0xff) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
    }
  }
  out[codeAt] = code;
  out[o++] = 0;
  return out.subarray(0, o);
}

/** Decodes one COBS packet (without its delimiters); `undefined` when it is not valid COBS. */
export function cobsDecode(packet: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(packet.byteLength);
  let o = 0;
  let i = 0;
  while (i < packet.byteLength) {
    const code = packet[i]!;
    // A block is its code byte and code - 1 data bytes; one that runs past the packet is invalid.
    if (code === 0 || i + code > packet.byteLength) return undefined;
    for (let k = 1; k < code; k++) out[o++] = packet[i + k]!;
    i += code;
    if (code !== 0xff && i < packet.byteLength) out[o++] = 0;
  }
  return out.subarray(0, o);
}

/** Splits a stream at `00` and decodes each COBS packet; bounded by `maxFrameBytes`. */
export class CobsDecoder implements FrameDecoder {
  readonly #maxEncoded: number;
  readonly #maxFrameBytes: number;
  #buf: Uint8Array;
  #fill = 0;
  /** Bytes skipped since the line overran the limit, until the next delimiter. */
  #discarding = false;
  #skipped = 0;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#maxEncoded = cobsMaxEncodedLength(maxFrameBytes) - 2;
    this.#buf = new Uint8Array(Math.min(this.#maxEncoded, 4096));
  }

  reset(): void {
    this.#fill = 0;
    this.#discarding = false;
    this.#skipped = 0;
  }

  push(chunk: Uint8Array, sink: DecoderSink): void {
    for (let i = 0; i < chunk.byteLength; i++) {
      const b = chunk[i]!;
      if (b === 0) {
        if (this.#discarding) {
          this.#discarding = false;
        } else if (this.#fill > 0) {
          const frame = cobsDecode(this.#buf.subarray(0, this.#fill));
          if (frame === undefined) sink.drop('protocol', this.#fill, 'bytes between delimiters that are not valid COBS');
          else if (frame.byteLength > this.#maxFrameBytes) sink.drop('oversize', 1, `a frame of ${frame.byteLength} bytes, over maxFrameBytes (${this.#maxFrameBytes})`);
          else if (frame.byteLength > 0) sink.frame(frame);
        }
        this.#fill = 0;
        continue;
      }
      if (this.#discarding) {
        this.#skipped++;
        continue;
      }
      if (this.#fill === this.#maxEncoded) {
        // No delimiter within the largest frame's encoding: line noise; skip to the next 00.
        this.#skipped += this.#fill + 1;
        this.#fill = 0;
        this.#discarding = true;
        continue;
      }
      if (this.#fill === this.#buf.byteLength) {
        const bigger = new Uint8Array(Math.min(this.#maxEncoded, this.#buf.byteLength * 2));
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
      this.#buf[this.#fill++] = b;
    }
    // Skipped noise is reported per chunk, so a line that never sends a delimiter is still counted.
    if (this.#skipped > 0) {
      sink.drop('noise', this.#skipped, `no frame delimiter within ${this.#maxEncoded} bytes`);
      this.#skipped = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SLIP

const SLIP_END = 0xc0;
const SLIP_ESC = 0xdb;
const SLIP_ESC_END = 0xdc;
const SLIP_ESC_ESC = 0xdd;

/** `C0 <escaped frame> C0`. */
export function slipEncode(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.byteLength * 2 + 2);
  let o = 0;
  out[o++] = SLIP_END;
  for (let i = 0; i < frame.byteLength; i++) {
    const b = frame[i]!;
    if (b === SLIP_END) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_END;
    } else if (b === SLIP_ESC) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_ESC;
    } else out[o++] = b;
  }
  out[o++] = SLIP_END;
  return out.subarray(0, o);
}

/** Splits a stream at `C0` and unescapes; bounded by `maxFrameBytes`. */
export class SlipDecoder implements FrameDecoder {
  readonly #max: number;
  #buf: Uint8Array;
  #fill = 0;
  #escaped = false;
  #bad = false;
  #discarding = false;
  #skipped = 0;

  constructor(maxFrameBytes: number) {
    this.#max = maxFrameBytes;
    this.#buf = new Uint8Array(Math.min(maxFrameBytes, 4096));
  }

  reset(): void {
    this.#fill = 0;
    this.#escaped = false;
    this.#bad = false;
    this.#discarding = false;
    this.#skipped = 0;
  }

  push(chunk: Uint8Array, sink: DecoderSink): void {
    for (let i = 0; i < chunk.byteLength; i++) {
      let b = chunk[i]!;
      if (b === SLIP_END) {
        if (this.#discarding) this.#discarding = false;
        else if (this.#bad || this.#escaped) sink.drop('protocol', this.#fill, 'a SLIP escape followed by a byte other than DC or DD');
        else if (this.#fill > 0) sink.frame(this.#buf.slice(0, this.#fill));
        this.#fill = 0;
        this.#escaped = false;
        this.#bad = false;
        continue;
      }
      if (this.#discarding) {
        this.#skipped++;
        continue;
      }
      if (this.#escaped) {
        this.#escaped = false;
        if (b === SLIP_ESC_END) b = SLIP_END;
        else if (b === SLIP_ESC_ESC) b = SLIP_ESC;
        else this.#bad = true;
      } else if (b === SLIP_ESC) {
        this.#escaped = true;
        continue;
      }
      if (this.#fill === this.#max) {
        this.#skipped += this.#fill + 1;
        this.#fill = 0;
        this.#bad = false;
        this.#discarding = true;
        continue;
      }
      if (this.#fill === this.#buf.byteLength) {
        const bigger = new Uint8Array(Math.min(this.#max, this.#buf.byteLength * 2));
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
      this.#buf[this.#fill++] = b;
    }
    if (this.#skipped > 0) {
      sink.drop('noise', this.#skipped, `no frame delimiter within ${this.#max} bytes`);
      this.#skipped = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// STX / ETX (the reference's UART listener)

export const STX = 0x02;
export const ETX = 0x03;

/** `02 <frame> 03`; a frame holding 03 cannot be framed this way (`ERR_TRANSPORT_FRAME`). */
export function stxEtxEncode(frame: Uint8Array, medium = 'serial'): Uint8Array {
  const at = frame.indexOf(ETX);
  if (at >= 0) {
    throw new FrameError('ERR_TRANSPORT_FRAME', `STX/ETX framing cannot carry a frame that contains 0x03 (at offset ${at}); use COBS or SLIP framing`, frame.byteLength, undefined, { medium });
  }
  const out = new Uint8Array(frame.byteLength + 2);
  out[0] = STX;
  out.set(frame, 1);
  out[frame.byteLength + 1] = ETX;
  return out;
}

/** The reference RS-485 driver's check byte: the sum of the bytes, mod 256. */
export function lrc8(frame: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < frame.byteLength; i++) sum = (sum + frame[i]!) & 0xff;
  return sum;
}

/** `02 <frame> <lrc8(frame)> 03`; refused (`ERR_TRANSPORT_FRAME`) when the frame or its LRC is 03. */
export function stxEtxLrcEncode(frame: Uint8Array, medium = 'serial'): Uint8Array {
  const lrc = lrc8(frame);
  if (lrc === ETX && frame.indexOf(ETX) < 0) {
    throw new FrameError('ERR_TRANSPORT_FRAME', 'STX/ETX framing with LRC cannot carry a frame whose LRC (byte sum mod 256) is 0x03; use COBS or SLIP framing', frame.byteLength, undefined, { medium });
  }
  const out = stxEtxEncode(frame, medium);
  const framed = new Uint8Array(out.byteLength + 1);
  framed.set(out.subarray(0, out.byteLength - 1));
  framed[out.byteLength - 1] = lrc;
  framed[out.byteLength] = ETX;
  return framed;
}

/**
 * As the reference's listener: bytes before an STX are skipped, a frame runs from STX to the
 * next ETX (an STX inside it is data). Bounded: a frame that reaches `maxFrameBytes` with no
 * ETX is dropped, and bytes are skipped until the next STX. With `lrc`, the byte before the ETX
 * is the frame's LRC: checked and taken off (a mismatch is dropped as a protocol error).
 */
export class StxEtxDecoder implements FrameDecoder {
  readonly #max: number;
  readonly #lrc: boolean;
  #buf: Uint8Array;
  #fill = 0;
  #inFrame = false;
  #noise = 0;

  constructor(maxFrameBytes: number, options: { lrc?: boolean } = {}) {
    this.#lrc = options.lrc === true;
    // The LRC byte travels inside the delimiters: room for it beside the largest frame.
    this.#max = maxFrameBytes + (this.#lrc ? 1 : 0);
    this.#buf = new Uint8Array(Math.min(this.#max, 4096));
  }

  #end(sink: DecoderSink): void {
    const n = this.#fill;
    if (n === 0) return;
    if (!this.#lrc) {
      sink.frame(this.#buf.slice(0, n));
      return;
    }
    const frame = this.#buf.slice(0, n - 1);
    const want = this.#buf[n - 1]!;
    if (n < 2) sink.drop('protocol', 1, 'a frame of its LRC byte alone');
    else if (lrc8(frame) !== want) sink.drop('protocol', 1, `LRC mismatch (0x${lrc8(frame).toString(16).padStart(2, '0')} computed, 0x${want.toString(16).padStart(2, '0')} received)`);
    else sink.frame(frame);
  }

  reset(): void {
    this.#fill = 0;
    this.#inFrame = false;
    this.#noise = 0;
  }

  push(chunk: Uint8Array, sink: DecoderSink): void {
    for (let i = 0; i < chunk.byteLength; i++) {
      const b = chunk[i]!;
      if (!this.#inFrame) {
        if (b === STX) {
          if (this.#noise > 0) sink.drop('noise', this.#noise, 'bytes outside STX ... ETX');
          this.#noise = 0;
          this.#inFrame = true;
          this.#fill = 0;
        } else this.#noise++;
        continue;
      }
      if (b === ETX) {
        this.#inFrame = false;
        this.#end(sink);
        this.#fill = 0;
        continue;
      }
      if (this.#fill === this.#max) {
        sink.drop('oversize', 1, `no ETX within maxFrameBytes (${this.#max}) of an STX`);
        this.#inFrame = false;
        this.#fill = 0;
        this.#noise = 1;
        continue;
      }
      if (this.#fill === this.#buf.byteLength) {
        const bigger = new Uint8Array(Math.min(this.#max, this.#buf.byteLength * 2));
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
      this.#buf[this.#fill++] = b;
    }
    // Noise is reported per chunk, so a line of noise with no STX is still counted and bounded.
    if (!this.#inFrame && this.#noise > 0) {
      sink.drop('noise', this.#noise, 'bytes outside STX ... ETX');
      this.#noise = 0;
    }
  }
}

/** The encoder and a fresh decoder of a serial framing. */
export function serialFraming(framing: SerialFraming, maxFrameBytes: number, medium = 'serial'): { encode(frame: Uint8Array): Uint8Array; decoder: FrameDecoder } {
  switch (framing) {
    case 'cobs':
      return { encode: cobsEncode, decoder: new CobsDecoder(maxFrameBytes) };
    case 'slip':
      return { encode: slipEncode, decoder: new SlipDecoder(maxFrameBytes) };
    case 'stx-etx':
      return { encode: (f) => stxEtxEncode(f, medium), decoder: new StxEtxDecoder(maxFrameBytes) };
    case 'stx-etx-lrc':
      return { encode: (f) => stxEtxLrcEncode(f, medium), decoder: new StxEtxDecoder(maxFrameBytes, { lrc: true }) };
  }
}
