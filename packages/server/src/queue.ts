/**
 * The bounded queue behind each readings iterator: `push` returns false when full (the caller
 * drops and counts, or waits on `space()`); `end()` lets the consumer finish what is queued.
 */
export class BoundedQueue<T> implements AsyncIterableIterator<T> {
  readonly capacity: number;
  readonly #items: T[] = [];
  #head = 0;
  #ended = false;
  #reader: ((r: IteratorResult<T>) => void) | null = null;
  #spaceWaiters: (() => void)[] = [];
  onReturn: (() => void) | null = null;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  get ended(): boolean {
    return this.#ended;
  }

  push(item: T): boolean {
    if (this.#ended) return true; // a finished consumer takes nothing and loses nothing it asked for
    if (this.#reader !== null) {
      const r = this.#reader;
      this.#reader = null;
      r({ value: item, done: false });
      return true;
    }
    if (this.size >= this.capacity) return false;
    this.#items.push(item);
    return true;
  }

  /** Resolves when there is room again (or the queue ended). */
  space(): Promise<void> {
    if (this.#ended || this.size < this.capacity) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push(resolve));
  }

  end(): void {
    this.#ended = true;
    if (this.#reader !== null && this.size === 0) {
      const r = this.#reader;
      this.#reader = null;
      r({ value: undefined, done: true });
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const w of waiters) w();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.#items[this.#head] as T;
      this.#items[this.#head++] = undefined as T;
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items.splice(0, this.#head);
        this.#head = 0;
      }
      if (this.size < this.capacity) this.#wake();
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#reader = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.#items.length = 0;
    this.#head = 0;
    this.end();
    this.onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/**
 * The server's intake queue of one transport: frames wait per device (a data frame's source aid,
 * else the peer), and are taken round-robin, one per device in turn, so a device that floods
 * gets no more turns than one that sends a frame a minute. Each device holds at most `perDevice`
 * frames; past that, `push` refuses (the caller drops and counts it for that device). `total`
 * bounds all of them: past it, `push` still takes the frame and `full` is true (the caller
 * stops taking frames from the transport until `space()`).
 */
export class FairQueue<T> {
  readonly perDevice: number;
  readonly total: number;
  readonly #byKey = new Map<string | number, { items: T[]; head: number }>();
  /** Devices with frames waiting, in turn order. */
  #turns: (string | number)[] = [];
  #turnHead = 0;
  #size = 0;
  #readable: (() => void) | null = null;
  #spaceWaiters: (() => void)[] = [];

  constructor(perDevice: number, total: number) {
    this.perDevice = perDevice;
    this.total = total;
  }

  get size(): number {
    return this.#size;
  }

  get full(): boolean {
    return this.#size >= this.total;
  }

  /** Queues `item` for `key`; false (nothing queued) when that device already holds `perDevice`. */
  push(key: string | number, item: T): boolean {
    let q = this.#byKey.get(key);
    if (q === undefined) {
      q = { items: [], head: 0 };
      this.#byKey.set(key, q);
    }
    const waiting = q.items.length - q.head;
    if (waiting >= this.perDevice) return false;
    if (waiting === 0) this.#turns.push(key);
    q.items.push(item);
    this.#size++;
    const r = this.#readable;
    if (r !== null) {
      this.#readable = null;
      r();
    }
    return true;
  }

  /**
   * Queues `item` for `key` where nothing can wait for room (a medium that cannot pause hands its
   * frames over as they arrive): as `push`, and past `total` only a device below its fair share
   * (`total` over the devices with frames waiting) gets a frame in, so when the reader falls
   * behind a flood loses its own frames, not the quiet devices'. Never more than twice `total`.
   */
  offer(key: string | number, item: T): boolean {
    if (this.#size >= this.total) {
      if (this.#size >= 2 * this.total) return false;
      const q = this.#byKey.get(key);
      const waiting = q === undefined ? 0 : q.items.length - q.head;
      const devices = this.#turns.length - this.#turnHead;
      if (waiting * devices >= this.total) return false;
    }
    return this.push(key, item);
  }

  /** The next device's oldest frame, or undefined when none waits. */
  shift(): T | undefined {
    if (this.#turnHead >= this.#turns.length) return undefined;
    const key = this.#turns[this.#turnHead++]!;
    if (this.#turnHead > 1024 && this.#turnHead * 2 > this.#turns.length) {
      this.#turns = this.#turns.slice(this.#turnHead);
      this.#turnHead = 0;
    }
    const q = this.#byKey.get(key)!;
    const item = q.items[q.head]!;
    q.items[q.head++] = undefined as T;
    this.#size--;
    if (q.head === q.items.length) this.#byKey.delete(key); // idle devices cost nothing
    else this.#turns.push(key);
    if (this.#size < this.total && this.#spaceWaiters.length > 0) {
      const waiters = this.#spaceWaiters;
      this.#spaceWaiters = [];
      for (const w of waiters) w();
    }
    return item;
  }

  /** Resolves when a frame is queued (at once when one waits). */
  readable(): Promise<void> {
    if (this.#size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#readable = resolve;
    });
  }

  /** Wakes a `readable()` waiter without a frame (the transport ended). */
  wake(): void {
    const r = this.#readable;
    this.#readable = null;
    r?.();
  }

  /** Resolves when the queue is below `total` again. */
  space(): Promise<void> {
    if (this.#size < this.total) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push(resolve));
  }
}
