/**
 * The sender's steady state through the native addon, for batches: bodies in, DIFF / HEART frames
 * out, a run of steady-state bodies per call.
 *
 * The TypeScript registry stays the source of truth. The addon holds a copy (the "mirror") of
 * one template, the one the engine would pick first for the next body: its registry's `recent`
 * template. A call decomposes each body natively and, while its signature and value count match
 * the mirror, builds the frame; this side then applies the final value of each value the run
 * changed to the registry (same array, same strings, `changed()` as the TypeScript path calls it).
 * The first body that does not fit stops the run. Anything else (a new signature, FULL, invalid text, a value too long for
 * DIFF...) comes back untouched and the engine runs its TypeScript path, after which the mirror is
 * reloaded from the registry.
 *
 * The mirror is checked after every native run, before anything is committed: the registry
 * object, its `recent` template, that template's values array and each value (against a snapshot
 * of what was loaded) must be what the mirror was loaded from, and the session key what the frame
 * was encrypted with. Anything else (the registry left the cache and came back, another engine
 * sharing the cache changed it, the key rotated) reloads the mirror and redoes the run, so the
 * frames and the registry are always what the TypeScript path would have produced.
 *
 * Layout of the `io` buffer: `FusionIo`, `SenderLoad` and `SendBatch`, generated from the Rust side
 * (crates/opensynaptic-contract).
 */
import { Fallback, FusionIo, NativeErrorCode, nativeErrorCode, SendBatch as W, SenderLoad as L } from '@opensynaptic/internal';
import { hasLoneSurrogate, utf8DecodeShort } from '@opensynaptic/packet/body';
import type { FusionError } from './errors.js';
import type { FusionBinding } from './native-binding.js';
import { NATIVE_MAX_FRAME, NativeIo, nativeFailure, nativeStatusError } from './native-io.js';
import { type DeviceRegistry, type FusionTemplate, ownString } from './registry.js';
import type { RegistryCache } from './registry-cache.js';

/** Bytes of control words at the start of `io`. */
const CTRL = FusionIo.CTRL_BYTES;
const NONE = FusionIo.NONE;
/** Bytes of one `index, start, end` list entry. */
const ENTRY = FusionIo.ENTRY_BYTES;
/** Bytes of `fusionSenderLoad`'s fixed control words (the value lengths follow). */
const LOAD_HEAD = 4 * L.VALUE_LENGTHS;
const MIN_IO = 4096;
// Fallback codes of the addon where the mirror did not fit: reload it after the TypeScript path.
const { NO_TEMPLATE, VALUE_COUNT } = Fallback;
/** Highest fallback code the addon returns. */
const MAX_CODE = Math.max(...Object.values(Fallback));
/** Codes of the frame encoder refusing the input: the TypeScript path raises the typed error for it. */
const FRAME_ERRORS: ReadonlySet<string> = new Set([NativeErrorCode.FRAME_TIMESTAMP, NativeErrorCode.FRAME_ROUTES, NativeErrorCode.FRAME_BUFFER]);
/** Bytes of key the io buffer has room for at most (session keys are 32 bytes). */
const MAX_KEY = 1024;
// After this many runs in a row that made no frame (bodies that alternate shapes...), the rest of the batch goes through TypeScript.
const MAX_MISSES = 8;

const encoder = new TextEncoder();

/** What the sender needs from its engine. */
export interface SenderHost {
  readonly registry: RegistryCache;
  clock(): number;
  localId(): number;
  /** The key to encrypt with (`security.getTxKey`), or `null`. */
  txKey(aid: number): Uint8Array | null;
}

/** One body of a batch that could not become a frame. */
export interface FusionBatchError {
  /** Index of the body in the batch. */
  index: number;
  error: FusionError;
}

/** What `runEngineBatch` returns. */
export interface FusionBatchResult {
  /** The frames back to back; frame i is `frames.subarray(offsets[i], offsets[i + 1])`. */
  frames: Uint8Array;
  /** `count + 1` boundaries into `frames`; a body that failed has an empty range. */
  offsets: Uint32Array;
  /** Bodies that failed, in order (each with its typed `FusionError`); empty when none did. */
  errors: FusionBatchError[];
}

/**
 * The TypeScript `runEngineBatch`: `run` (the engine's `runEngine`) on each body, the frames
 * written back to back. Typed `FusionError`s are collected per body; other errors are thrown.
 */
export function runBatchTs(
  bodies: Uint8Array,
  offsets: Uint32Array,
  count: number,
  run: (raw: Uint8Array) => Uint8Array,
  isFusionError: (e: unknown) => e is FusionError,
): FusionBatchResult {
  // A frame is at most its body plus 16 bytes (FULL: the whole body; DIFF: less than the body).
  const out = new Uint8Array(count === 0 ? 0 : offsets[count]! - offsets[0]! + 16 * count);
  const ends = new Uint32Array(count + 1);
  const errors: FusionBatchError[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    try {
      const f = run(bodies.subarray(offsets[i]!, offsets[i + 1]!));
      out.set(f, pos);
      pos += f.length;
    } catch (e) {
      if (!isFusionError(e)) throw e;
      errors.push({ index: i, error: e });
    }
    ends[i + 1] = pos;
  }
  return { frames: out.subarray(0, pos), offsets: ends, errors };
}

const senders = new FinalizationRegistry<{ binding: FusionBinding; id: number }>(({ binding, id }) => binding.fusionSenderFree(id));

function usableKey(key: Uint8Array | null | undefined): Uint8Array | null {
  return key && key.length > 0 ? key : null;
}

/** Text of valid UTF-8 bytes (the addon checked them). */
function utf8Text(b: Uint8Array, start: number, end: number): string {
  return utf8DecodeShort(b.subarray(start, end))!;
}

export class NativeSender {
  readonly #b: FusionBinding;
  readonly #host: SenderHost;
  readonly #id: number;
  // Control words, key and the touched list (12 bytes per value of the template).
  readonly #buf = new NativeIo(MIN_IO, CTRL + MAX_KEY + 64 + ENTRY * NATIVE_MAX_FRAME);
  // Template loads go through their own buffer: `io` still holds the key when a run is redone.
  // A template has at most as many values as characters: the head, 4 per value, 3 per character.
  readonly #loadBuf = new NativeIo(1024, LOAD_HEAD + 7 * NATIVE_MAX_FRAME);
  // The mirror: what the addon's template copy was loaded from.
  #reg: DeviceRegistry | null = null;
  #t: FusionTemplate | null = null;
  #arr: string[] | null = null;
  #snap: string[] = [];
  // Key bytes the addon encrypts with (copied into io for each call).
  #key: Uint8Array | null = null;
  #lastCode = 0;

  constructor(binding: FusionBinding, host: SenderHost) {
    this.#b = binding;
    this.#host = host;
    this.#id = binding.fusionSenderNew();
    senders.register(this, { binding, id: this.#id });
  }

  /**
   * After a native call threw or gave results out of range: the addon's template copy may have
   * moved on without this side (a batch commits frame by frame), so it is unloaded, and loaded
   * again after the next TypeScript send. Errors of the frame encoder (codes `OSN_FRAME_*`) come
   * from the input: this returns, and the TypeScript path raises the exact typed error for it.
   * Anything else throws `NativeBackendError`; nothing has been committed.
   */
  #failed(operation: string, e: unknown): void {
    this.#reg = null;
    this.#t = null;
    this.#arr = null;
    this.#snap = [];
    this.#unloadNative();
    const code = nativeErrorCode(e);
    if (code !== null && FRAME_ERRORS.has(code)) return;
    throw nativeFailure(operation, e);
  }

  /** Empties the addon's template copy, so that it matches `#t === null` (best effort: it may be what failed). */
  #unloadNative(): void {
    const words = this.#loadBuf.words;
    words[L.ID] = this.#id;
    words[L.TID] = NONE;
    try {
      this.#b.fusionSenderLoad(this.#loadBuf.bytes);
    } catch {
      // Still stale then: every native frame is checked against the registry, and redone after a reload.
    }
  }

  /** After the TypeScript path handled a body a run left to it (and succeeded): reload the mirror if it did not fit. */
  #afterFallback(): void {
    const code = this.#lastCode;
    if (code < NO_TEMPLATE || code > VALUE_COUNT) return;
    // The TypeScript path got the registry into the cache: this reads it without side effects.
    const reg = this.#host.registry.peek(this.#host.localId());
    if (reg !== null) this.#load(reg);
  }

  /**
   * Frames for `bodies[offsets[i]..offsets[i + 1]]`, as `runEngine(body, 'DIFF')` one after
   * another would make them: steady-state runs in one native call each, any other body through
   * `fallback` (the engine's TypeScript path). Typed `FusionError`s are collected per body; other
   * errors (a store that cannot save) are thrown.
   *
   * The registry is read and the clock once per native run (not per frame), and `changed()` is
   * called once per run with the final values.
   */
  runBatch(
    bodies: Uint8Array,
    offsets: Uint32Array,
    count: number,
    fallback: (raw: Uint8Array) => Uint8Array,
    isFusionError: (e: unknown) => e is FusionError,
  ): FusionBatchResult {
    const host = this.#host;
    const aid = host.localId();
    const out = new Uint8Array(count === 0 ? 0 : offsets[count]! - offsets[0]! + 16 * count);
    const ends = new Uint32Array(count + 1);
    const errors: FusionBatchError[] = [];
    let pos = 0;
    let i = 0;
    let stalls = 0;
    // Per-frame TypeScript sends since the last batch changed the values in place: reload before
    // the run rather than redo it (this reads nothing with side effects; the run is checked after).
    const reg = this.#reg;
    if (reg !== null && !this.#valid(reg)) this.#load(reg);
    while (i < count) {
      let frames = 0;
      let code = 0;
      if (stalls < MAX_MISSES) {
        let next = this.#batchCall(aid, bodies, offsets, i, pos, out, ends, count);
        frames = next < 0 ? 0 : this.#buf.words[W.FRAMES]!;
        if (frames > 0) {
          const now = host.clock();
          const reg = host.registry.get(aid, now);
          const key = usableKey(host.txKey(aid));
          if (!this.#valid(reg) || !this.#sameKey(key)) {
            this.#key = key;
            this.#load(reg);
            next = this.#t === null ? -1 : this.#batchCall(aid, bodies, offsets, i, pos, out, ends, count);
            frames = next < 0 ? 0 : this.#buf.words[W.FRAMES]!;
          }
          if (frames > 0) this.#commitRun(bodies, reg, now);
        }
        if (next < 0) {
          // Not run natively (too large for io, nothing mirrored, the encoder refused a body): the rest through TypeScript.
          stalls = MAX_MISSES;
        } else {
          code = this.#buf.words[W.FALLBACK]!;
          pos = this.#buf.words[W.OUT_END]!;
          i = next;
          stalls = frames > 0 ? 0 : stalls + 1;
          if (i >= count) break;
        }
      }
      // Body i through the TypeScript path (reloading the mirror after it unless the addon is skipped).
      this.#lastCode = stalls < MAX_MISSES ? code : 0;
      try {
        const f = fallback(bodies.subarray(offsets[i]!, offsets[i + 1]!));
        out.set(f, pos);
        pos += f.length;
        this.#afterFallback();
      } catch (e) {
        if (!isFusionError(e)) throw e;
        errors.push({ index: i, error: e });
      }
      ends[++i] = pos;
    }
    return { frames: out.subarray(0, pos), offsets: ends, errors };
  }

  /**
   * One native run from body `start`: the next body, with the results in io; or -1 when it did not
   * run natively (io cannot be that large, or the encoder refused a body), nothing committed.
   */
  #batchCall(aid: number, bodies: Uint8Array, offsets: Uint32Array, start: number, pos: number, out: Uint8Array, ends: Uint32Array, count: number): number {
    const key = this.#key;
    const keyLen = key === null ? 0 : key.length;
    if (!this.#buf.reserve(CTRL + keyLen + 64 + ENTRY * (this.#arr === null ? 0 : this.#arr.length))) return -1;
    const io = this.#buf.bytes;
    const io32 = this.#buf.words;
    io32[W.ID] = this.#id;
    io32[W.AID] = aid;
    io32[W.KEY_LENGTH] = keyLen;
    io32[W.START] = start;
    io32[W.OUT_POSITION] = pos;
    if (key !== null) io.set(key, CTRL);
    try {
      this.#b.fusionSendBatch(io, bodies, offsets, out, ends);
    } catch (e) {
      this.#failed('fusionSendBatch', e);
      return -1;
    }
    const next = io32[W.NEXT]!;
    const end = io32[W.OUT_END]!;
    if (next < start || next > count || end < pos || end > out.length || io32[W.FRAMES]! > next - start || io32[W.FALLBACK]! > MAX_CODE) {
      this.#failed('fusionSendBatch', nativeStatusError('fusionSendBatch', `results out of range (next body ${next} of ${count}, end ${end})`));
    }
    return next;
  }

  /** Applies the final value of each value a native batch run changed. */
  #commitRun(bodies: Uint8Array, reg: DeviceRegistry, now: number): void {
    const io32 = this.#buf.words;
    const touched = io32[W.TOUCHED_COUNT]!;
    if (touched === 0) return; // HEART only
    const arr = this.#arr!;
    const snap = this.#snap;
    let p = io32[W.TOUCHED_OFFSET]! >> 2;
    if (touched > arr.length || p + (ENTRY >> 2) * touched > io32.length) {
      this.#failed('fusionSendBatch', nativeStatusError('fusionSendBatch', `${touched} values touched of ${arr.length}`));
    }
    for (let k = 0; k < touched; k++, p += ENTRY >> 2) {
      const v = utf8Text(bodies, io32[p + 1]!, io32[p + 2]!);
      const own = v.length < 13 ? v : ownString(v);
      arr[io32[p]!] = own;
      snap[io32[p]!] = own;
    }
    this.#host.registry.changed(reg, now);
  }

  /** Whether the addon's copy is still exactly the template the TypeScript path would use. */
  #valid(reg: DeviceRegistry): boolean {
    const t = this.#t;
    if (reg !== this.#reg || t === null || reg.recent !== t) return false;
    const arr = t.values;
    if (arr === null || arr !== this.#arr) return false;
    const snap = this.#snap;
    if (arr.length !== snap.length) return false;
    for (let i = 0; i < arr.length; i++) if (arr[i] !== snap[i]) return false;
    return true;
  }

  /** Whether `key` holds the bytes the last call encrypted with (at `CTRL` in io). */
  #sameKey(key: Uint8Array | null): boolean {
    const used = this.#key;
    if (key === null || used === null) return key === used;
    if (key.length !== used.length) return false;
    const io = this.#buf.bytes;
    for (let i = 0; i < key.length; i++) if (key[i] !== io[CTRL + i]) return false;
    return true;
  }

  /**
   * Loads `reg.recent` into the addon (or unloads it when there is nothing to mirror). A template
   * too large for the load buffer, or a load the addon refuses, leaves nothing mirrored (the
   * TypeScript path sends), so this never throws after the TypeScript path has committed a frame.
   */
  #load(reg: DeviceRegistry): void {
    this.#reg = reg;
    this.#t = null;
    this.#arr = null;
    this.#snap = [];
    const t = reg.recent;
    const values = t?.values ?? null;
    let chars = 0;
    if (t !== null && values !== null) {
      chars = t.sig.length;
      for (const v of values) chars += v.length;
    }
    if (
      t === null ||
      values === null ||
      !this.#loadBuf.reserve(LOAD_HEAD + 4 * values.length + 3 * chars) ||
      hasLoneSurrogate(t.sig) ||
      values.some((v) => hasLoneSurrogate(v))
    ) {
      this.#unloadNative();
      return;
    }
    const io = this.#loadBuf.bytes;
    const words = this.#loadBuf.words;
    words[L.ID] = this.#id;
    words[L.TID] = t.tid;
    words[L.VALUE_COUNT] = values.length;
    let at = LOAD_HEAD + 4 * values.length;
    const sig = encoder.encodeInto(t.sig, io.subarray(at)).written;
    words[L.SIG_LENGTH] = sig;
    at += sig;
    for (let i = 0; i < values.length; i++) {
      const w = encoder.encodeInto(values[i]!, io.subarray(at)).written;
      words[L.VALUE_LENGTHS + i] = w;
      at += w;
    }
    try {
      this.#b.fusionSenderLoad(io);
    } catch {
      this.#unloadNative();
      return;
    }
    this.#t = t;
    this.#arr = values;
    this.#snap = values.slice();
  }
}
