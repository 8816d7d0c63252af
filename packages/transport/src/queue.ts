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
    // Compact once the consumed prefix dominates, so the array never holds more than twice the queue.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.#pressure && this.length <= this.maxFrames >>> 1 && this.#bytes <= this.maxBytes / 2) {
      this.#pressure = false;
      for (const w of this.#spaceWaiters.splice(0)) w();
      this.#onPressure?.(false);
    }
    return item;
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
