import { MemoryRegistryStore } from './memory-store.js';
import { DeviceRegistry, type RegistryStore } from './registry.js';
import { asStoreError, checkAid, RegistryStoreError } from './store-errors.js';
import { registryFromRecord, registryRecord, type TemplateRecord, type TemplateStore, templateKey } from './template-store.js';

/** Options of {@link RegistryCache}; every one is optional. */
export interface RegistryCacheOptions {
  /**
   * Where registries live outside the cache (default: a new `MemoryRegistryStore`). Either a
   * synchronous `RegistryStore`, read and written on the frame's path, or an asynchronous
   * `TemplateStore` of the store contract (e.g. `openFileTemplateStore`), which the cache never
   * waits for on a frame's path: see "Asynchronous stores" on the class.
   */
  store?: RegistryStore | TemplateStore | undefined;
  /**
   * Asynchronous stores only: told about each failed background load, write or flush (the
   * registry concerned stays cached and dirty; `persist()` retries). Default: kept in
   * `lastError` and counted in `backgroundErrors`.
   */
  onError?: ((error: RegistryStoreError) => void) | undefined;
  /** Asynchronous stores only: most background loads at once (integer >= 1, default 64); misses past it load nothing. */
  maxLoading?: number | undefined;
  /**
   * Most registries held at once (integer >= 1, default 1024 like the reference). Past it the
   * least recently used one leaves the cache (saved first when dirty).
   */
  maxEntries?: number | undefined;
  /**
   * A registry unused for longer than this (ms, > 0, `Infinity` allowed; default 3,600,000 =
   * the reference's 3600 s) is dropped (saved first when dirty) when the cache next makes room
   * or on `sweep()`.
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

/** Defaults of {@link RegistryCacheOptions}. */
export const REGISTRY_CACHE_DEFAULTS = {
  maxEntries: 1024,
  ttlMs: 3_600_000,
  syncIntervalMs: 1000,
  maxLoading: 64,
} as const;

function isTemplateStore(store: unknown): store is TemplateStore {
  const s = store as Partial<TemplateStore> | null;
  return typeof s?.write === 'function' && typeof s.flush === 'function' && typeof s.getMany === 'function';
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
 * The engine's bounded working set of registries, in front of a {@link RegistryStore}.
 *
 * Every operation is O(1) except `flush` and `sweep` (O(size)); a hit is one Map lookup. Nothing
 * learned is lost: a dirty registry is saved before it leaves the cache, and when a save fails
 * the registry stays in the cache, still dirty, and the error (`RegistryStoreError`) is thrown.
 *
 * The cache runs no timers: call `sweep()` from one (to save throttled changes and drop idle
 * registries) and `flush()` before shutting down. Single-threaded use only, like the engine.
 *
 * Asynchronous stores (a `TemplateStore`): the frame's path never waits on them. Call
 * `preload()` before serving to load the registries (all, or the AIDs given). A miss then
 * starts a background load: `find` returns `null` ("unknown yet": the frame fails as from an
 * unknown device, as it would have before the device's FULL) and `get` returns a new registry;
 * when the load lands its templates join the cache (a tid learned meanwhile wins over the
 * stored one). Saves (from `changed`, `sweep`, `flush` and evictions) go to the store's `write`
 * as copies, write-behind; `sweep` also starts the store's `flush` in the background, and
 * `persist()` resolves when every change made before it is as durable as the store promises.
 * `peek` reads only the cache.
 */
export class RegistryCache {
  /** The backing store. */
  readonly store: RegistryStore | TemplateStore;
  /** The most recent background failure of an asynchronous store, or `undefined`. */
  lastError: RegistryStoreError | undefined;
  /** How many background loads, writes or flushes of an asynchronous store failed. */
  backgroundErrors = 0;
  readonly #sync: RegistryStore | null;
  readonly #async: TemplateStore | null;
  readonly #onError: ((error: RegistryStoreError) => void) | undefined;
  readonly #maxLoading: number;
  readonly #loading = new Map<number, Promise<void>>();
  #flushing: Promise<void> | null = null;
  #flushAgain = false;
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly syncIntervalMs: number;
  readonly #clock: () => number;
  readonly #entries = new Map<number, Entry>();
  #oldest: Entry | null = null;
  #newest: Entry | null = null;

  constructor(options: RegistryCacheOptions = {}) {
    const maxEntries = options.maxEntries ?? REGISTRY_CACHE_DEFAULTS.maxEntries;
    const ttlMs = options.ttlMs ?? REGISTRY_CACHE_DEFAULTS.ttlMs;
    const syncIntervalMs = options.syncIntervalMs ?? REGISTRY_CACHE_DEFAULTS.syncIntervalMs;
    const clock = options.clock ?? Date.now;
    const store = options.store ?? new MemoryRegistryStore();
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) badOption(`maxEntries must be an integer >= 1, got ${String(maxEntries)}`);
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) badOption(`ttlMs must be a number > 0 (Infinity allowed), got ${String(ttlMs)}`);
    if (typeof syncIntervalMs !== 'number' || !Number.isFinite(syncIntervalMs) || syncIntervalMs < 0) {
      badOption(`syncIntervalMs must be a finite number >= 0, got ${String(syncIntervalMs)}`);
    }
    if (typeof clock !== 'function') badOption('clock must be a function returning milliseconds');
    const asyncStore = isTemplateStore(store) ? store : null;
    const syncStore = asyncStore === null ? (store as RegistryStore) : null;
    if (syncStore !== null && (typeof syncStore?.load !== 'function' || typeof syncStore.save !== 'function' || typeof syncStore.delete !== 'function')) {
      badOption('store must implement load, save and delete (a RegistryStore) or get, getMany, write and flush (a TemplateStore)');
    }
    const maxLoading = options.maxLoading ?? REGISTRY_CACHE_DEFAULTS.maxLoading;
    if (!Number.isSafeInteger(maxLoading) || maxLoading < 1) badOption(`maxLoading must be an integer >= 1, got ${String(maxLoading)}`);
    if (options.onError !== undefined && typeof options.onError !== 'function') badOption('onError must be a function');
    this.store = store;
    this.#sync = syncStore;
    this.#async = asyncStore;
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
   * it and spare a second read. Throws `RegistryStoreError`: `ERR_FUSION_STORE_AID` for a bad
   * AID, the store's error when loading fails, `ERR_FUSION_STORE_WRITE` when a registry that had
   * to leave the cache cannot be saved (the cache is then unchanged).
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
    const registry = this.#load(aid);
    if (registry === null) return null;
    this.#makeRoom(now, this.maxEntries - 1);
    registry.lastSeen = now;
    const added = new Entry(registry);
    this.#entries.set(aid, added);
    this.#append(added);
    return registry;
  }

  /**
   * The registry of `aid` if the cache or the store has one, else `null`. Never creates one and
   * changes nothing: no recency, no `lastSeen`, and a registry read from the store is not added
   * to the cache (so each call reads the store again). For inspection; use `find` or `get` on a
   * frame's path.
   */
  peek(aid: number): DeviceRegistry | null {
    checkAid(aid);
    const entry = this.#entries.get(aid);
    if (entry !== undefined) return entry.registry;
    return this.#async === null ? this.#load(aid) : null;
  }

  /**
   * Records that `registry` changed: marks it dirty and saves it unless it was saved less than
   * `syncIntervalMs` ago (a registry never saved by this cache is saved at once). A registry
   * that is not the one cached for its AID (it left the cache meanwhile) is put back, replacing
   * any other copy. Throws `ERR_FUSION_STORE_WRITE` (or the store's own error) when the save
   * fails; the registry stays cached and dirty, so a later `flush` retries it.
   */
  changed(registry: DeviceRegistry, now: number = this.#clock()): void {
    registry.dirty = true;
    const entry = this.#entries.get(registry.aid);
    if (entry === undefined || entry.registry !== registry) this.#admit(registry, entry, now);
    const last = registry.lastSync;
    const age = now - last;
    // A clock that went back (age < 0) must not postpone saving until it catches up.
    if (last === 0 || age >= this.syncIntervalMs || age < 0) this.#save(registry, now);
  }

  /**
   * Saves every dirty registry; returns how many were saved. When saves fail, the others are
   * still attempted, the failed ones stay dirty, and the first error is thrown.
   */
  flush(now: number = this.#clock()): number {
    let saved = 0;
    let failure: unknown;
    for (let e = this.#oldest; e !== null; e = e.next) {
      if (!e.registry.dirty) continue;
      try {
        this.#save(e.registry, now);
        saved++;
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== undefined) throw failure;
    return saved;
  }

  /**
   * Housekeeping for a timer: saves dirty registries whose sync interval has elapsed and drops
   * expired ones (saving them first when dirty). O(size). When saves fail, the rest is still
   * done, the failed registries stay cached and dirty, and the first error is thrown.
   */
  sweep(now: number = this.#clock()): SweepResult {
    const result: SweepResult = { saved: 0, evicted: 0 };
    let failure: unknown;
    for (let e = this.#oldest; e !== null; ) {
      const next = e.next;
      const registry = e.registry;
      const expired = now - registry.lastSeen > this.ttlMs;
      const age = now - registry.lastSync;
      if (registry.dirty && (expired || registry.lastSync === 0 || age >= this.syncIntervalMs || age < 0)) {
        try {
          this.#save(registry, now);
          result.saved++;
        } catch (error) {
          failure ??= error;
          e = next;
          continue;
        }
      }
      if (expired) {
        this.#unlink(e);
        this.#entries.delete(registry.aid);
        result.evicted++;
      }
      e = next;
    }
    if (this.#async !== null && result.saved > 0) this.#flushInBackground();
    if (failure !== undefined) throw failure;
    return result;
  }

  /** Forgets `aid` in the cache and in the store (unsaved changes included). */
  delete(aid: number): void {
    checkAid(aid);
    const entry = this.#entries.get(aid);
    if (entry !== undefined) {
      this.#unlink(entry);
      this.#entries.delete(aid);
    }
    if (this.#async !== null) {
      this.#background(this.#async.write([{ op: 'delete', kind: 'templates', key: templateKey(aid) }]), 'ERR_FUSION_STORE_DELETE', 'cannot be deleted from the store', aid);
      return;
    }
    try {
      this.#sync!.delete(aid);
    } catch (error) {
      throw asStoreError(error, 'ERR_FUSION_STORE_DELETE', 'cannot be deleted from the store', aid);
    }
  }

  /**
   * Asynchronous stores: loads the registries of `aids` (default: every AID in the store, at
   * most `maxEntries` of them) into the cache, so the first frames of known devices decode.
   * Returns how many were loaded. A registry already cached keeps its templates and gains the
   * stored ones it lacks. With a synchronous store it loads through `find`.
   */
  async preload(aids?: Iterable<number>): Promise<number> {
    const list: number[] = [];
    if (aids !== undefined) for (const aid of aids) list.push(checkedAid(aid));
    else if (this.#async !== null) {
      for (const key of await this.#async.keys('templates')) {
        if (list.length >= this.maxEntries) break;
        list.push(Number(key));
      }
    }
    if (this.#async === null) {
      let n = 0;
      for (const aid of list) if (this.find(aid) !== null) n++;
      return n;
    }
    let n = 0;
    for (let i = 0; i < list.length; i += 256) {
      const chunk = list.slice(i, i + 256);
      let records: (TemplateRecord | undefined)[];
      try {
        records = await this.#async.getMany('templates', chunk.map(templateKey));
      } catch (error) {
        throw asStoreError(error, 'ERR_FUSION_STORE_READ', 'cannot be loaded from the store', chunk[0]!);
      }
      for (let k = 0; k < chunk.length; k++) if (records[k] !== undefined && this.#landed(chunk[k]!, records[k]!)) n++;
    }
    return n;
  }

  /**
   * Saves every dirty registry and waits until the store holds them as durably as it promises
   * (asynchronous stores: the store's `flush`; synchronous ones: `flush()`). Returns how many
   * were saved. Rejects with `RegistryStoreError` (`ERR_FUSION_STORE_WRITE`) when the store
   * cannot persist them; they stay dirty or pending, so a later call retries.
   */
  async persist(now: number = this.#clock()): Promise<number> {
    const saved = this.flush(now);
    if (this.#async !== null) {
      try {
        await this.#async.flush();
      } catch (error) {
        throw flushError(error);
      }
    }
    return saved;
  }

  #miss(aid: number, now: number): DeviceRegistry {
    checkAid(aid);
    // Room first: if a dirty registry cannot be saved, fail before anything changed.
    this.#makeRoom(now, this.maxEntries - 1);
    const registry = this.#load(aid) ?? new DeviceRegistry(aid);
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

  #load(aid: number): DeviceRegistry | null {
    if (this.#async !== null) {
      this.#loadInBackground(aid);
      return null;
    }
    let registry: DeviceRegistry | null;
    try {
      registry = this.#sync!.load(aid);
    } catch (error) {
      throw asStoreError(error, 'ERR_FUSION_STORE_READ', 'cannot be loaded from the store', aid);
    }
    if (registry !== null && registry.aid !== aid) {
      throw new RegistryStoreError('ERR_FUSION_STORE_READ', `the store returned the registry of aid ${registry.aid}`, { aid });
    }
    return registry;
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
    if (this.#loading.has(aid) || this.#loading.size >= this.#maxLoading) return;
    const done = store
      .get('templates', templateKey(aid))
      .then(
        (record) => {
          if (record !== undefined) this.#landed(aid, record);
        },
        (error: unknown) => this.#report(asStoreError(error, 'ERR_FUSION_STORE_READ', 'cannot be loaded from the store', aid)),
      )
      .finally(() => this.#loading.delete(aid));
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
      try {
        this.#makeRoom(now, this.maxEntries - 1);
      } catch (error) {
        this.#report(asStoreError(error, 'ERR_FUSION_STORE_WRITE', 'cannot be saved to the store', aid));
        return false;
      }
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

  // One background flush of the store at a time; a sweep during one asks for another after it.
  #flushInBackground(): void {
    if (this.#flushing !== null) {
      this.#flushAgain = true;
      return;
    }
    this.#flushing = this.#async!.flush()
      .catch((error: unknown) => this.#report(flushError(error)))
      .finally(() => {
        this.#flushing = null;
        if (this.#flushAgain) {
          this.#flushAgain = false;
          this.#flushInBackground();
        }
      });
  }

  #save(registry: DeviceRegistry, now: number): void {
    if (this.#async !== null) {
      // Write-behind: a copy goes to the store now (visible to its reads), the disk later.
      this.#background(this.#async.write([{ op: 'put', kind: 'templates', key: templateKey(registry.aid), value: registryRecord(registry) }]), 'ERR_FUSION_STORE_WRITE', 'cannot be saved to the store', registry.aid, registry);
      registry.dirty = false;
      registry.lastSync = now;
      return;
    }
    try {
      this.#sync!.save(registry);
    } catch (error) {
      registry.dirty = true;
      throw asStoreError(error, 'ERR_FUSION_STORE_WRITE', 'cannot be saved to the store', registry.aid);
    }
    registry.dirty = false;
    registry.lastSync = now;
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
