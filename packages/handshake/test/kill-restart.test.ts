import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { afterAll, describe, expect, it } from 'vitest';
import { IdAllocator, JsonFileStore, type LeaseSnapshot, OSHandshakeManager, type SessionSnapshot } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, '..', 'src');
const packetUrl = pathToFileURL(join(here, '..', '..', 'packet', 'dist', 'index.js')).href;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// The child answers ID_REQUESTs (and now and then an ID_POOL request) through the manager as fast
// as it can, with the default save throttle, and prints each id it sent back with the device it
// went to: what a device has received is acknowledged state.
const CHILD = (indexUrl: string) => `import { buildIdPoolRequest, buildIdRequest, IdAllocator, JsonFileStore, OSHandshakeManager, parseControlPacket } from '${indexUrl}';
const [path, round] = process.argv.slice(2);
const allocator = new IdAllocator({ store: new JsonFileStore(path), newLeaseLimit: { max: 1e9, windowSeconds: 60 }, maxLeases: 1e9 });
const server = new OSHandshakeManager({ allocator });
process.stdout.write('ready\\n');
for (let i = 0; ; i++) {
  const device = 'dev-' + round + '-' + i;
  const pool = i % 64 === 63;
  const request = pool ? buildIdPoolRequest(i & 0xffff, 3, { device_id: device }) : buildIdRequest(i & 0xffff, { device_id: device });
  const { response } = server.classifyAndDispatch(request);
  const answer = parseControlPacket(response);
  const ids = pool ? answer.ids : [answer.aid];
  if (ids === undefined || ids.some((id) => !Number.isInteger(id))) throw new Error('no id in ' + JSON.stringify(answer));
  // One line per answer, written synchronously before the next request is read.
  process.stdout.write(ids.map((id, k) => (pool ? device + '#' + k : device) + ' ' + id).join('\\n') + '\\n');
}
`;

// The child receives the first plain FULL frame of one device after another (each makes a
// DICT_READY session with a derived key), calls flush() every 16 devices and reports which
// sessions the flush covered ("flushed <aid>"), as well as each DICT_READY it answered.
const SESSION_CHILD = (indexUrl: string) => `import { frameLevelParser, JsonFileStore, OSHandshakeManager } from '${indexUrl}';
import { encodeFrame } from '${packetUrl}';
const [path, round] = process.argv.slice(2);
const server = new OSHandshakeManager({ sessionStore: new JsonFileStore(path), parser: frameLevelParser(), maxSessions: 1e6, maxPendingSessions: 1e6 });
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
    server.flush();
    process.stdout.write(pending.map((a) => 'flushed ' + a).join('\\n') + '\\n');
    pending = [];
  }
}
`;

describe('sessions across kill -9', () => {
  it('keeps every session a flush() covered, with its key', { timeout: 60_000 }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'hs-session-crash-'));
    dirs.push(work);
    const [indexUrl] = compileForChild([join(src, 'index.ts')], join(work, 'bundle'));
    const script = join(work, 'child.mjs');
    writeFileSync(script, SESSION_CHILD(indexUrl!));
    const path = join(work, 'sessions.json');
    const flushed = new Set<number>();
    let answered = 0;
    let missing = 0;
    const kills = 10;
    await killLoop({
      script,
      args: (round) => [path, String(round)],
      rounds: kills,
      minMs: 50,
      maxMs: 800,
      seed: 3,
      check: (_round, lines) => {
        for (const line of lines) {
          const [what, aid] = line.split(' ') as [string, string];
          if (what === 'flushed') flushed.add(Number(aid));
          else answered++;
        }
        const store = new JsonFileStore<SessionSnapshot>(path);
        const reader = new OSHandshakeManager({ sessionStore: store, maxSessions: 1e6, maxPendingSessions: 1e6 });
        for (const aid of flushed) {
          const s = reader.getSession(aid);
          if (!s?.dictReady || s.key === null || s.firstPlaintextTs !== 1_700_000_000_000 + aid) missing++;
        }
      },
    });
    console.log(`session kill test: ${kills} kills, ${answered} sessions answered, ${flushed.size} flushed, ${missing} flushed sessions missing after a kill`);
    expect(flushed.size).toBeGreaterThan(kills * 16);
    expect(missing).toBe(0);
  });
});

describe('leases across kill -9', () => {
  it('never gives an id that was sent to a device to another device after a restart', { timeout: 60_000 }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'hs-lease-crash-'));
    dirs.push(work);
    const [indexUrl] = compileForChild([join(src, 'index.ts')], join(work, 'bundle'));
    const script = join(work, 'child.mjs');
    writeFileSync(script, CHILD(indexUrl!));
    const path = join(work, 'leases.json');
    const owner = new Map<number, string>();
    const kills = 15;
    let answered = 0;
    let reused = 0;
    let notOnDisk = 0;
    await killLoop({
      script,
      args: (round) => [path, String(round)],
      rounds: kills,
      minMs: 50,
      maxMs: 1_500,
      seed: 7,
      check: (_round, lines) => {
        for (const line of lines) {
          const [device, idText] = line.split(' ') as [string, string];
          const id = Number(idText);
          const before = owner.get(id);
          if (before !== undefined && before !== device) reused++;
          else owner.set(id, device);
          answered++;
        }
        // Every id sent so far is held on disk (a lease, or a reservation) after the kill.
        const reader = new IdAllocator({ store: new JsonFileStore<LeaseSnapshot>(path), maxLeases: 1e9 });
        for (const id of owner.keys()) if (reader.leaseOf(id) === undefined) notOnDisk++;
      },
    });
    console.log(`lease kill test: ${kills} kills, ${answered} ids answered, ${reused} ids reused, ${notOnDisk} sent ids not held on disk after a kill`);
    // The last reader opened the store after the last kill: what killed writers left is gone.
    expect(readdirSync(work).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(answered).toBeGreaterThan(kills * 100);
    expect(reused).toBe(0);
    expect(notOnDisk).toBe(0);
  });
});
