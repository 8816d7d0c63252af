import { compare } from '@opensynaptic/config/bench';
import { encodeFrame } from '@opensynaptic/packet';
import { buildIdRequest, buildPing, frameLevelParser, HandshakeRequester, IdAllocator, OSHandshakeManager } from '../dist/index.js';

const t = 1_700_000_000;
const clock = () => t;
const server = new OSHandshakeManager({ clock, allocator: new IdAllocator({ start: 1, end: 1_000_000, clock }), parser: frameLevelParser() });
const ping = buildPing(7);
// One known device asking again: the lease is renewed and the same id sent back.
const meta = { device_id: 'NODE_A', type: 'sensor_node', hw: 'ESP32' };
const idRequest = buildIdRequest(8, meta);
const body = new TextEncoder().encode('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|');
const frame = encodeFrame({ cmd: 63, routes: 42, tid: 1, timestamp: 1_700_000_000_000, body });
server.classifyAndDispatch(frame);
let sink = 0;
await compare('@opensynaptic/handshake: ns per dispatched packet', [
  { name: 'PING -> PONG', inner: 1000, impls: { ts: () => { sink ^= server.classifyAndDispatch(ping).response.length; } } },
  { name: 'ID_REQUEST -> ID_ASSIGN (known device)', inner: 200, impls: { ts: () => { sink ^= server.classifyAndDispatch(idRequest).response.length; } } },
  { name: 'plain FULL, session ready (frame-level parser)', inner: 500, impls: { ts: () => { sink ^= server.classifyAndDispatch(frame).cmd; } } },
]);

// Request/response round trip over an in-process pair: the requester's send hands the packet to the
// server's dispatch and the answer straight back to `handle`, so each request is settled inside the
// call (real timers are armed and cleared, the resolved promise is not awaited).
const requester = new HandshakeRequester({
  send: (p) => {
    const { response } = server.classifyAndDispatch(p);
    if (response) requester.handle(response);
  },
});
await compare('@opensynaptic/handshake: ns per request/response round trip (in-process pair, settled synchronously)', [
  { name: 'ping() -> PONG', inner: 200, impls: { ts: () => { requester.ping(); } } },
  { name: 'requestId() -> ID_ASSIGN (known device)', inner: 100, impls: { ts: () => { requester.requestId(meta); } } },
]);
if (requester.pending !== 0) throw new Error('requests left pending');

// The same round trips awaited one after another, the answer delivered on a later microtask as a
// socket callback would; medians of batches of 200.
const queued = new HandshakeRequester({
  send: (p) => {
    queueMicrotask(() => {
      const { response } = server.classifyAndDispatch(p);
      if (response) queued.handle(response);
    });
  },
});
async function awaitedMedian(run, batch = 200, samples = 200) {
  const times = [];
  for (let s = 0; s < samples + 20; s++) {
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) await run();
    if (s >= 20) times.push(((performance.now() - t0) * 1e6) / batch);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}
const rows = [
  { operation: 'await ping()', 'ts ns': (await awaitedMedian(() => queued.ping())).toFixed(1) },
  { operation: 'await requestId() (known device)', 'ts ns': (await awaitedMedian(() => queued.requestId(meta))).toFixed(1) },
];
console.log(`\n@opensynaptic/handshake: awaited round trip, answer on a later microtask (medians; node ${process.version}, ${process.arch})`);
console.table(rows);
if (sink === -1) console.log(sink);
