/**
 * The contract on a file system, one folder per store. Each kind has a layout: `files` (one
 * file per key, for kinds with many records read a few at a time, such as templates) or
 * `snapshot` (every record of the kind in one file, held in memory, for small kinds read whole
 * at start, such as sessions and leases). Every file is replaced atomically by the one atomic
 * writer (temporary file, fsync, rename, fsync of the folder), all through `node:fs/promises`:
 * `write` never touches the disk and `flush` does its I/O in the thread pool, so the event loop
 * keeps serving frames while the disk works.
 */
import { nodeBuiltin } from '@opensynaptic/internal';
import { type AtomicFsPromises, removeStaleTempFiles, syncDirAsync, writeFileAtomicAsync } from './atomic-file.js';
import { checkBatch, checkKey, checkKind, kindSet, type Store, type StoreDurability, type StoreWrite } from './contract.js';
import { StoreError } from './errors.js';

/** One file per key (see {@link FileStoreOptions.layouts}). */
export interface FilesLayout<V> {
  readonly type: 'files';
  /** The file of `key`, relative to the store's root (`/` separators). Throw `ERR_STORE_KEY` for keys it cannot name. */
  pathOf(key: string): string;
  /** The folder (relative to the root, `''` for the root itself) that holds every file of the kind. */
  readonly dir: string;
  /** The key of a file under `dir` (its path relative to the root), or `undefined` for files of other kinds. */
  keyOf(relativePath: string): string | undefined;
  /** How deep under `dir` the files lie (0: directly in it). */
  readonly depth: number;
  /** The file's bytes. */
  encode(key: string, value: V): Uint8Array;
  /** The record of a file; throw (anything) when the bytes are not one: it becomes `ERR_STORE_CORRUPT`. */
  decode(key: string, bytes: Uint8Array): V;
}

/** Every record of the kind in one JSON object file, `{ "<key>": <value>, ... }`, held in memory. */
export interface SnapshotLayout {
  readonly type: 'snapshot';
  /** The file, relative to the root (default `<kind>.json`). */
  readonly path?: string | undefined;
}

/** A layout of one kind. */
export type FileLayout<V = unknown> = FilesLayout<V> | SnapshotLayout;

/** Options of {@link FileStore.open}. */
export interface FileStoreOptions<K extends object> {
  /** The store's folder, created on the first flush. */
  root: string;
  /** The kinds kept (default: `templates`, `sessions`, `leases`). */
  kinds?: readonly (keyof K & string)[] | undefined;
  /**
   * A layout per kind; a kind without one gets `jsonFiles(kind)`: `<root>/<kind>/<key>.json`,
   * the key escaped to lower-case letters, digits, `_`, `-` and `%xx`, so it names the same file
   * on case-insensitive file systems and never a path outside the folder.
   */
  layouts?: { readonly [N in keyof K & string]?: FileLayout<K[N]> } | undefined;
  /**
   * `true` (default): `flush` fsyncs every file and folder it wrote (`durability: 'power'`).
   * `false`: it only waits for the rename, which survives a kill -9 but maybe not a power cut
   * (`durability: 'process'`).
   */
  durable?: boolean | undefined;
  /**
   * What a read does with a file that does not decode: `"throw"` (default): `ERR_STORE_CORRUPT`
   * naming the file, which stays in place (no later write replaces it unseen);
   * `"quarantine"`: renamed to `<file>.corrupt-<ms>-<n>`, told to `onQuarantine`, read as missing.
   */
  onCorrupt?: 'throw' | 'quarantine' | undefined;
  onQuarantine?: ((error: StoreError, movedTo: string) => void) | undefined;
  /**
   * When the store opens, temporary files of killed writers are removed if their writer's pid no
   * longer runs or they are this old (ms, default 600000); `false` skips the scan.
   */
  staleTempMs?: number | false | undefined;
  /** Most files one flush writes at once (integer >= 1, default 16). */
  concurrency?: number | undefined;
}

interface NodeFsPromises extends AtomicFsPromises {
  readFile(path: string): Promise<Uint8Array>;
  readdir(path: string): Promise<string[]>;
  readdir(path: string, options: { withFileTypes: true }): Promise<{ name: string; isDirectory(): boolean; isFile(): boolean }[]>;
}

const DELETED: unique symbol = Symbol('deleted');
type Pending = Map<string, Map<string, unknown>>;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
let quarantineCounter = 0;

function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Longest escaped key `jsonFiles` turns into a file name (file systems allow 255 bytes). */
const MAX_ESCAPED_KEY = 240;

/** A key as a file name: lower-case letters, digits, `_` and `-` kept, every other UTF-8 byte as `%xx`. */
export function escapeKey(key: string): string {
  let out = '';
  for (const ch of key) {
    if (/^[a-z0-9_-]$/.test(ch)) out += ch;
    else for (const b of utf8Encoder.encode(ch)) out += `%${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The default layout: `<dir>/<escaped key>.json`, values as JSON. */
export function jsonFiles<V = unknown>(dir: string): FilesLayout<V> {
  const prefix = dir === '' ? '' : `${dir}/`;
  return {
    type: 'files',
    dir,
    depth: 0,
    pathOf(key) {
      const name = escapeKey(key);
      if (name.length > MAX_ESCAPED_KEY) throw new StoreError('ERR_STORE_KEY', `escaped key is ${name.length} characters, at most ${MAX_ESCAPED_KEY} fit a file name`, { key });
      return `${prefix}${name}.json`;
    },
    keyOf(rel) {
      if (!rel.startsWith(prefix) || !rel.endsWith('.json')) return undefined;
      const name = rel.slice(prefix.length, -5);
      if (!/^(?:[a-z0-9_-]|%[0-9a-f]{2})+$/.test(name)) return undefined;
      try {
        const key = decodeURIComponent(name);
        return escapeKey(key) === name ? key : undefined;
      } catch {
        return undefined;
      }
    },
    encode(_key, value) {
      return utf8Encoder.encode(JSON.stringify(value));
    },
    decode(_key, bytes) {
      return JSON.parse(utf8Decoder.decode(bytes)) as V;
    },
  };
}

/**
 * The file-system store (see the module comment). Node only: `open` reaches `node:fs` through
 * `process.getBuiltinModule`, so importing this package in a browser pulls in nothing, and
 * opening a file store there rejects with `ERR_STORE_UNSUPPORTED`.
 */
export class FileStore<K extends object = Record<string, unknown>> implements Store<K> {
  readonly durability: StoreDurability;
  readonly kinds: readonly (keyof K & string)[];
  readonly root: string;
  /** Names (relative to `root`) of the stale temporary files removed when the store opened. */
  readonly removedTempFiles: readonly string[];
  /** How many files flushes have written (handy to check coalescing). */
  filesWritten = 0;
  readonly #fs: NodeFsPromises;
  readonly #kinds: Set<string>;
  readonly #layouts: Map<string, FileLayout>;
  readonly #durable: boolean;
  readonly #quarantine: boolean;
  readonly #onQuarantine: ((error: StoreError, movedTo: string) => void) | undefined;
  readonly #concurrency: number;
  // Snapshot kinds, whole, as written; and which of them changed since their last flush.
  readonly #snapshots = new Map<string, Map<string, unknown>>();
  readonly #snapshotDirty = new Set<string>();
  // Files kinds: writes not yet flushed, and those the running flush is writing.
  #pending: Pending = new Map();
  #inflight: Pending = new Map();
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(fs: NodeFsPromises, options: FileStoreOptions<K>, kinds: Set<string>, layouts: Map<string, FileLayout>, removed: string[]) {
    this.#fs = fs;
    this.root = options.root.replace(/[\\/]+$/, '') || '/';
    this.#kinds = kinds;
    this.kinds = [...kinds] as (keyof K & string)[];
    this.#layouts = layouts;
    this.#durable = options.durable ?? true;
    this.durability = this.#durable ? 'power' : 'process';
    this.#quarantine = options.onCorrupt === 'quarantine';
    this.#onQuarantine = options.onQuarantine;
    this.#concurrency = options.concurrency ?? 16;
    this.removedTempFiles = removed;
  }

  /**
   * Opens the store: checks the options, removes stale temporary files, and reads the snapshot
   * kinds into memory (a snapshot file that does not decode rejects with `ERR_STORE_CORRUPT`,
   * or is quarantined). Files kinds are read on demand.
   */
  static async open<K extends object = Record<string, unknown>>(options: FileStoreOptions<K>): Promise<FileStore<K>> {
    if (typeof options?.root !== 'string' || options.root === '') throw new StoreError('ERR_STORE_OPTION', 'root must be a non-empty folder path');
    const kinds = kindSet(options.kinds ?? ['templates', 'sessions', 'leases']);
    const onCorrupt = options.onCorrupt ?? 'throw';
    if (onCorrupt !== 'throw' && onCorrupt !== 'quarantine') {
      throw new StoreError('ERR_STORE_OPTION', `onCorrupt must be "throw" or "quarantine", got ${JSON.stringify(onCorrupt)}`);
    }
    const concurrency = options.concurrency ?? 16;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new StoreError('ERR_STORE_OPTION', `concurrency must be an integer >= 1, got ${String(concurrency)}`);
    const stale = options.staleTempMs;
    if (stale !== undefined && stale !== false && !(typeof stale === 'number' && stale >= 0)) {
      throw new StoreError('ERR_STORE_OPTION', `staleTempMs must be a number >= 0 or false, got ${String(stale)}`);
    }
    const layouts = new Map<string, FileLayout>();
    for (const kind of kinds) {
      const given = (options.layouts as Record<string, FileLayout | undefined> | undefined)?.[kind];
      if (given !== undefined && given.type !== 'files' && given.type !== 'snapshot') {
        throw new StoreError('ERR_STORE_OPTION', `layouts.${kind}.type must be "files" or "snapshot"`);
      }
      layouts.set(kind, given ?? jsonFiles(kind));
    }
    const fs = nodeBuiltin<NodeFsPromises>('node:fs/promises');
    if (!fs) throw new StoreError('ERR_STORE_UNSUPPORTED', 'node:fs is not available on this platform; use MemoryStore or another Store', { path: options.root });
    const root = options.root.replace(/[\\/]+$/, '') || '/';
    // Once, before any hot path: the folders the layouts write into.
    const removed: string[] = [];
    if (stale !== false) {
      const dirs = new Set<string>();
      for (const layout of layouts.values()) {
        if (layout.type === 'snapshot') dirs.add('');
        else await collectDirs(fs, root, layout.dir, layout.depth, dirs);
      }
      for (const d of dirs) {
        const abs = d === '' ? root : `${root}/${d}`;
        for (const name of await removeStaleTempFiles(fs, abs, () => true, stale)) removed.push(d === '' ? name : `${d}/${name}`);
      }
    }
    const store = new FileStore<K>(fs, options, kinds, layouts, removed);
    for (const [kind, layout] of layouts) if (layout.type === 'snapshot') store.#snapshots.set(kind, await store.#readSnapshot(kind, layout));
    return store;
  }

  /** The file of `key` of a files kind, or of the whole kind for a snapshot kind. */
  pathOf(kind: keyof K & string, key?: string): string {
    checkKind(this.#kinds, kind);
    const layout = this.#layouts.get(kind)!;
    if (layout.type === 'snapshot') return `${this.root}/${layout.path ?? `${kind}.json`}`;
    checkKey(kind, key);
    return `${this.root}/${layout.pathOf(key)}`;
  }

  async get<N extends keyof K & string>(kind: N, key: string): Promise<K[N] | undefined> {
    this.#checkOpen();
    checkKind(this.#kinds, kind);
    checkKey(kind, key);
    return (await this.#get(kind, key)) as K[N] | undefined;
  }

  async getMany<N extends keyof K & string>(kind: N, keys: readonly string[]): Promise<(K[N] | undefined)[]> {
    this.#checkOpen();
    checkKind(this.#kinds, kind);
    if (!Array.isArray(keys)) throw new StoreError('ERR_STORE_KEY', 'keys must be a list', { kind });
    for (const key of keys) checkKey(kind, key);
    const out: (K[N] | undefined)[] = new Array(keys.length);
    await this.#pool(keys.length, async (i) => {
      out[i] = (await this.#get(kind, keys[i]!)) as K[N] | undefined;
    });
    return out;
  }

  async keys<N extends keyof K & string>(kind: N): Promise<string[]> {
    this.#checkOpen();
    checkKind(this.#kinds, kind);
    const layout = this.#layouts.get(kind)!;
    if (layout.type === 'snapshot') return [...this.#snapshots.get(kind)!.keys()];
    const found = new Set<string>();
    await listFiles(this.#fs, this.root, layout.dir, layout.depth, (rel) => {
      const key = layout.keyOf(rel);
      if (key !== undefined) found.add(key);
    });
    for (const layer of [this.#inflight, this.#pending]) {
      for (const [key, v] of layer.get(kind) ?? []) {
        if (v === DELETED) found.delete(key);
        else found.add(key);
      }
    }
    return [...found];
  }

  async write(batch: readonly StoreWrite<K>[]): Promise<void> {
    this.#checkOpen();
    checkBatch(this.#kinds, batch);
    // Encode-check files values now, so a bad value fails its batch, not a later flush.
    for (const w of batch) {
      const layout = this.#layouts.get(w.kind)!;
      if (layout.type === 'files') {
        const path = layout.pathOf(w.key);
        if (typeof path !== 'string' || path === '' || path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
          throw new StoreError('ERR_STORE_KEY', `the layout named no file inside the store (${JSON.stringify(path)})`, { kind: w.kind, key: w.key });
        }
      } else if (w.op === 'put') {
        try {
          if (JSON.stringify(w.value) === undefined) throw new TypeError('not JSON');
        } catch (e) {
          throw new StoreError('ERR_STORE_VALUE', 'is not JSON-serialisable', { kind: w.kind, key: w.key, cause: e });
        }
      }
    }
    for (const w of batch) {
      const layout = this.#layouts.get(w.kind)!;
      const value = w.op === 'put' ? w.value : DELETED;
      if (layout.type === 'snapshot') {
        const snap = this.#snapshots.get(w.kind)!;
        if (value === DELETED) snap.delete(w.key);
        else snap.set(w.key, value);
        this.#snapshotDirty.add(w.kind);
      } else {
        this.#pendingOf(w.kind).set(w.key, value);
      }
    }
  }

  /** How many writes wait for a flush (files records plus changed snapshot kinds). */
  get pendingWrites(): number {
    let n = this.#snapshotDirty.size;
    for (const m of this.#pending.values()) n += m.size;
    return n;
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('ERR_STORE_CLOSED', 'the store is closed', { path: this.root }));
    const run = this.#chain.then(() => this.#drain());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
  }

  async #get(kind: string, key: string): Promise<unknown> {
    const layout = this.#layouts.get(kind)!;
    if (layout.type === 'snapshot') return this.#snapshots.get(kind)!.get(key);
    for (const layer of [this.#pending, this.#inflight]) {
      const m = layer.get(kind);
      if (m?.has(key)) {
        const v = m.get(key);
        return v === DELETED ? undefined : v;
      }
    }
    const path = `${this.root}/${layout.pathOf(key)}`;
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw new StoreError('ERR_STORE_READ', 'cannot be read', { kind, key, path, cause: e });
    }
    try {
      return layout.decode(key, bytes);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return this.#corrupt(new StoreError('ERR_STORE_CORRUPT', `does not decode (${why})`, { kind, key, path, cause: e }), path);
    }
  }

  async #corrupt(error: StoreError, path: string): Promise<undefined> {
    if (!this.#quarantine) throw error;
    const movedTo = `${path}.corrupt-${Date.now()}-${++quarantineCounter}`;
    try {
      await this.#fs.rename(path, movedTo);
    } catch (e) {
      throw new StoreError('ERR_STORE_CORRUPT', 'does not decode and cannot be moved aside', { kind: error.kind, key: error.key, path, cause: e });
    }
    this.#onQuarantine?.(error, movedTo);
    return undefined;
  }

  async #readSnapshot(kind: string, layout: SnapshotLayout): Promise<Map<string, unknown>> {
    const path = `${this.root}/${layout.path ?? `${kind}.json`}`;
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return new Map();
      throw new StoreError('ERR_STORE_READ', 'cannot be read', { kind, path, cause: e });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8Decoder.decode(bytes));
    } catch (e) {
      await this.#corrupt(new StoreError('ERR_STORE_CORRUPT', 'is not JSON', { kind, path, cause: e }), path);
      return new Map();
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      await this.#corrupt(new StoreError('ERR_STORE_CORRUPT', 'is not a JSON object of records', { kind, path }), path);
      return new Map();
    }
    return new Map(Object.entries(parsed as Record<string, unknown>));
  }

  async #drain(): Promise<void> {
    // Everything written up to now: the snapshot kinds serialised, the files kinds moved aside.
    const snapshots: [string, string, Uint8Array][] = [];
    for (const kind of this.#snapshotDirty) {
      const layout = this.#layouts.get(kind) as SnapshotLayout;
      const obj: Record<string, unknown> = {};
      for (const [k, v] of this.#snapshots.get(kind)!) obj[k] = v;
      snapshots.push([kind, `${this.root}/${layout.path ?? `${kind}.json`}`, utf8Encoder.encode(JSON.stringify(obj))]);
    }
    this.#snapshotDirty.clear();
    this.#inflight = this.#pending;
    this.#pending = new Map();
    const jobs: { kind: string; key: string; value: unknown }[] = [];
    for (const [kind, m] of this.#inflight) for (const [key, value] of m) jobs.push({ kind, key, value });
    let failure: StoreError | undefined;
    const failed: typeof jobs = [];
    const durable = this.#durable;
    const deletedDirs = new Set<string>();
    await this.#pool(jobs.length + snapshots.length, async (i) => {
      if (i >= jobs.length) {
        const [kind, path, data] = snapshots[i - jobs.length]!;
        try {
          await writeFileAtomicAsync(this.#fs, path, data, { durable });
          this.filesWritten++;
        } catch (e) {
          this.#snapshotDirty.add(kind);
          failure ??= new StoreError('ERR_STORE_WRITE', 'cannot be written', { kind, path, cause: e });
        }
        return;
      }
      const job = jobs[i]!;
      const layout = this.#layouts.get(job.kind) as FilesLayout<unknown>;
      const path = `${this.root}/${layout.pathOf(job.key)}`;
      try {
        if (job.value === DELETED) {
          await this.#fs.rm(path, { force: true });
          deletedDirs.add(path.slice(0, path.lastIndexOf('/')));
        } else {
          await writeFileAtomicAsync(this.#fs, path, layout.encode(job.key, job.value), { durable });
          this.filesWritten++;
        }
      } catch (e) {
        failed.push(job);
        failure ??= new StoreError('ERR_STORE_WRITE', job.value === DELETED ? 'cannot be deleted' : 'cannot be written', { kind: job.kind, key: job.key, path, cause: e });
      }
    });
    if (durable) for (const d of deletedDirs) await syncDirAsync(this.#fs, d);
    // Failed writes go back to pending unless a newer write of the same key came meanwhile.
    for (const job of failed) {
      const m = this.#pendingOf(job.kind);
      if (!m.has(job.key)) m.set(job.key, job.value);
    }
    this.#inflight = new Map();
    if (failure !== undefined) throw failure;
  }

  async #pool(n: number, task: (i: number) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) await task(next++);
    };
    const workers: Promise<void>[] = [];
    for (let w = 0; w < Math.min(this.#concurrency, n); w++) workers.push(worker());
    const results = await Promise.allSettled(workers);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  #pendingOf(kind: string): Map<string, unknown> {
    let m = this.#pending.get(kind);
    if (m === undefined) {
      m = new Map();
      this.#pending.set(kind, m);
    }
    return m;
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed', { path: this.root });
  }
}

async function listFiles(fs: NodeFsPromises, root: string, dir: string, depth: number, visit: (rel: string) => void): Promise<void> {
  const abs = dir === '' ? root : `${root}/${dir}`;
  let entries: { name: string; isDirectory(): boolean; isFile(): boolean }[];
  try {
    entries = await fs.readdir(abs, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return;
    throw new StoreError('ERR_STORE_READ', 'cannot be listed', { path: abs, cause: e });
  }
  for (const entry of entries) {
    const rel = dir === '' ? entry.name : `${dir}/${entry.name}`;
    if (depth > 0 && entry.isDirectory()) await listFiles(fs, root, rel, depth - 1, visit);
    else if (depth === 0 && entry.isFile()) visit(rel);
  }
}

async function collectDirs(fs: NodeFsPromises, root: string, dir: string, depth: number, out: Set<string>): Promise<void> {
  if (depth === 0) {
    out.add(dir);
    return;
  }
  const abs = dir === '' ? root : `${root}/${dir}`;
  let entries: { name: string; isDirectory(): boolean }[];
  try {
    entries = await fs.readdir(abs, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) if (entry.isDirectory()) await collectDirs(fs, root, dir === '' ? entry.name : `${dir}/${entry.name}`, depth - 1, out);
}
