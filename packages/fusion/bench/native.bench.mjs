// TypeScript vs native fusion engine, ns per frame (build first: pnpm --filter @opensynaptic/fusion build). Only the
// batches have a native fusion path; on the native backend runEngine / decompress are TypeScript
// around the native frame codec.
import { compare } from '@opensynaptic/config/bench';
import { compressFact } from '@opensynaptic/packet/body';
import { backendInfo, OSVisualFusionEngine } from '../dist/index.js';
const { nativeAvailable } = backendInfo();

if (!nativeAvailable) {
  console.log('native fusion bench skipped: @opensynaptic/binding is not built (pnpm --filter @opensynaptic/binding build)');
  process.exit(0);
}

const CLOCK = 1700000000;
const SENSORS = [
  ['S1', 'OK', 21.5, 'Cel', 'temperature', 294.65],
  ['S2', 'OK', 101.325, 'kPa', 'pressure', 101325],
  ['S3', 'OK', 1.25, 'm', 'length', 1.25],
  ['S4', 'OK', 3600, 's', 'time', 3600],
  ['S5', 'OK', 72.5, 'kg', 'mass', 72.5],
  ['S6', 'OK', 50, 'Hz', 'frequency', 50],
  ['S7', 'OK', 45.5, '%', 'humidity', 45.5],
  ['S8', 'OK', 1500, 'W', 'power', 1500],
];
const BATCH = 256;
const clock = () => CLOCK * 1000;
const enc = new TextEncoder();

function body(n, first) {
  const f = { id: 'DEV1', s: 'ONLINE', t: CLOCK * 1000 };
  SENSORS.slice(0, n).forEach(([id, st, , , unit, value], i) => {
    Object.assign(f, { [`s${i + 1}_id`]: id, [`s${i + 1}_s`]: st, [`s${i + 1}_u`]: unit, [`s${i + 1}_v`]: i === 0 ? first : value });
  });
  return `42;${compressFact(f)}`;
}

/** Bodies (or frames) back to back with their offsets. */
function packed(parts) {
  const offsets = new Uint32Array(parts.length + 1);
  parts.forEach((p, i) => {
    offsets[i + 1] = offsets[i] + p.length;
  });
  const buf = new Uint8Array(offsets[parts.length]);
  for (let i = 0; i < parts.length; i++) buf.set(parts[i], offsets[i]);
  return { buf, offsets };
}

const engine = (backend, localId = 42) => new OSVisualFusionEngine({ localId, clock, backend });
let sink = 0;
const cases = [];
for (const n of [1, 8]) {
  const label = n === 1 ? '1 sensor' : '8 sensors';
  const a = body(n, 294.65);
  const b = body(n, 294.75);

  // Senders: DIFF alternates a/b (one value changes per frame), HEART repeats a.
  const diff = {};
  const heart = {};
  const batch = {};
  for (const backend of ['ts', 'native']) {
    let flip = false;
    const d = engine(backend);
    d.runEngine(a);
    diff[backend] = () => {
      flip = !flip;
      sink += d.runEngine(flip ? b : a).length;
    };
    const h = engine(backend);
    h.runEngine(a);
    heart[backend] = () => {
      sink += h.runEngine(a).length;
    };
    const bt = engine(backend);
    bt.runEngine(a);
    const { buf, offsets } = packed(Array.from({ length: BATCH }, (_, i) => enc.encode(i & 1 ? a : b)));
    batch[backend] = () => {
      sink += bt.runEngineBatch(buf, offsets).frames.length;
    };
  }

  // Receivers: learn the FULL, then decode DIFF frames in turn (one by one, or BATCH at once).
  const src = engine('ts');
  const full = src.runEngine(a);
  const diffs = [src.runEngine(b), src.runEngine(a)];
  const frames = packed(Array.from({ length: BATCH }, (_, i) => diffs[i & 1]));
  const receive = {};
  const receiveBatch = {};
  for (const backend of ['ts', 'native']) {
    const rx = engine(backend, 1);
    rx.decompress(full);
    let k = 0;
    receive[backend] = () => {
      sink += rx.decompress(diffs[k++ & 1]).t_raw;
    };
    const rxb = engine(backend, 1);
    rxb.decompress(full);
    receiveBatch[backend] = () => {
      sink += rxb.decompressBatch(frames.buf, frames.offsets).length;
    };
  }

  cases.push(
    { name: `runEngine DIFF ${label}`, inner: 500, impls: diff },
    { name: `runEngine HEART ${label}`, inner: 500, impls: heart },
    { name: `runEngineBatch DIFF ${label} (x${BATCH})`, inner: 2, items: BATCH, impls: batch },
    { name: `decompress DIFF ${label}`, inner: 500, impls: receive },
    { name: `decompressBatch DIFF ${label} (x${BATCH})`, inner: 2, items: BATCH, impls: receiveBatch },
  );
}

await compare('@opensynaptic/fusion steady state: ns per frame, TypeScript vs native', cases);
if (sink === 0.5) console.log(sink);
