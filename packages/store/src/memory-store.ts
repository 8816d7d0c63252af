import { checkBatch, checkKey, checkKind, kindSet, type Store, type StoreDurability, type StoreWrite } from './contract.js';
import { StoreError } from './errors.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions<K extends object> {
  /** The kinds kept (default: `templates`, `sessions`, `leases`). */
  kinds?: readonly (keyof K & string)[] | undefined;
}

/**
 * The contract in memory: the default store where nothing needs to survive a restart, and the
 * one browsers use. Values are kept as given (no copy); `flush` resolves at once, promising
 * nothing (`durability: 'none'`).
 */
export class MemoryStore<K extends object = Record<string, unknown>> implements Store<K> {
  readonly durability: StoreDurability = 'none';
  readonly kinds: readonly (keyof K & string)[];
  /** How many batches `write` applied (handy to check batching). */
  batches = 0;
  readonly #kinds: Set<string>;
  readonly #data = new Map<string, Map<string, unknown>>();
  #closed = false;

  constructor(options: MemoryStoreOptions<K> = {}) {
    this.#kinds = kindSet(options.kinds ?? ['templates', 'sessions', 'leases']);
    this.kinds = [...this.#kinds] as (keyof K & string)[];
    for (const k of this.#kinds) this.#data.set(k, new Map());
  }

  /** How many records `kind` holds (synchronous: memory only). */
  size(kind: keyof K & string): number {
    checkKind(this.#kinds, kind);
    return this.#data.get(kind)!.size;
  }

  async get<N extends keyof K & string>(kind: N, key: string): Promise<K[N] | undefined> {
    this.#open();
    checkKind(this.#kinds, kind);
    checkKey(kind, key);
    return this.#data.get(kind)!.get(key) as K[N] | undefined;
  }

  async getMany<N extends keyof K & string>(kind: N, keys: readonly string[]): Promise<(K[N] | undefined)[]> {
    this.#open();
    checkKind(this.#kinds, kind);
    const map = this.#data.get(kind)!;
    return keys.map((key) => {
      checkKey(kind, key);
      return map.get(key) as K[N] | undefined;
    });
  }

  async keys<N extends keyof K & string>(kind: N): Promise<string[]> {
    this.#open();
    checkKind(this.#kinds, kind);
    return [...this.#data.get(kind)!.keys()];
  }

  async write(batch: readonly StoreWrite<K>[]): Promise<void> {
    this.#open();
    checkBatch(this.#kinds, batch);
    for (const w of batch) {
      const map = this.#data.get(w.kind)!;
      if (w.op === 'put') map.set(w.key, w.value);
      else map.delete(w.key);
    }
    this.batches++;
  }

  async flush(): Promise<void> {
    this.#open();
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
  }
}
