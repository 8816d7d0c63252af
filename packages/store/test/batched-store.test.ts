import { describe, expect, it } from 'vitest';
import { BatchedStore, type BatchedStoreBackend, isStoreError, type StoreChange } from '../src/index.js';
import { abstractStoreSuite } from '../src/testing.js';
import { sample } from './fixtures/file-store-child.js';

/** A backend keeping encoded text in maps (one per location, so a reopen sees what was committed). */
class MapBackend implements BatchedStoreBackend {
  static readonly locations = new Map<string, Map<string, string>>();
  readonly durability = 'process' as const;
  readonly data: Map<string, string>;
  failNext = 0;
  commits: StoreChange[][] = [];
  constructor(readonly location: string) {
    const data = MapBackend.locations.get(location) ?? new Map<string, string>();
    MapBackend.locations.set(location, data);
    this.data = data;
  }
  async read(kind: string, keys: readonly string[]) {
    return keys.map((k) => this.data.get(`${kind}/${k}`));
  }
  async keys(kind: string) {
    return [...this.data.keys()].filter((k) => k.startsWith(`${kind}/`)).map((k) => k.slice(kind.length + 1));
  }
  async commit(changes: readonly StoreChange[]) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('disk full');
    }
    this.commits.push([...changes]);
    for (const c of changes) {
      if (c.text === undefined) this.data.delete(`${c.kind}/${c.key}`);
      else this.data.set(`${c.kind}/${c.key}`, c.text);
    }
  }
  async close() {}
}

let n = 0;
abstractStoreSuite({ describe, it }, {
  name: 'BatchedStore over a map backend',
  newLocation: () => `loc-${++n}`,
  open: async (location) => new BatchedStore(new MapBackend(location)),
  persistent: true,
  kinds: ['templates', 'leases'],
  sample,
  index: (_kind, v) => (v as { n: number }).n,
});

describe('BatchedStore', () => {
  it('commits the last change of each key once per flush, and keeps a failed commit pending', async () => {
    const backend = new MapBackend(`loc-${++n}`);
    const store = new BatchedStore(backend);
    await store.write([{ op: 'put', kind: 'leases', key: 'a', value: 1 }]);
    await store.write([{ op: 'put', kind: 'leases', key: 'a', value: 2 }, { op: 'put', kind: 'leases', key: 'b', value: 3 }]);
    backend.failNext = 1;
    await expect(store.flush()).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE') && (e as Error).cause instanceof Error);
    expect(store.pendingWrites).toBe(2);
    expect(await store.get('leases', 'a')).toBe(2);
    await store.write([{ op: 'delete', kind: 'leases', key: 'b' }]);
    await store.flush();
    expect(backend.commits).toEqual([[{ kind: 'leases', key: 'a', text: '2' }, { kind: 'leases', key: 'b', text: undefined }]]);
    await store.close();
  });

  it('refuses keys a database cannot keep as given, values its codec cannot write, and reports stored text that does not decode', async () => {
    const backend = new MapBackend(`loc-${++n}`);
    const store = new BatchedStore(backend);
    for (const key of ['a\u0000b', '\udc00x']) {
      await expect(store.write([{ op: 'put', kind: 'leases', key, value: 1 }])).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_KEY'));
    }
    await expect(store.write([{ op: 'put', kind: 'leases', key: 'k', value: 1n }])).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_VALUE'));
    await expect(store.write([{ op: 'put', kind: 'leases', key: 'k', value: () => 1 }])).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_VALUE'));
    backend.data.set('leases/bad', '{not json');
    await expect(store.get('leases', 'bad')).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_CORRUPT'));
    await store.close();
  });
});
