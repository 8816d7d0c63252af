import { compare } from '@opensynaptic/config/bench';
import * as base62 from '../dist/index.js';

// One implementation (TypeScript); the native one was removed after it measured 0.2-1.1x of this.
const values = Float64Array.from({ length: 64 }, (_, i) => 20 + i * 0.37);
const texts = base62.encodeBatch(values);
const ts = (fn) => ({ ts: fn });
let sink = 0;
await compare('@opensynaptic/base62: ns per value', [
  { name: 'encode 294.65 (p=4)', inner: 1000, impls: ts(() => { sink ^= base62.encode(294.65).length; }) },
  { name: 'decode "cmwc" (p=4)', inner: 1000, impls: ts(() => { sink += base62.decode('cmwc'); }) },
  { name: 'encodeBigInt 2^53+1', inner: 1000, impls: ts(() => { sink ^= base62.encodeBigInt(9007199254740993n).length; }) },
  { name: 'encodeBatch 64 values', inner: 16, items: 64, impls: ts(() => { sink ^= base62.encodeBatch(values).length; }) },
  { name: 'decodeBatch 64 values', inner: 16, items: 64, impls: ts(() => { sink += base62.decodeBatch(texts)[0]; }) },
]);
if (sink === 0.5) console.log(sink);
