/**
 * The ingest on one thread (OpenSynapticServer) against WorkerIngest with N workers, same run,
 * UDP on loopback, the ingest bench's sender in another process (sender.mjs, forked: 10,000
 * devices with pre-assigned ids, their FULLs first, then DIFFs). Run after the build:
 * `pnpm --filter @opensynaptic/server bench:workers`.
 *
 * Each round runs every case once in turn (so a slow spell of the machine hits all of them), and
 * the table gives each case's median over the rounds: readings/s stored (committed by the sink,
 * from the first DIFF sent to the last commit; decode-only: readings decoded), lost (sent minus
 * stored, and where: kernel buffer, rings, intake), CPU per reading (process.cpuUsage: every
 * thread of this process, workers and SQLite writers included), and the event-loop utilisation of
 * the main thread and of each worker (how busy each thread was). The scaling factor is each
 * case's median over the one-thread case's.
 *
 * Environment (defaults in brackets):
 *   BENCH_SECONDS [30]        length of each timed run
 *   BENCH_ROUNDS [3]          runs of each case (the median is reported)
 *   BENCH_WORKERS [2]         worker counts to run against one thread, comma-separated ("1,2")
 *   BENCH_SINKS [sqlite,none] sqlite (one file per run, written by every worker), none (decode only)
 *   BENCH_RATE [Infinity]     the sender's DIFF rate, frames/s
 *   BENCH_DEVICES [10000]     devices (the sender's)
 *   BENCH_SYNCHRONOUS [full], BENCH_SQLITE_BATCH [65536]  SQLite synchronous and readings per transaction
 *   BENCH_RING_BYTES [4 MiB]  each worker's ring
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { OpenSynapticServer } from '@opensynaptic/server';
import { WorkerIngest } from '@opensynaptic/server/workers';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { createTransport } from '@opensynaptic/transport';
import { kernelUdpDrops, startSender } from './sender-client.mjs';

const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS ?? 30);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const WORKERS = (env.BENCH_WORKERS ?? '2').split(',').map(Number);
const SINKS = (env.BENCH_SINKS ?? 'sqlite,none').split(',').filter(Boolean);
const RATE = Number(env.BENCH_RATE ?? Number.POSITIVE_INFINITY);
const SYNC = env.BENCH_SYNCHRONOUS ?? 'full';
const SQLITE_BATCH = Number(env.BENCH_SQLITE_BATCH ?? 65_536);
const RING_BYTES = env.BENCH_RING_BYTES === undefined ? undefined : Number(env.BENCH_RING_BYTES);
env.BENCH_DEVICES ??= '10000';
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const sender = await startSender();
const { ready } = sender;
const sendRun = (run) => sender.run(run);

const tmp = mkdtempSync(join(tmpdir(), 'os-workers-bench-'));
let n = 0;
const sqliteOptions = () => ({ path: join(tmp, `run-${++n}.db`), synchronous: SYNC, batchSize: SQLITE_BATCH });

/**
 * One case: `workers` 0 is today's server on one thread. Returns its measures; `progress()` is
 * what was stored (or decoded) so far, to find the end of the run.
 */
async function runCase(workers, sinkName) {
  const transport = await createTransport('udp', { host: '127.0.0.1', port: 0, recvBufferSize: 4 * 1024 * 1024 });
  let progress;
  let stop;
  let extra;
  let sinkPath;
  if (workers === 0) {
    let decoded = 0;
    if (sinkName === 'sqlite') sinkPath = sqliteOptions();
    const sink = sinkPath === undefined ? null : await openSqliteReadingsSink(sinkPath);
    const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport }], sinks: sink === null ? [] : [sink], services: [{ name: 'count', onReading: () => decoded++ }] });
    await server.start();
    progress = async () => (sink === null ? decoded : (await sink.status()).committed);
    extra = async () => {
      const s = await server.status();
      return { drops: `transport ${s.transports.udp.dropped['queue-full'] ?? 0}, intake ${s.dropped.device}`, elu: [] };
    };
    stop = () => server.stop();
  } else {
    if (sinkName === 'sqlite') sinkPath = sqliteOptions();
    const sink = sinkPath === undefined ? null : { module: '@opensynaptic/store-sqlite', export: 'openSqliteReadingsSink', options: sinkPath };
    const ingest = new WorkerIngest({ transports: [{ name: 'udp', transport }], workers, sink, ...(RING_BYTES === undefined ? {} : { ringBytes: RING_BYTES }) });
    await ingest.start();
    progress = async () => {
      const s = await ingest.status();
      return s.workers.reduce((a, w) => a + (sinkName === 'sqlite' ? w.committed : w.readings), 0);
    };
    extra = async () => {
      const s = await ingest.status();
      return { drops: `rings ${s.workers.map((w) => w.dropped.ringFull).join('+')}`, elu: s.workers.map((w) => w.utilization) };
    };
    stop = () => ingest.stop();
  }
  const port = transport.address.port;
  await sendRun({ to: { medium: 'udp', port }, rate: 0, seconds: 0, full: true });
  for (const until = Date.now() + 60_000; (await progress()) < ready.fullFrames; ) {
    if (Date.now() > until) throw new Error(`${workers} workers: ${await progress()} of the ${ready.fullFrames} FULL readings in 60 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const base = await progress();
  const drops0 = kernelUdpDrops();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  const sent = await sendRun({ to: { medium: 'udp', port }, rate: RATE, seconds: SECONDS, full: false });
  // The end: the last time the count moved (polled every 50 ms until it stays still for 500 ms).
  let last = await progress();
  let lastAt = performance.now();
  while (performance.now() - lastAt < 500) {
    await new Promise((r) => setTimeout(r, 50));
    const p = await progress();
    if (p !== last) {
      last = p;
      lastAt = performance.now();
    }
  }
  const elapsed = (lastAt - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const x = await extra();
  await stop();
  const readings = last - base;
  let stored = '';
  if (sinkPath !== undefined) {
    const check = await openSqliteReadingsSink({ path: sinkPath.path, readonly: true });
    stored = (await check.status()).stored.readings;
    await check.close();
  }
  return {
    perSecond: readings / elapsed,
    sentPerSecond: sent.sent / sent.seconds,
    lost: sent.sent - readings,
    cpu: (cpu.user + cpu.system) / Math.max(1, readings),
    mainElu: elu,
    workerElu: x.elu,
    where: `kernel ${kernelUdpDrops() - drops0} (machine-wide), ${x.drops}${stored === '' ? '' : `, file holds ${fmt(stored)}`}`,
  };
}

console.log(`workers bench: node ${process.version}, ${ready.devices} devices, ${ready.sensors} sensor(s)/frame, ${SECONDS} s per run, ${ROUNDS} rounds, sender at ${Number.isFinite(RATE) ? `${fmt(RATE)}/s` : 'its full rate'}; load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
const cases = [];
for (const sink of SINKS) for (const w of [0, ...WORKERS]) cases.push({ sink, workers: w, runs: [] });
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of cases) {
      const r = await runCase(c.workers, c.sink);
      c.runs.push(r);
      console.log(
        `round ${round}: ${c.sink} ${c.workers === 0 ? 'one thread' : `${c.workers} workers`}: ${fmt(r.perSecond)} readings/s, sent ${fmt(r.sentPerSecond)}/s, lost ${fmt(r.lost)} (${r.where}), CPU ${r.cpu.toFixed(2)} µs/reading, main ELU ${r.mainElu.toFixed(2)}${r.workerElu.length > 0 ? `, workers ELU ${r.workerElu.map((e) => (e === null ? '?' : e.toFixed(2))).join('/')}` : ''}`,
      );
    }
  }
  const rows = [];
  for (const sink of SINKS) {
    const one = median(cases.find((c) => c.sink === sink && c.workers === 0).runs.map((r) => r.perSecond));
    for (const c of cases.filter((x) => x.sink === sink)) {
      const m = median(c.runs.map((r) => r.perSecond));
      rows.push({
        case: `${sink === 'none' ? 'decode only' : 'SQLite'}, ${c.workers === 0 ? 'one thread (server)' : `${c.workers} worker${c.workers > 1 ? 's' : ''}`}`,
        'readings/s (median)': fmt(m),
        runs: c.runs.map((r) => fmt(r.perSecond)).join(' / '),
        scaling: `${(m / one).toFixed(2)}x`,
        'sent/s': fmt(median(c.runs.map((r) => r.sentPerSecond))),
        'lost (median)': fmt(median(c.runs.map((r) => r.lost))),
        'CPU µs/reading': median(c.runs.map((r) => r.cpu)).toFixed(2),
        'main ELU': median(c.runs.map((r) => r.mainElu)).toFixed(2),
        'workers ELU': c.workers === 0 ? '' : Array.from({ length: c.workers }, (_, i) => median(c.runs.map((r) => r.workerElu[i] ?? 0)).toFixed(2)).join('/'),
      });
    }
  }
  console.table(rows);
} finally {
  sender.exit();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`load average at end ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
