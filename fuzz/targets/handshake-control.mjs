// Control packets: parseControlPacket on any bytes (typed errors only), and a server-side
// OSHandshakeManager (allocator, fusion parser) dispatching a sequence of packets: it never
// throws, every response it builds parses back, and a data frame's failure cause is typed. Each
// manager starts with an established secure session for aid 42; no control packet may change its
// key or drop it (data frames from 42 itself may).
import { OSVisualFusionEngine } from '../../packages/fusion/dist/index.js';
import { IdAllocator, OSHandshakeManager, parseControlPacket } from '../../packages/handshake/dist/index.js';
import { encodeFrame } from '../../packages/packet/dist/index.js';
import { expectTyped, hex, splitLengths } from './common.mjs';

const DATA = new Set([63, 64, 170, 171, 127, 128]);

let now = 1_700_000_000;
const clockMs = () => now * 1000;

let mgr = null;
let uses = 0;

function fresh() {
  const engine = new OSVisualFusionEngine({ backend: 'ts', clock: () => now * 1000 });
  const m = new OSHandshakeManager({ clockMs, allocator: new IdAllocator({ clockMs, maxLeases: 64 }), parser: engine, maxSessions: 64, maxTrackedAids: 64, antiReplay: 'strict' });
  engine.security = m;
  // Device 42 goes secure: its plain FULL frame, then a secure HEART with the derived key.
  const ts = now * 1000;
  m.classifyAndDispatch(encodeFrame({ cmd: 63, routes: 42, tid: 1, timestamp: ts, body: new TextEncoder().encode('42;D.1.AYvP5WgA|S1>OK.Cel:1B3|') }));
  const key = m.getSession(42)?.key;
  if (key) m.classifyAndDispatch(encodeFrame({ cmd: 127, routes: 42, tid: 1, timestamp: ts + 1000, body: new Uint8Array(0), key }));
  if (m.getSession(42)?.state !== 'SECURE') throw new Error('setup: session 42 did not become SECURE');
  return m;
}

export default {
  maxLen: 8192,
  dict: [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3), Uint8Array.of(4), Uint8Array.of(5), Uint8Array.of(6), Uint8Array.of(9), Uint8Array.of(10), Uint8Array.of(11), Uint8Array.of(12), Uint8Array.of(13), Uint8Array.of(14), Uint8Array.of(0, 0, 0, 42), '{"a":1}', '{', '"', Uint8Array.of(0xff, 0xff)],
  fuzz(input) {
    if (mgr === null || ++uses % 128 === 0) mgr = fresh();
    for (const p of splitLengths(input, 8)) {
      try {
        parseControlPacket(p);
      } catch (e) {
        expectTyped(e, 'parseControlPacket');
      }
      now += p.length % 3;
      const before = mgr.getSession(42);
      const keyBefore = before?.state === 'SECURE' && before.key ? hex(before.key) : null;
      const out = mgr.classifyAndDispatch(p, { host: '10.0.0.1', port: 9 });
      if (keyBefore !== null && !(DATA.has(p[0]) && p.length >= 6 && p[1] > 0)) {
        const after = mgr.getSession(42);
        if (!after) throw new Error(`control packet cmd ${p[0]} dropped the established session of aid 42`);
        if (!after.key || hex(after.key) !== keyBefore) throw new Error(`control packet cmd ${p[0]} replaced the established session key of aid 42`);
      }
      if (out === null || typeof out !== 'object' || typeof out.type !== 'string') throw new Error('dispatch returned no outcome');
      if (out.type === 'ERROR' && /is not a function|Cannot read|undefined|RangeError|TypeError/.test(out.result.error)) {
        throw new Error(`dispatch caught an untyped error: ${out.result.error}`);
      }
      if (out.type === 'DATA' && out.result.cause) expectTyped(out.result.cause, 'data frame parser');
      if (out.response) {
        try {
          parseControlPacket(out.response);
        } catch (e) {
          // A response may be a data frame? Control responses must parse.
          throw new Error(`response does not parse back: ${e.message}`);
        }
      }
    }
  },
};
