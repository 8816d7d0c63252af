import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileRegistryStore } from '../src/file-store.js';
import { MemoryRegistryStore } from '../src/memory-store.js';
import { REGISTRY_CACHE_DEFAULTS, RegistryCache, type RegistryCacheOptions } from '../src/registry-cache.js';
import { DeviceRegistry, type RegistryStore } from '../src/registry.js';
import { RegistryStoreError } from '../src/store-errors.js';

const T0 = 1_700_000_000_000;

/** A memory store that records every call and can be told to fail. */
class SpyStore implements RegistryStore {
  readonly inner = new MemoryRegistryStore();
  loads: number[] = [];
  saves: number[] = [];
  deletes: number[] = [];
  /** Values of template 1 at each save, to see what was persisted. */
  saved: Array<[number, string[] | null]> = [];
  failSaves: ((aid: number) => boolean) | null = null;
  failLoads = false;
  load(aid: number): DeviceRegistry | null {
    this.loads.push(aid);
    if (this.failLoads) throw new Error('disk on fire');
    return this.inner.load(aid);
  }
  save(registry: DeviceRegistry): void {
    if (this.failSaves?.(registry.aid)) throw new Error(`cannot save ${registry.aid}`);
    this.saves.push(registry.aid);
    this.saved.push([registry.aid, registry.templates.get(1)?.values?.slice() ?? null]);
    this.inner.save(registry);
  }
  delete(aid: number): void {
    this.deletes.push(aid);
    this.inner.delete(aid);
  }
}

function setup(options: RegistryCacheOptions = {}) {
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
  return { cache, clock, store };
}

/** Teaches `registry` a value for template 1 and tells the cache. */
function learn(cache: RegistryCache, registry: DeviceRegistry, value: string): void {
  registry.put(1, 'S.1.{TS}|T>\x01:\x01|', ['K.', value]);
  cache.changed(registry);
}

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
  it('has the documented defaults', () => {
    const c = new RegistryCache();
    expect(REGISTRY_CACHE_DEFAULTS).toEqual({ maxEntries: 1024, ttlMs: 3_600_000, syncIntervalMs: 1000, maxLoading: 64 });
    expect([c.maxEntries, c.ttlMs, c.syncIntervalMs]).toEqual([1024, 3_600_000, 1000]);
    expect(c.store).toBeInstanceOf(MemoryRegistryStore);
    expect(c.size).toBe(0);
    // Default clock is the wall clock.
    const before = Date.now();
    const r = c.get(1);
    expect(r.lastSeen).toBeGreaterThanOrEqual(before);
    expect(r.lastSeen).toBeLessThanOrEqual(Date.now());
    // Two caches never share state.
    expect(new RegistryCache().size).toBe(0);
  });

  it('rejects out-of-range options with ERR_FUSION_STORE_OPTION', () => {
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
      { store: {} as RegistryStore },
    ];
    for (const options of bad) {
      expect(storeError(() => new RegistryCache(options)).code, JSON.stringify(options)).toBe('ERR_FUSION_STORE_OPTION');
    }
    expect(new RegistryCache({ maxEntries: 1, ttlMs: Number.POSITIVE_INFINITY, syncIntervalMs: 0 }).ttlMs).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('RegistryCache', () => {
  it('get: cache, then store, then a new empty registry; touches lastSeen', () => {
    const { cache, clock, store } = setup();
    const stored = new DeviceRegistry(7);
    stored.put(1, 'x', ['a']);
    stored.dirty = false;
    store.inner.save(stored);

    const r7 = cache.get(7);
    expect(r7).toBe(stored);
    expect(r7.lastSeen).toBe(T0);
    const r8 = cache.get(8);
    expect(r8).toBeInstanceOf(DeviceRegistry);
    expect(r8.templates.size).toBe(0);
    expect(r8.dirty).toBe(false);
    expect(store.loads).toEqual([7, 8]);

    clock.advance(5);
    expect(cache.get(7)).toBe(r7);
    expect(r7.lastSeen).toBe(T0 + 5);
    expect(cache.get(8, T0 + 99)).toBe(r8); // a caller may pass the time it already read
    expect(r8.lastSeen).toBe(T0 + 99);
    expect(store.loads).toEqual([7, 8]); // hits never reach the store
    expect(cache.size).toBe(2);
  });

  it('peek: never creates, never touches, does not cache what it reads from the store', () => {
    const { cache, clock, store } = setup();
    expect(cache.peek(1)).toBeNull();
    expect(cache.size).toBe(0);
    const r = cache.get(1);
    clock.advance(10);
    expect(cache.peek(1)).toBe(r);
    expect(r.lastSeen).toBe(T0);
    store.inner.save(new DeviceRegistry(2));
    expect(cache.peek(2)?.aid).toBe(2);
    expect(cache.size).toBe(1);
    expect(store.saves).toEqual([]);
  });

  it('find: like get, but null for an AID nobody knows, without evicting anything', () => {
    const { cache, clock, store } = setup({ maxEntries: 2 });
    const r1 = cache.get(1);
    cache.get(2);
    expect(cache.find(3)).toBeNull();
    expect(cache.size).toBe(2);
    expect(cache.peek(1)).toBe(r1); // nothing was evicted to make room for nothing
    const stored = new DeviceRegistry(3);
    store.inner.save(stored);
    clock.advance(7);
    expect(cache.find(3)).toBe(stored); // loaded, cached (evicting 1), touched
    expect(stored.lastSeen).toBe(T0 + 7);
    expect(cache.size).toBe(2);
    store.loads = [];
    clock.advance(1);
    expect(cache.find(3)).toBe(stored);
    expect(stored.lastSeen).toBe(T0 + 8);
    expect(store.loads).toEqual([]);
    expect(storeError(() => cache.find(-3)).code).toBe('ERR_FUSION_STORE_AID');
  });

  it('evicts the least recently used registry, saving it first when dirty', () => {
    const { cache, store } = setup({ maxEntries: 3 });
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
    expect(cache.peek(3)).toBeNull(); // gone from the cache, and never stored
    // What was evicted comes back from the store with everything learned.
    store.loads = [];
    expect(cache.get(1).templates.get(1)?.values).toEqual(['K.', 'v2']);
    expect(store.loads).toEqual([1]);
  });

  it('loses nothing through a file store either', () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-fusion-cache-'));
    dirs.push(dir);
    const files = new FileRegistryStore({ root: dir, durable: false });
    let t = T0;
    const cache = new RegistryCache({ store: files, maxEntries: 2, clock: () => t });
    for (let aid = 1; aid <= 50; aid++) {
      const r = cache.get(aid);
      learn(cache, r, `a${aid}`);
      learn(cache, r, `b${aid}`); // throttled: only the eviction saves it
      t += 1;
    }
    expect(cache.size).toBe(2);
    for (let aid = 1; aid <= 48; aid++) {
      expect(readFileSync(files.pathOf(aid), 'utf8')).toContain(Buffer.from(`b${aid}`).toString('base64'));
    }
    cache.flush();
    for (let aid = 1; aid <= 50; aid++) expect(files.load(aid)?.templates.get(1)?.values).toEqual(['K.', `b${aid}`]);
  });

  it('drops registries idle for longer than ttlMs, saving dirty ones first', () => {
    const { cache, clock, store } = setup({ ttlMs: 1000, syncIntervalMs: 60_000 });
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

  it('sweep saves throttled changes that are due and drops expired registries', () => {
    const { cache, clock, store } = setup({ ttlMs: 10_000, syncIntervalMs: 1000 });
    const a = cache.get(1);
    const b = cache.get(2);
    learn(cache, a, 'a1');
    learn(cache, a, 'a2');
    learn(cache, b, 'b1');
    learn(cache, b, 'b2');
    expect(store.saves).toEqual([1, 2]);
    expect(cache.sweep()).toEqual({ saved: 0, evicted: 0 }); // not due yet
    clock.advance(1000);
    expect(cache.sweep()).toEqual({ saved: 2, evicted: 0 });
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

  it('throttles saves to one per syncIntervalMs per AID (the reference 1 s sync)', () => {
    const { cache, clock, store } = setup();
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
    expect(cache.flush()).toBe(1);
    expect(store.saved.at(-1)).toEqual([9, ['K.', 'v11']]);
    expect(cache.flush()).toBe(0); // nothing dirty left
    expect(store.saves).toHaveLength(4);

    clock.set(T0 - 60_000); // the clock went back: do not wait for it to catch up
    learn(cache, r, 'v12');
    expect(store.saves).toHaveLength(5);
  });

  it('writes through with syncIntervalMs 0', () => {
    const { cache, store } = setup({ syncIntervalMs: 0 });
    const r = cache.get(3);
    for (let i = 0; i < 5; i++) learn(cache, r, `v${i}`);
    expect(store.saves).toEqual([3, 3, 3, 3, 3]);
    expect(r.dirty).toBe(false);
  });

  it('takes back a changed registry that had left the cache', () => {
    const { cache, store } = setup({ maxEntries: 2 });
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

  it('keeps a registry whose save fails dirty and cached, and throws a typed error', () => {
    const { cache, store } = setup({ maxEntries: 2, syncIntervalMs: 0 });
    const r1 = cache.get(1);
    store.failSaves = (aid) => aid === 1;
    const e = storeError(() => learn(cache, r1, 'precious'));
    expect(e.code).toBe('ERR_FUSION_STORE_WRITE');
    expect(e.aid).toBe(1);
    expect((e.cause as Error).message).toBe('cannot save 1');
    expect(r1.dirty).toBe(true);

    // Eviction cannot save it either: the miss fails and the cache is unchanged.
    cache.get(2);
    expect(storeError(() => cache.get(3)).code).toBe('ERR_FUSION_STORE_WRITE');
    expect(cache.size).toBe(2);
    expect(cache.peek(1)).toBe(r1);
    expect(cache.peek(3)).toBeNull();

    // flush saves what it can and reports the failure.
    learn(cache, cache.get(2), 'fine');
    store.saves = [];
    cache.get(2).dirty = true;
    expect(storeError(() => cache.flush()).code).toBe('ERR_FUSION_STORE_WRITE');
    expect(store.saves).toEqual([2]);
    expect(r1.dirty).toBe(true);

    // Once the store recovers, nothing was lost.
    store.failSaves = null;
    expect(cache.flush()).toBe(1);
    expect(store.inner.load(1)?.templates.get(1)?.values).toEqual(['K.', 'precious']);
    expect(cache.get(3).aid).toBe(3);
  });

  it('wraps store load and delete failures, passing store errors through', () => {
    const { cache, store } = setup();
    store.failLoads = true;
    const e = storeError(() => cache.get(5));
    expect(e.code).toBe('ERR_FUSION_STORE_READ');
    expect(e.aid).toBe(5);
    expect(cache.size).toBe(0);

    const dir = mkdtempSync(join(tmpdir(), 'os-fusion-cache-'));
    dirs.push(dir);
    const files = new FileRegistryStore(dir);
    const c2 = new RegistryCache({ store: files });
    c2.get(6);
    const r = c2.get(6);
    r.put(1, 's', ['v']);
    c2.changed(r);
    // Corrupt the file, drop the cached copy: the store's own error comes through untouched.
    rmSync(files.pathOf(6));
    writeFileSync(files.pathOf(6), '{');
    const c3 = new RegistryCache({ store: files });
    const corrupt = storeError(() => c3.get(6));
    expect(corrupt.code).toBe('ERR_FUSION_STORE_CORRUPT');
    expect(corrupt.path).toBe(files.pathOf(6));

    const wrong: RegistryStore = { load: () => new DeviceRegistry(1), save: () => {}, delete: () => {} };
    expect(storeError(() => new RegistryCache({ store: wrong }).get(2)).code).toBe('ERR_FUSION_STORE_READ');
  });

  it('delete forgets the AID in the cache and the store', () => {
    const { cache, store } = setup();
    learn(cache, cache.get(4), 'x');
    cache.delete(4);
    expect(cache.size).toBe(0);
    expect(store.deletes).toEqual([4]);
    expect(cache.peek(4)).toBeNull();
    expect(cache.get(4).templates.size).toBe(0);
  });

  it('rejects AIDs that are not uint32 with ERR_FUSION_STORE_AID', () => {
    const { cache, store } = setup();
    for (const aid of [-1, 1.5, 2 ** 32, Number.NaN, '7' as unknown as number]) {
      expect(storeError(() => cache.get(aid)).code).toBe('ERR_FUSION_STORE_AID');
      expect(storeError(() => cache.peek(aid)).code).toBe('ERR_FUSION_STORE_AID');
      expect(storeError(() => cache.delete(aid)).code).toBe('ERR_FUSION_STORE_AID');
      expect(storeError(() => cache.changed(new DeviceRegistry(aid))).code).toBe('ERR_FUSION_STORE_AID');
    }
    expect(cache.size).toBe(0);
    expect(store.loads).toEqual([]);
    expect(cache.get(0).aid).toBe(0);
    expect(cache.get(4_294_967_295).aid).toBe(4_294_967_295);
  });

  it('stays bounded under a flood of 100k distinct AIDs', () => {
    let t = T0;
    const memory = new MemoryRegistryStore({ maxRegistries: 5000 });
    const cache = new RegistryCache({ store: memory, clock: () => t });
    for (let aid = 0; aid < 100_000; aid++) {
      const r = cache.get(aid);
      if (aid % 2 === 0) learn(cache, r, String(aid));
      t++;
    }
    expect(cache.size).toBe(1024);
    expect(memory.size).toBe(5000);
    expect(memory.saves).toBe(50_000);
    // The most recent registries are cached, with what they learned.
    expect(cache.peek(99_998)?.templates.get(1)?.values).toEqual(['K.', '99998']);
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
