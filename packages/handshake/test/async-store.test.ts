import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  type LeaseSnapshot,
  OSHandshakeManager,
  parseControlPacket,
  type SessionSnapshot,
  SnapshotMirror,
} from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const storeUrl = pathToFileURL(join(here, '..', '..', 'store', 'dist', 'index.js')).href;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
const unlimited = { newLeaseLimit: { max: 1e9, windowSeconds: 60 }, maxLeases: 1e9 };

describe('leases on a write-behind store (SnapshotMirror)', () => {
  it('sends no ID_ASSIGN from the synchronous dispatch before a reservation is flushed', async () => {
    const store = new MemoryStore();
    const allocator = new IdAllocator({ store: await SnapshotMirror.open<LeaseSnapshot>(store, 'leases') });
    const server = new OSHandshakeManager({ allocator });
    expect(allocator.needsReservation()).toBe(true);
    const out = server.classifyAndDispatch(buildIdRequest(1, { device_id: 'a' }));
    expect(out.type).toBe('ERROR');
    expect(out.response).toBeNull();
    expect(allocator.leaseOf(1)).toBeUndefined();
  });

  it('awaits the reservation once, then answers from the block reserved ahead, topping it up behind', async () => {
    const root = tempDir('hs-async-');
    const store = await FileStore.open({ root });
    const allocator = new IdAllocator({ store: await SnapshotMirror.open<LeaseSnapshot>(store, 'leases'), reserveIds: 8 });
    const server = new OSHandshakeManager({ allocator });
    const first = await server.classifyAndDispatchAsync(buildIdRequest(1, { device_id: 'd0' }));
    expect((parseControlPacket(first.response!) as { aid?: number }).aid).toBe(1);
    // The reservation was on disk before the answer: a reader of the file holds ids 1..8.
    const reader = new IdAllocator({ store: await SnapshotMirror.open<LeaseSnapshot>(await FileStore.open({ root }), 'leases') });
    for (let id = 1; id <= 8; id++) expect(reader.leaseOf(id)).toBeDefined();
    let waited = 0;
    for (let i = 1; i < 40; i++) {
      if (allocator.needsReservation()) waited++;
      const out = await server.classifyAndDispatchAsync(buildIdRequest(i + 1, { device_id: `d${i}` }));
      expect((parseControlPacket(out.response!) as { aid?: number }).aid).toBe(i + 1);
      // The device's round trip: the background top-up lands meanwhile (a later flush of the
      // store resolves after it, and a macrotask after every continuation of it).
      await store.flush();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(waited).toBe(0);
    const pool = await server.classifyAndDispatchAsync(buildIdPoolRequest(50, 100, { device_id: 'p' }));
    expect((parseControlPacket(pool.response!) as { ids?: number[] }).ids).toHaveLength(100);
    await server.persist();
    const after = new IdAllocator({ store: await SnapshotMirror.open<LeaseSnapshot>(await FileStore.open({ root }), 'leases') });
    for (let id = 1; id <= 140; id++) expect(after.leaseOf(id)).toBeDefined();
  });

  it('answers ERROR, not an id, when the store cannot flush the reservation', async () => {
    const inner = new MemoryStore();
    const failing: Store = {
      durability: 'none',
      kinds: inner.kinds,
      get: (k, key) => inner.get(k, key),
      getMany: (k, keys) => inner.getMany(k, keys),
      keys: (k) => inner.keys(k),
      write: (batch) => inner.write(batch),
      flush: () => Promise.reject(new Error('disk gone')),
      close: () => inner.close(),
    };
    const server = new OSHandshakeManager({ allocator: new IdAllocator({ store: await SnapshotMirror.open<LeaseSnapshot>(failing, 'leases') }) });
    const out = await server.classifyAndDispatchAsync(buildIdRequest(1, { device_id: 'a' }));
    expect(out.type).toBe('ERROR');
    expect(out.response).toBeNull();
  });
});

describe('sessions on a write-behind store', () => {
  it('keeps sessions once persist() resolved', async () => {
    const root = tempDir('hs-async-sess-');
    const opts = { parser: frameLevelParser(), maxSessions: 100, maxPendingSessions: 100 };
    const server = new OSHandshakeManager({ ...opts, sessionStore: await SnapshotMirror.open<SessionSnapshot>(await FileStore.open({ root }), 'sessions') });
    const body = new TextEncoder().encode('NODE.1.AYvP5WgA|T1>K.A:cmwc|');
    const out = server.classifyAndDispatch(encodeFrame({ cmd: 63, routes: 77, tid: 1, timestamp: 1_700_000_000_000, body }));
    expect(out.response?.[0]).toBe(13);
    await server.persist();
    const reader = new OSHandshakeManager({ ...opts, sessionStore: await SnapshotMirror.open<SessionSnapshot>(await FileStore.open({ root }), 'sessions') });
    expect(reader.getSession(77)?.dictReady).toBe(true);
  });
});

// As the lease test of kill-restart.test.ts, on the asynchronous path: every id the child sent
// must be held after a kill -9.
const CHILD = (indexUrl: string) => `import { buildIdPoolRequest, buildIdRequest, IdAllocator, OSHandshakeManager, parseControlPacket, SnapshotMirror } from '${indexUrl}';
import { FileStore } from '${storeUrl}';
const [root, round] = process.argv.slice(2);
const store = await FileStore.open({ root });
const allocator = new IdAllocator({ store: await SnapshotMirror.open(store, 'leases'), newLeaseLimit: { max: 1e9, windowSeconds: 60 }, maxLeases: 1e9 });
const server = new OSHandshakeManager({ allocator });
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

describe('leases on the asynchronous store across kill -9', () => {
  it('never gives an id that was sent to a device to another device after a restart', { timeout: 90_000 }, async () => {
    const work = tempDir('hs-async-kill-');
    const [indexUrl] = compileForChild([join(here, '..', 'src', 'index.ts')], join(work, 'bundle'));
    const script = join(work, 'child.mjs');
    writeFileSync(script, CHILD(indexUrl!));
    const root = join(work, 'store');
    const owner = new Map<number, string>();
    let answered = 0;
    let reused = 0;
    let notOnDisk = 0;
    const kills = 10;
    await killLoop({
      script,
      args: (round) => [root, String(round)],
      rounds: kills,
      minMs: 50,
      maxMs: 1_000,
      seed: 11,
      check: async (_round, lines) => {
        for (const line of lines) {
          const [device, idText] = line.split(' ') as [string, string];
          const id = Number(idText);
          const before = owner.get(id);
          if (before !== undefined && before !== device) reused++;
          else owner.set(id, device);
          answered++;
        }
        const reader = new IdAllocator({ store: await SnapshotMirror.open<LeaseSnapshot>(await FileStore.open({ root }), 'leases'), ...unlimited });
        for (const id of owner.keys()) if (reader.leaseOf(id) === undefined) notOnDisk++;
      },
    });
    console.log(`async lease kill test: ${kills} kills, ${answered} ids answered, ${reused} ids reused, ${notOnDisk} sent ids not held on disk after a kill`);
    expect(answered).toBeGreaterThan(kills * 50);
    expect(reused).toBe(0);
    expect(notOnDisk).toBe(0);
  });
});
