// The ingest bench's sender, a child process of ingest.bench.mjs (fork): `devices` nodes with
// assigned ids sending over one UDP socket round-robin over the devices, paced at `rate`
// frames/s (Infinity: as fast as the socket takes them). Each device's frames are made once up
// front by its node (its FULLs, sent first to each new receiver, then a cycle of DIFFs whose
// first value changes every frame); each DIFF sent is a copy stamped with a timestamp one second
// after the device's previous one (the header's uint48 and the CRC-16 rewritten), as a real
// device's would be: increasing timestamps matter to the database (its time indexes grow at
// their end), and stamping a copy costs far less than a transmit, so on a small machine it is
// the server that is measured. Messages from the parent: { run: { to, rate, seconds, full } }
// → { done: { sent, failed, seconds } }; { exit: true }. `to` is { medium: 'udp', port } (one
// socket for every receiver), { medium: 'tcp', port } (one `stream` connection per receiver,
// carrying every device's frames as a gateway's would) or { medium: 'mqtt', url } (one client
// per broker, QoS 1: a send resolves on the broker's PUBACK, so `pending` bounds the frames the
// broker has not acknowledged). BENCH_STRATEGY=heart: each device's values never change, so after
// its FULL it sends only HEARTs (the fleet bench). A run given `frames` stops after that many.
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { OpenSynaptic } from '@opensynaptic/core';
import { crc16Unchecked } from '@opensynaptic/crc';
import { createTransport, DEFAULT_MAX_PENDING_SENDS } from '@opensynaptic/transport';

const devices = Number(process.env.BENCH_DEVICES ?? 100);
const sensors = Number(process.env.BENCH_SENSORS ?? 1);
const HEART = process.env.BENCH_STRATEGY === 'heart';
const CYCLE = HEART ? 1 : 64;
const FULL_RATE = Number(process.env.BENCH_FULL_RATE ?? 20_000);
const t0 = 1_700_000_000_000;
const fulls = [];
const diffs = [];
const stamps = new Array(devices).fill(0);
for (let d = 0; d < devices; d++) {
  const node = new OpenSynaptic({ assignedId: 1000 + d, deviceId: `BENCH${d}` });
  const first = [];
  const rest = [];
  for (let i = 0; rest.length < CYCLE; i++) {
    const values = Array.from({ length: sensors }, (_, s) => [`S${s}`, 'OK', s === 0 && !HEART ? 20 + i / 10 : 50 + s, 'Cel']);
    const out = node.transmit(values, { t: t0 + i * 1000 });
    if (HEART && rest.length === 0 && first.length > 0 && out.kind !== 'HEART' && out.kind !== 'FULL') throw new Error(`unchanged values gave a ${out.kind}, not a HEART`);
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

/** Stream and MQTT senders, one per receiver (TCP) or per broker (MQTT), kept for later runs. */
const links = new Map();
async function linkTo(to) {
  const key = `${to.medium}:${to.port ?? to.url}`;
  let t = links.get(key);
  if (t === undefined) {
    t =
      to.medium === 'tcp'
        ? await createTransport('tcp', { connect: { host: '127.0.0.1', port: to.port }, maxPendingBytes: 64 * 1024 * 1024 })
        : await createTransport('mqtt', { url: to.url, qos: 1, subscribe: false, clientId: `bench-sender-${process.pid}-${links.size}` });
    await t.start();
    links.set(key, t);
  }
  return t;
}

async function run({ to: target, rate, seconds, full, frames = Number.POSITIVE_INFINITY }) {
  const link = target.medium === 'udp' ? null : await linkTo(target);
  const port = target.port;
  let sent = 0;
  let failed = 0;
  let pending = 0;
  /** The first failure's message, so a run that lost sends says why. */
  let firstError = null;
  const done = (err) => {
    pending--;
    if (err) {
      failed++;
      firstError ??= String(err?.message ?? err);
    }
  };
  const to = { address: '127.0.0.1', port };
  const ok = () => done();
  const send = (frame) => {
    pending++;
    sent++;
    if (link !== null) link.send(frame).then(ok, done);
    else if (socket !== undefined) socket.send(frame, port, '127.0.0.1', done);
    else transport.send(frame, to).then(ok, done);
  };
  // Every device's FULLs first (once per receiver), so its DIFFs have a template: paced at
  // FULL_RATE, since a burst of 10,000 datagrams outruns a 4 MiB socket buffer and a FULL lost
  // costs its device every later frame.
  if (full) {
    const t = performance.now();
    let k = 0;
    for (const f of fulls) {
      // A QoS 1 or stream link refuses sends past its pending limit: wait for its
      // acknowledgements at half of it instead (room for a device's FULLs), as a real gateway would.
      while (link !== null && pending >= DEFAULT_MAX_PENDING_SENDS / 2) await new Promise((r) => setImmediate(r));
      for (const frame of f) send(frame);
      if (++k % 256 === 0) {
        const wait = t + (k / FULL_RATE) * 1000 - performance.now();
        await new Promise((r) => (wait > 0 ? setTimeout(r, wait) : setImmediate(r)));
      }
    }
  }
  while (pending > 0) await new Promise((r) => setImmediate(r));
  const start = performance.now();
  const end = start + seconds * 1000;
  let d = 0;
  const burst = Number.isFinite(rate) ? Math.max(1, Math.ceil(rate / 2000)) : 256;
  const base = sent;
  const last = base + frames;
  for (let now = start; now < end && sent < last; now = performance.now()) {
    const due = Math.min(last, Number.isFinite(rate) ? base + Math.floor(((now - start) / 1000) * rate) : sent + burst);
    // Bounded sends in flight: the socket's callbacks must keep up or the rate is a lie.
    let n = 0;
    while (sent < due && n++ < 4 * burst && pending < DEFAULT_MAX_PENDING_SENDS) {
      send(next(d));
      if (++d === devices) d = 0;
    }
    await new Promise((r) => setImmediate(r));
  }
  while (pending > 0) await new Promise((r) => setImmediate(r));
  return { sent: sent - failed, failed, firstError, seconds: (performance.now() - start) / 1000 };
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
    for (const t of links.values()) await t.destroy();
    process.exit(0);
  }
  if (m.run) process.send({ done: await run(m.run) });
});
process.send({ ready: { devices, sensors, fullFrames: countFulls() } });
