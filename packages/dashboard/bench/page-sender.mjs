// The page bench's device simulator, a child process of page.bench.mjs (fork), so that its CPU
// is neither the page's nor the server's. BENCH_DEVICES nodes with pre-assigned ids (the server
// takes data frames of any aid; no handshake needed) over one UDP socket, each sending one
// reading (two sensors: a temperature and a humidity) BENCH_DEVICE_RATE times a second.
//
// Cheap on purpose: each device's frames are built once, up front, by its own OpenSynaptic node
// (its FULL, then one period of DIFF and HEART frames whose values follow a periodic curve, so
// the period repeats cleanly: the last frame brings the values back to the FULL's); each frame
// sent is a copy of the next one resealed with the current time in its header (@opensynaptic/packet's
// sealFrame), so timestamps are real and increasing, as history and "last seen" need.
//
// Messages from the parent: { run: { port, seconds } } → { tick: { sent, failed, atMs, cpuMs } } each
// second, then { done: { sent, failed, seconds, kinds } } after `seconds` or on { stop: true };
// { exit: true }.
import { performance } from 'node:perf_hooks';
import { OpenSynaptic } from '@opensynaptic/core';
import { readU32, sealFrame } from '@opensynaptic/packet';
import { createTransport } from '@opensynaptic/transport';

const devices = Number(process.env.BENCH_DEVICES ?? 1000);
const perDevice = Number(process.env.BENCH_DEVICE_RATE ?? 10);
/** Frames in one period of each device's values (6.4 s at 10/s). */
const PERIOD = 64;
const AID0 = 1000;

const fulls = [];
const cycles = [];
const kinds = { FULL: 0, DIFF: 0, HEART: 0 };
const values = (d, i) => {
  const k = i % PERIOD;
  // Every 8th frame repeats the previous values: the node sends a HEART for it.
  const j = k % 8 === 7 ? k - 1 : k;
  const t = Number((20 + (d % 10) + 5 * Math.sin((2 * Math.PI * j) / PERIOD)).toFixed(1));
  const h = 40 + (d % 20) + (Math.floor(j / 16) % 2); // changes every 16 frames: DIFFs of T1 alone between
  return [
    ['T1', 'OK', t, 'Cel'],
    ['H1', 'OK', h, '%'],
  ];
};
const base = Date.now();
for (let d = 0; d < devices; d++) {
  const node = new OpenSynaptic({ assignedId: AID0 + d, deviceId: `SIM${String(d).padStart(4, '0')}` });
  const first = node.transmit(values(d, 0), { t: base });
  if (first.kind !== 'FULL') throw new Error(`device ${d}: the first frame is ${first.kind}, not FULL`);
  fulls.push(first.frame);
  const cycle = [];
  for (let i = 1; i <= PERIOD; i++) {
    const out = node.transmit(values(d, i), { t: base + i * 100 });
    kinds[out.kind]++;
    cycle.push(out.frame);
  }
  cycles.push(cycle);
  await node.close?.();
}
const step = new Array(devices).fill(0);
const lastStamp = new Array(devices).fill(0);

/** The frame again with `ts` (ms) in its header (a plain single-route frame: CRCs recomputed). */
function stamp(f, ts) {
  sealFrame(f, f[0], readU32(f, 2), f[6], ts, null);
  return f;
}

/** The device's next frame, stamped now (strictly after its previous one). */
function next(d) {
  const f = cycles[d][step[d]++ % PERIOD].slice();
  const ts = Math.max(Date.now(), lastStamp[d] + 1);
  lastStamp[d] = ts;
  return stamp(f, ts);
}

const transport = await createTransport('udp', { host: '127.0.0.1', port: 0, sendBufferSize: 4 * 1024 * 1024, maxPendingSends: 16_384 });
await transport.start();

let stopping = false;

async function run({ port, seconds }) {
  const to = { address: '127.0.0.1', port };
  let sent = 0;
  let failed = 0;
  let pending = 0;
  const ok = () => pending--;
  const bad = () => {
    pending--;
    failed++;
  };
  const send = (frame) => {
    pending++;
    sent++;
    transport.send(frame, to).then(ok, bad);
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // The FULLs first, in slices (no burst past the server's socket buffer), so every DIFF has its template.
  for (let d = 0; d < devices; d++) {
    lastStamp[d] = Date.now();
    send(stamp(fulls[d].slice(), lastStamp[d]));
    if (d % 100 === 99) await sleep(5);
  }
  while (pending > 0) await sleep(1);
  await sleep(200);
  const rate = devices * perDevice;
  const start = performance.now();
  const end = start + seconds * 1000;
  let due = 0;
  let d = 0;
  let nextTick = start + 1000;
  // Paced: every 5 ms the frames due by now, round-robin, so each device sends every 1/perDevice s.
  for (let now = start; now < end && !stopping; now = performance.now()) {
    const target = Math.floor(((now - start) / 1000) * rate);
    while (due < target && pending < 8192) {
      send(next(d));
      due++;
      if (++d === devices) d = 0;
    }
    if (now >= nextTick) {
      nextTick += 1000;
      const cpu = process.cpuUsage();
      process.send({ tick: { sent: sent - failed, failed, atMs: Date.now(), cpuMs: (cpu.user + cpu.system) / 1000 } });
    }
    await sleep(5);
  }
  while (pending > 0) await sleep(1);
  return { sent: sent - failed, failed, seconds: (performance.now() - start) / 1000, fulls: devices, kinds };
}

process.on('message', async (m) => {
  if (m.stop) stopping = true;
  if (m.exit) {
    await transport.destroy();
    process.exit(0);
  }
  if (m.run) process.send({ done: await run(m.run) });
});
process.send({ ready: { devices, perDevice, sensors: 2, aid0: AID0, kinds } });
