/**
 * A bounded single-producer, single-consumer ring of frames in a `SharedArrayBuffer`: the main
 * thread writes each received frame into it once (with its peer id, receive time and transport
 * index), a worker thread reads it in place, so a frame crosses threads without a structured
 * clone. Head and tail are free-running 32-bit byte counters moved with `Atomics`; each side
 * sleeps with `Atomics.waitAsync` only after raising its flag, so a busy ring costs no
 * notification. Records are 4-byte aligned: `[u32 frame length][u32 peer id][f64 receivedAt]
 * [u32 transport][frame bytes][pad]`; a record that does not fit before the end leaves a wrap
 * marker (length 0xffffffff) and starts at offset 0.
 */
import { ServerError } from './errors.js';

/** Int32 slots of the header (head and tail on separate 64-byte lines: one writer each). */
const HEAD = 0;
const CONSUMER_WAITING = 1;
const TAIL = 16;
const PRODUCER_WAITING = 17;
const HEADER_BYTES = 128;
/** Float64 slots of counters beside the ring (the consumer's, read for status; each slot has one writer). */
export const RING_STAT_SLOTS = 16;
const STATS_BYTES = RING_STAT_SLOTS * 8;
const DATA_OFFSET = HEADER_BYTES + STATS_BYTES;
const RECORD_HEADER = 20;
const WRAP = 0xffffffff;

/** Smallest and largest data capacity, bytes (a power of two in between). */
export const MIN_RING_BYTES = 1024;
export const MAX_RING_BYTES = 1 << 30;

// ES2022's lib does not type Atomics.waitAsync (Node 16+ has it).
type WaitAsync = (a: Int32Array, index: number, value: number, timeout?: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

/** One record as `drain` hands it over: `frame` is a view into the ring, valid only during the callback. */
export type RingVisitor = (frame: Uint8Array, peerId: number, receivedAt: number, transport: number) => void;

const align4 = (n: number): number => (n + 3) & ~3;

function wait(i32: Int32Array, index: number, value: number, timeoutMs: number): Promise<void> {
  if (waitAsync === undefined) return new Promise((resolve) => setTimeout(resolve, Math.min(timeoutMs, 1)));
  const r = waitAsync(i32, index, value, timeoutMs);
  if (!r.async) return Promise.resolve();
  // A pending waitAsync does not keep Node's event loop alive: a timer does, for as long as it waits.
  const alive = setTimeout(() => undefined, timeoutMs);
  return r.value.then(() => clearTimeout(alive));
}

/**
 * Both ends of the ring (one thread writes, one reads: `push` and `drain` are each for one
 * side only). Make it with `FrameRing.create(capacity)`, hand `buffer` to the other thread,
 * and `FrameRing.attach(buffer)` there.
 */
export class FrameRing {
  readonly buffer: SharedArrayBuffer;
  /** Data bytes (a power of two). */
  readonly capacity: number;
  /** Longest frame one record takes (a quarter of the capacity, less the record header). */
  readonly maxFrameBytes: number;
  /** Counters the two sides share (`RING_STAT_SLOTS` Float64 slots, each written by one side only). */
  readonly stats: Float64Array;
  readonly #i32: Int32Array;
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  readonly #mask: number;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.capacity = buffer.byteLength - DATA_OFFSET;
    this.#mask = this.capacity - 1;
    this.maxFrameBytes = (this.capacity >>> 2) - RECORD_HEADER;
    this.#i32 = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.stats = new Float64Array(buffer, HEADER_BYTES, RING_STAT_SLOTS);
    this.#view = new DataView(buffer, DATA_OFFSET, this.capacity);
    this.#bytes = new Uint8Array(buffer, DATA_OFFSET, this.capacity);
  }

  /** A new ring of `capacity` data bytes (a power of two from `MIN_RING_BYTES` to `MAX_RING_BYTES`). */
  static create(capacity: number): FrameRing {
    if (!Number.isInteger(capacity) || capacity < MIN_RING_BYTES || capacity > MAX_RING_BYTES || (capacity & (capacity - 1)) !== 0) {
      throw new ServerError('ERR_SERVER_OPTION', `ringBytes: ${String(capacity)} is not a power of two from ${MIN_RING_BYTES} to ${MAX_RING_BYTES}`, { key: 'ringBytes' });
    }
    return new FrameRing(new SharedArrayBuffer(DATA_OFFSET + capacity));
  }

  /** The other side of a ring made by `create` (its `buffer`, as another thread received it). */
  static attach(buffer: SharedArrayBuffer): FrameRing {
    const capacity = buffer instanceof SharedArrayBuffer ? buffer.byteLength - DATA_OFFSET : -1;
    if (capacity < MIN_RING_BYTES || (capacity & (capacity - 1)) !== 0) throw new ServerError('ERR_SERVER_OPTION', 'ring: not a FrameRing buffer', { key: 'ring' });
    return new FrameRing(buffer);
  }

  /** Bytes written and not yet consumed (wrap markers and padding included). */
  get used(): number {
    return (Atomics.load(this.#i32, HEAD) - Atomics.load(this.#i32, TAIL)) >>> 0;
  }

  /**
   * Producer: copies `frame` into the ring. `false` when the ring has no room for it now (the
   * caller drops and counts it, or waits with `writable`). Throws `ERR_SERVER_PACKET_SIZE` for an
   * empty frame or one over `maxFrameBytes`, and `ERR_SERVER_PACKET` for a bad peer id or transport.
   */
  push(frame: Uint8Array, peerId: number, receivedAt: number, transport: number): boolean {
    const n = frame.length;
    if (n === 0 || n > this.maxFrameBytes) throw new ServerError('ERR_SERVER_PACKET_SIZE', `frame: ${n} bytes, the ring takes 1 to ${this.maxFrameBytes}`);
    if (!Number.isInteger(peerId) || peerId < 0 || peerId > 0xffffffff || !Number.isInteger(transport) || transport < 0 || transport > 0xffffffff) {
      throw new ServerError('ERR_SERVER_PACKET', `ring record: peer id ${String(peerId)} / transport ${String(transport)} is not a uint32`);
    }
    const size = align4(RECORD_HEADER + n);
    const i32 = this.#i32;
    const head = Atomics.load(i32, HEAD) >>> 0;
    const tail = Atomics.load(i32, TAIL) >>> 0;
    const free = this.capacity - ((head - tail) >>> 0);
    let at = head & this.#mask;
    const toEnd = this.capacity - at;
    let need = size;
    if (toEnd < size) need += toEnd;
    if (need > free) return false;
    const v = this.#view;
    if (toEnd < size) {
      // Always room for the 4-byte marker: offsets and sizes are multiples of 4.
      v.setUint32(at, WRAP);
      at = 0;
    }
    v.setUint32(at, n);
    v.setUint32(at + 4, peerId);
    v.setFloat64(at + 8, receivedAt);
    v.setUint32(at + 16, transport);
    this.#bytes.set(frame, at + RECORD_HEADER);
    Atomics.store(i32, HEAD, (head + need) | 0);
    if (Atomics.load(i32, CONSUMER_WAITING) !== 0) {
      Atomics.store(i32, CONSUMER_WAITING, 0);
      Atomics.notify(i32, HEAD);
    }
    return true;
  }

  /**
   * Consumer: hands up to `max` records to `visit`, in order, then frees their bytes at once.
   * Returns how many it handed over. `visit` must not keep the frame view past its return
   * (copy what it keeps); a `visit` that throws frees the records before it and the one it threw on.
   */
  drain(visit: RingVisitor, max = 256): number {
    const i32 = this.#i32;
    const head = Atomics.load(i32, HEAD) >>> 0;
    let tail = Atomics.load(i32, TAIL) >>> 0;
    const v = this.#view;
    const buffer = this.buffer;
    let k = 0;
    try {
      while (tail !== head && k < max) {
        let at = tail & this.#mask;
        let n = v.getUint32(at);
        if (n === WRAP) {
          tail = (tail + (this.capacity - at)) >>> 0;
          at = 0;
          n = v.getUint32(0);
        }
        const peerId = v.getUint32(at + 4);
        const receivedAt = v.getFloat64(at + 8);
        const transport = v.getUint32(at + 16);
        const frame = new Uint8Array(buffer, DATA_OFFSET + at + RECORD_HEADER, n);
        tail = (tail + align4(RECORD_HEADER + n)) >>> 0;
        k++;
        visit(frame, peerId, receivedAt, transport);
      }
    } finally {
      if (k > 0) this.#release(tail);
    }
    return k;
  }

  #release(tail: number): void {
    const i32 = this.#i32;
    Atomics.store(i32, TAIL, tail | 0);
    if (Atomics.load(i32, PRODUCER_WAITING) !== 0) {
      Atomics.store(i32, PRODUCER_WAITING, 0);
      Atomics.notify(i32, TAIL);
    }
  }

  /** Records waiting (walks them: for status and for counting what a dead consumer left). */
  records(): number {
    const head = Atomics.load(this.#i32, HEAD) >>> 0;
    let tail = Atomics.load(this.#i32, TAIL) >>> 0;
    let k = 0;
    while (tail !== head) {
      const at = tail & this.#mask;
      const n = this.#view.getUint32(at);
      if (n === WRAP) {
        tail = (tail + (this.capacity - at)) >>> 0;
        continue;
      }
      tail = (tail + align4(RECORD_HEADER + n)) >>> 0;
      k++;
    }
    return k;
  }

  /** Consumer: resolves when a record is waiting, or after `timeoutMs`. */
  readable(timeoutMs: number): Promise<void> {
    const i32 = this.#i32;
    const head = Atomics.load(i32, HEAD);
    if (head !== Atomics.load(i32, TAIL)) return Promise.resolve();
    Atomics.store(i32, CONSUMER_WAITING, 1);
    // A push between the two loads saw no flag: the second load sees its head instead.
    if (Atomics.load(i32, HEAD) !== head) {
      Atomics.store(i32, CONSUMER_WAITING, 0);
      return Promise.resolve();
    }
    return wait(i32, HEAD, head, timeoutMs);
  }

  /** Producer: resolves when the consumer freed bytes, or after `timeoutMs` (then try `push` again). */
  writable(timeoutMs: number): Promise<void> {
    const i32 = this.#i32;
    const tail = Atomics.load(i32, TAIL);
    Atomics.store(i32, PRODUCER_WAITING, 1);
    if (Atomics.load(i32, TAIL) !== tail) {
      Atomics.store(i32, PRODUCER_WAITING, 0);
      return Promise.resolve();
    }
    return wait(i32, TAIL, tail, timeoutMs);
  }
}
