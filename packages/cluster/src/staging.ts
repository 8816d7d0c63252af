/**
 * Writes staged for a partition's next commit, by key: what the partition's template and session
 * stores share. Reads see the staged state over the stored one (a staged `undefined` is a
 * delete), and a commit takes everything staged at once. Bounded by the keys written: one entry
 * per key, replaced by each change.
 */
export class Staging<V> {
  readonly #m = new Map<string, V | undefined>();

  /** Entries staged now. */
  get size(): number {
    return this.#m.size;
  }

  /** Stages `value` for `key` (`undefined`: its deletion). */
  stage(key: string, value: V | undefined): void {
    this.#m.set(key, value);
  }

  /** Everything staged, for the next commit; the staging starts over. */
  take(): [key: string, value: V | undefined][] {
    const out = [...this.#m];
    this.#m.clear();
    return out;
  }

  /** Puts back what a failed commit took, unless a newer change of the same key came meanwhile. */
  restore(entries: Iterable<readonly [string, V | undefined]>): void {
    for (const [k, v] of entries) if (!this.#m.has(k)) this.#m.set(k, v);
  }

  /** The values of `keys`: staged ones as staged, the others from `read` (one call for all of them, none when every key is staged). */
  async read(keys: readonly string[], read: (missing: string[]) => Promise<(V | undefined)[]>): Promise<(V | undefined)[]> {
    const missing = keys.filter((k) => !this.#m.has(k));
    const stored = missing.length === 0 ? [] : await read(missing);
    const byKey = new Map(missing.map((k, i) => [k, stored[i]]));
    return keys.map((k) => (this.#m.has(k) ? this.#m.get(k) : byKey.get(k)));
  }

  /** The `stored` keys with the staged writes applied: puts added, deletes removed. */
  keys(stored: Iterable<string>): string[] {
    const set = new Set(stored);
    for (const [k, v] of this.#m) {
      if (v === undefined) set.delete(k);
      else set.add(k);
    }
    return [...set];
  }
}
