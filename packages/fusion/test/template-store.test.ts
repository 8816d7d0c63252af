import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { compressFact } from '@opensynaptic/packet/body';
import { MemoryStore } from '@opensynaptic/store';
import { abstractStoreSuite } from '@opensynaptic/store/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DeviceRegistry,
  OSVisualFusionEngine,
  openFileTemplateStore,
  RegistryCache,
  type RegistryStoreError,
  registryFilePath,
  registryRecord,
  type TemplateKinds,
  type TemplateStore,
} from '../src/index.js';
import { decodeRegistryFile, encodeRegistryFile } from '../src/registry-file.js';
import { index, key, sample } from './fixtures/template-store-child.js';

const here = dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix = 'fusion-tpl-') => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

abstractStoreSuite({ describe, it }, {
  name: 'fusion file template store (reference layout)',
  newLocation: () => tempDir(),
  open: (root) => openFileTemplateStore(root),
  persistent: true,
  kinds: ['templates', 'templates'],
  sample,
  index,
  key,
  arbitraryKeys: false,
  kill: (() => {
    const work = tempDir('fusion-tpl-kill-');
    const [moduleUrl] = compileForChild([join(here, 'fixtures', 'template-store-child.ts')], join(work, 'bundle'));
    return { killLoop, moduleUrl: moduleUrl!, workDir: work };
  })(),
});

const fact = (aid: number, v: number) => ({ id: `N${aid}`, s: 'ONLINE', t: 1_700_000_000_000, s1_id: 'T', s1_s: 'OK', s1_u: 'Cel', s1_v: v });
const frame = (tx: OSVisualFusionEngine, aid: number, v: number) => tx.runEngine(`${aid};${compressFact(fact(aid, v))}`, 'DIFF');

describe('template store: the reference registry format', () => {
  it('writes the bytes encodeRegistryFile writes, at the reference paths, and reads such files', async () => {
    const root = tempDir();
    const reg = new DeviceRegistry(4_294_967_295);
    reg.put(1, 'D.ONLINE.{TS}|T>\u0001:\u0001|', ['OK.Cel', 'é1']);
    reg.put(100, 'D.ONLINE.{TS}|@x|', null);
    const store = await openFileTemplateStore(root);
    await store.write([{ op: 'put', kind: 'templates', key: '4294967295', value: registryRecord(reg) }]);
    await store.flush();
    const text = readFileSync(registryFilePath(root, 4_294_967_295), 'utf8');
    expect(text).toBe(encodeRegistryFile(reg));
    const back = decodeRegistryFile(4_294_967_295, text);
    expect([...back.templates.values()].map((t) => [t.tid, t.sig, t.values])).toEqual([...reg.templates.values()].map((t) => [t.tid, t.sig, t.values]));
    const other = new DeviceRegistry(42);
    other.put(3, 'X.ONLINE.{TS}|', []);
    // A file another writer (the reference) put there is read as written.
    mkdirSync(dirname(registryFilePath(root, 42)), { recursive: true });
    writeFileSync(registryFilePath(root, 42), encodeRegistryFile(other));
    expect(await store.get('templates', '42')).toEqual(registryRecord(other));
    expect((await store.keys('templates')).sort()).toEqual(['42', '4294967295']);
    const bad = await store.get('templates', '042').catch((e: unknown) => e);
    expect((bad as RegistryStoreError).code).toBe('ERR_STORE_KEY');
    await store.close();
  });
});

describe('RegistryCache on an asynchronous store', () => {
  it('never reads the store on a frame: a miss is unknown until its background load lands; preload loads first', async () => {
    const root = tempDir();
    const tx = new OSVisualFusionEngine({ localId: 7 });
    const rx = new OSVisualFusionEngine({ localId: 1, registry: { store: await openFileTemplateStore(root) } });
    await rx.registry.preload();
    rx.decompress(frame(tx, 7, 1));
    expect(rx.decompress(frame(tx, 7, 2)).s1_v).toBe(2);
    expect(await rx.flush()).toBe(1);
    const diff = frame(tx, 7, 3);

    // Restarted without loading anything ahead: the first DIFF fails as from an unknown device, the load runs behind.
    const cold = new OSVisualFusionEngine({ localId: 1, registry: { store: await openFileTemplateStore(root) } });
    expect(() => cold.decompress(diff)).toThrow(expect.objectContaining({ code: 'ERR_FUSION_STORE_NOT_OPEN' }));
    await cold.registry.preload([]);
    expect(() => cold.decompress(diff)).toThrow(/template/i);
    await cold.registry.settled();
    expect(cold.decompress(diff).s1_v).toBe(3);

    // Restarted with preload: it decodes at once.
    const warm = new OSVisualFusionEngine({ localId: 1, registry: { store: await openFileTemplateStore(root) } });
    expect(await warm.registry.preload()).toBe(1);
    expect(warm.decompress(diff).s1_v).toBe(3);
  });

  it('writes behind through sweep, and flush() resolves when the file is written', async () => {
    const root = tempDir();
    let now = 1_000_000;
    const store = await openFileTemplateStore(root);
    const cache = new RegistryCache({ store, syncIntervalMs: 60_000, clock: () => now });
    await cache.preload();
    const reg = cache.get(9);
    reg.put(1, 'S.ONLINE.{TS}|', []);
    cache.changed(reg); // first save of a registry: at once, to the store's memory
    reg.put(2, 'S.ONLINE.{TS}|@m|', []);
    cache.changed(reg); // throttled
    expect((await store.get('templates', '9'))?.templates.length).toBe(1);
    expect(store.pendingWrites).toBe(1);
    now += 60_000;
    expect(cache.sweep().saved).toBe(1);
    expect((await store.get('templates', '9'))?.templates.length).toBe(2);
    await cache.flush();
    expect(store.pendingWrites).toBe(0);
    expect(decodeRegistryFile(9, readFileSync(registryFilePath(root, 9), 'utf8')).templates.size).toBe(2);
  });

  it('keeps both a tid learned during a background load and the stored ones', async () => {
    const store = new MemoryStore<TemplateKinds>({ kinds: ['templates'] });
    const stored = new DeviceRegistry(5);
    stored.put(2, 'B.ONLINE.{TS}|', []);
    await store.write([{ op: 'put', kind: 'templates', key: '5', value: registryRecord(stored) }]);
    const cache = new RegistryCache({ store });
    await cache.preload([]);
    const live = cache.get(5); // a miss: a new registry now, the stored one behind
    live.put(1, 'A.ONLINE.{TS}|', []);
    cache.changed(live);
    await cache.settled();
    expect([...cache.get(5).templates.keys()].sort()).toEqual([1, 2]);
  });

  it('reports background failures to onError, keeping the registry dirty for flush to retry', async () => {
    const errors: string[] = [];
    const inner = new MemoryStore<TemplateKinds>({ kinds: ['templates'] });
    let failing = true;
    const store: TemplateStore = {
      durability: 'none',
      kinds: ['templates'],
      get: (k, key) => inner.get(k, key),
      getMany: (k, keys) => inner.getMany(k, keys),
      keys: (k) => inner.keys(k),
      write: (batch) => (failing ? Promise.reject(new Error('disk full')) : inner.write(batch)),
      flush: () => inner.flush(),
      close: () => inner.close(),
    };
    const cache = new RegistryCache({ store, onError: (e) => errors.push(`${e.code} ${e.message}`) });
    await cache.preload([]);
    const reg = cache.get(3);
    reg.put(1, 'C.ONLINE.{TS}|', []);
    cache.changed(reg);
    await new Promise((r) => setTimeout(r, 0));
    expect(errors).toEqual(['ERR_FUSION_STORE_WRITE aid 3: cannot be saved to the store']);
    expect(reg.dirty).toBe(true);
    expect(cache.backgroundErrors).toBe(1);
    failing = false;
    expect(await cache.flush()).toBe(1);
    await new Promise((r) => setTimeout(r, 0));
    expect((await inner.get('templates', '3'))?.templates.length).toBe(1);
  });

  it('bounds background loads (a flood of unknown AIDs)', async () => {
    const store = new MemoryStore<TemplateKinds>({ kinds: ['templates'] });
    let gets = 0;
    const counting = Object.assign(Object.create(store) as TemplateStore, {
      get: (k: 'templates', key: string) => {
        gets++;
        return store.get(k, key);
      },
    });
    const cache = new RegistryCache({ store: counting, maxLoading: 4 });
    await cache.preload([]);
    for (let aid = 0; aid < 100; aid++) expect(cache.find(aid)).toBeNull();
    expect(gets).toBe(4);
    await cache.settled();
  });
});
