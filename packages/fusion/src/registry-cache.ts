import { BackgroundFlush } from '@opensynaptic/store';
import { DeviceRegistry } from './registry.js';
import { asStoreError, checkAid, RegistryStoreError } from './store-errors.js';
import { registryFromRecord, registryRecord, type TemplateRecord, type TemplateStore, templateKey } from './template-store.js';

/** Options of {@link RegistryCache}; every one is optional. */
export interface RegistryCacheOptions {
  /**
   * Where registries live outside the cache: a `TemplateStore` of the one store contract
   * (`@opensynaptic/store`; e.g. `openFileTemplateStore` for the reference's registry folder, or
   * a `MemoryStore`), which the cache never waits for on a frame's path: see "Stores" on the
   * class. `preload()` must resolve before the cache is used. Default none: the cache is all
   * there is (in memory; a restart forgets it).
   */
  store?: TemplateStore | undefined;
  /**
   * Told about each failed background load, write or flush of the store (the registry concerned
   * stays cached and dirty; `flush()` retries). Default: kept in `lastError` and counted in
   * `backgroundErrors`.
   */
  onError?: ((error: RegistryStoreError) => void) | undefined;
  /** Most background loads at once (integer >= 1, default 64); misses past it load nothing. */
  maxLoading?: number | undefined;
  /**
   * Most registries held at once (integer >= 1). Past it the least recently used one leaves the
   * cache (saved first when dirty). Default: 1024 like the reference with a store; without one
   * 1,000,000 (`DEFAULT_MAX_REGISTRIES`), since a registry that leaves is forgotten.
   */
  maxEntries?: number | undefined;
  /**
   * A registry unused for longer than this (ms, > 0, `Infinity` allowed) is dropped (saved first
   * when dirty) when the cache next makes room or on `sweep()`. Default: 3,600,000 (the
   * reference's 3600 s) with a store; `Infinity` without one, where dropping means forgetting.
   */
  ttlMs?: number | undefined;
  /**
   * `changed()` saves a registry at most once per this many ms (finite, >= 0; default 1000 =
   * the reference's 1 s). 0 writes through on every change.
   */
  syncIntervalMs?: number | undefined;
  /** Current time in ms (default `Date.now`); inject one for tests or a monotonic source. */
  clock?: (() => number) | undefined;
}

/** Default `maxEntries` of a cache without a store: the registries it forgets beyond are lost. */
export const DEFAULT_MAX_REGISTRIES = 1_000_000;

/** Defaults of {@link RegistryCacheOptions} (`maxEntries` and `ttlMs` with a store). */
export const REGISTRY_CACHE_DEFAULTS = {
  maxEntries: 1024,
  ttlMs: 3_600_000,
  syncIntervalMs: 1000,
  maxLoading: 64,
} as const;

function isTemplateStore(store: unknown): store is TemplateStore {
  const s = store as Partial<TemplateStore> | null;
  return typeof s?.write === 'function' && typeof s.flush === 'function' && typeof s.getMany === 'function' && typeof s.get === 'function' && typeof s.keys === 'function';
}

/** What one `sweep()` did. */
export interface SweepResult {
  /** Dirty registries saved (expired ones, and those whose sync interval had elapsed). */
  saved: number;
  /** Expired registries dropped from the cache. */
  evicted: number;
}

// One node of the recency list (oldest → newest). A Map of nodes plus pointer relinking keeps a
// cache hit to one hash lookup and a few field writes, where re-inserting into a Map to move a
// key last costs a delete and an insert.
class Entry {
  prev: Entry | null = null;
  next: Entry | null = null;
  constructor(public registry: DeviceRegistry) {}
}

/**
 * The engine's bounded working set of registries, in front of an optional store of the one
 * store contract.
 *
 * Every operation is O(1) except `flush` and `sweep` (O(size)); a hit is one Map lookup. Nothing
 * learned is lost while a store is given: a dirty registry is handed to the store before it
 * leaves the cache, and when the store fails the registry stays dirty (the next save retries).
 * Without a store the cache is all there is: a registry that leaves it (past `maxEntries`, or
 * after `ttlMs` when set) is forgotten.
 *
 * The cache runs no timers: call `sweep()` from one (to save throttled changes and drop idle
 * registries) and `flush()` before shutting down. Single-threaded use only, like the engine.
 *
 * Stores: the frame's path never waits on them. `await preload()` (all AIDs, or those given)
 * before serving: until then the cache refuses use (`ERR_FUSION_STORE_NOT_OPEN`). A miss then
 * starts a background load: `find` returns `null` ("unknown yet": the frame fails as from an
 * unknown device, as it would have before the device's FULL) and `get` returns a new registry;
 * when the load lands its templates join the cache (a tid learned meanwhile wins over the
 * stored one). Saves (from `changed`, `sweep`, `flush` and evictions) go to the store's `write`
 * as copies, write-behind; `sweep` also starts the store's `flush` in the background, and
 * `flush()` resolves when every change made before it is as durable as the store promises.
 * `peek` reads only the cache.
 */
export class RegistryCache {
  /** The backing store, or `null`. */
  readonly store: TemplateStore | null;
  /** The most recent background failure of the store, or `undefined`. */
  lastError: RegistryStoreError | undefined;
  /** How many background loads, writes or flushes of the store failed. */
  backgroundErrors = 0;
  readonly #async: TemplateStore | null;
  readonly #onError: ((error: RegistryStoreError) => void) | undefined;
  readonly #maxLoading: number;
  readonly #loading = new Map<number, Promise<void>>();
  readonly #reload = new Set<number>();
  readonly #flusher: BackgroundFlush | null;
  /** False while a store is given and `preload()` has not resolved. */
  #ready: boolean;
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly syncIntervalMs: number;
  readonly #clock: () => number;
  readonly #entries = new Map<number, Entry>();
  #oldest: Entry | null = null;
  #newest: Entry | null = null;

  constructor(options: RegistryCacheOptions = {}) {
    const store = options.store ?? null;
    if (store !== null && !isTemplateStore(store)) {
      badOption('store must be a store of the @opensynaptic/store contract (get, getMany, keys, write, flush), e.g. openFileTemplateStore(root) or new MemoryStore()');
    }
    const maxEntries = options.maxEntries ?? (store === null ? DEFAULT_MAX_REGISTRIES : REGISTRY_CACHE_DEFAULTS.maxEntries);
    const ttlMs = options.ttlMs ?? (store === null ? Number.POSITIVE_INFINITY : REGISTRY_CACHE_DEFAULTS.ttlMs);
    const syncIntervalMs = options.syncIntervalMs ?? REGISTRY_CACHE_DEFAULTS.syncIntervalMs;
    const clock = options.clock ?? Date.now;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) badOption(`maxEntries must be an integer >= 1, got ${String(maxEntries)}`);
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) badOption(`ttlMs must be a number > 0 (Infinity allowed), got ${String(ttlMs)}`);
    if (typeof syncIntervalMs !== 'number' || !Number.isFinite(syncIntervalMs) || syncIntervalMs < 0) {
      badOption(`syncIntervalMs must be a finite number >= 0, got ${String(syncIntervalMs)}`);
    }
    if (typeof clock !== 'function') badOption('clock must be a function returning milliseconds');
    const maxLoading = options.maxLoading ?? REGISTRY_CACHE_DEFAULTS.maxLoading;
    if (!Number.isSafeInteger(maxLoading) || maxLoading < 1) badOption(`maxLoading must be an integer >= 1, got ${String(maxLoading)}`);
    if (options.onError !== undefined && typeof options.onError !== 'function') badOption('onError must be a function');
    this.store = store;
    this.#async = store;
    this.#ready = store === null;
    this.#flusher = store === null ? null : new BackgroundFlush(store, (error) => this.#report(flushError(error)));
    this.#onError = options.onError;
    this.#maxLoading = maxLoading;
    this.maxEntries = maxEntries;
    this.ttlMs = ttlMs;
    this.syncIntervalMs = syncIntervalMs;
    this.#clock = clock;
  }

  /** How many registries the cache holds. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The registry of `aid`: from the cache, else loaded from the store, else a new empty one.
   * Sets its `lastSeen` to `now` and makes it the most recently used. On a miss the cache first
   * drops expired registries and, when full, the least recently used one, saving dirty ones.
   *
   * `now` defaults to the clock; a caller that already read the clock for this frame can pass
   * it and spare a second read. With a store, a miss starts a background load and returns a new
   * registry (see the class). Throws `RegistryStoreError`: `ERR_FUSION_STORE_AID` for a bad AID,
   * `ERR_FUSION_STORE_NOT_OPEN` before `preload()` resolved.
   */
  get(aid: number, now: number = this.#clock()): DeviceRegistry {
    const entry = this.#entries.get(aid);
    if (entry !== undefined) {
      const registry = entry.registry;
      registry.lastSeen = now;
      if (entry !== this.#newest) this.#moveToNewest(entry);
      return registry;
    }
    return this.#miss(aid, now);
  }

  /**
   * Like `get`, but `null` (and no new registry, no eviction) when neither the cache nor the
   * store has `aid`: for a receiver that must not invent registries for unknown senders, e.g.
   * on DIFF / HEART frames. A registry found is cached and touched as by `get`.
   */
  find(aid: number, now: number = this.#clock()): DeviceRegistry | null {
    const entry = this.#entries.get(aid);
    if (entry !== undefined) {
      const registry = entry.registry;
      registry.lastSeen = now;
      if (entry !== this.#newest) this.#moveToNewest(entry);
      return registry;
    }
    checkAid(aid);
    if (!this.#ready) notOpen();
    // With a store: "unknown yet" while the background load runs.
    if (this.#async !== null) this.#loadInBackground(aid);
    return null;
  }

  /**
   * The registry of `aid` if the cache holds one, else `null`. Never creates one, reads no store
   * and changes nothing (no recency, no `lastSeen`). For inspection; use `find` or `get` on a
   * frame's path.
   */
  peek(aid: number): DeviceRegistry | null {
    checkAid(aid);
    return this.#entries.get(aid)?.registry ?? null;
  }

  /** Whether the cache can be used: it has no store, or `preload()` resolved. */
  get ready(): boolean {
    return this.#ready;
  }

  /**
   * Records that `registry` changed: marks it dirty and saves it unless it was saved less than
   * `syncIntervalMs` ago (a registry never saved by this cache is saved at once). A registry
   * that is not the one cached for its AID (it left the cache meanwhile) is put back, replacing
   * any other copy. The save is write-behind: a store that fails reports it in the background
   * (`onError`) and the registry stays dirty, so a later save retries it.
   */
  changed(registry: DeviceRegistry, now: number = this.#clock()): void {
    if (!this.#ready) notOpen();
    registry.dirty = true;
    const entry = this.#entries.get(registry.aid);
    if (entry === undefined || entry.registry !== registry) this.#admit(registry, entry, now);
    const last = registry.lastSync;
    const age = now - last;
    // A clock that went back (age < 0) must not postpone saving until it catches up.
    if (last === 0 || age >= this.syncIntervalMs || age < 0) this.#save(registry, now);
  }

  /**
   * Housekeeping for a timer: saves dirty registries whose sync interval has elapsed (and starts
   * the store's flush in the background) and drops expired ones (saving them first when dirty).
   * O(size).
   */
  sweep(now: number = this.#clock()): SweepResult {
    const result: SweepResult = { saved: 0, evicted: 0 };
    for (let e = this.#oldest; e !== null; ) {
      const next = e.next;
      const registry = e.registry;
      const expired = now - registry.lastSeen > this.ttlMs;
      const age = now - registry.lastSync;
      if (registry.dirty && (expired || registry.lastSync === 0 || age >= this.syncIntervalMs || age < 0)) {
        this.#save(registry, now);
        result.saved++;
      }
      if (expired) {
        this.#unlink(e);
        this.#entries.delete(registry.aid);
        result.evicted++;
      }
      e = next;
    }
    if (this.#flusher !== null && result.saved > 0) this.#flusher.request();
    return result;
  }

  /**
   * Hands every dirty registry to the store and resolves when the store holds every change made
   * before the call as durably as its `durability` says (`none` for a memory store, `power` for a
   * durable file store). Returns how many registries were written (0 without a store). Rejects
   * with `RegistryStoreError` (`ERR_FUSION_STORE_WRITE`) when the store cannot write or flush;
   * the registries stay dirty or pending, so a later call retries.
   */
  async flush(now: number = this.#clock()): Promise<number> {
    if (this.#async === null || !this.#ready) return 0;
    const writes: Promise<void>[] = [];
    for (let e = this.#oldest; e !== null; e = e.next) if (e.registry.dirty) writes.push(this.#save(e.registry, now));
    const results = await Promise.allSettled(writes);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    try {
      await this.#async.flush();
    } catch (error) {
      throw flushError(error);
    }
    return writes.length;
  }

  /** Forgets `aid` in the cache and in the store (unsaved changes included). */
  delete(aid: number): void {
    checkAid(aid);
    if (!this.#ready) notOpen();
    const entry = this.#entries.get(aid);
    if (entry !== undefined) {
      this.#unlink(entry);
      this.#entries.delete(aid);
    }
    if (this.#async !== null) {
      this.#background(this.#async.write([{ op: 'delete', kind: 'templates', key: templateKey(aid) }]), 'ERR_FUSION_STORE_DELETE', 'cannot be deleted from the store', aid);
    }
  }

  /**
   * With a store: loads the registries of `aids` (default: every AID in the store, at most
   * `maxEntries` of them) into the cache, so the first frames of known devices decode, and makes
   * the cache ready for use (`preload([])` only does that; every AID then loads on its first
   * miss). Returns how many were loaded. A registry already cached keeps its templates and gains
   * the stored ones it lacks. Rejects with `RegistryStoreError` when the store cannot be read or
   * holds a record that is not a registry (`ERR_FUSION_STORE_CORRUPT`); the cache then stays not
   * ready. Without a store it resolves 0.
   */
  async preload(aids?: Iterable<number>): Promise<number> {
    const store = this.#async;
    const list: number[] = [];
    if (aids !== undefined) for (const aid of aids) list.push(checkedAid(aid));
    if (store === null) return 0;
    if (aids === undefined) {
      let keys: string[];
      try {
        keys = await store.keys('templates');
      } catch (error) {
        throw asStoreError(error, 'ERR_FUSION_STORE_READ', 'cannot be listed', 0);
      }
      for (const key of keys) {
        if (list.length >= this.maxEntries) break;
        list.push(Number(key));
      }
    }
    let n = 0;
    for (let i = 0; i < list.length; i += 256) {
      const chunk = list.slice(i, i + 256);
      let records: (TemplateRecord | undefined)[];
      try {
        records = await store.getMany('templates', chunk.map(templateKey));
      } catch (error) {
        throw asStoreError(error, 'ERR_FUSION_STORE_READ', 'cannot be loaded from the store', chunk[0]!);
      }
      for (let k = 0; k < chunk.length; k++) if (records[k] !== undefined && this.#landed(chunk[k]!, records[k]!)) n++;
    }
    this.#ready = true;
    return n;
  }

  #miss(aid: number, now: number): DeviceRegistry {
    checkAid(aid);
    if (!this.#ready) notOpen();
    this.#makeRoom(now, this.maxEntries - 1);
    if (this.#async !== null) this.#loadInBackground(aid);
    const registry = new DeviceRegistry(aid);
    registry.lastSeen = now;
    const entry = new Entry(registry);
    this.#entries.set(aid, entry);
    this.#append(entry);
    return registry;
  }

  #admit(registry: DeviceRegistry, entry: Entry | undefined, now: number): void {
    checkAid(registry.aid);
    registry.lastSeen = now;
    if (entry !== undefined) {
      entry.registry = registry;
      if (entry !== this.#newest) this.#moveToNewest(entry);
      return;
    }
    const added = new Entry(registry);
    this.#entries.set(registry.aid, added);
    this.#append(added);
    // Room after adding: the changed registry must stay cached even if making room fails.
    this.#makeRoom(now, this.maxEntries);
  }

  // Drops expired registries and, past `limit` entries, the least recently used, oldest first.
  // Expired ones sit at the old end (the list is in order of use), so this stops early.
  #makeRoom(now: number, limit: number): void {
    const entries = this.#entries;
    let e = this.#oldest;
    while (e !== null && (entries.size > limit || now - e.registry.lastSeen > this.ttlMs)) {
      const next = e.next;
      if (e.registry.dirty) this.#save(e.registry, now);
      this.#unlink(e);
      entries.delete(e.registry.aid);
      e = next;
    }
  }

  #loadInBackground(aid: number): void {
    const store = this.#async!;
    if (this.#loading.has(aid)) {
      // A miss while a load runs: that load may have read the store before a later write of
      // this AID (its eviction), so read once more after it.
      this.#reload.add(aid);
      return;
    }
    if (this.#loading.size >= this.#maxLoading) return;
    const done = store
      .get('templates', templateKey(aid))
      .then(
        (record) => {
          if (record !== undefined) this.#landed(aid, record);
        },
        (error: unknown) => this.#report(asStoreError(error, 'ERR_FUSION_STORE_READ', 'cannot be loaded from the store', aid)),
      )
      .finally(() => {
        this.#loading.delete(aid);
        if (this.#reload.delete(aid)) this.#loadInBackground(aid);
      });
    this.#loading.set(aid, done);
  }

  /** Waits for the background loads under way (for tests and orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#loading.size > 0) await Promise.all(this.#loading.values());
  }

  // A stored record arrived: cache it, or add its missing tids to the registry cached meanwhile.
  #landed(aid: number, record: TemplateRecord): boolean {
    if (record.aid !== aid) {
      this.#report(new RegistryStoreError('ERR_FUSION_STORE_READ', `the store returned the registry of aid ${record.aid}`, { aid }));
      return false;
    }
    const entry = this.#entries.get(aid);
    if (entry === undefined) {
      const now = this.#clock();
      this.#makeRoom(now, this.maxEntries - 1);
      const registry = registryFromRecord(record);
      registry.lastSeen = now;
      const added = new Entry(registry);
      this.#entries.set(aid, added);
      this.#append(added);
      return true;
    }
    const live = entry.registry;
    const wasDirty = live.dirty;
    let merged = false;
    for (const [tid, sig, values] of record.templates) {
      if (live.templates.has(tid)) continue;
      live.put(tid, sig, values === null ? null : [...values]);
      merged = true;
    }
    live.dirty = wasDirty || merged;
    return true;
  }

  #background(promise: Promise<unknown>, code: 'ERR_FUSION_STORE_WRITE' | 'ERR_FUSION_STORE_DELETE', detail: string, aid: number, registry?: DeviceRegistry): void {
    promise.catch((error: unknown) => {
      if (registry !== undefined) registry.dirty = true;
      this.#report(asStoreError(error, code, detail, aid));
    });
  }

  #report(error: RegistryStoreError): void {
    this.lastError = error;
    this.backgroundErrors++;
    if (this.#onError === undefined) return;
    try {
      this.#onError(error);
    } catch {
      // A throwing handler must not turn into an unhandled rejection.
    }
  }

  /**
   * Marks `registry` saved and, with a store, hands a copy to its `write` (write-behind: visible
   * to the store's reads now, on disk after a flush). The promise rejects (with the error also
   * reported) when the store refuses it; the registry is then dirty again. Callers that do not
   * wait for it need not handle it.
   */
  #save(registry: DeviceRegistry, now: number): Promise<void> {
    registry.dirty = false;
    registry.lastSync = now;
    const store = this.#async;
    if (store === null) return Promise.resolve();
    const aid = registry.aid;
    let written: Promise<void>;
    try {
      written = store.write([{ op: 'put', kind: 'templates', key: templateKey(aid), value: registryRecord(registry) }]);
    } catch (error) {
      written = Promise.reject(error);
    }
    const done = written.catch((error: unknown) => {
      registry.dirty = true;
      const e = asStoreError(error, 'ERR_FUSION_STORE_WRITE', 'cannot be saved to the store', aid);
      this.#report(e);
      throw e;
    });
    done.catch(() => undefined);
    return done;
  }

  #moveToNewest(entry: Entry): void {
    this.#unlink(entry);
    this.#append(entry);
  }

  #append(entry: Entry): void {
    const newest = this.#newest;
    entry.prev = newest;
    entry.next = null;
    if (newest === null) this.#oldest = entry;
    else newest.next = entry;
    this.#newest = entry;
  }

  #unlink(entry: Entry): void {
    const { prev, next } = entry;
    if (prev === null) this.#oldest = next;
    else prev.next = next;
    if (next === null) this.#newest = prev;
    else next.prev = prev;
    entry.prev = null;
    entry.next = null;
  }
}

function notOpen(): never {
  throw new RegistryStoreError('ERR_FUSION_STORE_NOT_OPEN', 'the registry cache has a store: await preload() before use');
}

function flushError(error: unknown): RegistryStoreError {
  return error instanceof RegistryStoreError ? error : new RegistryStoreError('ERR_FUSION_STORE_WRITE', 'the store cannot flush', { cause: error });
}

function checkedAid(aid: number): number {
  checkAid(aid);
  return aid;
}

function badOption(detail: string): never {
  throw new RegistryStoreError('ERR_FUSION_STORE_OPTION', detail);
}
