import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, MemoryStore, type Store, type StoreWrite } from '@opensynaptic/store';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ALLOCATOR_STATE_KEY,
  DEFAULT_LEASE_MS,
  deviceKey,
  HandshakeFieldError,
  IdAllocator,
  type LeaseKinds,
  leaseSnapshotWrites,
  type StoredAllocatorState,
  StoreError,
} from '../src/index.js';

const T0 = 1_700_000_000_000;
const SECOND = 1000;
const DAY = 86_400_000;

function clockAt(start = T0) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

/** An allocator in memory only (no store): the allocation rules. */
function setup(options: ConstructorParameters<typeof IdAllocator>[0] = {}) {
  const clock = clockAt();
  const a = new IdAllocator({ start: 100, end: 109, clockMs: clock.now, ...options });
  return { a, clock };
}

/** An opened allocator on a memory store of the contract. */
async function stored(options: ConstructorParameters<typeof IdAllocator>[0] = {}, store = new MemoryStore<LeaseKinds>({ kinds: ['leases'] })) {
  const clock = clockAt();
  const a = new IdAllocator({ start: 100, end: 109, clockMs: clock.now, store, ...options });
  await a.open();
  return { a, clock, store };
}

/** `allocate`, first awaiting the durable reservation a store needs. */
async function allocate(a: IdAllocator, key: string) {
  await a.reserveAhead();
  return a.allocate(key);
}

async function state(store: Store<LeaseKinds>): Promise<StoredAllocatorState | undefined> {
  return (await store.get('leases', ALLOCATOR_STATE_KEY)) as StoredAllocatorState | undefined;
}

async function leaseKeys(store: Store<LeaseKinds>): Promise<number[]> {
  return (await store.keys('leases')).filter((k) => k !== ALLOCATOR_STATE_KEY).map(Number).sort((x, y) => x - y);
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('deviceKey', () => {
  it('uses the first identity field, in order', () => {
    expect(deviceKey({ device_id: 'N', mac: 'aa' }, null, T0)).toBe('device_id=N');
    expect(deviceKey({ mac: 'aa', device_key: 'K' }, null, T0)).toBe('device_key=K');
    expect(deviceKey({ uuid: 5 }, null, T0)).toBe('uuid=5');
    expect(deviceKey({ serial: { a: 1 } }, null, T0)).toBe('serial={"a": 1}');
    // Falsy values (Python truthiness) do not identify anything.
    expect(deviceKey({ device_id: '', serial: 0, mac: 'm' }, null, T0)).toBe('mac=m');
  });
  it('falls back to the whole meta with sorted keys, then to address and second (the clock is ms, the key names the second)', () => {
    expect(deviceKey({ b: 1, a: 2 }, null, T0)).toBe(deviceKey({ a: 2, b: 1 }, '1.2.3.4:5', T0 + 9 * SECOND));
    expect(deviceKey({}, '1.2.3.4:5', T0 + 999)).toBe('anon=1.2.3.4:5@1700000000');
    expect(deviceKey({}, { host: 'h', port: 1 }, T0)).toBe('anon=h:1@1700000000');
    expect(deviceKey(null, ['h', 2], T0)).toBe('anon=h:2@1700000000');
    expect(deviceKey({}, null, T0)).toBe(deviceKey({}, null, T0 + 999));
    expect(deviceKey({}, null, T0)).not.toBe(deviceKey({}, null, T0 + SECOND));
  });
  it('hashes long keys so a lease stays small', () => {
    const k = deviceKey({ device_id: 'x'.repeat(4000) }, null, T0);
    expect(k).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(deviceKey({ device_id: 'x'.repeat(4000) }, null, T0 + 50 * SECOND)).toBe(k);
    let deep: unknown = 1;
    for (let i = 0; i < 1000; i++) deep = [deep];
    expect(deviceKey(deep, null, T0)).toMatch(/^sha256=/);
  });
});

describe('IdAllocator', () => {
  it('gives the same device the same id and renews its lease', () => {
    const { a, clock } = setup();
    expect(a.allocate('d=A')).toEqual({ ok: true, id: 100, renewed: false });
    expect(a.allocate('d=B')).toEqual({ ok: true, id: 101, renewed: false });
    clock.advance(10 * DAY);
    expect(a.allocate('d=A')).toEqual({ ok: true, id: 100, renewed: true });
    expect(a.leaseOf(100)?.expiresAtMs).toBe(T0 + 10 * DAY + DEFAULT_LEASE_MS);
    expect(a.idFor('d=B')).toBe(101);
  });
  it('renews a lease when the device is seen', () => {
    const { a, clock } = setup({ leaseMs: 100 * SECOND });
    a.allocate('d=A');
    clock.advance(90 * SECOND);
    expect(a.touch(100)).toBe(true);
    expect(a.touch(555)).toBe(false);
    clock.advance(90 * SECOND);
    expect(a.reclaimExpired()).toBe(0);
    clock.advance(20 * SECOND);
    expect(a.reclaimExpired()).toBe(1);
    expect(a.leaseOf(100)).toBeUndefined();
  });
  it('reuses released ids lowest first, before never-used ones', () => {
    const { a } = setup();
    for (const k of ['a', 'b', 'c', 'd']) a.allocate(k);
    expect(a.release(102)).toBe(true);
    expect(a.release(101)).toBe(true);
    expect(a.release(101)).toBe(false);
    expect(a.allocate('e')).toMatchObject({ id: 101 });
    expect(a.allocate('f')).toMatchObject({ id: 102 });
    expect(a.allocate('g')).toMatchObject({ id: 104 });
  });
  it('reclaims expired leases when the range is exhausted, then reports EXHAUSTED', () => {
    const { a, clock } = setup({ start: 1, end: 3, leaseMs: 1000 * SECOND });
    for (const k of ['a', 'b', 'c']) a.allocate(k);
    expect(a.allocate('d')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    expect(a.available).toBe(0);
    clock.advance(500 * SECOND);
    a.touch(3);
    a.allocate('a');
    clock.advance(600 * SECOND);
    // 'b' (id 2) expired; 'a' and id 3 were renewed.
    expect(a.allocate('d')).toEqual({ ok: true, id: 2, renewed: false });
    expect(a.allocate('e')).toEqual({ ok: false, reason: 'EXHAUSTED' });
  });
  it('an expired but not yet reclaimed lease is renewed for its device', () => {
    const { a, clock } = setup({ leaseMs: 10 * SECOND });
    a.allocate('a');
    clock.advance(100 * SECOND);
    expect(a.allocate('a')).toEqual({ ok: true, id: 100, renewed: true });
  });
  it('hands out distinct ids for a pool, the same ones when asked again', () => {
    const { a } = setup({ start: 1, end: 100 });
    expect(a.allocatePool('gw', 3)).toEqual({ ids: [1, 2, 3] });
    expect(a.allocatePool('gw', 3)).toEqual({ ids: [1, 2, 3] });
    expect(a.allocatePool('other', 200)).toEqual({ ids: Array.from({ length: 97 }, (_, i) => i + 4), shortBy: 'EXHAUSTED' });
  });
  it('caps the leases held at maxLeases whatever the range', () => {
    const { a } = setup({ start: 1, end: 0xfffffffe, maxLeases: 50 });
    for (let i = 0; i < 50; i++) expect(a.allocate(`dev${i}`).ok).toBe(true);
    expect(a.allocate('dev50')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    expect(a.allocate('dev7')).toMatchObject({ ok: true, renewed: true });
    expect(a.size).toBe(50);
  });
  it('rate-limits new leases per window, never renewals', () => {
    const { a, clock } = setup({ start: 1, end: 10000, newLeaseLimit: { max: 5, windowMs: 60 * SECOND } });
    for (let i = 0; i < 5; i++) expect(a.allocate(`d${i}`).ok).toBe(true);
    expect(a.allocate('d5')).toEqual({ ok: false, reason: 'RATE_LIMITED' });
    expect(a.allocate('d0')).toMatchObject({ ok: true, renewed: true });
    clock.advance(59 * SECOND);
    expect(a.allocate('d5').ok).toBe(false);
    clock.advance(1 * SECOND);
    expect(a.allocate('d5')).toMatchObject({ ok: true, id: 6 });
  });
  it('validates its options', () => {
    expect(() => new IdAllocator({ start: 0 })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ end: 0xffffffff })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ start: 10, end: 5 })).toThrow(/below start/);
    expect(() => new IdAllocator({ leaseMs: 0 })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ maxLeases: -1 })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ saveIntervalMs: -1 })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ clockMs: 5 as never })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ store: {} as never })).toThrow(HandshakeFieldError);
  });
  it('refuses the options of earlier versions that took seconds, instead of reading them as ms', () => {
    const old: [string, object][] = [
      ['clock', { clock: () => 1_700_000_000 }],
      ['leaseSeconds', { leaseSeconds: 100 }],
      ['saveIntervalSeconds', { saveIntervalSeconds: 1 }],
      ['renewSaveIntervalSeconds', { renewSaveIntervalSeconds: 60 }],
      ['reclaimIntervalSeconds', { reclaimIntervalSeconds: 3600 }],
      ['windowSeconds', { newLeaseLimit: { max: 5, windowSeconds: 60 } }],
    ];
    for (const [field, options] of old) {
      let error: unknown;
      try {
        new IdAllocator(options as never);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'ERR_HANDSHAKE_FIELD', field });
    }
  });
});

describe('persistence on a store of the contract', () => {
  it('must be opened before use, and answers as opened afterwards', async () => {
    const store = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    const a = new IdAllocator({ start: 100, end: 109, clockMs: () => T0, store });
    expect(a.opened).toBe(false);
    expect(() => a.allocate('a')).toThrow(expect.objectContaining({ code: 'ERR_HANDSHAKE_NOT_OPEN' }));
    await a.open();
    await a.open(); // once
    expect(a.opened).toBe(true);
    expect(await allocate(a, 'a')).toMatchObject({ id: 100 });
  });

  it('survives a restart: same ids, released ids, cursor', async () => {
    const { a, store, clock } = await stored();
    for (const k of ['a', 'b', 'c']) await allocate(a, k);
    a.release(101);
    await a.close();
    const b = new IdAllocator({ start: 100, end: 109, clockMs: clock.now, store });
    await b.open();
    expect(b.quarantined).toBe(0);
    expect(b.allocate('a')).toMatchObject({ id: 100, renewed: true });
    expect(await allocate(b, 'd')).toMatchObject({ id: 101, renewed: false });
    expect(await allocate(b, 'e')).toMatchObject({ id: 103 });
    expect(b.snapshot()).toMatchObject({ version: 2, next: 104 });
  });

  it('keeps one record per lease (ms) and the state apart; a flush writes only what changed', async () => {
    const { a, store, clock } = await stored({ start: 1, end: 1000 });
    for (const k of ['a', 'b', 'c']) await allocate(a, k);
    await a.flush();
    expect(await leaseKeys(store)).toEqual([1, 2, 3]);
    expect(await store.get('leases', '2')).toEqual({ key: 'b', expiresAtMs: T0 + DEFAULT_LEASE_MS });
    expect(await state(store)).toMatchObject({ version: 2, next: 4, released: [] });
    const before = store.batches;
    clock.advance(2 * SECOND);
    a.release(2);
    await a.flush();
    expect(store.batches - before).toBe(1);
    expect(await leaseKeys(store)).toEqual([1, 3]);
    expect(await state(store)).toMatchObject({ released: [2] });
  });

  it('writes new leases at once after a quiet period, bursts at most once per interval, renewals per their own interval', async () => {
    const { a, store, clock } = await stored({ start: 1, end: 1000 });
    clock.advance(1 * SECOND);
    await a.reserveAhead(); // a write (the reservation)
    const base = store.batches;
    // Within the interval of that write: held back.
    a.allocate('a');
    a.allocate('b');
    a.allocate('c');
    await Promise.resolve();
    expect(store.batches - base).toBe(0);
    clock.advance(1 * SECOND);
    a.allocate('d');
    await Promise.resolve();
    expect(store.batches - base).toBe(1);
    expect(await leaseKeys(store)).toEqual([1, 2, 3, 4]);
    // Renewals alone wait for the renewal interval.
    clock.advance(5 * SECOND);
    a.touch(1);
    a.touch(2);
    await Promise.resolve();
    expect(store.batches - base).toBe(1);
    clock.advance(60 * SECOND);
    a.touch(3);
    await Promise.resolve();
    expect(store.batches - base).toBe(2);
    // A new lease after a quiet period goes out at once.
    clock.advance(10 * SECOND);
    a.allocate('e');
    await Promise.resolve();
    expect(store.batches - base).toBe(3);
  });

  it('runs no timer: what the throttle holds back goes out with sweep(), from the caller\'s timer', async () => {
    const { a, store, clock } = await stored({ start: 1, end: 1000, saveIntervalMs: 50 });
    await allocate(a, 'a');
    a.allocate('b');
    await new Promise((r) => setTimeout(r, 80));
    // Within the interval of the reservation's write the leases wait: no timer writes them.
    expect(await leaseKeys(store)).toEqual([]);
    a.sweep();
    expect(await leaseKeys(store)).toEqual([]);
    clock.advance(50);
    a.sweep();
    await Promise.resolve();
    expect(await leaseKeys(store)).toEqual([1, 2]);
  });

  it('keeps its leases in a file store (snapshot layout) and reads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-leases-'));
    dirs.push(dir);
    const open = () => FileStore.open<LeaseKinds>({ root: dir, kinds: ['leases'], layouts: { leases: { type: 'snapshot' } } });
    const store = await open();
    const a = new IdAllocator({ start: 1000, end: 1010, clockMs: () => T0, store });
    await a.open();
    await allocate(a, 'device_id=NODE_A');
    await allocate(a, 'mac=aa:bb');
    await a.close();
    await store.close();
    const again = await open();
    const b = new IdAllocator({ start: 1000, end: 1010, clockMs: () => T0, store: again });
    await b.open();
    expect(b.idFor('mac=aa:bb')).toBe(1001);
    expect(b.quarantined).toBe(0);
    await again.close();
  });
});

describe('lease records of the wrong shape', () => {
  it('refuses them with StoreError instead of starting over and reissuing ids', async () => {
    const goodState: StoredAllocatorState = { version: 2, next: 2, released: [], reserved: [] };
    const shapes: [string, unknown][] = [
      [ALLOCATOR_STATE_KEY, {}],
      [ALLOCATOR_STATE_KEY, { ...goodState, version: 1 }],
      [ALLOCATOR_STATE_KEY, { ...goodState, extra: 1 }],
      [ALLOCATOR_STATE_KEY, { ...goodState, next: '2' }],
      [ALLOCATOR_STATE_KEY, { ...goodState, next: 1e12 }],
      [ALLOCATOR_STATE_KEY, { ...goodState, released: [0] }],
      [ALLOCATOR_STATE_KEY, { ...goodState, reserved: 'x' }],
      ['1', { key: 'a' }],
      ['1', { key: 'a', expiresAtMs: T0, more: 1 }],
      ['1', { key: 'a', expiresAtMs: null }],
      ['1', { key: 5, expiresAtMs: T0 }],
      ['1', [1, 2]],
      ['0', { key: 'a', expiresAtMs: T0 }],
      ['01', { key: 'a', expiresAtMs: T0 }],
      ['4294967295', { key: 'a', expiresAtMs: T0 }],
      ['x', { key: 'a', expiresAtMs: T0 }],
    ];
    for (const [key, value] of shapes) {
      const store = new MemoryStore<Record<string, unknown>>({ kinds: ['leases'] });
      await store.write([{ op: 'put', kind: 'leases', key, value }]);
      const a = new IdAllocator({ start: 1, end: 9, store: store as never });
      let error: unknown;
      try {
        await a.open();
      } catch (e) {
        error = e;
      }
      expect([key, value, error]).toEqual([key, value, expect.objectContaining({ code: 'ERR_HANDSHAKE_STORE' })]);
      expect(a.opened).toBe(false);
    }
    // Two ids leased to one device: the store was written by something else.
    const store = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    await store.write([
      { op: 'put', kind: 'leases', key: '1', value: { key: 'a', expiresAtMs: T0 } },
      { op: 'put', kind: 'leases', key: '2', value: { key: 'a', expiresAtMs: T0 } },
    ]);
    await expect(new IdAllocator({ store }).open()).rejects.toThrow(/duplicate lease/);
  });

  it('does not scan billions of ids for a damaged next', async () => {
    const store = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    await store.write([{ op: 'put', kind: 'leases', key: ALLOCATOR_STATE_KEY, value: { version: 2, next: 0xfffffff0, released: [5], reserved: [] } }]);
    const a = new IdAllocator({ store, clockMs: () => T0 });
    await a.open();
    expect(await allocate(a, 'x')).toMatchObject({ id: 5 });
  });

  it('finds an id whose lease was deleted by a flush a crash cut before the state record', async () => {
    const store = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    // Ids 1..3 handed out; 2's lease is gone but the state never listed it as released.
    await store.write([
      { op: 'put', kind: 'leases', key: '1', value: { key: 'a', expiresAtMs: T0 + DAY } },
      { op: 'put', kind: 'leases', key: '3', value: { key: 'c', expiresAtMs: T0 + DAY } },
      { op: 'put', kind: 'leases', key: ALLOCATOR_STATE_KEY, value: { version: 2, next: 4, released: [], reserved: [] } },
    ]);
    const a = new IdAllocator({ store, clockMs: () => T0 });
    await a.open();
    expect(await allocate(a, 'x')).toMatchObject({ id: 2 });
  });
});

describe('lease files of earlier versions', () => {
  it('converts a version 1 file (seconds) and a version 2 snapshot (ms) to records', async () => {
    const v1 = { version: 1, start: 1, end: 9, next: 4, leases: [{ id: 1, key: 'a', expiresAt: 1_700_000_000 }, { id: 3, key: 'c', expiresAt: 1_700_000_001 }], released: [2], reserved: [4] };
    const store = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    await store.write(leaseSnapshotWrites(v1));
    expect(await store.get('leases', '1')).toEqual({ key: 'a', expiresAtMs: 1_700_000_000_000 });
    const a = new IdAllocator({ start: 1, end: 9, store, clockMs: () => T0 });
    await a.open();
    expect(a.idFor('c')).toBe(3);
    expect(a.leaseOf(3)?.expiresAtMs).toBe(1_700_000_001_000);
    expect(a.quarantined).toBe(1); // id 4 was reserved without a lease
    expect(await allocate(a, 'd')).toMatchObject({ id: 2 });
    const again = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    await again.write(leaseSnapshotWrites(a.snapshot()));
    const b = new IdAllocator({ start: 1, end: 9, store: again, clockMs: () => T0 });
    await b.open();
    expect([b.idFor('a'), b.idFor('c'), b.idFor('d'), b.leaseOf(4)?.key]).toEqual([1, 3, 2, '~sent:4']);
  });

  it('refuses files of the wrong shape with StoreError (nothing to write)', () => {
    const good = { version: 1, start: 1, end: 9, next: 2, leases: [{ id: 1, key: 'a', expiresAt: 1_700_000_000 }], released: [] };
    const shapes: unknown[] = [
      {},
      [],
      null,
      5,
      'x',
      { ...good, leasez: good.leases, leases: undefined },
      { ...good, extra: 1 },
      { ...good, next: undefined },
      { ...good, next: '2' },
      { ...good, released: [0] },
      { ...good, reserved: 'x' },
      { ...good, reserved: [1.5] },
      { ...good, leases: [{ id: 1, key: 'a', expiresAt: 1, more: 1 }] },
      { ...good, leases: [{ id: 1, key: 'a', expiresAt: null }] },
      { ...good, leases: [{ id: 1, key: 'a', expiresAtMs: 1 }] }, // a version 2 field in a version 1 file
      { ...good, version: 2 }, // and the other way round
      { ...good, leases: [{ id: 2 ** 32, key: 'a', expiresAt: 1 }] },
      { ...good, leases: [{ id: 1, key: 'a', expiresAt: 1 }, { id: 1, key: 'b', expiresAt: 1 }] },
    ];
    for (const shape of shapes) {
      let error: unknown;
      let writes: StoreWrite<LeaseKinds>[] | undefined;
      try {
        writes = leaseSnapshotWrites(shape);
      } catch (e) {
        error = e;
      }
      expect([shape, writes, error]).toEqual([shape, undefined, expect.any(StoreError)]);
      expect((error as StoreError).code).toBe('ERR_HANDSHAKE_STORE');
    }
    expect(leaseSnapshotWrites(good)).toHaveLength(2);
  });
});

describe('expired leases at the cap', () => {
  it('reclaims expired leases earliest first and reuses the lowest free id, as before', () => {
    const { a, clock } = setup({ start: 1, end: 5, leaseMs: 100 * SECOND });
    for (const k of ['a', 'b', 'c', 'd', 'e']) a.allocate(k);
    // Renew in an order that makes expiry differ from id order: 3, then 1 and 5.
    clock.advance(10 * SECOND);
    a.touch(3);
    clock.advance(10 * SECOND);
    a.touch(1);
    a.allocate('e'); // id 5, renewed
    clock.advance(85 * SECOND); // ids 2 and 4 expired (at 100), 3 (110) and 1, 5 (120) not yet
    expect(a.allocate('f')).toEqual({ ok: true, id: 2, renewed: false });
    expect(a.allocate('g')).toEqual({ ok: true, id: 4, renewed: false });
    expect(a.allocate('h')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    clock.advance(10 * SECOND); // 3 expired
    expect(a.allocate('h')).toEqual({ ok: true, id: 3, renewed: false });
    clock.advance(10 * SECOND); // 1 and 5 expired: the lowest goes first
    expect(a.reclaimExpired()).toBe(2);
    expect(a.allocate('i')).toMatchObject({ id: 1 });
    expect(a.allocate('j')).toMatchObject({ id: 5 });
    expect(a.leaseOf(1)?.key).toBe('i');
  });

  it('does not reclaim a renewed lease, nor a released one twice', () => {
    const { a, clock } = setup({ start: 1, end: 3, leaseMs: 100 * SECOND });
    a.allocate('a');
    a.allocate('b');
    clock.advance(99 * SECOND);
    a.touch(1);
    a.release(2);
    expect(a.allocate('c')).toMatchObject({ id: 2 }); // a new lease on a released id
    clock.advance(2 * SECOND);
    expect(a.reclaimExpired()).toBe(0); // 1 renewed, 2 is c's fresh lease
    clock.advance(200 * SECOND);
    expect(a.reclaimExpired()).toBe(2);
    expect(a.size).toBe(0);
  });

  it('examines O(log n) expiry entries per ID_REQUEST at the cap, not every lease', () => {
    // Work per request from a new device with `n` unexpired leases held at the cap, counted in
    // expiry entries examined; the scan this replaces examined n per request.
    const stepsPerRequest = (n: number): number => {
      const a = new IdAllocator({ start: 1, end: 0xfffffffe, maxLeases: n, clockMs: () => T0, newLeaseLimit: { max: 1e9, windowMs: 60 * SECOND } });
      for (let i = 0; i < n; i++) a.allocate(`dev${i}`);
      const before = a.stats.reclaimSteps;
      for (let i = 0; i < 200; i++) expect(a.allocate(`new${i}`)).toEqual({ ok: false, reason: 'EXHAUSTED' });
      return (a.stats.reclaimSteps - before) / 200;
    };
    const small = stepsPerRequest(1024);
    const large = stepsPerRequest(65536);
    // 64 times the leases: a scan would be 64 times the work; allow a generous log factor.
    expect(large).toBeLessThanOrEqual(Math.max(1, small) * 4);
  });

  it('counts EXHAUSTED answers against the new-lease limit', () => {
    const { a, clock } = setup({ start: 1, end: 3, newLeaseLimit: { max: 5, windowMs: 60 * SECOND } });
    for (const k of ['a', 'b', 'c']) expect(a.allocate(k).ok).toBe(true);
    expect(a.allocate('d')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    expect(a.allocate('e')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    expect(a.allocate('f')).toEqual({ ok: false, reason: 'RATE_LIMITED' });
    expect(a.allocate('a')).toMatchObject({ ok: true, renewed: true }); // renewals never limited
    expect(a.allocatePool('gw', 3)).toEqual({ ids: [], shortBy: 'RATE_LIMITED' });
    clock.advance(60 * SECOND);
    expect(a.allocate('f')).toEqual({ ok: false, reason: 'EXHAUSTED' });
  });
});

describe('durable id reservations', () => {
  it('writes the state once per reserveIds new leases, and a pool reserves its size at once', async () => {
    const { a, store } = await stored({ start: 1, end: 100_000, reserveIds: 8 });
    await a.reserveAhead();
    expect((await state(store))?.reserved).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (let i = 0; i < 8; i++) a.allocate(`d${i}`);
    expect(a.needsReservation()).toBe(true);
    expect(() => a.allocate('d8')).toThrow(StoreError); // the sync path never hands out an unreserved id
    await a.reserveAhead();
    expect(a.allocate('d8')).toMatchObject({ id: 9 });
    expect((await state(store))?.reserved).toEqual(expect.arrayContaining([9, 10, 11, 12, 13, 14, 15, 16]));
    expect(a.needsReservation(20)).toBe(true);
    await a.reserveAhead(20);
    expect(a.allocatePool('gw', 20).ids).toHaveLength(20);
  });

  it('tops the block up in the background, so a steady stream of requests rarely waits', async () => {
    const { a } = await stored({ start: 1, end: 100_000, reserveIds: 8 });
    await a.reserveAhead();
    let waited = 0;
    for (let i = 0; i < 200; i++) {
      if (a.needsReservation()) {
        waited++;
        await a.reserveAhead();
      }
      a.allocate(`d${i}`);
      await new Promise((r) => setImmediate(r));
    }
    expect(waited).toBe(0);
  });

  it('holds every reserved id without a saved lease after a crash, never handing it to another device', async () => {
    const store = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    const { a, clock } = await stored({ start: 1, end: 20, reserveIds: 8 }, store);
    await allocate(a, 'a'); // reserves 1..8 durably
    a.allocate('b');
    a.allocate('c');
    // Crash: only the reservation reached the store (the throttle held the three leases).
    expect(await leaseKeys(store)).toEqual([]);
    const b = new IdAllocator({ start: 1, end: 20, clockMs: clock.now, store, reserveIds: 4 });
    await b.open();
    expect(b.quarantined).toBe(8);
    for (const id of [1, 2, 3, 8]) expect(b.leaseOf(id)?.key).toBe(`~sent:${id}`);
    expect(await allocate(b, 'x')).toMatchObject({ id: 9 });
    expect(await allocate(b, 'a')).toMatchObject({ id: 10, renewed: false }); // its old id stays held
    // The device that got id 2 sends data: its id stays held (renewed), others expire.
    clock.advance(DEFAULT_LEASE_MS - 10 * SECOND);
    expect(b.touch(2)).toBe(true);
    clock.advance(20 * SECOND);
    expect(b.reclaimExpired()).toBe(9); // 1, 3..8 and 9, 10
    expect(b.leaseOf(2)?.key).toBe('~sent:2');
    expect(await allocate(b, 'y')).toMatchObject({ id: 1 });
  });

  it('keeps an id listed as reserved until a flush covered its lease record', async () => {
    // A store that writes its records apart could be cut between the state and a lease.
    const { a, store } = await stored({ start: 1, end: 10, reserveIds: 2 });
    await allocate(a, 'a');
    // The flush writes the lease of 'a' and a state record that still lists id 1: the flush
    // may be cut between the two records.
    await a.flush();
    expect((await state(store))?.reserved).toEqual(expect.arrayContaining([1, 2]));
    // A state record written after that flush completed no longer needs 1.
    await allocate(a, 'b');
    await a.flush();
    const reserved = (await state(store))?.reserved;
    expect(reserved).not.toContain(1);
    expect(reserved).toContain(2);
  });

  it('keeps ids listed until their lease is durable, when a crash cuts a flush between records', async () => {
    // A store whose flushes complete only when the test says, and whose crash keeps only some
    // of the records written since the last completed flush (as a files layout or a database
    // writing rows apart may).
    class CrashStore implements Store<LeaseKinds> {
      readonly durability = 'power' as const;
      readonly kinds = ['leases'];
      readonly live = new Map<string, unknown>();
      readonly durable = new Map<string, unknown>();
      pending: StoreWrite<LeaseKinds>[] = [];
      waiting: (() => void)[] = [];
      async get(_k: 'leases', key: string) {
        return this.live.get(key) as never;
      }
      async getMany(_k: 'leases', keys: readonly string[]) {
        return keys.map((key) => this.live.get(key)) as never;
      }
      async keys() {
        return [...this.live.keys()];
      }
      async write(batch: readonly StoreWrite<LeaseKinds>[]) {
        for (const w of batch) {
          if (w.op === 'put') this.live.set(w.key, w.value);
          else this.live.delete(w.key);
          this.pending.push(w);
        }
      }
      flush() {
        return new Promise<void>((resolve) => this.waiting.push(resolve));
      }
      async close() {}
      complete() {
        for (const w of this.pending) w.op === 'put' ? this.durable.set(w.key, w.value) : this.durable.delete(w.key);
        this.pending = [];
        for (const r of this.waiting.splice(0)) r();
      }
      async crash(keep: (w: StoreWrite<LeaseKinds>) => boolean): Promise<MemoryStore<LeaseKinds>> {
        for (const w of this.pending) if (keep(w)) w.op === 'put' ? this.durable.set(w.key, w.value) : this.durable.delete(w.key);
        const after = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
        await after.write([...this.durable].map(([key, value]) => ({ op: 'put', kind: 'leases', key, value: value as never })));
        return after;
      }
    }
    const store = new CrashStore();
    const clock = clockAt();
    const a = new IdAllocator({ start: 1, end: 100, clockMs: clock.now, store, reserveIds: 8 });
    await a.open();
    const reserving = a.reserveAhead();
    await new Promise((r) => setImmediate(r));
    store.complete();
    await reserving;
    a.allocate('a');
    a.allocate('b');
    clock.advance(SECOND);
    a.allocate('c'); // writes the leases of a, b, c and a state record; its flush does not complete
    clock.advance(SECOND);
    a.allocate('d'); // another state record before that flush completed
    await new Promise((r) => setImmediate(r));
    // The crash keeps the newest state record and none of the leases.
    const after = await store.crash((w) => w.key === ALLOCATOR_STATE_KEY);
    const b = new IdAllocator({ start: 1, end: 100, clockMs: clock.now, store: after });
    await b.open();
    for (const id of [1, 2, 3, 4]) expect([id, b.leaseOf(id)?.key]).toEqual([id, `~sent:${id}`]);
  });

  it('gives the reservation up on a clean close', async () => {
    const { a, store, clock } = await stored({ start: 1, end: 10, reserveIds: 4 });
    await allocate(a, 'a');
    await a.close();
    expect((await state(store))?.reserved).toEqual([]);
    const b = new IdAllocator({ start: 1, end: 10, clockMs: clock.now, store });
    await b.open();
    expect(b.quarantined).toBe(0);
    expect(await allocate(b, 'b')).toMatchObject({ id: 2 });
  });

  it('reserves the lowest free ids, so reuse order is unchanged', async () => {
    const { a, store } = await stored({ start: 1, end: 100, reserveIds: 3 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) await allocate(a, k);
    a.release(4);
    a.release(2);
    await a.flush();
    await a.reserveAhead(4);
    expect((await state(store))?.reserved).toEqual(expect.arrayContaining([2, 4, 6])); // released first, then fresh
    expect(a.allocate('f')).toMatchObject({ id: 2 });
    expect(a.allocate('g')).toMatchObject({ id: 4 });
    expect(a.allocate('h')).toMatchObject({ id: 6 });
  });

  it('hands nothing out when the reservation cannot be flushed, and retries', async () => {
    let fail = false;
    const inner = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    const failing: Store<LeaseKinds> = {
      durability: 'process',
      kinds: inner.kinds,
      get: (k, key) => inner.get(k, key),
      getMany: (k, keys) => inner.getMany(k, keys),
      keys: (k) => inner.keys(k),
      write: (b) => inner.write(b),
      flush: async () => {
        if (fail) throw new Error('disk full');
      },
      close: () => inner.close(),
    };
    const a = new IdAllocator({ start: 1, end: 10, clockMs: () => T0, store: failing, reserveIds: 1 });
    await a.open();
    expect(await allocate(a, 'a')).toMatchObject({ id: 1 });
    fail = true;
    await expect(a.reserveAhead()).rejects.toThrow(StoreError);
    expect(() => a.allocate('b')).toThrow(StoreError);
    expect(a.size).toBe(1);
    expect(a.idFor('b')).toBeUndefined();
    await expect(a.flush()).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_STORE' });
    fail = false;
    expect(await allocate(a, 'b')).toMatchObject({ id: 2 });
  });

  it('validates reserveIds', () => {
    for (const reserveIds of [0, -1, 1.5, Number.NaN]) expect(() => new IdAllocator({ reserveIds })).toThrow(HandshakeFieldError);
  });
});
