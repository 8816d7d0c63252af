import { compare } from '@opensynaptic/config/bench';
import { encodeFrame } from '@opensynaptic/packet';
import { buildIdRequest, buildPing, frameLevelParser, IdAllocator, OSHandshakeManager } from '../dist/index.js';

const t = 1_700_000_000;
const clock = () => t;
const server = new OSHandshakeManager({ clock, allocator: new IdAllocator({ start: 1, end: 1_000_000, clock }), parser: frameLevelParser() });
const ping = buildPing(7);
// One known device asking again: the lease is renewed and the same id sent back.
const idRequest = buildIdRequest(8, { device_id: 'NODE_A', type: 'sensor_node', hw: 'ESP32' });
const body = new TextEncoder().encode('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|');
const frame = encodeFrame({ cmd: 63, routes: 42, tid: 1, timestamp: 1_700_000_000_000, body });
server.classifyAndDispatch(frame);
let sink = 0;
await compare('@opensynaptic/handshake: ns per dispatched packet', [
  { name: 'PING -> PONG', inner: 1000, impls: { ts: () => { sink ^= server.classifyAndDispatch(ping).response.length; } } },
  { name: 'ID_REQUEST -> ID_ASSIGN (known device)', inner: 200, impls: { ts: () => { sink ^= server.classifyAndDispatch(idRequest).response.length; } } },
  { name: 'plain FULL, session ready (frame-level parser)', inner: 500, impls: { ts: () => { sink ^= server.classifyAndDispatch(frame).cmd; } } },
]);
if (sink === -1) console.log(sink);
