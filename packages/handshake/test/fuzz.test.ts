/**
 * 1e6 random, truncated, corrupted and hostile packets through classifyAndDispatch on three
 * nodes (duplex server with an allocator, tx_only, rx_only): dispatch never throws, every answer
 * has the reference's shape, and what the nodes keep stays under their caps.
 */
import { seededRandom } from '@opensynaptic/config/kill-loop';
import { deriveSessionKey } from '@opensynaptic/crc';
import { encodeFrame } from '@opensynaptic/packet';
import { expect, it } from 'vitest';
import {
  buildIdAssign,
  buildIdPoolRequest,
  buildIdPoolResponse,
  buildIdRequest,
  buildNack,
  buildSecureDictReady,
  buildTimeResponse,
  type DispatchOutcome,
  frameLevelParser,
  IdAllocator,
  OSHandshakeManager,
} from '../src/index.js';

const PACKETS = 1_000_000;
const TYPES = new Set(['DATA', 'CTRL', 'IGNORED', 'ERROR', 'UNKNOWN']);
const CTRL = [1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14];
const DATA = [63, 64, 170, 171, 127, 128];

// Seeded, so a failure is reproducible.
const rnd = seededRandom(0x9e3779b9);
const int = (n: number) => Math.floor(rnd() * n);
function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

const KEYS = Array.from({ length: 16 }, (_, i) => ({ aid: 1000 + i, ts: 1_700_000_000_000 + i, key: deriveSessionKey(1000 + i, 1_700_000_000_000 + i) }));
const BODY = new TextEncoder().encode('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|');

function controlPacket(): Uint8Array {
  switch (int(10)) {
    case 0:
      return buildIdRequest(int(65536), rnd() < 0.5 ? { device_id: `fake-${int(1e9)}` } : { n: int(1000), s: 'x'.repeat(int(64)) });
    case 1:
      return buildIdAssign(int(65536), int(3) === 0 ? 0 : int(2 ** 32), rnd() < 0.5 ? int(2 ** 40) : null);
    case 2:
      return buildIdPoolRequest(int(65536), int(400), { gw: int(100) });
    case 3:
      return buildIdPoolResponse(int(65536), Array.from({ length: int(8) }, () => int(2 ** 32)));
    case 4:
      return buildNack(int(65536), 'x'.repeat(int(30)));
    case 5:
      return buildTimeResponse(int(65536), int(2 ** 40));
    case 6:
      return buildSecureDictReady(int(2 ** 32), rnd() < 0.5 ? int(2 ** 50) : int(100));
    default: {
      const p = randomBytes(3 + int(12));
      p[0] = CTRL[int(CTRL.length)]!;
      return p;
    }
  }
}

function dataFrame(): Uint8Array {
  const known = KEYS[int(KEYS.length)]!;
  const secure = rnd() < 0.3;
  const aid = secure ? known.aid : rnd() < 0.5 ? known.aid : int(2 ** 32);
  const ts = rnd() < 0.1 ? 0 : secure ? known.ts + int(1000) : 1_700_000_000_000 + int(1e9);
  const cmd = [63, 170, 127][int(3)]!;
  return encodeFrame({ cmd, routes: aid, tid: 1 + int(255), timestamp: ts, body: cmd === 127 ? new Uint8Array(0) : BODY, key: secure ? known.key : null });
}

function mutate(p: Uint8Array): Uint8Array {
  switch (int(4)) {
    case 0:
      return p.subarray(0, int(p.length + 1));
    case 1: {
      const q = p.slice();
      if (q.length) {
        const i = int(q.length);
        q[i] = q[i]! ^ (1 << int(8));
      }
      return q;
    }
    case 2: {
      const q = new Uint8Array(p.length + 1 + int(8));
      q.set(p);
      q.set(randomBytes(q.length - p.length), p.length);
      return q;
    }
    default:
      return p;
  }
}

function nextPacket(): Uint8Array {
  const r = rnd();
  if (r < 0.3) return randomBytes(int(48));
  if (r < 0.55) return mutate(controlPacket());
  if (r < 0.8) return mutate(dataFrame());
  if (r < 0.85) return new Uint8Array(4096 + int(200)).fill(0x20).fill(1, 0, 1);
  const p = randomBytes(1 + int(40));
  p[0] = DATA[int(DATA.length)]!;
  return p;
}

function checkShape(out: DispatchOutcome, packet: Uint8Array): void {
  if (!TYPES.has(out.type)) throw new Error(`type ${out.type}`);
  if (!(out.response === null || out.response instanceof Uint8Array)) throw new Error('response');
  if (out.cmd !== (packet.length ? packet[0] : 0)) throw new Error(`cmd ${out.cmd}`);
  if (out.type === 'UNKNOWN' && out.response?.[0] !== 6) throw new Error('UNKNOWN without NACK');
  if (out.type === 'IGNORED' && out.response !== null) throw new Error('IGNORED with a response');
  if (out.type === 'ERROR' && packet.length > 0 && packet[0] !== 13 && packet[0] !== 14) throw new Error(`ERROR for cmd ${packet[0]}: ${JSON.stringify(out.result)}`);
}

it(
  `dispatches ${PACKETS} hostile packets without throwing, within its caps`,
  () => {
    let t = 1_700_000_000;
    const clockMs = () => t * 1000;
    const caps = { maxSessions: 2000, maxPendingSessions: 200, maxTrackedAids: 2000 };
    const allocator = new IdAllocator({ start: 1, end: 0xfffffffe, clockMs, maxLeases: 5000, newLeaseLimit: { max: 500, windowMs: 10_000 } });
    const nodes = [
      new OSHandshakeManager({ clockMs, allocator, parser: frameLevelParser(), antiReplay: 'reject-old', ...caps }),
      new OSHandshakeManager({ clockMs, role: 'tx_only', parser: frameLevelParser(), ...caps }),
      new OSHandshakeManager({ clockMs, role: 'rx_only', parser: frameLevelParser({ skipTimestamp: true }), ...caps }),
    ];
    const counts: Record<string, number> = {};
    let heapAfterWarmup = 0;
    for (let i = 0; i < PACKETS; i++) {
      if (i % 100 === 0) t += 1;
      if (i === 100_000) heapAfterWarmup = process.memoryUsage().heapUsed;
      const packet = nextPacket();
      const node = nodes[i % 3]!;
      let out: DispatchOutcome;
      try {
        out = node.classifyAndDispatch(packet, `10.0.${i & 255}.1:5000`);
      } catch (e) {
        throw new Error(`packet ${i} (${Buffer.from(packet).toString('hex')}) threw ${String(e)}`);
      }
      checkShape(out, packet);
      counts[out.type] = (counts[out.type] ?? 0) + 1;
    }
    for (const n of nodes) {
      expect(n.pendingSessionCount).toBeLessThanOrEqual(caps.maxPendingSessions);
      expect(n.sessionCount).toBeLessThanOrEqual(caps.maxSessions + caps.maxPendingSessions);
      expect(n.trackedAidCount).toBeLessThanOrEqual(caps.maxTrackedAids);
    }
    expect(allocator.size).toBeLessThanOrEqual(5000);
    // Every kind of answer was exercised, and the caps were actually reached.
    for (const type of TYPES) expect(counts[type] ?? 0).toBeGreaterThan(1000);
    expect(nodes[0]!.pendingSessionCount).toBe(caps.maxPendingSessions);
    expect(allocator.size).toBe(5000);
    const growth = process.memoryUsage().heapUsed - heapAfterWarmup;
    expect(growth).toBeLessThan(64 * 1024 * 1024);
    console.log(`fuzz: ${JSON.stringify(counts)}; sessions ${nodes.map((n) => n.sessionCount).join('/')}; leases ${allocator.size}; heap growth ${(growth / 1048576).toFixed(1)} MiB`);
  },
  120_000,
);
