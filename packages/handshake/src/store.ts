/**
 * Where the id allocator keeps its leases and the manager its secure sessions. Both only need
 * "read the last snapshot" and "replace it", so any key-value store, database row or file fits.
 */
import { type AtomicFs, nodeBuiltin, removeStaleTempFiles, writeFileAtomic } from '@opensynaptic/internal';
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
