import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { encodeFrame } from '@opensynaptic/packet';
import { FileStore, MemoryStore, type Store } from '@opensynaptic/store';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildIdPoolRequest,
  buildIdRequest,
  frameLevelParser,
  IdAllocator,
  type LeaseKinds,
  OSHandshakeManager,
  parseControlPacket,
  type SessionKinds,
} from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const storeUrl = pathToFileURL(join(here, '..', '..', 'store', 'dist', 'index.js')).href;
const packetUrl = pathToFileURL(join(here, '..', '..', 'packet', 'dist', 'index.js')).href;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
const unlimited = { newLeaseLimit: { max: 1e9, windowMs: 60_000 }, maxLeases: 1e9 };
const openLeases = (root: string) => FileStore.open<LeaseKinds>({ root, kinds: ['leases'] });

async function reader(root: string): Promise<IdAllocator> {
  const a = new IdAllocator({ store: await openLeases(root), ...unlimited });
  await a.open();
  return a;
}

describe('leases on a store of the contract', () => {
  it('sends no ID_ASSIGN from the synchronous dispatch before a reservation is flushed', async () => {
    const allocator = new IdAllocator({ store: new MemoryStore<LeaseKinds>({ kinds: ['leases'] }) });
    const server = new OSHandshakeManager({ allocator });
    await server.open();
    expect(allocator.needsReservation()).toBe(true);
    const out = server.classifyAndDispatch(buildIdRequest(1, { device_id: 'a' }));
    expect(out.type).toBe('ERROR');
    expect(out.response).toBeNull();
    expect(allocator.leaseOf(1)).toBeUndefined();
  });

  it('awaits the reservation once, then answers from the block reserved ahead, topping it up behind', async () => {
    const root = tempDir('hs-async-');
    const store = await openLeases(root);
    const allocator = new IdAllocator({ store, reserveIds: 8 });
    const server = new OSHandshakeManager({ allocator });
    await server.open();
    const first = await server.classifyAndDispatchAsync(buildIdRequest(1, { device_id: 'd0' }));
    expect((parseControlPacket(first.response!) as { aid?: number }).aid).toBe(1);
    // The reservation was on disk before the answer: a reader of the files holds ids 1..8.
    const early = await reader(root);
    for (let id = 1; id <= 8; id++) expect(early.leaseOf(id)).toBeDefined();
    let waited = 0;
    for (let i = 1; i < 40; i++) {
      if (allocator.needsReservation()) waited++;
      const out = await server.classifyAndDispatchAsync(buildIdRequest(i + 1, { device_id: `d${i}` }));
      expect((parseControlPacket(out.response!) as { aid?: number }).aid).toBe(i + 1);
      // The device's round trip: the background top-up lands meanwhile.
      await store.flush();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(waited).toBe(0);
    const pool = await server.classifyAndDispatchAsync(buildIdPoolRequest(50, 100, { device_id: 'p' }));
    expect((parseControlPacket(pool.response!) as { ids?: number[] }).ids).toHaveLength(100);
    await server.flush();
    const after = await reader(root);
    for (let id = 1; id <= 140; id++) expect(after.leaseOf(id)).toBeDefined();
  });

  it('answers ERROR, not an id, when the store cannot flush the reservation', async () => {
    const inner = new MemoryStore<LeaseKinds>({ kinds: ['leases'] });
    const failing: Store<LeaseKinds> = {
      durability: 'process',
      kinds: inner.kinds,
      get: (k, key) => inner.get(k, key),
      getMany: (k, keys) => inner.getMany(k, keys),
      keys: (k) => inner.keys(k),
      write: (batch) => inner.write(batch),
      flush: () => Promise.reject(new Error('disk gone')),
      close: () => inner.close(),
    };
    const server = new OSHandshakeManager({ allocator: new IdAllocator({ store: failing }) });
    await server.open();
    const out = await server.classifyAndDispatchAsync(buildIdRequest(1, { device_id: 'a' }));
    expect(out.type).toBe('ERROR');
    expect(out.response).toBeNull();
  });
});

describe('sessions on a store of the contract', () => {
  it('keeps sessions once flush() resolved', async () => {
    const root = tempDir('hs-async-sess-');
    const opts = { parser: frameLevelParser(), maxSessions: 100, maxPendingSessions: 100 };
    const server = new OSHandshakeManager({ ...opts, sessionStore: await FileStore.open<SessionKinds>({ root, kinds: ['sessions'] }) });
    await server.open();
    const body = new TextEncoder().encode('NODE.1.AYvP5WgA|T1>K.A:cmwc|');
    const out = server.classifyAndDispatch(encodeFrame({ cmd: 63, routes: 77, tid: 1, timestamp: 1_700_000_000_000, body }));
    expect(out.response?.[0]).toBe(13);
    await server.flush();
    const again = new OSHandshakeManager({ ...opts, sessionStore: await FileStore.open<SessionKinds>({ root, kinds: ['sessions'] }) });
    await again.open();
    expect(again.getSession(77)?.dictReady).toBe(true);
  });
});

// The child answers ID_REQUESTs (and now and then an ID_POOL request) as fast as it can, with
// the default save throttle, and prints each id it sent with the device it went to: what a
// device has received is acknowledged state. With the `files` layout every lease is a file of
// its own, so a kill in the middle of a flush leaves some records written and others not.
const LEASE_CHILD = (indexUrl: string) => `import { buildIdPoolRequest, buildIdRequest, IdAllocator, OSHandshakeManager, parseControlPacket } from '${indexUrl}';
import { FileStore } from '${storeUrl}';
const [root, round, layout] = process.argv.slice(2);
const store = await FileStore.open({ root, kinds: ['leases'], layouts: layout === 'snapshot' ? { leases: { type: 'snapshot' } } : {} });
const allocator = new IdAllocator({ store, newLeaseLimit: { max: 1e9, windowMs: 60000 }, maxLeases: 1e9 });
const server = new OSHandshakeManager({ allocator });
await server.open();
process.stdout.write('ready\\n');
for (let i = 0; ; i++) {
  const device = 'dev-' + round + '-' + i;
  const pool = i % 64 === 63;
  const request = pool ? buildIdPoolRequest(i & 0xffff, 3, { device_id: device }) : buildIdRequest(i & 0xffff, { device_id: device });
  const { response } = await server.classifyAndDispatchAsync(request);
  const answer = parseControlPacket(response);
  const ids = pool ? answer.ids : [answer.aid];
  if (ids === undefined || ids.some((id) => !Number.isInteger(id))) throw new Error('no id in ' + JSON.stringify(answer));
  process.stdout.write(ids.map((id, k) => (pool ? device + '#' + k : device) + ' ' + id).join('\\n') + '\\n');
}
`;

describe('leases across kill -9', () => {
  for (const layout of ['files', 'snapshot'] as const) {
    it(`never gives an id that was sent to a device to another device after a restart (${layout} layout)`, { timeout: 90_000 }, async () => {
      const work = tempDir('hs-lease-kill-');
      const [indexUrl] = compileForChild([join(here, '..', 'src', 'index.ts')], join(work, 'bundle'));
      const script = join(work, 'child.mjs');
      writeFileSync(script, LEASE_CHILD(indexUrl!));
      const root = join(work, 'store');
      const owner = new Map<number, string>();
      let answered = 0;
      let reused = 0;
      let notOnDisk = 0;
      const kills = 8;
      await killLoop({
        script,
        args: (round) => [root, String(round), layout],
        rounds: kills,
        minMs: 50,
        maxMs: 1_000,
        seed: layout === 'files' ? 11 : 7,
        check: async (_round, lines) => {
          for (const line of lines) {
            const [device, idText] = line.split(' ') as [string, string];
            const id = Number(idText);
            const before = owner.get(id);
            if (before !== undefined && before !== device) reused++;
            else owner.set(id, device);
            answered++;
          }
          // Every id sent so far is held on disk (a lease, or a reservation) after the kill.
          const store = await FileStore.open<LeaseKinds>({ root, kinds: ['leases'], layouts: layout === 'snapshot' ? { leases: { type: 'snapshot' } } : {} });
          const a = new IdAllocator({ store, ...unlimited });
          await a.open();
          for (const id of owner.keys()) if (a.leaseOf(id) === undefined) notOnDisk++;
          await store.close();
        },
      });
      console.log(`lease kill test (${layout}): ${kills} kills, ${answered} ids answered, ${reused} ids reused, ${notOnDisk} sent ids not held on disk after a kill`);
      expect(readdirSync(root, { recursive: true }).filter((f) => String(f).endsWith('.tmp'))).toEqual([]);
      expect(answered).toBeGreaterThan(kills * 50);
      expect(reused).toBe(0);
      expect(notOnDisk).toBe(0);
    });
  }
});

// The child receives the first plain FULL frame of one device after another (each makes a
// DICT_READY session with a derived key), awaits flush() every 16 devices and reports which
// sessions the flush covered ("flushed <aid>"), as well as each DICT_READY it answered.
const SESSION_CHILD = (indexUrl: string) => `import { frameLevelParser, OSHandshakeManager } from '${indexUrl}';
import { encodeFrame } from '${packetUrl}';
import { FileStore } from '${storeUrl}';
const [root, round] = process.argv.slice(2);
const store = await FileStore.open({ root, kinds: ['sessions'], layouts: { sessions: { type: 'snapshot' } } });
const server = new OSHandshakeManager({ sessionStore: store, parser: frameLevelParser(), maxSessions: 1e6, maxPendingSessions: 1e6 });
await server.open();
const body = new TextEncoder().encode('NODE.1.AYvP5WgA|T1>K.A:cmwc|');
process.stdout.write('ready\\n');
let pending = [];
for (let i = 0; ; i++) {
  const aid = 1 + Number(round) * 1_000_000 + i;
  const frame = encodeFrame({ cmd: 63, routes: aid, tid: 1, timestamp: 1_700_000_000_000 + aid, body });
  const { response } = server.classifyAndDispatch(frame);
  if (!response || response[0] !== 13) throw new Error('no SECURE_DICT_READY for ' + aid);
  process.stdout.write('answered ' + aid + '\\n');
  pending.push(aid);
  if (pending.length === 16) {
    await server.flush();
    process.stdout.write(pending.map((a) => 'flushed ' + a).join('\\n') + '\\n');
    pending = [];
  }
}
`;

describe('sessions across kill -9', () => {
  it('keeps every session a flush() covered, with its key', { timeout: 60_000 }, async () => {
    const work = tempDir('hs-session-kill-');
    const [indexUrl] = compileForChild([join(here, '..', 'src', 'index.ts')], join(work, 'bundle'));
    const script = join(work, 'child.mjs');
    writeFileSync(script, SESSION_CHILD(indexUrl!));
    const root = join(work, 'store');
    const flushed = new Set<number>();
    let answered = 0;
    let missing = 0;
    const kills = 10;
    await killLoop({
      script,
      args: (round) => [root, String(round)],
      rounds: kills,
      minMs: 50,
      maxMs: 800,
      seed: 3,
      check: async (_round, lines) => {
        for (const line of lines) {
          const [what, aid] = line.split(' ') as [string, string];
          if (what === 'flushed') flushed.add(Number(aid));
          else answered++;
        }
        const store = await FileStore.open<SessionKinds>({ root, kinds: ['sessions'], layouts: { sessions: { type: 'snapshot' } } });
        const m = new OSHandshakeManager({ sessionStore: store, maxSessions: 1e6, maxPendingSessions: 1e6 });
        await m.open();
        for (const aid of flushed) {
          const s = m.getSession(aid);
          if (!s?.dictReady || s.key === null || s.firstPlaintextTs !== 1_700_000_000_000 + aid) missing++;
        }
        await store.close();
      },
    });
    console.log(`session kill test: ${kills} kills, ${answered} sessions answered, ${flushed.size} flushed, ${missing} flushed sessions missing after a kill`);
    expect(flushed.size).toBeGreaterThan(kills * 16);
    expect(missing).toBe(0);
  });
});
