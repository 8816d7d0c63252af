/** A binary min-heap ordered by a numeric key (ties in any order). */
export class MinHeap<T> {
  /** In heap order; a sorted array is a valid heap, so callers may rebuild it by sorting. */
  readonly items: T[] = [];
  readonly #key: (item: T) => number;

  constructor(key: (item: T) => number) {
    this.#key = key;
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    const k = this.#key(item);
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.#key(a[p]!) <= k) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = item;
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      const k = this.#key(last);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.#key(a[r]!) < this.#key(a[l]!) ? r : l;
        if (this.#key(a[c]!) >= k) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}
