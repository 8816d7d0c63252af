// The ingest bench's sender, a child process of ingest.bench.mjs (fork): `devices` nodes with
// assigned ids sending over one UDP socket round-robin over the devices, paced at `rate`
// frames/s (Infinity: as fast as the socket takes them). Each device's frames are made once up
// front by its node (its FULLs, sent first to each new receiver, then a cycle of DIFFs whose
// first value changes every frame); each DIFF sent is a copy stamped with a timestamp one second
// after the device's previous one (the header's uint48 and the CRC-16 rewritten), as a real
// device's would be: increasing timestamps matter to the database (its time indexes grow at
// their end), and stamping a copy costs far less than a transmit, so on a small machine it is
// the server that is measured. Messages from the parent: { run: { port, rate, seconds, full } }
// → { done: { sent, failed, seconds } }; { exit: true }.
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { OpenSynaptic } from '@opensynaptic/core';
import { crc16Unchecked } from '@opensynaptic/crc';
import { createTransport } from '@opensynaptic/transport';

const devices = Number(process.env.BENCH_DEVICES ?? 100);
const sensors = Number(process.env.BENCH_SENSORS ?? 1);
const CYCLE = 64;
const t0 = 1_700_000_000_000;
const fulls = [];
const diffs = [];
const stamps = new Array(devices).fill(0);
for (let d = 0; d < devices; d++) {
  const node = new OpenSynaptic({ assignedId: 1000 + d, deviceId: `BENCH${d}` });
  const first = [];
  const rest = [];
  for (let i = 0; rest.length < CYCLE; i++) {
    const values = Array.from({ length: sensors }, (_, s) => [`S${s}`, 'OK', s === 0 ? 20 + i / 10 : 50 + s, 'Cel']);
    const out = node.transmit(values, { t: t0 + i * 1000 });
    (out.kind === 'FULL' && rest.length === 0 ? first : rest).push(out.frame);
    stamps[d] = i + 1;
  }
  fulls.push(first);
  diffs.push(rest);
}

/** A copy of the device's next DIFF with the next timestamp. */
function next(d) {
  const k = stamps[d]++;
  const f = diffs[d][k % CYCLE].slice();
  const at = 2 + 4 * f[1] + 1;
  const ts = t0 + k * 1000;
  const hi = Math.floor(ts / 2 ** 32);
  const lo = ts >>> 0;
  f[at] = hi >>> 8;
  f[at + 1] = hi & 0xff;
  f[at + 2] = lo >>> 24;
  f[at + 3] = (lo >>> 16) & 0xff;
  f[at + 4] = (lo >>> 8) & 0xff;
  f[at + 5] = lo & 0xff;
  const crc = crc16Unchecked(f, 0, f.length - 2);
  f[f.length - 2] = crc >>> 8;
  f[f.length - 1] = crc & 0xff;
  return f;
}

// BENCH_SENDER=transport (default): our UDP transport, whose native backend hands the frames to
// the kernel in sendmmsg batches, so one sender process outruns the server it measures;
// BENCH_SENDER=dgram: one node:dgram send per frame (about 60-100k/s here, below the target).
const SENDER = process.env.BENCH_SENDER ?? 'transport';
let socket;
let transport;
if (SENDER === 'dgram') {
  socket = createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
  socket.bind(0, '127.0.0.1');
  await new Promise((r) => socket.once('listening', r));
} else {
  transport = await createTransport('udp', { host: '127.0.0.1', port: 0, sendBufferSize: 4 * 1024 * 1024, maxPendingSends: 16_384 });
  await transport.start();
}

async function run({ port, rate, seconds, full }) {
  let sent = 0;
  let failed = 0;
  let pending = 0;
  const done = (err) => {
    pending--;
    if (err) failed++;
  };
  const to = { address: '127.0.0.1', port };
  const ok = () => done();
  const send = (frame) => {
    pending++;
    sent++;
    if (socket !== undefined) socket.send(frame, port, '127.0.0.1', done);
    else transport.send(frame, to).then(ok, done);
  };
  // Every device's FULLs first (once per receiver), so its DIFFs have a template.
  if (full) for (const f of fulls) for (const frame of f) send(frame);
  while (pending > 0) await new Promise((r) => setImmediate(r));
  const start = performance.now();
  const end = start + seconds * 1000;
  let d = 0;
  const burst = Number.isFinite(rate) ? Math.max(1, Math.ceil(rate / 2000)) : 256;
  for (let now = start; now < end; now = performance.now()) {
    const due = Number.isFinite(rate) ? Math.floor(((now - start) / 1000) * rate) : sent + burst;
    // Bounded sends in flight: the socket's callbacks must keep up or the rate is a lie.
    let n = 0;
    while (sent < due + (full ? countFulls() : 0) && n++ < 4 * burst && pending < 8192) {
      send(next(d));
      if (++d === devices) d = 0;
    }
    await new Promise((r) => setImmediate(r));
  }
  while (pending > 0) await new Promise((r) => setImmediate(r));
  return { sent: sent - failed, failed, seconds: (performance.now() - start) / 1000 };
}

let fullCount;
function countFulls() {
  fullCount ??= fulls.reduce((n, f) => n + f.length, 0);
  return fullCount;
}

process.on('message', async (m) => {
  if (m.exit) {
    socket?.close();
    await transport?.destroy();
    process.exit(0);
  }
  if (m.run) process.send({ done: await run(m.run) });
});
process.send({ ready: { devices, sensors, fullFrames: countFulls() } });
