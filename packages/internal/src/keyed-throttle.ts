/**
 * When each key last did something costly (a store read for a device, an event about it), so
 * that it is done at most once per `everyMs` per key. Bounded: past `max` keys every time is
 * forgotten at once (a flood of new keys then costs one pass per key per window, never memory).
 */
export class KeyedThrottle<K> {
  readonly #at = new Map<K, number>();

  constructor(
    /** The least time between two passes of one key, ms. */
    readonly everyMs: number,
    /** Keys remembered at most. */
    readonly max: number,
  ) {}

  /** Whether `key` may pass at `now`: never seen, seen `everyMs` ago or more, or the clock went back. */
  ready(key: K, now: number): boolean {
    const last = this.#at.get(key);
    return last === undefined || now - last >= this.everyMs || now < last;
  }

  /** Records that `key` passed at `now`. */
  mark(key: K, now: number): void {
    if (this.#at.size >= this.max && !this.#at.has(key)) this.#at.clear();
    this.#at.set(key, now);
  }

  /** `ready`, and then `mark`: whether `key` passes now. */
  take(key: K, now: number): boolean {
    if (!this.ready(key, now)) return false;
    this.mark(key, now);
    return true;
  }

  /** Forgets `key` (its next pass is due at once). */
  forget(key: K): void {
    this.#at.delete(key);
  }

  /** Keys remembered now. */
  get size(): number {
    return this.#at.size;
  }
}
