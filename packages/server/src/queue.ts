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
