import { compare } from '@opensynaptic/config/bench';
import { backendInfo, DECODED_FIELDS, getCodec } from '../dist/index.js';
const { nativeAvailable } = backendInfo();

const ts = getCodec('ts');
const native = nativeAvailable ? getCodec('native') : null;
const both = (make) => (native ? { ts: make(ts), native: make(native) } : { ts: make(ts) });
if (!native) console.log('native addon not built: TypeScript figures only');

const text = new TextEncoder();
// The frames of the protocol spec's example: a 1-sensor FULL (49 bytes) and its DIFF (22 bytes).
const full = { cmd: 63, routes: 42, tid: 1, timestamp: 1_700_000_000_000, body: text.encode('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|') };
const diff = { cmd: 170, routes: 42, tid: 1, timestamp: 1_700_000_000_000, body: Uint8Array.of(2, 4, 99, 112, 55, 117) };
const fullBytes = ts.encodeFrame(full);
const diffBytes = ts.encodeFrame(diff);
console.log(`FULL frame ${fullBytes.length} bytes, DIFF frame ${diffBytes.length} bytes`);

const n = 256;
const bodies = new Uint8Array(6 * n).map((_, i) => (i * 7) & 0xff);
const batch = {
  cmds: new Uint8Array(n).fill(170),
  aids: Uint32Array.from({ length: n }, (_, i) => 1000 + i),
  tids: new Uint8Array(n).fill(1),
  timestamps: new Float64Array(n).fill(1_700_000_000_000),
  bodies,
  bodyOffsets: Uint32Array.from({ length: n + 1 }, (_, i) => 6 * i),
};
const buf = ts.encodeFrames(batch);
const offsets = Uint32Array.from({ length: n + 1 }, (_, i) => 22 * i);
const out = new Float64Array(n * DECODED_FIELDS);
let sink = 0;
await compare('@opensynaptic/packet: ns per frame', [
  { name: 'encode DIFF 22 B', inner: 1000, impls: both((c) => () => { sink ^= c.encodeFrame(diff).length; }) },
  { name: 'decode DIFF 22 B', inner: 1000, impls: both((c) => () => { sink ^= c.decodeFrame(diffBytes).tid; }) },
  { name: 'encode FULL 49 B', inner: 1000, impls: both((c) => () => { sink ^= c.encodeFrame(full).length; }) },
  { name: 'decode FULL 49 B', inner: 1000, impls: both((c) => () => { sink ^= c.decodeFrame(fullBytes).tid; }) },
  { name: 'encodeFrames 256 DIFF', inner: 4, items: n, impls: both((c) => () => { sink ^= c.encodeFrames(batch).length; }) },
  { name: 'decodeFrames 256 DIFF', inner: 4, items: n, impls: both((c) => () => { sink ^= c.decodeFrames(buf, offsets, out); }) },
]);
if (sink === 0.5) console.log(sink);
