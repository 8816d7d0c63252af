import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_LEASE_SECONDS,
  deviceKey,
  HandshakeFieldError,
  IdAllocator,
  JsonFileStore,
  type LeaseSnapshot,
  MemoryStore,
  StoreError,
} from '../src/index.js';

const T0 = 1_700_000_000;
const DAY = 86400;

function setup(options: ConstructorParameters<typeof IdAllocator>[0] = {}) {
  let t = T0;
  const clock = {
    now: () => t,
    advance: (s: number) => {
      t += s;
    },
  };
  const store = new MemoryStore<LeaseSnapshot>();
  const a = new IdAllocator({ start: 100, end: 109, clock: clock.now, store, ...options });
  return { a, clock, store };
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
  it('falls back to the whole meta with sorted keys, then to address and second', () => {
    expect(deviceKey({ b: 1, a: 2 }, null, T0)).toBe(deviceKey({ a: 2, b: 1 }, '1.2.3.4:5', T0 + 9));
    expect(deviceKey({}, '1.2.3.4:5', T0 + 0.9)).toBe('anon=1.2.3.4:5@1700000000');
    expect(deviceKey({}, { host: 'h', port: 1 }, T0)).toBe('anon=h:1@1700000000');
    expect(deviceKey(null, ['h', 2], T0)).toBe('anon=h:2@1700000000');
    expect(deviceKey({}, null, T0)).not.toBe(deviceKey({}, null, T0 + 1));
  });
  it('hashes long keys so a lease stays small', () => {
    const k = deviceKey({ device_id: 'x'.repeat(4000) }, null, T0);
    expect(k).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(deviceKey({ device_id: 'x'.repeat(4000) }, null, T0 + 50)).toBe(k);
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
    expect(a.leaseOf(100)?.expiresAt).toBe(T0 + 10 * DAY + DEFAULT_LEASE_SECONDS);
    expect(a.idFor('d=B')).toBe(101);
  });
  it('renews a lease when the device is seen', () => {
    const { a, clock } = setup({ leaseSeconds: 100 });
    a.allocate('d=A');
    clock.advance(90);
    expect(a.touch(100)).toBe(true);
    expect(a.touch(555)).toBe(false);
    clock.advance(90);
    expect(a.reclaimExpired()).toBe(0);
    clock.advance(20);
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
    const { a, clock } = setup({ start: 1, end: 3, leaseSeconds: 1000 });
    for (const k of ['a', 'b', 'c']) a.allocate(k);
    expect(a.allocate('d')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    expect(a.available).toBe(0);
    clock.advance(500);
    a.touch(3);
    a.allocate('a');
    clock.advance(600);
    // 'b' (id 2) expired; 'a' and id 3 were renewed.
    expect(a.allocate('d')).toEqual({ ok: true, id: 2, renewed: false });
    expect(a.allocate('e')).toEqual({ ok: false, reason: 'EXHAUSTED' });
  });
  it('an expired but not yet reclaimed lease is renewed for its device', () => {
    const { a, clock } = setup({ leaseSeconds: 10 });
    a.allocate('a');
    clock.advance(100);
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
    const { a, clock } = setup({ start: 1, end: 10000, newLeaseLimit: { max: 5, windowSeconds: 60 } });
    for (let i = 0; i < 5; i++) expect(a.allocate(`d${i}`).ok).toBe(true);
    expect(a.allocate('d5')).toEqual({ ok: false, reason: 'RATE_LIMITED' });
    expect(a.allocate('d0')).toMatchObject({ ok: true, renewed: true });
    clock.advance(59);
    expect(a.allocate('d5').ok).toBe(false);
    clock.advance(1);
    expect(a.allocate('d5')).toMatchObject({ ok: true, id: 6 });
  });
  it('validates its options', () => {
    expect(() => new IdAllocator({ start: 0 })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ end: 0xffffffff })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ start: 10, end: 5 })).toThrow(/below start/);
    expect(() => new IdAllocator({ leaseSeconds: 0 })).toThrow(HandshakeFieldError);
    expect(() => new IdAllocator({ maxLeases: -1 })).toThrow(HandshakeFieldError);
  });
});

describe('persistence', () => {
  it('survives a restart: same ids, released ids, cursor', () => {
    const { a, store, clock } = setup();
    a.allocate('a');
    a.allocate('b');
    a.allocate('c');
    a.release(101);
    a.close();
    const b = new IdAllocator({ start: 100, end: 109, clock: clock.now, store });
    expect(b.allocate('a')).toMatchObject({ id: 100, renewed: true });
    expect(b.allocate('d')).toMatchObject({ id: 101, renewed: false });
    expect(b.allocate('e')).toMatchObject({ id: 103 });
    expect(b.snapshot()).toMatchObject({ version: 1, next: 104 });
  });
  it('writes new leases at once after a quiet period, bursts at most once per interval', () => {
    const { a, store, clock } = setup({ start: 1, end: 1000 });
    a.allocate('a');
    expect(store.saves).toBe(1);
    a.allocate('b');
    a.allocate('c');
    expect(store.saves).toBe(1);
    clock.advance(1);
    a.allocate('d');
    expect(store.saves).toBe(2);
    expect(store.load()?.leases.length).toBe(4);
    // Renewals alone wait for the renewal interval.
    clock.advance(5);
    a.touch(1);
    a.touch(2);
    expect(store.saves).toBe(2);
    clock.advance(60);
    a.touch(3);
    expect(store.saves).toBe(3);
    a.close();
  });
  it('flushes a deferred burst from a timer', async () => {
    const { a, store } = setup({ start: 1, end: 1000, saveIntervalSeconds: 0.05 });
    a.allocate('a');
    a.allocate('b');
    // Only the reservation went to the store at once; the lease records follow the throttle.
    expect(store.saves).toBe(1);
    expect(store.load()?.leases.length).toBe(0);
    expect(store.load()?.reserved).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    await new Promise((r) => setTimeout(r, 120));
    expect(store.load()?.leases.length).toBe(2);
    a.close();
  });
  it('keeps the lease file in a JSON file with atomic replacement', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-leases-'));
    dirs.push(dir);
    const path = join(dir, 'sub', 'leases.json');
    let t = T0;
    const a = new IdAllocator({ start: 1000, end: 1010, clock: () => t, store: new JsonFileStore(path) });
    a.allocate('device_id=NODE_A');
    a.allocate('mac=aa:bb');
    t += 2;
    a.allocate('x');
    const snap = JSON.parse(readFileSync(path, 'utf8')) as LeaseSnapshot;
    expect(snap.leases.map((l) => l.id)).toEqual([1000, 1001, 1002]);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['leases.json']);
    const b = new IdAllocator({ start: 1000, end: 1010, clock: () => t, store: new JsonFileStore(path) });
    expect(b.idFor('mac=aa:bb')).toBe(1001);
  });
  it('refuses a corrupt or foreign lease file instead of reissuing ids', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-leases-'));
    dirs.push(dir);
    const path = join(dir, 'leases.json');
    writeFileSync(path, '{"version": 1, "leases": [');
    expect(() => new IdAllocator({ store: new JsonFileStore(path) })).toThrow(StoreError);
    writeFileSync(path, '{"version": 2}');
    expect(() => new IdAllocator({ store: new JsonFileStore(path) })).toThrow(/not a lease snapshot/);
    writeFileSync(path, JSON.stringify({ version: 1, start: 1, end: 9, next: 1, released: [], leases: [{ id: 1, key: 'a', expiresAt: 1 }, { id: 1, key: 'b', expiresAt: 1 }] }));
    expect(() => new IdAllocator({ store: new JsonFileStore(path) })).toThrow(/duplicate/);
    try {
      new IdAllocator({ store: new JsonFileStore(path) });
    } catch (e) {
      expect((e as StoreError).code).toBe('ERR_HANDSHAKE_STORE');
    }
  });
  it('leaves no temporary file behind when a write fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-leases-'));
    dirs.push(dir);
    const path = join(dir, 'is-a-dir');
    const s = new JsonFileStore<unknown>(path);
    s.save({ a: 1 });
    rmSync(path);
    // A directory where the file should be makes the rename fail.
    mkdirSync(join(path, 'x'), { recursive: true });
    expect(() => s.save({ a: 2 })).toThrow(StoreError);
    expect(readdirSync(dir)).toEqual(['is-a-dir']);
    expect(existsSync(join(path, 'x'))).toBe(true);
  });
});

describe('expired leases at the cap', () => {
  it('reclaims expired leases earliest first and reuses the lowest free id, as before', () => {
    const { a, clock } = setup({ start: 1, end: 5, leaseSeconds: 100 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) a.allocate(k);
    // Renew in an order that makes expiry differ from id order: 3, then 1 and 5.
    clock.advance(10);
    a.touch(3);
    clock.advance(10);
    a.touch(1);
    a.allocate('e'); // id 5, renewed
    clock.advance(85); // ids 2 and 4 expired (at 100), 3 (110) and 1, 5 (120) not yet
    expect(a.allocate('f')).toEqual({ ok: true, id: 2, renewed: false });
    expect(a.allocate('g')).toEqual({ ok: true, id: 4, renewed: false });
    expect(a.allocate('h')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    clock.advance(10); // 3 expired
    expect(a.allocate('h')).toEqual({ ok: true, id: 3, renewed: false });
    clock.advance(10); // 1 and 5 expired: the lowest goes first
    expect(a.reclaimExpired()).toBe(2);
    expect(a.allocate('i')).toMatchObject({ id: 1 });
    expect(a.allocate('j')).toMatchObject({ id: 5 });
    expect(a.leaseOf(1)?.key).toBe('i');
  });

  it('does not reclaim a renewed lease, nor a released one twice', () => {
    const { a, clock } = setup({ start: 1, end: 3, leaseSeconds: 100 });
    a.allocate('a');
    a.allocate('b');
    clock.advance(99);
    a.touch(1);
    a.release(2);
    expect(a.allocate('c')).toMatchObject({ id: 2 }); // a new lease on a released id
    clock.advance(2);
    expect(a.reclaimExpired()).toBe(0); // 1 renewed, 2 is c's fresh lease
    clock.advance(200);
    expect(a.reclaimExpired()).toBe(2);
    expect(a.size).toBe(0);
  });

  it('examines O(log n) expiry entries per ID_REQUEST at the cap, not every lease', () => {
    // Work per request from a new device with `n` unexpired leases held at the cap, counted in
    // expiry entries examined; the scan this replaces examined n per request.
    const stepsPerRequest = (n: number): number => {
      const a = new IdAllocator({ start: 1, end: 0xfffffffe, maxLeases: n, clock: () => T0, newLeaseLimit: { max: 1e9, windowSeconds: 60 } });
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
    const { a, clock } = setup({ start: 1, end: 3, newLeaseLimit: { max: 5, windowSeconds: 60 } });
    for (const k of ['a', 'b', 'c']) expect(a.allocate(k).ok).toBe(true);
    expect(a.allocate('d')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    expect(a.allocate('e')).toEqual({ ok: false, reason: 'EXHAUSTED' });
    expect(a.allocate('f')).toEqual({ ok: false, reason: 'RATE_LIMITED' });
    expect(a.allocate('a')).toMatchObject({ ok: true, renewed: true }); // renewals never limited
    expect(a.allocatePool('gw', 3)).toEqual({ ids: [], shortBy: 'RATE_LIMITED' });
    clock.advance(60);
    expect(a.allocate('f')).toEqual({ ok: false, reason: 'EXHAUSTED' });
  });
});

describe('durable id reservations', () => {
  it('writes once per reserveIds new leases, and a pool reserves its size at once', () => {
    const { a, store } = setup({ start: 1, end: 100_000, reserveIds: 8 });
    for (let i = 0; i < 8; i++) a.allocate(`d${i}`);
    expect(store.saves).toBe(1);
    expect(store.load()?.reserved).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    a.allocate('d8');
    expect(store.saves).toBe(2);
    expect(store.load()?.reserved).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
    const saves = store.saves;
    expect(a.allocatePool('gw', 20).ids).toHaveLength(20);
    expect(store.saves - saves).toBe(1);
    expect(store.load()?.reserved).toHaveLength(20);
  });

  it('holds every reserved id without a saved lease after a crash, never handing it to another device', () => {
    const { a, store, clock } = setup({ start: 1, end: 10, reserveIds: 4 });
    a.allocate('a'); // reserves 1..4 durably
    a.allocate('b');
    a.allocate('c');
    // Crash: the lease records of b and c were never saved (the throttle), only the reservation.
    expect(store.load()?.leases).toEqual([]);
    const b = new IdAllocator({ start: 1, end: 10, clock: clock.now, store, reserveIds: 4 });
    expect(b.quarantined).toBe(4);
    for (const id of [1, 2, 3, 4]) expect(b.leaseOf(id)?.key).toBe(`~sent:${id}`);
    expect(b.allocate('x')).toMatchObject({ id: 5 });
    expect(b.allocate('a')).toMatchObject({ id: 6, renewed: false }); // its old id stays held
    // The device that got id 2 sends data: its id stays held (renewed), others expire.
    clock.advance(DEFAULT_LEASE_SECONDS - 10);
    expect(b.touch(2)).toBe(true);
    clock.advance(20);
    expect(b.reclaimExpired()).toBe(5); // 1, 3, 4 (quarantined) and 5, 6
    expect(b.leaseOf(2)?.key).toBe('~sent:2');
    expect(b.allocate('y')).toMatchObject({ id: 1 });
  });

  it('gives the reservation up on a clean close', () => {
    const { a, store, clock } = setup({ start: 1, end: 10, reserveIds: 4 });
    a.allocate('a');
    a.close();
    expect(store.load()?.reserved).toEqual([]);
    const b = new IdAllocator({ start: 1, end: 10, clock: clock.now, store });
    expect(b.quarantined).toBe(0);
    expect(b.allocate('b')).toMatchObject({ id: 2 });
  });

  it('reserves the lowest free ids, so reuse order is unchanged', () => {
    const { a, store } = setup({ start: 1, end: 100, reserveIds: 3 });
    for (const k of ['a', 'b', 'c', 'd', 'e']) a.allocate(k);
    a.release(4);
    a.release(2);
    expect(a.allocate('f')).toMatchObject({ id: 2 });
    expect(store.load()?.reserved).toEqual([2, 4, 6]); // written before 2 went out: released first, then fresh
    expect(a.allocate('g')).toMatchObject({ id: 4 });
    expect(a.allocate('h')).toMatchObject({ id: 6 });
  });

  it('hands nothing out when the reservation cannot be written', () => {
    let fail = false;
    const store = new MemoryStore<LeaseSnapshot>();
    const failing = {
      load: () => store.load(),
      save: (s: LeaseSnapshot) => {
        if (fail) throw new StoreError('test store', 'disk full');
        store.save(s);
      },
    };
    const a = new IdAllocator({ start: 1, end: 10, clock: () => T0, store: failing, reserveIds: 1 });
    expect(a.allocate('a')).toMatchObject({ id: 1 });
    fail = true;
    expect(() => a.allocate('b')).toThrow(StoreError);
    expect(a.size).toBe(1);
    expect(a.idFor('b')).toBeUndefined();
    fail = false;
    expect(a.allocate('b')).toMatchObject({ id: 2 });
  });

  it('validates reserveIds', () => {
    for (const reserveIds of [0, -1, 1.5, Number.NaN]) expect(() => new IdAllocator({ reserveIds })).toThrow(HandshakeFieldError);
  });
});

describe('lease files of the wrong shape', () => {
  it('refuses them with StoreError instead of starting over and overwriting the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-leases-'));
    dirs.push(dir);
    const path = join(dir, 'leases.json');
    const good = { version: 1, start: 1, end: 9, next: 2, leases: [{ id: 1, key: 'a', expiresAt: T0 }], released: [] };
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
      { ...good, leases: [{ id: 1, key: 'a', expiresAt: T0, more: 1 }] },
      { ...good, leases: [{ id: 1, key: 'a', expiresAt: null }] },
      { ...good, leases: [{ id: 2 ** 32, key: 'a', expiresAt: T0 }] },
    ];
    for (const shape of shapes) {
      const text = JSON.stringify(shape) ?? 'null';
      writeFileSync(path, text);
      let error: unknown;
      try {
        new IdAllocator({ start: 1, end: 9, store: new JsonFileStore(path) });
      } catch (e) {
        error = e;
      }
      expect([text, error]).toEqual([text, expect.any(StoreError)]);
      expect((error as StoreError).code).toBe('ERR_HANDSHAKE_STORE');
      expect(readFileSync(path, 'utf8')).toBe(text);
    }
    writeFileSync(path, JSON.stringify(good));
    expect(new IdAllocator({ start: 1, end: 9, store: new JsonFileStore(path) }).idFor('a')).toBe(1);
  });

  it('removes stale temporary files of killed writers when the store opens, only its own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-leases-'));
    dirs.push(dir);
    // pid 999999999 cannot run (above the kernel's pid limit): its files are stale.
    const stale = ['.leases.json.999999999.1.tmp', '.leases.json.999999999.7.tmp'];
    const keep = ['leases.json', '.other.json.999999999.1.tmp', `.leases.json.${process.pid}.3.tmp`, 'leases.json.tmp'];
    for (const f of [...stale, ...keep]) writeFileSync(join(dir, f), '{}');
    const s = new JsonFileStore(join(dir, 'leases.json'));
    expect([...s.removedTempFiles].sort()).toEqual([...stale].sort());
    expect(readdirSync(dir).sort()).toEqual([...keep].sort());
    expect(new JsonFileStore(join(dir, 'leases.json'), { staleTempMs: 0 }).removedTempFiles).toEqual([`.leases.json.${process.pid}.3.tmp`]);
  });
});
