/**
 * Where the id allocator keeps its leases and the manager its secure sessions. Both only need
 * "read the last snapshot" and "replace it", so any key-value store, database row or file fits.
 */
import { type AtomicFs, nodeBuiltin, removeStaleTempFiles, writeFileAtomic } from '@opensynaptic/internal';
import type { Store } from '@opensynaptic/store';
import { StoreError } from './errors.js';

/**
 * Persists one JSON-serialisable snapshot. `save` replaces the previous one as a whole.
 *
 * Durability contract (what the allocator's id reservations rely on): when `save` returns, the
 * snapshot survives a kill of the process, and a crash never leaves a torn one (the previous
 * or the new snapshot is read back). `JsonFileStore` also survives a power cut (fsync of the
 * file and its folder). A store that cannot promise this must say so; `MemoryStore` keeps
 * nothing across a restart at all.
 */
export interface SnapshotStore<T> {
  /** The last saved snapshot, or `undefined` when nothing was saved yet. */
  load(): T | undefined;
  save(snapshot: T): void;
}

/** Keeps the snapshot in memory (the default: nothing survives a restart). */
export class MemoryStore<T> implements SnapshotStore<T> {
  #value: T | undefined;
  /** How many times `save` ran (handy to check write throttling). */
  saves = 0;
  constructor(initial?: T) {
    this.#value = initial === undefined ? undefined : structuredClone(initial);
  }
  load(): T | undefined {
    return this.#value === undefined ? undefined : structuredClone(this.#value);
  }
  save(snapshot: T): void {
    this.#value = structuredClone(snapshot);
    this.saves++;
  }
}

interface NodeFs extends AtomicFs {
  readFileSync(path: string, encoding: 'utf8'): string;
}

/** Options of {@link JsonFileStore}. */
export interface JsonFileStoreOptions {
  /**
   * Temporary files of killed writers (`.<file>.<pid>.<n>.tmp` beside the file) are removed when
   * the store opens if their writer's pid no longer runs or they are this old, in milliseconds
   * (default 600000, ten minutes).
   */
  staleTempMs?: number;
}

const utf8 = new TextEncoder();

/**
 * A JSON file replaced atomically: the snapshot is written to a temporary file beside it,
 * flushed to disk (file and folder), then renamed over the old file, so a crash leaves either
 * the old or the new snapshot, never a torn one, and `save` returning means the snapshot
 * survives a kill -9 and a power cut. Node only (uses `node:fs`).
 */
export class JsonFileStore<T> implements SnapshotStore<T> {
  readonly path: string;
  readonly #fs: NodeFs;
  /** Names of the stale temporary files removed when the store opened. */
  readonly removedTempFiles: readonly string[];
  constructor(path: string, options: JsonFileStoreOptions = {}) {
    const fs = nodeBuiltin<NodeFs>('node:fs');
    if (!fs) throw new StoreError(path, 'node:fs is not available on this platform; pass another SnapshotStore');
    this.path = path;
    this.#fs = fs;
    const name = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
    this.removedTempFiles = removeStaleTempFiles(fs, dirname(path) || '.', (target) => target === name, options.staleTempMs);
  }

  /** Throws `StoreError` when the file exists but is not JSON. */
  load(): T | undefined {
    const fs = this.#fs;
    let text: string;
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as { code?: unknown } | null)?.code === 'ENOENT') return undefined;
      throw new StoreError(this.path, 'cannot be read', { cause: e });
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new StoreError(this.path, 'is not valid JSON', { cause: e });
    }
  }

  save(snapshot: T): void {
    try {
      writeFileAtomic(this.#fs, this.path, utf8.encode(JSON.stringify(snapshot)));
    } catch (e) {
      throw new StoreError(this.path, 'cannot be written', { cause: e });
    }
  }
}

function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i < 0 ? '' : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/**
 * A snapshot kept in a store of the asynchronous contract (`@opensynaptic/store`): one record,
 * `key` (default `snapshot`) of `kind` (`sessions` or `leases`). `openSnapshotMirror` reads it
 * once, before the hot path; `load` then answers from memory and `save` hands a copy to the
 * store's `write` and starts its `flush` in the background, so no frame waits on the disk.
 *
 * Durability: `save` returning does NOT mean durable (`writeBehind` is `true`); `flush()`
 * resolving does, as the store's `durability` says. The id allocator knows this and reserves ids
 * with an awaited flush before they are handed out (see `IdAllocator.reserveAhead`); sessions are
 * durable once `OSHandshakeManager.persist()` (or a background flush) resolved.
 */
export class SnapshotMirror<T> implements SnapshotStore<T> {
  /** Tells the id allocator that `save` is write-behind. */
  readonly writeBehind = true;
  readonly path: string;
  /** The last background flush that failed, if any (the next `flush` retries it). */
  lastError: unknown;
  readonly #store: Store<Record<string, unknown>>;
  readonly #kind: string;
  readonly #key: string;
  #value: T | undefined;
  #flushing: Promise<void> | null = null;
  #again = false;

  private constructor(store: Store<Record<string, unknown>>, kind: string, key: string, value: T | undefined) {
    this.#store = store;
    this.#kind = kind;
    this.#key = key;
    this.#value = value;
    this.path = `${kind}/${key}`;
  }

  /** Reads the snapshot of `kind`/`key` (rejects with the store's error) and returns the mirror. */
  static async open<T>(store: Store<Record<string, unknown>> | Store<never>, kind: string, key = 'snapshot'): Promise<SnapshotMirror<T>> {
    const s = store as Store<Record<string, unknown>>;
    if (typeof s?.get !== 'function' || typeof s.write !== 'function' || typeof s.flush !== 'function') {
      throw new StoreError(`${kind}/${key}`, 'the store does not implement get, write and flush');
    }
    return new SnapshotMirror<T>(s, kind, key, (await s.get(kind, key)) as T | undefined);
  }

  load(): T | undefined {
    return this.#value === undefined ? undefined : structuredClone(this.#value);
  }

  /** Hands the snapshot to the store (write-behind) and starts a background flush. Throws `StoreError` for a batch the store refuses. */
  save(snapshot: T): void {
    const value = structuredClone(snapshot);
    const written = this.#store.write([{ op: 'put', kind: this.#kind, key: this.#key, value }]);
    this.#value = value;
    written.then(
      () => this.#flushInBackground(),
      (e: unknown) => {
        this.lastError = new StoreError(this.path, 'cannot be written', { cause: e });
      },
    );
  }

  /** Resolves when every `save` before it is as durable as the store promises; rejects with `StoreError`. */
  async flush(): Promise<void> {
    try {
      await this.#store.flush();
    } catch (e) {
      throw new StoreError(this.path, 'cannot be flushed', { cause: e });
    }
  }

  #flushInBackground(): void {
    if (this.#flushing !== null) {
      this.#again = true;
      return;
    }
    this.#flushing = this.flush()
      .catch((e: unknown) => {
        this.lastError = e;
      })
      .finally(() => {
        this.#flushing = null;
        if (this.#again) {
          this.#again = false;
          this.#flushInBackground();
        }
      });
  }
}

/** Whether `store` is write-behind (a `SnapshotMirror` or one like it): `save` returning is not durable. */
export function isWriteBehind(store: unknown): store is SnapshotStore<unknown> & { writeBehind: true; flush(): Promise<void> } {
  const s = store as { writeBehind?: unknown; flush?: unknown } | null;
  return s?.writeBehind === true && typeof s.flush === 'function';
}
