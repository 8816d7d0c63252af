/**
 * The write-behind half of a database store, shared by the SQLite and PostgreSQL stores (and any
 * other store whose backend can apply a list of changes in one transaction): `write` checks and
 * encodes a batch and keeps it in memory, `flush` hands every change since the last flush to the
 * backend in one `commit`, and reads see the pending changes over what the backend holds. The
 * backend only reads and commits encoded text; this class keeps the contract's semantics.
 */
import { checkBatch, checkKey, checkKind, kindSet, type Store, type StoreDurability, type StoreWrite } from './contract.js';
import { isStoreError, StoreError } from './errors.js';

/** How the records of one kind become the text a database keeps. */
export interface StoreCodec<V = unknown> {
  /** The stored text of `value`; throw (anything) for a value the kind cannot keep: `ERR_STORE_VALUE`. */
  encode(value: V, key: string): string;
  /** The record of stored text; throw (anything) when it is not one: `ERR_STORE_CORRUPT`. */
  decode(text: string, key: string): V;
}

/** The default codec: JSON text (`ERR_STORE_VALUE` for a value `JSON.stringify` cannot write). */
export const jsonCodec: StoreCodec = {
  encode(value) {
    const text = JSON.stringify(value);
    if (typeof text !== 'string') throw new TypeError('not JSON-serialisable');
    return text;
  },
  decode: (text) => JSON.parse(text) as unknown,
};

/** One change of a commit: the last write of a key since the previous flush (`text` is `undefined` for a delete). */
export interface StoreChange {
  readonly kind: string;
  readonly key: string;
  readonly text: string | undefined;
}

/** What a database offers {@link BatchedStore}. Errors it throws become `ERR_STORE_READ` / `ERR_STORE_WRITE` unless they are `StoreError`s already. */
export interface BatchedStoreBackend {
  /** What a resolved commit promises. */
  readonly durability: StoreDurability;
  /** Shown in error messages (a file path, a database and schema). */
  readonly location: string;
  /** The stored text of each key (`undefined` where there is none), in order. */
  read(kind: string, keys: readonly string[]): Promise<(string | undefined)[]>;
  /** Every stored key of `kind`. */
  keys(kind: string): Promise<string[]>;
  /** Applies every change in one transaction: all of them or (on a throw) none. */
  commit(changes: readonly StoreChange[]): Promise<void>;
  /** Releases the connection(s). */
  close(): Promise<void>;
}

/** Options of {@link BatchedStore}. */
export interface BatchedStoreOptions<K extends object> {
  /** The kinds kept (default: `templates`, `sessions`, `leases`). */
  kinds?: readonly (keyof K & string)[] | undefined;
  /** A codec per kind (default {@link jsonCodec}). */
  codecs?: { readonly [N in keyof K & string]?: StoreCodec<K[N]> } | undefined;
}

interface PendingValue {
  readonly value: unknown;
  readonly text: string | undefined;
}
type Layer = Map<string, Map<string, PendingValue>>;

/** Whether `text` is well-formed UTF-16 without NUL: what every SQL text column keeps as given. */
export function isPlainText(text: string): boolean {
  return !text.includes('\u0000') && (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/** The {@link Store} over a {@link BatchedStoreBackend} (see the module comment). */
export class BatchedStore<K extends object = Record<string, unknown>> implements Store<K> {
  readonly durability: StoreDurability;
  readonly kinds: readonly (keyof K & string)[];
  /** How many commits flushes have made (handy to check batching). */
  commits = 0;
  readonly #backend: BatchedStoreBackend;
  readonly #kinds: Set<string>;
  readonly #codecs: Map<string, StoreCodec>;
  #pending: Layer = new Map();
  #inflight: Layer = new Map();
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(backend: BatchedStoreBackend, options: BatchedStoreOptions<K> = {}) {
    this.#backend = backend;
    this.durability = backend.durability;
    this.#kinds = kindSet(options.kinds ?? ['templates', 'sessions', 'leases']);
    this.kinds = [...this.#kinds] as (keyof K & string)[];
    this.#codecs = new Map();
    for (const kind of this.#kinds) this.#codecs.set(kind, ((options.codecs as Record<string, StoreCodec> | undefined)?.[kind] ?? jsonCodec) as StoreCodec);
  }

  /** How many keys wait for a flush. */
  get pendingWrites(): number {
    let n = 0;
    for (const m of this.#pending.values()) n += m.size;
    return n;
  }

  async get<N extends keyof K & string>(kind: N, key: string): Promise<K[N] | undefined> {
    return (await this.getMany(kind, [key]))[0];
  }

  async getMany<N extends keyof K & string>(kind: N, keys: readonly string[]): Promise<(K[N] | undefined)[]> {
    this.#checkOpen();
    checkKind(this.#kinds, kind);
    if (!Array.isArray(keys)) throw new StoreError('ERR_STORE_KEY', 'keys must be a list', { kind });
    for (const key of keys) this.#key(kind, key);
    const out: (K[N] | undefined)[] = new Array(keys.length);
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const p = this.#overlay(kind, keys[i]!);
      if (p === undefined) missing.push(i);
      else out[i] = (p.text === undefined ? undefined : p.value) as K[N] | undefined;
    }
    if (missing.length === 0) return out;
    let texts: (string | undefined)[];
    try {
      texts = await this.#backend.read(kind, missing.map((i) => keys[i]!));
    } catch (e) {
      throw isStoreError(e) ? e : new StoreError('ERR_STORE_READ', `cannot be read from ${this.#backend.location}`, { kind, cause: e });
    }
    const codec = this.#codecs.get(kind)!;
    for (let j = 0; j < missing.length; j++) {
      const i = missing[j]!;
      // A write made while the read ran wins over what the read saw.
      const p = this.#overlay(kind, keys[i]!);
      if (p !== undefined) {
        out[i] = (p.text === undefined ? undefined : p.value) as K[N] | undefined;
        continue;
      }
      const text = texts[j];
      if (text === undefined) continue;
      try {
        out[i] = codec.decode(text, keys[i]!) as K[N];
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        throw new StoreError('ERR_STORE_CORRUPT', `stored record in ${this.#backend.location} does not decode (${why})`, { kind, key: keys[i], cause: e });
      }
    }
    return out;
  }

  async keys<N extends keyof K & string>(kind: N): Promise<string[]> {
    this.#checkOpen();
    checkKind(this.#kinds, kind);
    let stored: string[];
    try {
      stored = await this.#backend.keys(kind);
    } catch (e) {
      throw isStoreError(e) ? e : new StoreError('ERR_STORE_READ', `keys cannot be listed from ${this.#backend.location}`, { kind, cause: e });
    }
    const found = new Set(stored);
    for (const layer of [this.#inflight, this.#pending]) {
      for (const [key, p] of layer.get(kind) ?? []) {
        if (p.text === undefined) found.delete(key);
        else found.add(key);
      }
    }
    return [...found];
  }

  async write(batch: readonly StoreWrite<K>[]): Promise<void> {
    this.#checkOpen();
    checkBatch(this.#kinds, batch);
    // Encode everything first, so a bad value fails its whole batch, not a later flush.
    const encoded: (string | undefined)[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i]!;
      this.#key(w.kind, w.key);
      if (w.op === 'delete') continue;
      let text: unknown;
      try {
        text = this.#codecs.get(w.kind)!.encode(w.value, w.key);
      } catch (e) {
        throw new StoreError('ERR_STORE_VALUE', `batch[${i}]: cannot be encoded (${e instanceof Error ? e.message : String(e)})`, { kind: w.kind, key: w.key, cause: e });
      }
      if (typeof text !== 'string' || !isPlainText(text)) {
        throw new StoreError('ERR_STORE_VALUE', `batch[${i}]: the codec must give well-formed text without NUL characters`, { kind: w.kind, key: w.key });
      }
      encoded[i] = text;
    }
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i]!;
      let m = this.#pending.get(w.kind);
      if (m === undefined) {
        m = new Map();
        this.#pending.set(w.kind, m);
      }
      m.set(w.key, { value: w.op === 'put' ? w.value : undefined, text: encoded[i] });
    }
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('ERR_STORE_CLOSED', `the store (${this.#backend.location}) is closed`));
    const run = this.#chain.then(() => this.#drain());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    await this.#backend.close();
  }

  async #drain(): Promise<void> {
    if (this.#pending.size === 0) return;
    this.#inflight = this.#pending;
    this.#pending = new Map();
    const changes: StoreChange[] = [];
    for (const [kind, m] of this.#inflight) for (const [key, p] of m) changes.push({ kind, key, text: p.text });
    try {
      await this.#backend.commit(changes);
      this.commits++;
    } catch (e) {
      // Nothing of the commit applied: the changes go back to pending unless newer ones came.
      for (const [kind, m] of this.#inflight) {
        let into = this.#pending.get(kind);
        if (into === undefined) {
          into = new Map();
          this.#pending.set(kind, into);
        }
        for (const [key, p] of m) if (!into.has(key)) into.set(key, p);
      }
      throw isStoreError(e) ? e : new StoreError('ERR_STORE_WRITE', `${changes.length} changes cannot be committed to ${this.#backend.location}`, { cause: e });
    } finally {
      this.#inflight = new Map();
    }
  }

  #overlay(kind: string, key: string): PendingValue | undefined {
    return this.#pending.get(kind)?.get(key) ?? this.#inflight.get(kind)?.get(key);
  }

  #key(kind: string, key: string): void {
    checkKey(kind, key);
    // A database turns a lone surrogate into U+FFFD (another key) and PostgreSQL refuses NUL.
    if (!isPlainText(key)) throw new StoreError('ERR_STORE_KEY', 'a database store keeps keys of well-formed text without NUL characters', { kind, key });
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', `the store (${this.#backend.location}) is closed`);
  }
}
