import { readFileSync } from 'node:fs';
import { compare } from '@opensynaptic/config/bench';
import { runReferenceJson, sideBySide } from '@opensynaptic/config/reference';
import { compressFact } from '@opensynaptic/packet/body';
import { OSVisualFusionEngine } from '../dist/index.js';

// One workload for both sides: reference-fusion.py documents the shape.
const WORKLOAD = {
  clock: 1700000000,
  sender: 42,
  receiver: 1,
  device: 'DEV1',
  status: 'ONLINE',
  sensors: [
    { input: ['S1', 'OK', 21.5, 'Cel'], unit: 'temperature', value: 294.65 },
    { input: ['S2', 'OK', 101.325, 'kPa'], unit: 'pressure', value: 101325 },
    { input: ['S3', 'OK', 1.25, 'm'], unit: 'length', value: 1.25 },
    { input: ['S4', 'OK', 3600, 's'], unit: 'time', value: 3600 },
    { input: ['S5', 'OK', 72.5, 'kg'], unit: 'mass', value: 72.5 },
    { input: ['S6', 'OK', 50, 'Hz'], unit: 'frequency', value: 50 },
    { input: ['S7', 'OK', 45.5, '%'], unit: 'humidity', value: 45.5 },
    { input: ['S8', 'OK', 1500, 'W'], unit: 'power', value: 1500 },
  ],
  alt: 294.75,
};

function fact(n, first) {
  const f = { id: WORKLOAD.device, s: WORKLOAD.status, t: WORKLOAD.clock * 1000 };
  WORKLOAD.sensors.slice(0, n).forEach((s, i) => {
    Object.assign(f, { [`s${i + 1}_id`]: s.input[0], [`s${i + 1}_s`]: s.input[1], [`s${i + 1}_u`]: s.unit, [`s${i + 1}_v`]: i === 0 ? first : s.value });
  });
  return f;
}

const clock = () => WORKLOAD.clock * 1000;
let sink = 0;
const cases = [];
for (const n of [1, 8]) {
  const label = n === 1 ? '1 sensor' : '8 sensors';
  const factA = fact(n, WORKLOAD.sensors[0].value);
  const a = `${WORKLOAD.sender};${compressFact(factA)}`;
  const b = `${WORKLOAD.sender};${compressFact(fact(n, WORKLOAD.alt))}`;

  // Sender streams: DIFF alternates a/b (one value changes per call); HEART repeats a.
  const diffTx = new OSVisualFusionEngine({ localId: WORKLOAD.sender, clock });
  diffTx.runEngine(a);
  let flip = false;
  const heartTx = new OSVisualFusionEngine({ localId: WORKLOAD.sender, clock });
  heartTx.runEngine(a);

  // Receiver: learn the FULL, then decode two DIFF frames in turn, or the HEART frame.
  const src = new OSVisualFusionEngine({ localId: WORKLOAD.sender, clock });
  const full = src.runEngine(a);
  const diffs = [src.runEngine(b), src.runEngine(a)];
  const heart = src.runEngine(a);
  if (full[0] !== 0x3f || diffs[0][0] !== 0xaa || diffs[1][0] !== 0xaa || heart[0] !== 0x7f) throw new Error('unexpected frame kinds');
  const rx = new OSVisualFusionEngine({ localId: WORKLOAD.receiver, clock });
  rx.decompress(full);
  let k = 0;

  cases.push(
    { name: `compress ${label}`, inner: 500, impls: { ts: () => { sink += compressFact(factA).length; } } },
    { name: `run_engine DIFF ${label}`, inner: 500, impls: { ts: () => { flip = !flip; sink += diffTx.runEngine(flip ? b : a).length; } } },
    { name: `run_engine HEART ${label}`, inner: 500, impls: { ts: () => { sink += heartTx.runEngine(a).length; } } },
    { name: `receive DIFF ${label}`, inner: 500, impls: { ts: () => { sink += rx.decompress(diffs[k++ & 1]).t_raw; } } },
    { name: `receive HEART ${label}`, inner: 500, impls: { ts: () => { sink += rx.decompress(heart).t_raw; } } },
  );
}

const rows = await compare('@opensynaptic/fusion: ns per call', cases);
if (sink === 0.5) console.log(sink);

// The same workload through the reference (opensynaptic 1.4.2, in a virtualenv made on first use).
const script = readFileSync(new URL('./reference-fusion.py', import.meta.url), 'utf8');
await sideBySide(rows, (python) => {
  // The script reports {sensors: {operation: ns}}; our rows are "<operation> <n> sensor(s)".
  const r = runReferenceJson(python, script, [JSON.stringify(WORKLOAD), '--sensors', '1,8']);
  const flat = {};
  for (const [n, ops] of Object.entries(r)) for (const [op, ns] of Object.entries(ops)) flat[`${op} ${n} sensor${n === '1' ? '' : 's'}`] = ns;
  return flat;
});
