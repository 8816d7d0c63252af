/**
 * The server's per-frame cost without sockets: the same DIFF frames (100 devices, one sensor,
 * rising timestamps, as the ingest bench's sender makes them) decoded by a node in a plain loop,
 * then through the server from a transport that hands them over in batches of BENCH_BATCH (256:
 * what the native UDP backend delivers under load), with the intake reading batches and, for
 * comparison, frame by frame. CPU per frame (process.cpuUsage) and frames/s; medians of
 * BENCH_RUNS (5) runs of BENCH_FRAMES (200,000) frames. `node bench/intake.bench.mjs` after the build.
 */
import { loadavg } from 'node:os';
import { OpenSynaptic } from '@opensynaptic/core';
import { crc16Unchecked } from '@opensynaptic/crc';
import { OpenSynapticServer } from '@opensynaptic/server';
import { ipPeer, TransportBase } from '@opensynaptic/transport';

const env = process.env;
const DEVICES = Number(env.BENCH_DEVICES ?? 100);
const FRAMES = Number(env.BENCH_FRAMES ?? 200_000);
const BATCH = Number(env.BENCH_BATCH ?? 256);
const RUNS = Number(env.BENCH_RUNS ?? 5);
const t0 = 1_700_000_000_000;

// Each device: its FULL, then a cycle of 64 DIFFs restamped with rising timestamps (CRC rewritten).
const fulls = [];
const cycles = [];
for (let d = 0; d < DEVICES; d++) {
  const node = new OpenSynaptic({ assignedId: 1000 + d, deviceId: `BENCH${d}` });
  const rest = [];
  for (let i = 0; rest.length < 64; i++) {
    const out = node.transmit([['S0', 'OK', 20 + i / 10, 'Cel']], { t: t0 + i * 1000 });
    if (out.kind === 'FULL' && i === 0) fulls.push(out.frame);
    else rest.push(out.frame);
  }
  cycles.push(rest);
}
function stamped(d, k) {
  const f = cycles[d][k % 64].slice();
  const at = 2 + 4 * f[1] + 1;
  const ts = t0 + (k + 100) * 1000;
  const hi = Math.floor(ts / 2 ** 32);
  const lo = ts >>> 0;
  f.set([hi >>> 8, hi & 0xff, lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff], at);
  const crc = crc16Unchecked(f, 0, f.length - 2);
  f[f.length - 2] = crc >>> 8;
  f[f.length - 1] = crc & 0xff;
  return f;
}
/** `FRAMES` DIFFs round-robin over the devices, timestamps rising from run to run. */
let epoch = 0;
function frames() {
  const out = new Array(FRAMES);
  const base = epoch;
  epoch += Math.ceil(FRAMES / DEVICES);
  for (let i = 0; i < FRAMES; i++) out[i] = stamped(i % DEVICES, base + Math.floor(i / DEVICES));
  return out;
}

/** A transport fed from memory: `feed` delivers a batch synchronously, as the native UDP backend does. */
class Feeder extends TransportBase {
  reliable = false;
  peer = ipPeer('udp', '127.0.0.1', 40000, 'IPv4');
  constructor() {
    super('udp', 65507, { inbound: { maxFrames: 1 << 20, maxBytes: 1 << 30 } });
  }
  async open() {}
  async write() {}
  async close() {}
  feed(list, from, to) {
    const at = this.clock();
    for (let i = from; i < to; i++) this.deliver(list[i], this.peer, false, at);
  }
}

const cpuMs = (c) => (c.user + c.system) / 1000;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const immediate = () => new Promise((r) => setImmediate(r));

async function decodeLoop() {
  const node = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER' });
  for (const f of fulls) node.receive(f);
  const out = [];
  for (let r = 0; r < RUNS; r++) {
    const list = frames();
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    let ok = 0;
    for (const f of list) if (node.receive(f).type === 'data') ok++;
    if (ok !== list.length) throw new Error(`decoded ${ok} of ${list.length}`);
    out.push({ cpu: cpuMs(process.cpuUsage(c0)), wall: performance.now() - w0 });
  }
  return out;
}

async function throughServer(batches) {
  const t = new Feeder();
  if (!batches) t.batches = undefined;
  let k = 0;
  const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport: t }], sweepIntervalMs: 0, services: [{ name: 'count', onReading: () => k++ }] });
  await server.start();
  t.feed(fulls, 0, fulls.length);
  while (k < fulls.length) await immediate();
  const out = [];
  for (let r = 0; r < RUNS; r++) {
    const list = frames();
    const k0 = k;
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    for (let i = 0; i < list.length; i += BATCH) {
      t.feed(list, i, Math.min(list.length, i + BATCH));
      await immediate();
    }
    while (k - k0 < list.length) await immediate();
    out.push({ cpu: cpuMs(process.cpuUsage(c0)), wall: performance.now() - w0 });
  }
  const s = await server.status();
  await server.destroy();
  if (s.dropped.device + s.transports.udp.dropped['queue-full'] > 0) throw new Error('frames dropped');
  return out;
}

const rows = [];
const row = (what, runs) => {
  const cpu = median(runs.map((x) => x.cpu));
  const wall = median(runs.map((x) => x.wall));
  rows.push({ case: what, 'CPU µs/frame': ((cpu * 1000) / FRAMES).toFixed(2), 'frames/s': Math.round((FRAMES * 1000) / wall).toLocaleString('en-US') });
};
console.log(`intake bench: node ${process.version}, ${DEVICES} devices, ${FRAMES} frames per run, batches of ${BATCH}, median of ${RUNS}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
row('node.receive in a loop (decode only)', await decodeLoop());
row('server, intake in batches (Transport.batches)', await throughServer(true));
row('server, intake frame by frame (the iterator)', await throughServer(false));
console.table(rows);
console.log(`load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
