/**
 * Server ingest over UDP on loopback (or TCP streaming, or MQTT QoS 1 through Debian's mosquitto:
 * BENCH_TRANSPORT), the sender in another process (sender.mjs, forked), into SQLite and into
 * PostgreSQL (a private server started here, fsync on), with the reference's receive rate
 * measured in the same run (UDP). Run after the build: `pnpm --filter @opensynaptic/server bench`.
 *
 * Per sink, two sustained runs: paced at the target rate (SQLite 100,000/s, PostgreSQL 50,000/s)
 * and as fast as the sender goes. Each prints readings/s stored (first receive to last commit),
 * count sent = count stored with any loss as a number and where it went (kernel socket buffer,
 * transport queue, server, sink), memory (RSS and heap at start, middle, end, and the highest),
 * p50/p99 from receive to committed (the sink's onCommit; receive times are the transport's, in
 * whole ms), and CPU per reading (process.cpuUsage of this process, all its threads, / readings).
 * Then the split: what plain node:dgram receives, what our UDP transport delivers, what the
 * server decodes without a sink, each at the sender's full rate, so a ceiling is measured, not
 * guessed. Then the reference (opensynaptic 1.4.2) receiving and decoding the same frames.
 *
 * Environment (defaults in brackets):
 *   BENCH_TRANSPORT [udp]     udp, tcp (one `stream` connection carrying every device's frames, as
 *                             a gateway's) or mqtt (QoS 1 both ways: the sender's publishes
 *                             resolve on the broker's PUBACK, the server subscribes at QoS 1)
 *   BENCH_SECONDS [60]        length of each sustained run (use 5..10 on a shared machine)
 *   BENCH_SINKS [sqlite,postgres]
 *   BENCH_SQLITE_RATE [100000], BENCH_PG_RATE [50000]  paced runs' target (frames/s)
 *   BENCH_MAX [1]             also a run at the sender's full rate per sink (0: paced only)
 *   BENCH_DEVICES [100], BENCH_SENSORS [1]  devices sending, sensors per frame (readings/frame)
 *   BENCH_SYNCHRONOUS [full]  SQLite synchronous (full: every commit fsynced; normal)
 *   BENCH_SQLITE_BATCH [the sink's, SQLITE_BATCH_SIZE]  SQLite readings per transaction
 *   BENCH_DEVICE_QUEUE, BENCH_QUEUE_FRAMES [the server's]  its deviceQueue and queueFrames
 *   BENCH_MAX_BUFFERED [the sink's]  the SQLite sink's maxBuffered
 *   BENCH_SPLIT [1], BENCH_SPLIT_SECONDS [5]  the receive / decode split
 *   BENCH_SPLIT_RATE [Infinity]  the split's sender rate (below every stage's ceiling, the CPU
 *                             per frame has no frames read and then dropped in it)
 *   BENCH_REFERENCE [1], BENCH_REF_SECONDS [5]  the reference receiver
 *   BENCH_SAMPLE_SECONDS [0]  also print memory and stored readings every this many seconds
 *                             during each sustained run (0: only start / middle / end)
 *
 * The split and the reference run with BENCH_TRANSPORT=udp only (they measure UDP receivers).
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { ensureDebianPackages } from '@opensynaptic/config/apt';
import { MOSQUITTO, Mosquitto } from '@opensynaptic/config/mosquitto';
import { startPostgres } from '@opensynaptic/config/postgres';
import { REFERENCE_VERSION, referencePython } from '@opensynaptic/config/reference';
import { OpenSynapticServer } from '@opensynaptic/server';
import { createTransport } from '@opensynaptic/transport';
import { kernelUdpDrops, startSender } from './sender-client.mjs';

const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS ?? 60);
const SINKS = (env.BENCH_SINKS ?? 'sqlite,postgres').split(',').filter(Boolean);
const RATES = { sqlite: Number(env.BENCH_SQLITE_RATE ?? 100_000), postgres: Number(env.BENCH_PG_RATE ?? 50_000) };
const MAX = env.BENCH_MAX !== '0';
const SYNC = env.BENCH_SYNCHRONOUS ?? 'full';
const SQLITE_BATCH = env.BENCH_SQLITE_BATCH === undefined ? undefined : Number(env.BENCH_SQLITE_BATCH);
const SPLIT = env.BENCH_SPLIT !== '0';
const SPLIT_SECONDS = Number(env.BENCH_SPLIT_SECONDS ?? 5);
const SPLIT_RATE = Number(env.BENCH_SPLIT_RATE ?? Number.POSITIVE_INFINITY);
const REFERENCE = env.BENCH_REFERENCE !== '0';
const REF_SECONDS = Number(env.BENCH_REF_SECONDS ?? 5);
const TRANSPORT = env.BENCH_TRANSPORT ?? 'udp';
const SAMPLE_SECONDS = Number(env.BENCH_SAMPLE_SECONDS ?? 0);
if (!['udp', 'tcp', 'mqtt'].includes(TRANSPORT)) throw new Error(`BENCH_TRANSPORT must be udp, tcp or mqtt, not ${TRANSPORT}`);
const RECV_BUFFER = 4 * 1024 * 1024;
const wall = () => performance.timeOrigin + performance.now();
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const mb = (b) => (b / 1048576).toFixed(0);

// ------------------------------------------------------------------------------ the sender

const sender = await startSender();
const { ready } = sender;
const sendRun = (run) => sender.run(run);

const udpTransport = async () => {
  const t = await createTransport('udp', { host: '127.0.0.1', port: 0, recvBufferSize: RECV_BUFFER });
  return t;
};
const portOf = (t) => t.address.port;

let broker;
/** The server's transport of BENCH_TRANSPORT, and where the sender reaches it (after `start()`). */
async function serverTransport() {
  if (TRANSPORT === 'udp') {
    const t = await udpTransport();
    return { transport: t, target: () => ({ medium: 'udp', port: portOf(t) }) };
  }
  if (TRANSPORT === 'tcp') {
    const t = await createTransport('tcp', { listen: { host: '127.0.0.1', port: 0 } });
    return { transport: t, target: () => ({ medium: 'tcp', port: portOf(t) }) };
  }
  ensureDebianPackages([{ program: MOSQUITTO, pkg: 'mosquitto' }], (m) => console.log(`ingest bench: ${m}`));
  broker ??= await Mosquitto.start();
  const t = await createTransport('mqtt', { url: broker.url, qos: 1, clientId: `bench-server-${process.pid}-${Date.now()}` });
  return { transport: t, target: () => ({ medium: 'mqtt', url: broker.url }) };
}

// ---------------------------------------------------------------------- receive-to-commit

/**
 * Receive times of the readings given to the sink, in sink order (one transport, so the order
 * of `onReading` is the order of the sink's sequence numbers), settled by `onCommit`: a fixed
 * ring and a histogram of 0.1 ms bins, so measuring costs no memory growth.
 */
class Latency {
  ring = new Float64Array(1 << 21);
  hist = new Uint32Array(200_000);
  written = 0;
  settled = 0;
  firstMs = 0;
  lastCommitMs = 0;
  onReading = (r) => {
    if (this.firstMs === 0) this.firstMs = r.receivedAtMs;
    this.ring[this.written++ & (this.ring.length - 1)] = r.receivedAtMs;
  };
  /** Commits seen before their receive time: a clock stepped back (counted, not hidden in bin 0). */
  backwards = 0;
  onCommit = (e) => {
    // The receive times are the transport's clock (Date.now), so the commit time must be too:
    // timeOrigin + performance.now() differs from it by a few ms and the difference moves during a
    // run (0.3 to 3.8 ms within 100 s here), which clamped a 1-3 ms latency to 0.0 in a 600 s run.
    // Both are whole milliseconds, so a latency is ±1 ms.
    const now = Date.now();
    this.lastCommitMs = now;
    for (; this.settled < e.throughSeq && this.settled < this.written; this.settled++) {
      const ms = now - this.ring[this.settled & (this.ring.length - 1)];
      if (ms < 0) this.backwards++;
      const bin = Math.max(0, Math.round(ms * 10));
      this.hist[Math.min(bin, this.hist.length - 1)]++;
    }
  };
  quantile(q) {
    const total = this.hist.reduce((a, b) => a + b, 0);
    let acc = 0;
    for (let i = 0; i < this.hist.length; i++) {
      acc += this.hist[i];
      if (acc >= q * total && total > 0) return i / 10;
    }
    return Number.NaN;
  }
}

function memorySampler() {
  const samples = [];
  const take = () => {
    const m = process.memoryUsage();
    samples.push({ rss: m.rss, heap: m.heapUsed });
  };
  take();
  const timer = setInterval(take, 500);
  return {
    stop() {
      clearInterval(timer);
      take();
      // With --expose-gc, what is still held at the end (heapUsed above counts garbage not yet collected).
      let held = '';
      if (typeof globalThis.gc === 'function') {
        globalThis.gc();
        held = `, heap after a full GC ${mb(process.memoryUsage().heapUsed)} MB`;
      }
      const mid = samples[Math.floor(samples.length / 2)];
      const max = samples.reduce((a, s) => ({ rss: Math.max(a.rss, s.rss), heap: Math.max(a.heap, s.heap) }), { rss: 0, heap: 0 });
      const [a, z] = [samples[0], samples[samples.length - 1]];
      return `RSS ${mb(a.rss)}/${mb(mid.rss)}/${mb(z.rss)} (max ${mb(max.rss)}), heap ${mb(a.heap)}/${mb(mid.heap)}/${mb(z.heap)} (max ${mb(max.heap)}) MB${held}`;
    },
  };
}

/** Memory and readings stored so far, every `every` s of a sustained run: is it flat? */
function progress(server, latency, base, every) {
  const t0 = wall();
  const timer = setInterval(async () => {
    const m = process.memoryUsage();
    const s = await server.status();
    console.log(
      `  t=${((wall() - t0) / 1000).toFixed(0)} s: frames ${fmt(s.frames - base.frames)}, readings committed ${fmt(latency.settled - base.written)}, behind ${fmt(latency.written - latency.settled)}, RSS ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} MB`,
    );
  }, every * 1000);
  return { stop: () => clearInterval(timer) };
}

// ------------------------------------------------------------------------------- one run

async function ingest(name, openSink, rate, seconds) {
  const latency = new Latency();
  const sink = await openSink({ onCommit: latency.onCommit });
  const { transport, target } = await serverTransport();
  const server = new OpenSynapticServer({
    transports: [{ name: TRANSPORT, transport }],
    sinks: [sink],
    services: [{ name: 'bench-latency', onReading: latency.onReading }],
    ...(env.BENCH_DEVICE_QUEUE === undefined ? {} : { deviceQueue: Number(env.BENCH_DEVICE_QUEUE) }),
    ...(env.BENCH_QUEUE_FRAMES === undefined ? {} : { queueFrames: Number(env.BENCH_QUEUE_FRAMES) }),
  });
  await server.start();
  // The FULLs first, untimed: every device has its template before the sustained part.
  const fullSent = await sendRun({ to: target(), rate: 0, seconds: 0, full: true });
  // A FULL the sender could not send costs its device every later frame: stop here, saying why.
  if (fullSent.failed > 0) throw new Error(`the sender could not send ${fullSent.failed} of the ${ready.fullFrames} FULL frames: ${fullSent.firstError}`);
  for (const until = Date.now() + 60_000; (await server.status()).frames < ready.fullFrames; ) {
    if (Date.now() > until) throw new Error(`the server took ${(await server.status()).frames} of the ${ready.fullFrames} FULL frames in 60 s (see status().dropped)`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const base = { frames: (await server.status()).frames, written: latency.written };
  latency.firstMs = 0;
  const drops0 = kernelUdpDrops();
  const mem = memorySampler();
  // Stalls of the server's thread: while it does not read the socket, the kernel's buffer fills.
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const sampler = SAMPLE_SECONDS > 0 ? progress(server, latency, base, SAMPLE_SECONDS) : undefined;
  const sent = await sendRun({ to: target(), rate, seconds, full: false });
  sampler?.stop();
  // Until the transport's queue and the server are idle, then stop (the sink flushes and closes).
  let last = -1;
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const s = await server.status();
    if (s.frames === last && s.transports[TRANSPORT].inboundQueued === 0) break;
    last = s.frames;
  }
  const status = await server.status();
  await server.stop();
  const cpu = process.cpuUsage(cpu0);
  const memory = mem.stop();
  loop.disable();
  const drops = kernelUdpDrops() - drops0;
  const st = status.services.storage;
  const after = server.services.get('storage').status();
  const expected = (sent.sent + ready.fullFrames) * ready.sensors;
  const stored = await countStored(name);
  const readings = stored - base.written * ready.sensors;
  const elapsed = (latency.lastCommitMs - (latency.firstMs || latency.lastCommitMs)) / 1000;
  const td = status.transports[TRANSPORT].dropped ?? {};
  const transportDrops = Object.values(td).reduce((a, b) => a + b, 0);
  const row = {
    case: `${TRANSPORT} → ${name} ${Number.isFinite(rate) ? `paced ${fmt(rate)}/s` : 'max rate'}`,
    'sent/s': fmt(sent.sent / sent.seconds),
    'readings/s stored': fmt(readings / elapsed),
    sent: expected,
    stored,
    lost: expected - stored,
    'p50 ms': latency.quantile(0.5).toFixed(1),
    'p99 ms': latency.quantile(0.99).toFixed(1),
    'CPU µs/reading': ((cpu.user + cpu.system) / Math.max(1, readings)).toFixed(2),
    'loop delay p99/max ms': `${(loop.percentile(99) / 1e6).toFixed(0)}/${(loop.max / 1e6).toFixed(0)}`,
  };
  const where = `${TRANSPORT === 'udp' ? `kernel buffer ${Number.isNaN(drops) ? '?' : drops} (machine-wide), ` : ''}sender failed ${sent.failed}, transport ${transportDrops}, intake by device ${status.dropped.device}, server ${status.dropped.iterator + status.dropped.sink + status.dropped.rejected}, errors ${Object.values(status.errors).reduce((a, b) => a + b, 0)}, sink lost ${after?.lost ?? st?.lost ?? '?'}`;
  return { row, detail: `${row.case}: loss by place: ${where}; ${after?.batches ?? '?'} transactions; ${latency.backwards} readings committed before their receive time (clock stepped back); memory start/middle/end ${memory}; ${fmt(sent.seconds)} s sent` };
}

// ------------------------------------------------------------------------------- sinks

const tmp = mkdtempSync(join(tmpdir(), 'os-ingest-bench-'));
let pg;
let n = 0;
const counters = {};
const openers = {
  sqlite: async () => {
    const { openSqliteReadingsSink } = await import('@opensynaptic/store-sqlite');
    return (extra) => {
      const path = join(tmp, `ingest-${++n}.db`);
      counters.sqlite = async () => {
        const r = await openSqliteReadingsSink({ path, readonly: true });
        const s = await r.status();
        await r.close();
        return s.stored.readings;
      };
      return openSqliteReadingsSink({ path, synchronous: SYNC, batchSize: SQLITE_BATCH, ...(env.BENCH_MAX_BUFFERED === undefined ? {} : { maxBuffered: Number(env.BENCH_MAX_BUFFERED) }), ...extra });
    };
  },
  postgres: async () => {
    const { openPostgresReadingsSink } = await import('@opensynaptic/store-postgres');
    pg = await startPostgres({ log: (m) => console.log(`postgres: ${m}`) });
    return (extra) => {
      const schema = `ingest_${++n}`;
      counters.postgres = async () => {
        const r = await openPostgresReadingsSink({ connection: pg.url, schema });
        const s = await r.status();
        await r.close();
        return s.stored.readings;
      };
      return openPostgresReadingsSink({ connection: pg.url, schema, ...extra });
    };
  },
};
const countStored = (name) => counters[name]();

// ------------------------------------------------------------------------------- split

/** Where a split stage's server dropped frames: the transport's queue, a device's intake share. */
async function serverDrops(server) {
  const s = await server.status();
  return `transport ${s.transports.udp.dropped['queue-full']}, device ${s.dropped.device}`;
}

async function split() {
  const rows = [];
  const measure = async (what, open) => {
    const { port, count, close, drops } = await open();
    await sendRun({ to: { medium: 'udp', port }, rate: 0, seconds: 0, full: true });
    await new Promise((r) => setTimeout(r, 200));
    const c0 = count();
    const t0 = wall();
    const cpu0 = process.cpuUsage();
    const sent = await sendRun({ to: { medium: 'udp', port }, rate: SPLIT_RATE, seconds: SPLIT_SECONDS, full: false });
    await new Promise((r) => setTimeout(r, 300));
    const cpu = process.cpuUsage(cpu0);
    const got = count() - c0;
    const elapsed = (wall() - t0 - 300) / 1000;
    const where = (await drops?.()) ?? '';
    await close();
    rows.push({
      stage: what,
      'sent/s': fmt(sent.sent / sent.seconds),
      'taken/s': fmt(got / elapsed),
      taken: got,
      sent: sent.sent,
      'not taken': sent.sent - got,
      'CPU µs/frame': ((cpu.user + cpu.system) / Math.max(1, got)).toFixed(2),
      'dropped where': where,
    });
  };
  await measure('node:dgram socket (receive only)', async () => {
    const s = createSocket({ type: 'udp4', recvBufferSize: RECV_BUFFER });
    let k = 0;
    s.on('message', () => k++);
    await new Promise((r) => s.bind(0, '127.0.0.1', r));
    return { port: s.address().port, count: () => k, close: () => new Promise((r) => s.close(r)) };
  });
  await measure('our UDP transport (iterated)', async () => {
    const t = await udpTransport();
    await t.start();
    let k = 0;
    void (async () => {
      for await (const _ of t) k++;
    })();
    return { port: portOf(t), count: () => k, close: () => t.destroy() };
  });
  // Readings counted by a service's onReading, as a sink sees them (a readings() iterator would
  // add its own promise per reading to the figure).
  await measure('server, decode, no sink', async () => {
    const t = await udpTransport();
    let k = 0;
    const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport: t }], services: [{ name: 'bench-count', onReading: () => k++ }] });
    await server.start();
    return { port: portOf(t), count: () => k, close: () => server.destroy(), drops: () => serverDrops(server) };
  });
  // The same with the transport's batches hidden: the server's intake reads frame by frame (one
  // promise per frame), as it did before Transport.batches.
  await measure('server, decode, no sink, per-frame intake', async () => {
    const t = await udpTransport();
    t.batches = undefined;
    let k = 0;
    const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport: t }], services: [{ name: 'bench-count', onReading: () => k++ }] });
    await server.start();
    return { port: portOf(t), count: () => k, close: () => server.destroy(), drops: () => serverDrops(server) };
  });
  return rows;
}

// ------------------------------------------------------------------------------- reference

async function reference() {
  const ref = await referencePython();
  if (ref.python === null) return `reference: ${ref.reason}`;
  const prelude = readFileSync(new URL('../../config/reference-prelude.py', import.meta.url), 'utf8');
  const script = readFileSync(new URL('./reference-receiver.py', import.meta.url), 'utf8');
  const py = spawn(ref.python, ['-c', `${prelude}\n${script}`, String(REF_SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  py.stdout.on('data', (d) => (out += d));
  while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 20));
  const { port } = JSON.parse(out.split('\n')[0]);
  await sendRun({ to: { medium: 'udp', port }, rate: 0, seconds: 0, full: true });
  const sent = await sendRun({ to: { medium: 'udp', port }, rate: Number.POSITIVE_INFINITY, seconds: REF_SECONDS, full: false });
  await new Promise((r) => py.on('close', r));
  const result = JSON.parse(out.trim().split('\n').pop());
  return `reference ${REFERENCE_VERSION} receiver (receive_via_protocol on a UDP socket, same frames, sender at ${fmt(sent.sent / sent.seconds)}/s): decoded ${fmt(result.per_second)} frames/s (${fmt(result.decoded)} of ${fmt(result.received)} received, ${fmt(sent.sent)} sent)`;
}

// ------------------------------------------------------------------------------- main

const load0 = loadavg();
console.log(`ingest bench over ${TRANSPORT}: node ${process.version}, ${ready.devices} devices, ${ready.sensors} sensor(s)/frame, ${SECONDS} s per run, SQLite synchronous ${SYNC}; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}`);
const rows = [];
const details = [];
try {
  for (const name of SINKS) {
    const open = await openers[name]();
    for (const rate of MAX ? [RATES[name], Number.POSITIVE_INFINITY] : [RATES[name]]) {
      const { row, detail } = await ingest(name, open, rate, SECONDS);
      rows.push(row);
      details.push(detail);
      console.log(detail);
    }
  }
  console.log(`\nserver ingest over ${TRANSPORT} on loopback (sender in another process)`);
  console.table(rows);
  if (TRANSPORT !== 'udp') {
    if (SPLIT || REFERENCE) console.log(`the split and the reference receiver are UDP measurements: not run with BENCH_TRANSPORT=${TRANSPORT}`);
  } else if (SPLIT) {
    console.log(`\nthe split: each stage alone, sender at ${Number.isFinite(SPLIT_RATE) ? `${fmt(SPLIT_RATE)}/s` : 'its full rate'}`);
    console.table(await split());
  }
  if (REFERENCE && TRANSPORT === 'udp') console.log(await reference());
} finally {
  sender.exit();
  pg?.stop();
  await broker?.close();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
