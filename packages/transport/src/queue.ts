import { TransportOptionError } from './errors.js';

/** Limits of a transport's inbound queue. */
export interface InboundLimits {
  /** Frames the queue holds before the transport pauses its medium or drops (default 8192). */
  maxFrames?: number | undefined;
  /** Bytes of frames the queue holds, the same way (default 16 MiB). */
  maxBytes?: number | undefined;
}

export const DEFAULT_INBOUND_MAX_FRAMES = 8192;
export const DEFAULT_INBOUND_MAX_BYTES = 16 * 1024 * 1024;
/** Frames one batch of `batches()` holds at most, by default. */
export const DEFAULT_BATCH_MAX = 1024;

/** A positive integer option, or its default; anything else is a `TransportOptionError`. */
export function positiveInt(name: string, value: unknown, fallback: number, medium?: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TransportOptionError(name, value, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`, { medium });
  }
  return value;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * A bounded FIFO of received items with one async iterator over it. Never grows on its own: the
 * producer asks `push` (refused when full) or, for media that can pause, `pushForce` and pauses
 * when `isFull` (so at most one read more than the limit arrives). `onPressure(true)` fires when
 * the queue fills, `onPressure(false)` when it is back at half its limits.
 */
export class FrameQueue<T extends { readonly frame: Uint8Array }> implements AsyncIterableIterator<T> {
  readonly maxFrames: number;
  readonly maxBytes: number;
  #items: (T | undefined)[] = [];
  #head = 0;
  #bytes = 0;
  #ended = false;
  #pressure = false;
  #waiters: ((r: IteratorResult<T>) => void)[] = [];
  /** Batch readers waiting for a frame: woken once, they take what was queued by then. */
  #batchWaiters: (() => void)[] = [];
  #spaceWaiters: (() => void)[] = [];
  #onPressure: ((active: boolean) => void) | undefined;

  constructor(limits: InboundLimits = {}, onPressure?: (active: boolean) => void, medium?: string) {
    this.maxFrames = positiveInt('inbound.maxFrames', limits.maxFrames, DEFAULT_INBOUND_MAX_FRAMES, medium);
    this.maxBytes = positiveInt('inbound.maxBytes', limits.maxBytes, DEFAULT_INBOUND_MAX_BYTES, medium);
    this.#onPressure = onPressure;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }
  get bytes(): number {
    return this.#bytes;
  }
  get ended(): boolean {
    return this.#ended;
  }
  /** Whether the next push would go over a limit. */
  get isFull(): boolean {
    return this.length >= this.maxFrames || this.#bytes >= this.maxBytes;
  }
  /** Whether the queue is under pressure (filled, not yet back at half). */
  get underPressure(): boolean {
    return this.#pressure;
  }

  /** Queues `item`, or returns false (taking nothing) when the queue is full or ended. */
  push(item: T): boolean {
    if (this.#ended) return false;
    if (this.isFull || this.#bytes + item.frame.byteLength > this.maxBytes) {
      this.#press();
      return false;
    }
    this.#enqueue(item);
    return true;
  }

  /** Queues `item` whatever the limits (the caller pauses its medium when `isFull`); false when ended. */
  pushForce(item: T): boolean {
    if (this.#ended) return false;
    this.#enqueue(item);
    if (this.isFull) this.#press();
    return true;
  }

  #enqueue(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter({ done: false, value: item });
      return;
    }
    this.#items.push(item);
    this.#bytes += item.frame.byteLength;
    // Woken through a promise, the batch reader runs after the producer's synchronous loop: a
    // native batch of datagrams reaches it whole, one wake-up for all of them.
    if (this.#batchWaiters.length > 0) for (const w of this.#batchWaiters.splice(0)) w();
  }

  #press(): void {
    if (this.#pressure) return;
    this.#pressure = true;
    this.#onPressure?.(true);
  }

  /** The oldest item, or `undefined`. */
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined;
    this.#bytes -= item.frame.byteLength;
    this.#taken();
    return item;
  }

  /**
   * Up to `max` of the oldest items at once (an empty array when none waits): the queue's room
   * comes back as for `shift`, checked once for the lot.
   */
  take(max: number): T[] {
    const n = Math.min(max, this.length);
    const out = new Array<T>(n);
    const items = this.#items;
    let bytes = 0;
    for (let i = 0, at = this.#head; i < n; i++, at++) {
      const item = items[at]!;
      items[at] = undefined;
      bytes += item.frame.byteLength;
      out[i] = item;
    }
    this.#head += n;
    this.#bytes -= bytes;
    if (n > 0) this.#taken();
    return out;
  }

  #taken(): void {
    if (this.#head === this.#items.length) {
      // Empty: start over at the front (no copy).
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      // Compact once the consumed prefix dominates, so the array never holds more than twice the queue.
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.#pressure && this.length <= this.maxFrames >>> 1 && this.#bytes <= this.maxBytes / 2) {
      this.#pressure = false;
      for (const w of this.#spaceWaiters.splice(0)) w();
      this.#onPressure?.(false);
    }
  }

  /**
   * The next batch: the items queued now, up to `max`, or, when none is, those queued by the time
   * the first arrives (the rest of its producer's synchronous run: a whole native batch). One
   * promise per batch, none per item; done once the queue ended and is empty.
   */
  nextBatch(max: number): Promise<IteratorResult<T[]>> {
    if (this.length > 0) return Promise.resolve({ done: false, value: this.take(max) });
    if (this.#ended) return Promise.resolve(DONE);
    // Another reader may take the items first: then this one waits again.
    return new Promise<void>((resolve) => this.#batchWaiters.push(resolve)).then(() => this.nextBatch(max));
  }

  /** Resolves when the queue is not under pressure (at once if it is not). */
  waitForSpace(): Promise<void> {
    if (!this.#pressure || this.#ended) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push(resolve));
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.shift();
    if (item !== undefined) return Promise.resolve({ done: false, value: item });
    if (this.#ended) return Promise.resolve(DONE);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Ending the iteration early does not end the queue: another iterator may go on reading. */
  return(): Promise<IteratorResult<T>> {
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** No more items: the iterator ends once the queued ones are read. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w(DONE);
    for (const w of this.#batchWaiters.splice(0)) w();
    for (const w of this.#spaceWaiters.splice(0)) w();
  }

  /** Drops every queued item; returns how many there were. */
  clear(): number {
    const n = this.length;
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
    return n;
  }
}

/** An async iterator of batches of a `FrameQueue` (see `nextBatch`); ending it early does not end the queue. */
export class BatchIterator<T extends { readonly frame: Uint8Array }> implements AsyncIterableIterator<T[]> {
  readonly #queue: FrameQueue<T>;
  readonly #max: number;

  constructor(queue: FrameQueue<T>, max: number) {
    this.#queue = queue;
    this.#max = max;
  }

  next(): Promise<IteratorResult<T[]>> {
    return this.#queue.nextBatch(this.#max);
  }

  return(): Promise<IteratorResult<T[]>> {
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
