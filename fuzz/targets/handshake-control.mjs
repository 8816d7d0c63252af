// Control packets: parseControlPacket on any bytes (typed errors only), and a server-side
// OSHandshakeManager (allocator, fusion parser) dispatching a sequence of packets: it never
// throws, every response it builds parses back, and a data frame's failure cause is typed.
import { OSVisualFusionEngine } from '../../packages/fusion/dist/index.js';
import { IdAllocator, OSHandshakeManager, parseControlPacket } from '../../packages/handshake/dist/index.js';
import { expectTyped, splitLengths } from './common.mjs';

let now = 1_700_000_000;
const clock = () => now;

let mgr = null;
let uses = 0;

function fresh() {
  const engine = new OSVisualFusionEngine({ backend: 'ts', clock: () => now * 1000 });
  const m = new OSHandshakeManager({ clock, allocator: new IdAllocator({ clock, maxLeases: 64 }), parser: engine, maxSessions: 64, maxTrackedAids: 64, antiReplay: 'strict' });
  engine.security = m;
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
      const out = mgr.classifyAndDispatch(p, { host: '10.0.0.1', port: 9 });
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
