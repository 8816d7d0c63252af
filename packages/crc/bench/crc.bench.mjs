import { createHash, hash } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { compare } from '@opensynaptic/config/bench';
import { backendInfo, getCodec, seedText } from '../dist/index.js';
const { nativeAvailable } = backendInfo();

const ts = getCodec('ts');
const native = nativeAvailable ? getCodec('native') : null;
const both = (make) => (native ? { ts: make(ts), native: make(native) } : { ts: make(ts) });
if (!native) console.log('native addon not built: TypeScript figures only');

// The C peers' reference point: a bitwise (table-less) CRC-16 loop, as microcontroller code does it.
function crc16Bitwise(data) {
  let crc = 0xffff;
  for (let i = 0; i < data.length; i++) {
    crc ^= data[i] << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

const body40 = Uint8Array.from({ length: 40 }, (_, i) => (i * 73 + 5) & 0xff);
const n = 256;
const batch = new Uint8Array(40 * n).map((_, i) => (i * 31) & 0xff);
const offsets = Uint32Array.from({ length: n + 1 }, (_, i) => i * 40);
const key = new Uint8Array(32).fill(7);
let sink = 0;
await compare('@opensynaptic/crc: ns per 40-byte body', [
  { name: 'crc16 40 B', inner: 1000, impls: { ...both((c) => () => { sink ^= c.crc16(body40); }), bitwise: () => { sink ^= crc16Bitwise(body40); } } },
  { name: 'crc8 40 B', inner: 1000, impls: both((c) => () => { sink ^= c.crc8(body40); }) },
  { name: 'crc16Batch 256 x 40 B', inner: 4, items: n, impls: both((c) => () => { sink ^= c.crc16Batch(batch, offsets)[0]; }) },
  { name: 'crc8Batch 256 x 40 B', inner: 4, items: n, impls: both((c) => () => { sink ^= c.crc8Batch(batch, offsets)[0]; }) },
  { name: 'xorPayload 40 B', inner: 1000, impls: both((c) => () => { sink ^= c.xorPayload(body40, key, 19)[0]; }) },
  // ts on Node is node:crypto's one-shot hash; beside it the pure-JS path browsers get
  // (@noble/hashes) and createHash, the older Node way.
  { name: 'session key (SHA-256)', inner: 100, impls: {
    ...both((c) => () => { sink ^= c.digestSeed(71400000000000n)[0]; }),
    noble: () => { sink ^= sha256(seedText(71400000000000n))[0]; },
    createHash: () => { sink ^= createHash('sha256').update((71400000000000n).toString()).digest()[0]; },
    ...(typeof hash === 'function' ? { 'crypto.hash': () => { sink ^= hash('sha256', (71400000000000n).toString(), 'buffer')[0]; } } : {}),
  } },
]);
if (sink === 0.5) console.log(sink);
