/**
 * Where the id allocator keeps its leases and the manager its secure sessions. Both only need
 * "read the last snapshot" and "replace it", so any key-value store, database row or file fits.
 */
import { nodeBuiltin } from '@opensynaptic/internal';
import { StoreError } from './errors.js';

/** Persists one JSON-serialisable snapshot. `save` replaces the previous one as a whole. */
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

interface NodeFs {
  existsSync(path: string): boolean;
  readFileSync(path: string, encoding: 'utf8'): string;
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, data: string): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options?: { force?: boolean }): void;
  mkdirSync(path: string, options?: { recursive?: boolean }): unknown;
}

let tmpCounter = 0;

/**
 * A JSON file replaced atomically: the snapshot is written to a temporary file beside it,
 * flushed to disk, then renamed over the old file, so a crash leaves either the old or the new
 * snapshot, never a torn one. Node only (uses `node:fs`).
 */
export class JsonFileStore<T> implements SnapshotStore<T> {
  readonly path: string;
  readonly #fs: NodeFs;
  constructor(path: string) {
    const fs = nodeBuiltin<NodeFs>('node:fs');
    if (!fs) throw new StoreError(path, 'node:fs is not available on this platform; pass another SnapshotStore');
    this.path = path;
    this.#fs = fs;
  }

  /** Throws `StoreError` when the file exists but is not JSON. */
  load(): T | undefined {
    const fs = this.#fs;
    if (!fs.existsSync(this.path)) return undefined;
    let text: string;
    try {
      text = fs.readFileSync(this.path, 'utf8');
    } catch (e) {
      throw new StoreError(this.path, 'cannot be read', { cause: e });
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new StoreError(this.path, 'is not valid JSON', { cause: e });
    }
  }

  save(snapshot: T): void {
    const fs = this.#fs;
    const dir = dirname(this.path);
    if (dir && !fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true });
    const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
    const tmp = `${this.path}.${pid}.${++tmpCounter}.tmp`;
    let fd = -1;
    try {
      fd = fs.openSync(tmp, 'w', 0o600);
      fs.writeSync(fd, JSON.stringify(snapshot));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = -1;
      fs.renameSync(tmp, this.path);
    } catch (e) {
      if (fd >= 0) {
        try {
          fs.closeSync(fd);
        } catch {
          // The write already failed; that error is the one to report.
        }
      }
      fs.rmSync(tmp, { force: true });
      throw new StoreError(this.path, 'cannot be written', { cause: e });
    }
  }
}

function dirname(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i <= 0 ? '' : path.slice(0, i);
}
