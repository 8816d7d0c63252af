import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { compare } from '@opensynaptic/config/bench';
import { runReferenceJson, sideBySide } from '@opensynaptic/config/reference';
import { OpenSynaptic } from '../dist/index.js';

// The node's real path, DIFF steady state, one workload for both sides (reference-node.py runs it
// through the reference's OpenSynaptic). The first reading alternates 21.5 / 21.6 Cel, so exactly
// one value changes per transmit.
const WORKLOAD = {
  clock: 1700000000,
  sender: 42,
  receiver: 1,
  device: 'DEV1',
  status: 'ONLINE',
  sensors: [
    { input: ['S1', 'OK', 21.5, 'Cel'] },
    { input: ['S2', 'OK', 101.325, 'kPa'] },
    { input: ['S3', 'OK', 1.25, 'm'] },
    { input: ['S4', 'OK', 3600, 's'] },
    { input: ['S5', 'OK', 72.5, 'kg'] },
    { input: ['S6', 'OK', 50, 'Hz'] },
    { input: ['S7', 'OK', 45.5, '%'] },
    { input: ['S8', 'OK', 1500, 'W'] },
  ],
  alt: 21.6,
};

const clock = () => WORKLOAD.clock * 1000;
const opts = { deviceId: WORKLOAD.device, status: WORKLOAD.status, t: WORKLOAD.clock * 1000 };

/** A sender and a receiver in DIFF steady state, with two DIFF frames the receiver decodes in turn. */
function pair(n) {
  const a = WORKLOAD.sensors.slice(0, n).map((s) => [...s.input]);
  const b = a.map((s) => [...s]);
  b[0][2] = WORKLOAD.alt;
  const tx = new OpenSynaptic({ assignedId: WORKLOAD.sender, clock });
  const rx = new OpenSynaptic({ assignedId: WORKLOAD.receiver, clock });
  rx.receive(tx.transmit(a, opts).frame);
  // The handshake sends FULL until the template is confirmed; DIFF follows.
  for (let i = 0; i < 16; i++) {
    const { frame } = tx.transmit(b, opts);
    if (frame[0] !== 0x3f) break;
    rx.receive(frame);
  }
  const diffs = [tx.transmit(a, opts).frame, tx.transmit(b, opts).frame];
  if (diffs[0][0] !== 0xaa || diffs[1][0] !== 0xaa) throw new Error('no DIFF steady state');
  for (const d of diffs) {
    const r = rx.receive(d);
    if (r.type !== 'data' || typeof r.fact.s1_v !== 'number') throw new Error(`receive gives no s1_v: ${r.type}`);
  }
  return { a, b, tx, rx, diffs };
}

let sink = 0;
const cases = [];
const pairs = {};
for (const n of [1, 8]) {
  const label = n === 1 ? '1 sensor' : '8 sensors';
  const p = pair(n);
  pairs[n] = p;
  let flip = false;
  let k = 0;
  cases.push(
    { name: `transmit DIFF ${label}`, inner: 200, impls: { ts: () => { flip = !flip; sink += p.tx.transmit(flip ? p.b : p.a, opts).frame.length; } } },
    { name: `decode DIFF ${label}`, inner: 200, impls: { ts: () => { sink += p.rx.fusion.decompress(p.diffs[k++ & 1]).t_raw; } } },
    { name: `receive DIFF ${label}`, inner: 200, impls: { ts: () => { sink += p.rx.receive(p.diffs[k++ & 1]).fact.t_raw; } } },
  );
}

const rows = await compare('@opensynaptic/core: µs-scale node path, ns per call', cases);

// Allocation in steady state, over 10^6 transmits (10^5 with BENCH_QUICK): GCs seen by a
// PerformanceObserver, heap retained after a full GC, and bytes allocated per transmit (heap growth
// over chunks of 100 transmits, chunks in which a GC ran left out).
if (typeof globalThis.gc === 'function') {
  const count = process.env.BENCH_QUICK ? 100_000 : 1_000_000;
  const chunk = 100;
  /** Heap bytes per call of `fn`, over chunks in which no GC ran. */
  const perCall = (fn, calls) => {
    let grown = 0;
    let counted = 0;
    for (let done = 0; done < calls; done += chunk) {
      const h0 = process.memoryUsage().heapUsed;
      for (let i = 0; i < chunk; i++) fn(i);
      const h1 = process.memoryUsage().heapUsed;
      if (h1 >= h0) {
        grown += h1 - h0;
        counted += chunk;
      }
    }
    return counted ? grown / counted : Number.NaN;
  };
  // What the frame alone costs measured the same way (with the sampling's own overhead).
  let keep;
  const table = [];
  for (const n of [1, 8]) {
    const p = pairs[n];
    const frameBytes = p.diffs[0].length;
    const frameOnly = perCall(() => {
      keep = new Uint8Array(frameBytes);
    }, 100_000);
    for (let i = 0; i < 10_000; i++) sink += p.tx.transmit(i & 1 ? p.b : p.a, opts).frame.length;
    let gcs = 0;
    let gcMs = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        gcs++;
        gcMs += e.duration;
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    globalThis.gc();
    const before = process.memoryUsage().heapUsed;
    const bytes = perCall((i) => {
      sink += p.tx.transmit(i & 1 ? p.b : p.a, opts).frame.length;
    }, count);
    // Let the observer's queued entries arrive before counting them.
    await new Promise((r) => setTimeout(r, 50));
    obs.disconnect();
    globalThis.gc();
    const after = process.memoryUsage().heapUsed;
    table.push({
      operation: `transmit DIFF ${n === 1 ? '1 sensor' : '8 sensors'}`,
      transmits: count.toLocaleString('en-US'),
      'frame bytes': frameBytes,
      'heap bytes per transmit': Math.round(bytes),
      'heap bytes of the frame alone': Math.round(frameOnly),
      'GCs per 10^6': Math.round((gcs * 1e6) / count),
      'GC ms per 10^6': ((gcMs * 1e6) / count).toFixed(1),
      'retained after GC': after - before,
    });
  }
  if (keep?.length === -1) console.log(keep);
  console.log('\nsteady-state allocation');
  console.table(table);
} else {
  console.log('\nallocation: run with node --expose-gc for heap growth and GC counts');
}
if (sink === 0.5) console.log(sink);

const script = readFileSync(new URL('./reference-node.py', import.meta.url), 'utf8');
await sideBySide(rows, (python) => {
  const r = runReferenceJson(python, script, [JSON.stringify(WORKLOAD), '--sensors', '1,8']);
  const flat = {};
  for (const [n, ops] of Object.entries(r)) for (const [op, ns] of Object.entries(ops)) flat[`${op} ${n} sensor${n === '1' ? '' : 's'}`] = ns;
  return flat;
});
