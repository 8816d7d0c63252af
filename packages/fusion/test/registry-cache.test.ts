import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { MemoryStore, type StoreWrite } from '@opensynaptic/store';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_REGISTRIES, REGISTRY_CACHE_DEFAULTS, RegistryCache, type RegistryCacheOptions } from '../src/registry-cache.js';
import { DeviceRegistry } from '../src/registry.js';
import { RegistryStoreError } from '../src/store-errors.js';
import { openFileTemplateStore, registryFromRecord, registryRecord, type TemplateKinds, type TemplateRecord, type TemplateStore } from '../src/template-store.js';
import { registryFilePath } from '../src/registry-file.js';

const T0 = 1_700_000_000_000;

/** A memory store of the contract that records every call and can be told to fail. */
class SpyStore implements TemplateStore {
  readonly inner = new MemoryStore<TemplateKinds>({ kinds: ['templates'] });
  readonly durability = 'none' as const;
  readonly kinds = ['templates'];
  loads: number[] = [];
  saves: number[] = [];
  deletes: number[] = [];
  flushes = 0;
  /** Values of template 1 at each save, to see what was persisted. */
  saved: Array<[number, readonly string[] | null]> = [];
  failSaves: ((aid: number) => boolean) | null = null;
  failLoads = false;
  async get(_kind: 'templates', key: string): Promise<TemplateRecord | undefined> {
    this.loads.push(Number(key));
    if (this.failLoads) throw new Error('disk on fire');
    return this.inner.get('templates', key);
  }
  async getMany(_kind: 'templates', keys: readonly string[]): Promise<(TemplateRecord | undefined)[]> {
    return Promise.all(keys.map((k) => this.get('templates', k)));
  }
  keys(): Promise<string[]> {
    return this.inner.keys('templates');
  }
  async write(batch: readonly StoreWrite<TemplateKinds>[]): Promise<void> {
    for (const w of batch) {
      const aid = Number(w.key);
      if (w.op === 'delete') this.deletes.push(aid);
      else {
        if (this.failSaves?.(aid)) throw new Error(`cannot save ${aid}`);
        this.saves.push(aid);
        this.saved.push([aid, w.value.templates.find(([tid]) => tid === 1)?.[2] ?? null]);
      }
    }
    await this.inner.write(batch);
  }
  async flush(): Promise<void> {
    this.flushes++;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  /** Puts `registry` into the store directly (as an earlier run would have). */
  async seed(registry: DeviceRegistry): Promise<void> {
    await this.inner.write([{ op: 'put', kind: 'templates', key: String(registry.aid), value: registryRecord(registry) }]);
  }
  async stored(aid: number): Promise<DeviceRegistry | undefined> {
    const r = await this.inner.get('templates', String(aid));
    return r && registryFromRecord(r);
  }
}

async function setup(options: RegistryCacheOptions = {}) {
  let t = T0;
  const clock = {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    set: (ms: number) => {
      t = ms;
    },
  };
  const store = new SpyStore();
  const cache = new RegistryCache({ store, clock: clock.now, ...options });
  await cache.preload([]);
  return { cache, clock, store };
}

/** Teaches `registry` a value for template 1 and tells the cache. */
function learn(cache: RegistryCache, registry: DeviceRegistry, value: string): void {
  registry.put(1, 'S.1.{TS}|T>\x01:\x01|', ['K.', value]);
  cache.changed(registry);
}

/** Lets the store's write-behind promises settle. */
const tick = () => new Promise((r) => setTimeout(r, 0));

function storeError(f: () => unknown): RegistryStoreError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RegistryStoreError);
    return e as RegistryStoreError;
  }
  throw new Error('expected a RegistryStoreError, nothing was thrown');
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('RegistryCache options', () => {
  it('has the documented defaults, with a store and without', () => {
    expect(REGISTRY_CACHE_DEFAULTS).toEqual({ maxEntries: 1024, ttlMs: 3_600_000, syncIntervalMs: 1000, maxLoading: 64 });
    const withStore = new RegistryCache({ store: new SpyStore() });
    expect([withStore.maxEntries, withStore.ttlMs, withStore.syncIntervalMs]).toEqual([1024, 3_600_000, 1000]);
    // Without a store the cache is all there is: what leaves it is lost, so it keeps much more.
    const c = new RegistryCache();
    expect([c.maxEntries, c.ttlMs, c.syncIntervalMs]).toEqual([DEFAULT_MAX_REGISTRIES, Number.POSITIVE_INFINITY, 1000]);
    expect(c.store).toBeNull();
    expect(c.ready).toBe(true);
    expect(c.size).toBe(0);
    // Default clock is the wall clock.
    const before = Date.now();
    const r = c.get(1);
    expect(r.lastSeen).toBeGreaterThanOrEqual(before);
    expect(r.lastSeen).toBeLessThanOrEqual(Date.now());
    // Two caches never share state.
    expect(new RegistryCache().size).toBe(0);
  });

  it('rejects out-of-range options and stores of another kind with ERR_FUSION_STORE_OPTION', () => {
    const bad: RegistryCacheOptions[] = [
      { maxEntries: 0 },
      { maxEntries: 1.5 },
      { maxEntries: Number.NaN },
      { maxEntries: Number.POSITIVE_INFINITY },
      { ttlMs: 0 },
      { ttlMs: -5 },
      { ttlMs: Number.NaN },
      { syncIntervalMs: -1 },
      { syncIntervalMs: Number.NaN },
      { syncIntervalMs: Number.POSITIVE_INFINITY },
      { clock: 5 as unknown as () => number },
      { store: {} as TemplateStore },
      // The synchronous registry stores of earlier versions (load / save / delete) are gone.
      { store: { load: () => null, save: () => {}, delete: () => {} } as unknown as TemplateStore },
    ];
    for (const options of bad) {
      expect(storeError(() => new RegistryCache(options)).code, JSON.stringify(options)).toBe('ERR_FUSION_STORE_OPTION');
    }
    expect(new RegistryCache({ maxEntries: 1, ttlMs: Number.POSITIVE_INFINITY, syncIntervalMs: 0 }).ttlMs).toBe(Number.POSITIVE_INFINITY);
  });

  it('with a store, refuses use until preload() resolved', async () => {
    const store = new SpyStore();
    const r = new DeviceRegistry(3);
    r.put(1, 'x', ['a']);
    await store.seed(r);
    const cache = new RegistryCache({ store });
    expect(cache.ready).toBe(false);
    for (const use of [() => cache.get(1), () => cache.find(1), () => cache.changed(new DeviceRegistry(1)), () => cache.delete(1)]) {
      expect(storeError(use).code).toBe('ERR_FUSION_STORE_NOT_OPEN');
    }
    expect(await cache.preload()).toBe(1);
    expect(cache.ready).toBe(true);
    expect(cache.find(3)?.templates.get(1)?.values).toEqual(['a']);
  });
});

describe('RegistryCache', () => {
  it('get: cache, else a new registry now and the stored templates once their background load lands', async () => {
    const { cache, clock, store } = await setup();
    const stored = new DeviceRegistry(7);
    stored.put(1, 'x', ['a']);
    await store.seed(stored);

    const r7 = cache.get(7);
    expect(r7.templates.size).toBe(0); // the frame's path never waits on the store
    expect(r7.lastSeen).toBe(T0);
    const r8 = cache.get(8);
    expect(r8.dirty).toBe(false);
    expect(store.loads).toEqual([7, 8]);
    await cache.settled();
    expect(cache.get(7)).toBe(r7);
    expect(r7.templates.get(1)?.values).toEqual(['a']);
    expect(r8.templates.size).toBe(0);

    clock.advance(5);
    expect(cache.get(7)).toBe(r7);
    expect(r7.lastSeen).toBe(T0 + 5);
    expect(cache.get(8, T0 + 99)).toBe(r8); // a caller may pass the time it already read
    expect(r8.lastSeen).toBe(T0 + 99);
    expect(store.loads).toEqual([7, 8]); // hits never reach the store
    expect(cache.size).toBe(2);
  });

  it('peek: only the cache; never creates, never touches, never reads the store', async () => {
    const { cache, clock, store } = await setup();
    expect(cache.peek(1)).toBeNull();
    const r = cache.get(1);
    clock.advance(10);
    expect(cache.peek(1)).toBe(r);
    expect(r.lastSeen).toBe(T0);
    await store.seed(new DeviceRegistry(2));
    store.loads = [];
    expect(cache.peek(2)).toBeNull();
    expect(store.loads).toEqual([]);
    expect(cache.size).toBe(1);
  });

  it('find: null for an AID not cached (loading it behind), without evicting anything', async () => {
    const { cache, clock, store } = await setup({ maxEntries: 2 });
    const r1 = cache.get(1);
    cache.get(2);
    await cache.settled();
    expect(cache.find(3)).toBeNull();
    expect(cache.size).toBe(2);
    expect(cache.peek(1)).toBe(r1); // nothing was evicted to make room for nothing
    await cache.settled();
    const stored = new DeviceRegistry(3);
    stored.put(1, 'x', ['a']);
    await store.seed(stored);
    expect(cache.find(3)).toBeNull(); // unknown yet: the load runs behind
    await cache.settled();
    clock.advance(7);
    const r3 = cache.find(3)!; // landed and cached (evicting 1), touched
    expect(r3.templates.get(1)?.values).toEqual(['a']);
    expect(r3.lastSeen).toBe(T0 + 7);
    expect(cache.size).toBe(2);
    store.loads = [];
    expect(cache.find(3)).toBe(r3);
    expect(store.loads).toEqual([]);
    expect(storeError(() => cache.find(-3)).code).toBe('ERR_FUSION_STORE_AID');
  });

  it('evicts the least recently used registry, saving it first when dirty, and loses nothing', async () => {
    const { cache, store } = await setup({ maxEntries: 3 });
    const r1 = cache.get(1);
    learn(cache, r1, 'v1'); // first change: saved at once
    learn(cache, r1, 'v2'); // within the interval: dirty, not saved
    expect(store.saves).toEqual([1]);
    expect(r1.dirty).toBe(true);
    cache.get(2);
    cache.get(3);
    cache.get(2); // order of use, oldest first: 1, 3, 2
    cache.get(4); // evicts 1
    expect(cache.size).toBe(3);
    expect(store.saves).toEqual([1, 1]);
    expect(store.saved.at(-1)).toEqual([1, ['K.', 'v2']]);
    expect(r1.dirty).toBe(false);
    cache.get(5); // evicts 3, which is clean: no save
    expect(store.saves).toEqual([1, 1]);
    expect(cache.peek(3)).toBeNull();
    // What was evicted comes back from the store with everything learned.
    expect(cache.find(1)).toBeNull();
    await cache.settled();
    expect(cache.find(1)?.templates.get(1)?.values).toEqual(['K.', 'v2']);
  });

  it('loses nothing through the file store of the reference layout either', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-fusion-cache-'));
    dirs.push(dir);
    const files = await openFileTemplateStore({ root: dir, durable: false });
    let t = T0;
    const cache = new RegistryCache({ store: files, maxEntries: 2, clock: () => t });
    await cache.preload();
    for (let aid = 1; aid <= 50; aid++) {
      const r = cache.get(aid);
      learn(cache, r, `a${aid}`);
      learn(cache, r, `b${aid}`); // throttled: only the eviction saves it
      t += 1;
    }
    expect(cache.size).toBe(2);
    expect(await cache.flush()).toBe(2);
    for (let aid = 1; aid <= 50; aid++) {
      expect(readFileSync(registryFilePath(dir, aid), 'utf8')).toContain(Buffer.from(`b${aid}`).toString('base64'));
    }
    await files.close();
  });

  it('drops registries idle for longer than ttlMs, saving dirty ones first', async () => {
    const { cache, clock, store } = await setup({ ttlMs: 1000, syncIntervalMs: 60_000 });
    const r1 = cache.get(1);
    learn(cache, r1, 'x');
    learn(cache, r1, 'y'); // dirty
    cache.get(2);
    clock.advance(600);
    cache.get(3);
    clock.advance(401); // 1 and 2 idle for 1001 ms, 3 for 401 ms
    cache.get(2); // a hit on an idle entry keeps it
    cache.get(4); // the miss drops what expired: 1
    expect(cache.size).toBe(3);
    expect(store.saves).toEqual([1, 1]);
    expect(store.saved.at(-1)).toEqual([1, ['K.', 'y']]);
    expect(cache.peek(2)).not.toBeNull();
    clock.advance(1000);
    cache.get(5); // 3 (idle 1400 ms) expires; 2 and 4, idle exactly ttlMs, stay
    expect(cache.size).toBe(3);
    expect(cache.peek(3)).toBeNull();
    clock.advance(1);
    cache.get(6); // now 2 and 4 (idle 1001 ms) expire too; 5 stays
    expect(cache.size).toBe(2);
    expect(cache.peek(5)).not.toBeNull();
  });

  it('sweep saves throttled changes that are due, flushes behind, and drops expired registries', async () => {
    const { cache, clock, store } = await setup({ ttlMs: 10_000, syncIntervalMs: 1000 });
    const a = cache.get(1);
    const b = cache.get(2);
    learn(cache, a, 'a1');
    learn(cache, a, 'a2');
    learn(cache, b, 'b1');
    learn(cache, b, 'b2');
    expect(store.saves).toEqual([1, 2]);
    expect(cache.sweep()).toEqual({ saved: 0, evicted: 0 }); // not due yet
    expect(store.flushes).toBe(0);
    clock.advance(1000);
    expect(cache.sweep()).toEqual({ saved: 2, evicted: 0 });
    expect(store.flushes).toBe(1); // in the background: the sweep itself never waits
    expect(store.saved.slice(-2)).toEqual([
      [1, ['K.', 'a2']],
      [2, ['K.', 'b2']],
    ]);
    cache.get(2);
    learn(cache, a, 'a3'); // saved by the sweep a moment ago: throttled, dirty
    learn(cache, a, 'a4');
    clock.advance(9500); // 1 idle since T0: expired; 2 used at T0+1000: not
    expect(cache.sweep()).toEqual({ saved: 1, evicted: 1 });
    expect(store.saved.at(-1)).toEqual([1, ['K.', 'a4']]);
    expect(cache.size).toBe(1);
    expect(cache.peek(2)).toBe(b);
  });

  it('throttles saves to one per syncIntervalMs per AID (the reference 1 s sync); flush() writes the rest and waits for the store', async () => {
    const { cache, clock, store } = await setup();
    const r = cache.get(9);
    const other = cache.get(10);
    for (let i = 0; i < 10; i++) {
      learn(cache, r, `v${i}`);
      clock.advance(99); // ten changes within 891 ms
    }
    learn(cache, other, 'o'); // throttling is per AID
    expect(store.saves).toEqual([9, 10]);
    expect(r.dirty).toBe(true);
    clock.set(T0 + 1000);
    learn(cache, r, 'v10'); // 1000 ms after the first save
    expect(store.saves).toEqual([9, 10, 9]);
    expect(r.lastSync).toBe(T0 + 1000);
    learn(cache, r, 'v11');
    expect(await cache.flush()).toBe(1);
    expect(store.flushes).toBe(1);
    expect(store.saved.at(-1)).toEqual([9, ['K.', 'v11']]);
    expect(await cache.flush()).toBe(0); // nothing dirty left
    expect(store.saves).toHaveLength(4);

    clock.set(T0 - 60_000); // the clock went back: do not wait for it to catch up
    learn(cache, r, 'v12');
    expect(store.saves).toHaveLength(5);
  });

  it('writes through with syncIntervalMs 0', async () => {
    const { cache, store } = await setup({ syncIntervalMs: 0 });
    const r = cache.get(3);
    for (let i = 0; i < 5; i++) learn(cache, r, `v${i}`);
    expect(store.saves).toEqual([3, 3, 3, 3, 3]);
    expect(r.dirty).toBe(false);
  });

  it('takes back a changed registry that had left the cache', async () => {
    const { cache, store } = await setup({ maxEntries: 2 });
    const r1 = cache.get(1);
    cache.get(2);
    cache.get(3); // 1 leaves (clean)
    expect(cache.peek(1)).toBeNull();
    learn(cache, r1, 'late');
    expect(store.saves).toEqual([1]);
    expect(cache.size).toBe(2);
    expect(cache.get(1)).toBe(r1);
    // A stale copy replaced by the one that changed.
    const copy = new DeviceRegistry(1);
    learn(cache, copy, 'newer');
    expect(cache.get(1)).toBe(copy);
    expect(cache.size).toBe(2);
  });

  it('keeps a registry whose save fails dirty, reports it, and loses nothing once the store recovers', async () => {
    const errors: RegistryStoreError[] = [];
    const { cache, store } = await setup({ maxEntries: 2, syncIntervalMs: 0, onError: (e) => errors.push(e) });
    const r1 = cache.get(1);
    store.failSaves = (aid) => aid === 1;
    learn(cache, r1, 'precious'); // write-behind: the frame's path does not throw
    await tick();
    expect(errors.map((e) => [e.code, e.aid, (e.cause as Error).message])).toEqual([['ERR_FUSION_STORE_WRITE', 1, 'cannot save 1']]);
    expect(cache.lastError).toBe(errors[0]);
    expect(cache.backgroundErrors).toBe(1);
    expect(r1.dirty).toBe(true);

    // flush() saves what it can and rejects with the failure.
    learn(cache, cache.get(2), 'fine');
    await expect(cache.flush()).rejects.toMatchObject({ code: 'ERR_FUSION_STORE_WRITE', aid: 1 });
    expect(r1.dirty).toBe(true);

    // Once the store recovers, nothing was lost.
    store.failSaves = null;
    expect(await cache.flush()).toBe(1);
    expect((await store.stored(1))?.templates.get(1)?.values).toEqual(['K.', 'precious']);
  });

  it('reports a background load failure, and a corrupt record as ERR_FUSION_STORE_CORRUPT', async () => {
    const errors: RegistryStoreError[] = [];
    const { cache, store } = await setup({ onError: (e) => errors.push(e) });
    store.failLoads = true;
    expect(cache.get(5).aid).toBe(5);
    await cache.settled();
    expect(errors.map((e) => [e.code, e.aid])).toEqual([['ERR_FUSION_STORE_READ', 5]]);

    const dir = mkdtempSync(join(tmpdir(), 'os-fusion-cache-'));
    dirs.push(dir);
    const path = registryFilePath(dir, 6);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, '{');
    const files = await openFileTemplateStore(dir);
    // preload reads every record: a corrupt one fails it, naming the file, and the file stays.
    const c3 = new RegistryCache({ store: files });
    await expect(c3.preload()).rejects.toMatchObject({ code: 'ERR_FUSION_STORE_CORRUPT', aid: 6, message: expect.stringContaining(path) });
    expect(c3.ready).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('{');
    // Loaded lazily instead, the failure is reported and the AID stays unknown.
    const lazy: RegistryStoreError[] = [];
    const c4 = new RegistryCache({ store: files, onError: (e) => lazy.push(e) });
    await c4.preload([]);
    expect(c4.find(6)).toBeNull();
    await c4.settled();
    expect(lazy.map((e) => e.code)).toEqual(['ERR_FUSION_STORE_CORRUPT']);
    await files.close();
  });

  it('delete forgets the AID in the cache and the store', async () => {
    const { cache, store } = await setup();
    learn(cache, cache.get(4), 'x');
    cache.delete(4);
    expect(cache.size).toBe(0);
    expect(store.deletes).toEqual([4]);
    expect(cache.peek(4)).toBeNull();
    await tick();
    expect(await store.stored(4)).toBeUndefined();
  });

  it('rejects AIDs that are not uint32 with ERR_FUSION_STORE_AID', async () => {
    const { cache, store } = await setup();
    for (const aid of [-1, 1.5, 2 ** 32, Number.NaN, '7' as unknown as number]) {
      expect(storeError(() => cache.get(aid)).code).toBe('ERR_FUSION_STORE_AID');
      expect(storeError(() => cache.peek(aid)).code).toBe('ERR_FUSION_STORE_AID');
      expect(storeError(() => cache.delete(aid)).code).toBe('ERR_FUSION_STORE_AID');
      expect(storeError(() => cache.changed(new DeviceRegistry(aid))).code).toBe('ERR_FUSION_STORE_AID');
      await expect(cache.preload([aid])).rejects.toMatchObject({ code: 'ERR_FUSION_STORE_AID' });
    }
    expect(cache.size).toBe(0);
    expect(store.loads).toEqual([]);
    expect(cache.get(0).aid).toBe(0);
    expect(cache.get(4_294_967_295).aid).toBe(4_294_967_295);
  });

  it('stays bounded under a flood of 100k distinct AIDs, with a store and without', async () => {
    let t = T0;
    const alone = new RegistryCache({ maxEntries: 5000, clock: () => t });
    const store = new SpyStore();
    const cached = new RegistryCache({ store, clock: () => t });
    await cached.preload([]);
    for (let aid = 0; aid < 100_000; aid++) {
      for (const cache of [alone, cached]) {
        const r = cache.get(aid);
        if (aid % 2 === 0) learn(cache, r, String(aid));
      }
      t++;
    }
    expect(alone.size).toBe(5000);
    expect(cached.size).toBe(1024);
    expect(store.saves).toHaveLength(50_000);
    // The most recent registries are cached, with what they learned.
    for (const cache of [alone, cached]) expect(cache.peek(99_998)?.templates.get(1)?.values).toEqual(['K.', '99998']);
    await cached.settled();
  });

  it('keeps a hit O(1) however many registries it holds', () => {
    const time = (n: number): number => {
      let t = 1;
      const cache = new RegistryCache({ maxEntries: n, clock: () => t });
      for (let aid = 0; aid < n; aid++) cache.get(aid);
      const hits = 200_000;
      const start = performance.now();
      for (let i = 0; i < hits; i++) {
        t++;
        cache.get((i * 7919) % n);
      }
      return ((performance.now() - start) * 1e6) / hits;
    };
    time(1000); // warm up
    const small = time(1000);
    const large = time(100_000);
    // Generous bounds (shared CI machines); an O(n) step would cost tens of microseconds here.
    expect(small).toBeLessThan(2000);
    expect(large).toBeLessThan(5000);
  });
});
