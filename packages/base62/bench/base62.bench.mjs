import { compare } from '@opensynaptic/config/bench';
import { backendInfo, getCodec } from '../dist/index.js';
const { nativeAvailable } = backendInfo();

const ts = getCodec('ts');
const native = nativeAvailable ? getCodec('native') : null;
const both = (make) => (native ? { ts: make(ts), native: make(native) } : { ts: make(ts) });
if (!native) console.log('native addon not built: TypeScript figures only');

const values = Float64Array.from({ length: 64 }, (_, i) => 20 + i * 0.37);
const texts = ts.encodeBatch(values);
let sink = 0;
await compare('@opensynaptic/base62: ns per value', [
  { name: 'encode 294.65 (p=4)', inner: 1000, impls: both((c) => () => { sink ^= c.encode(294.65).length; }) },
  { name: 'decode "cmwc" (p=4)', inner: 1000, impls: both((c) => () => { sink += c.decode('cmwc'); }) },
  { name: 'encodeBigInt 2^53+1', inner: 1000, impls: both((c) => () => { sink ^= c.encodeBigInt(9007199254740993n).length; }) },
  { name: 'encodeBatch 64 values', inner: 16, items: 64, impls: both((c) => () => { sink ^= c.encodeBatch(values).length; }) },
  { name: 'decodeBatch 64 values', inner: 16, items: 64, impls: both((c) => () => { sink += c.decodeBatch(texts)[0]; }) },
]);
if (sink === 0.5) console.log(sink);
