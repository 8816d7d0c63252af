/**
 * The one storage contract of the stack: fusion's templates, handshake's sessions and leases,
 * and the server's SQLite and PostgreSQL stores all speak it.
 *
 * A store holds records by kind (a namespace such as `templates`) and key (a string), and works
 * write-behind: `write` makes a batch visible to every later read at once and returns without
 * waiting for the disk; `flush` is the one call that waits for it. Reads and writes are
 * asynchronous so a store can sit on a file system, a database or a network without blocking
 * the event loop; callers keep what the hot path needs in memory (loaded before it runs) and
 * push changes through `write` from their own sweeps.
 */
import { StoreError } from './errors.js';

/** The kinds the protocol stack stores. Other kinds are allowed; each store is opened with its own list. */
export const STORE_KINDS = ['templates', 'sessions', 'leases'] as const;

/** One of {@link STORE_KINDS}. */
export type KnownStoreKind = (typeof STORE_KINDS)[number];

/** Longest key a store must accept (characters). */
export const MAX_KEY_LENGTH = 256;

/** One change of a batch. */
export type StoreWrite<K, N extends keyof K & string = keyof K & string> =
  | { readonly op: 'put'; readonly kind: N; readonly key: string; readonly value: K[N] }
  | { readonly op: 'delete'; readonly kind: N; readonly key: string };

/**
 * What a resolved `flush()` promises about every write issued before it:
 * - `none`: nothing; the store lives in memory and a restart forgets it.
 * - `process`: it survives a kill -9 of the process (the operating system holds it), not
 *   necessarily a power cut.
 * - `power`: it survives a power cut (flushed to the device: fsync, or a committed transaction
 *   of a database that syncs its log).
 */
export type StoreDurability = 'none' | 'process' | 'power';

/**
 * The contract. `K` maps each kind to the type of its records, e.g.
 * `Store<{ templates: TemplateRecord }>`.
 *
 * Semantics every implementation keeps (the abstract suite in `@opensynaptic/store/testing`
 * checks them):
 * - Read your writes: once `write(batch)` has resolved, `get` returns the batch's values (or
 *   `undefined` for its deletes), flushed or not. Later entries of a batch win over earlier ones.
 * - A batch is applied whole or, when it is rejected for a bad entry, not at all.
 * - Values are the caller's: a store may keep the object given or a copy, and the caller must
 *   not mutate a value after writing it (write a new one instead).
 * - Durability: when `flush()` resolves, every write whose `write` call was made before the
 *   `flush` call survives as `durability` says. When it rejects, the unflushed writes stay
 *   pending (still visible to `get`) and the next `flush` retries them.
 * - Errors are `StoreError`s with a `code` (see `isStoreError`); a stored record that does not
 *   decode is `ERR_STORE_CORRUPT`, never `undefined`.
 * - After `close()` resolves (it flushes first) every call rejects with `ERR_STORE_CLOSED`.
 */
export interface Store<K extends object = Record<string, unknown>> {
  /** What a resolved `flush()` promises. */
  readonly durability: StoreDurability;
  /**
   * The kinds this store keeps; others are `ERR_STORE_KIND`. Typed as names rather than `keyof K`
   * so that one store keeping several kinds serves every caller that needs one of them (a
   * `Store<TemplateKinds & SessionKinds>` is a `Store<SessionKinds>`).
   */
  readonly kinds: readonly string[];
  /** The record of `key`, or `undefined`. */
  get<N extends keyof K & string>(kind: N, key: string): Promise<K[N] | undefined>;
  /** The records of `keys`, in order (`undefined` where there is none). */
  getMany<N extends keyof K & string>(kind: N, keys: readonly string[]): Promise<(K[N] | undefined)[]>;
  /** Every key of `kind` (in no particular order): what a caller preloads before its hot path. */
  keys<N extends keyof K & string>(kind: N): Promise<string[]>;
  /** Applies a batch (see the interface comment); durable only after `flush`. */
  write(batch: readonly StoreWrite<K>[]): Promise<void>;
  /** Waits until every earlier write is as durable as `durability` says. */
  flush(): Promise<void>;
  /** Flushes, then releases the store's resources. Idempotent. */
  close(): Promise<void>;
}

/** `put` entries for `entries` of one kind: a helper for batch writers. */
export function putMany<K, N extends keyof K & string>(kind: N, entries: Iterable<readonly [string, K[N]]>): StoreWrite<K, N>[] {
  const out: StoreWrite<K, N>[] = [];
  for (const [key, value] of entries) out.push({ op: 'put', kind, key, value });
  return out;
}

/** `delete` entries for `keys` of one kind. */
export function deleteMany<K, N extends keyof K & string>(kind: N, keys: Iterable<string>): StoreWrite<K, N>[] {
  const out: StoreWrite<K, N>[] = [];
  for (const key of keys) out.push({ op: 'delete', kind, key });
  return out;
}

/** Throws `ERR_STORE_KEY` unless `key` is a non-empty string of at most `MAX_KEY_LENGTH` characters. */
export function checkKey(kind: string, key: unknown): asserts key is string {
  if (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH) {
    const shown = typeof key === 'string' ? JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key) : String(key);
    throw new StoreError('ERR_STORE_KEY', `key must be a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${shown}`, { kind });
  }
}

/** Throws `ERR_STORE_KIND` unless `kind` is one of `kinds`. */
export function checkKind(kinds: ReadonlySet<string>, kind: unknown): asserts kind is string {
  if (typeof kind !== 'string' || !kinds.has(kind)) {
    throw new StoreError('ERR_STORE_KIND', `unknown kind ${JSON.stringify(kind)}; this store keeps ${[...kinds].map((k) => JSON.stringify(k)).join(', ')}`);
  }
}

/** Checks a whole batch (shape, kinds, keys, values) before any of it is applied. */
export function checkBatch(kinds: ReadonlySet<string>, batch: unknown): asserts batch is readonly StoreWrite<Record<string, unknown>>[] {
  if (!Array.isArray(batch)) throw new StoreError('ERR_STORE_BATCH', `a batch must be a list of writes, got ${batch === null ? 'null' : typeof batch}`);
  for (let i = 0; i < batch.length; i++) {
    const w = batch[i] as { op?: unknown; kind?: unknown; key?: unknown; value?: unknown } | null;
    if (typeof w !== 'object' || w === null || (w.op !== 'put' && w.op !== 'delete')) {
      throw new StoreError('ERR_STORE_BATCH', `batch[${i}]: expected {op: "put" | "delete", kind, key}`);
    }
    checkKind(kinds, w.kind);
    checkKey(w.kind, w.key);
    if (w.op === 'put' && w.value === undefined) {
      throw new StoreError('ERR_STORE_VALUE', `batch[${i}]: a put needs a value (use op "delete" to remove)`, { kind: w.kind, key: w.key });
    }
  }
}

/** Checks and de-duplicates the kind list a store is opened with. */
export function kindSet(kinds: unknown): Set<string> {
  if (!Array.isArray(kinds) || kinds.length === 0) throw new StoreError('ERR_STORE_OPTION', 'kinds must be a non-empty list of names');
  const set = new Set<string>();
  for (const k of kinds) {
    if (typeof k !== 'string' || !/^[a-z][a-z0-9_-]{0,63}$/.test(k)) {
      throw new StoreError('ERR_STORE_OPTION', `kind ${JSON.stringify(k)} must be 1..64 characters a-z, 0-9, _ or -, starting with a letter`);
    }
    set.add(k);
  }
  return set;
}
