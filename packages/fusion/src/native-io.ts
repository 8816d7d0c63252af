/**
 * The caller-owned buffers the fusion addon reads and writes (layout: crates/opensynaptic-napi/src/
 * fusion.rs), and the mapping of every native failure to a typed error.
 *
 * An `io` buffer is used through two views of the same memory: bytes, and the native-endian `u32`
 * control words at its start. They must always be views of one buffer: a byte view of a new
 * buffer with the word view of the old one makes the addon write where this side never reads (the
 * results of the last good call are read again, for every later frame). So both views are made
 * of one `ArrayBuffer` of whole words before either replaces the old pair, and the size is
 * bounded: a call that would need more than `max` bytes is not made natively (the caller takes
 * the TypeScript path, which gives the same result).
 */
import { NativeBackendError, nativeCallError } from '@opensynaptic/internal';

const PACKAGE = '@opensynaptic/fusion';

/**
 * Largest template (in characters) the native sender sizes its io buffers for: 64 Ki, above any
 * UDP payload (65,507 bytes). A larger template is not mirrored; its bodies are sent by the
 * TypeScript path, with the same result.
 */
export const NATIVE_MAX_FRAME = 65536;

/** `n` rounded up to whole 4-byte words. */
function wholeWords(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** One io buffer: `bytes` and `words` always view the same memory, of a whole number of words. */
export class NativeIo {
  #bytes: Uint8Array;
  #words: Uint32Array;
  /** Largest size the buffer grows to, in bytes (whole words). */
  readonly max: number;

  constructor(initial: number, max: number) {
    this.max = wholeWords(max);
    const buf = new ArrayBuffer(Math.min(wholeWords(initial), this.max));
    this.#bytes = new Uint8Array(buf);
    this.#words = new Uint32Array(buf);
  }

  get bytes(): Uint8Array {
    return this.#bytes;
  }

  get words(): Uint32Array {
    return this.#words;
  }

  /**
   * Makes the buffer hold at least `need` bytes (doubling, in whole words, up to `max`); `false`,
   * with nothing changed, when `need` is past `max`. The contents are not kept.
   */
  reserve(need: number): boolean {
    if (need <= this.#bytes.length) return true;
    if (!(need <= this.max)) return false;
    let size = Math.max(this.#bytes.length, 64);
    while (size < need) size *= 2;
    size = Math.min(wholeWords(size), this.max);
    let buf: ArrayBuffer;
    try {
      buf = new ArrayBuffer(size);
    } catch (e) {
      throw new NativeBackendError(PACKAGE, 'io buffer', 'ERR_OPENSYNAPTIC_NATIVE_BUFFER', `cannot allocate ${size} bytes`, e);
    }
    // Both views first, then both swapped: no failure in between can leave them apart.
    const bytes = new Uint8Array(buf);
    const words = new Uint32Array(buf);
    this.#bytes = bytes;
    this.#words = words;
    return true;
  }
}

/** The typed error for anything a native call threw (`operation`: the addon function). */
export function nativeFailure(operation: string, error: unknown): NativeBackendError {
  return nativeCallError(PACKAGE, operation, error);
}

/** The typed error for a status or result word the addon should never give. */
export function nativeStatusError(operation: string, detail: string): NativeBackendError {
  return new NativeBackendError(PACKAGE, operation, 'ERR_OPENSYNAPTIC_NATIVE_STATUS', detail);
}
