// Scale on paper and by simulation: what a fleet of 1 or 10 million devices needs, from what this
// machine measures.
//
//   node bench/scale.bench.mjs            # about a minute; starts a private PostgreSQL
//
// 1. Bytes per device per day: frames built by real nodes (two sensors, values on a random walk,
//    so the node itself picks FULL, DIFF or HEART), at 1 reading a minute, every 10 s and every second.
// 2. Per-partition load of 1,000,000 devices (aids 1.., as the allocator hands them out) through
//    the routing contract (`partitionOf`), for the rate mix below.
// 3. The takeover's state cost, on a real PostgreSQL store: a template change made durable
//    (a FULL received, then the node's flush), and a partition's templates preloaded by the node
//    that takes the partition over (`registry.preload(aids)`), per device.
// 4. A time-compressed run of the fleet, second by second (each device sends on its own period and
//    phase; per second, the partitions' arrivals), through R receivers of a measured capacity: one
//    receiver is killed; its leases expire, its partitions are claimed by the others (fewest owned
//    first), each claim preloads the partition's templates at the measured cost, the backlog that
//    JetStream held meanwhile is drained. R is the fewest with which the fleet loses a receiver and
//    is caught up within 120 s. Run for 1 and 10 million devices and several partition counts:
//    a partition has one owner (order), so its rate bounds a receiver, and the partitions must
//    divide over the survivors.
// 5. Sizing for 1 and 10 million devices from the capacities (BENCH_RECEIVER_RATE,
//    BENCH_NATS_NODE_RATE, BENCH_PUBACK_MS, BENCH_PG_RATE: frames/s one receiver, messages/s a core of a NATS node,
//    a gateway's PubAck time and
//    rows/s one PostgreSQL sustain; the defaults are figures measured in the server and cluster
//    benches, see the READMEs).
//
// Settings (environment): BENCH_DEVICES (1000000), BENCH_PARTITIONS (64), BENCH_SIM_SECONDS (600),
// BENCH_KILL_AT (200), BENCH_LEASE_TTL_MS (15000, the cluster receivers' `leaseTtlMs`), BENCH_MIX (`60:0.6,10:0.3,1:0.1`: period in s :
// share of devices), BENCH_TEMPLATES (20000: devices whose templates go into PostgreSQL for step 3).
import { performance } from 'node:perf_hooks';
import { seededRandom } from '@opensynaptic/config/kill-loop';
import { startPostgres } from '@opensynaptic/config/postgres';
import { OpenSynaptic } from '@opensynaptic/core';
import { openPostgresStore } from '@opensynaptic/store-postgres';
import { partitionOf } from '../dist/index.js';

const env = process.env;
const DEVICES = Number(env.BENCH_DEVICES ?? 1_000_000);
const PARTITIONS = Number(env.BENCH_PARTITIONS ?? 64);
const SIM_SECONDS = Number(env.BENCH_SIM_SECONDS ?? 600);
const KILL_AT = Number(env.BENCH_KILL_AT ?? 200);
const LEASE_TTL_S = Number(env.BENCH_LEASE_TTL_MS ?? 15_000) / 1000;
const TEMPLATES = Number(env.BENCH_TEMPLATES ?? 20_000);
// Capacities, measured on this machine (override with your own): a cluster receiver decodes and
// stores 7,000 frames/s of 2 sensors (14,000 readings/s: the cluster README, `bench/cluster.bench.mjs`);
// a NATS node spends 17.2 µs of a core per message of a 3-replica stream, so 58,000 messages/s a
// core (`bench/nats-node.bench.mjs` of the cluster); a gateway has one publish in flight per
// partition (order), 2.5 ms a PubAck with 3 replicas; PostgreSQL stored 50,000 rows/s (the server
// README's paced run).
const RECEIVER_RATE = Number(env.BENCH_RECEIVER_RATE ?? 7_000);
const NATS_NODE_RATE = Number(env.BENCH_NATS_NODE_RATE ?? 58_000);
const PUBACK_MS = Number(env.BENCH_PUBACK_MS ?? 2.5);
const PG_RATE = Number(env.BENCH_PG_RATE ?? 50_000);
const MIX = (env.BENCH_MIX ?? '60:0.6,10:0.3,1:0.1').split(',').map((p) => {
  const [period, share] = p.split(':').map(Number);
  if (!(Number.isInteger(period) && period >= 1 && share > 0 && share <= 1)) throw new Error(`BENCH_MIX: bad entry ${p}`);
  return { period, share };
});
if (Math.abs(MIX.reduce((a, m) => a + m.share, 0) - 1) > 1e-9) throw new Error('BENCH_MIX: the shares must add up to 1');

const fmt = (n, d = 0) => Number(n).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];

// Deterministic pseudo-randomness, so two runs simulate the same fleet.
const rand = seededRandom(0x9e3779b9);

// ------------------------------------------------------------------ 1. bytes per device per day

/** Two sensors on a random walk (temperature moves half the time, humidity a fifth): the node picks the strategy. */
function frameSample(devices, frames) {
  const kinds = { FULL: 0, DIFF: 0, HEART: 0 };
  const bytes = { FULL: 0, DIFF: 0, HEART: 0 };
  const t0 = Date.now();
  for (let d = 0; d < devices; d++) {
    const node = new OpenSynaptic({ assignedId: 1000 + d, deviceId: `S${d}` });
    let t = 20 + (d % 10);
    let h = 50;
    for (let i = 0; i < frames; i++) {
      if (rand() < 0.5) t = Math.round((t + (rand() < 0.5 ? -0.1 : 0.1)) * 10) / 10;
      if (rand() < 0.2) h += rand() < 0.5 ? -1 : 1;
      const out = node.transmit(
        [
          ['T1', 'OK', t, 'Cel'],
          ['H1', 'OK', h, '%'],
        ],
        { t: t0 + i * 10_000 },
      );
      kinds[out.kind]++;
      bytes[out.kind] += out.frame.length;
    }
  }
  const n = devices * frames;
  return { kinds, bytes, n, meanBytes: (bytes.FULL + bytes.DIFF + bytes.HEART) / n };
}

const sample = frameSample(100, 2000);
console.log(`scale bench: node ${process.version}, ${fmt(DEVICES)} devices, ${PARTITIONS} partitions, mix ${MIX.map((m) => `${m.share * 100}% every ${m.period} s`).join(', ')}`);
console.log(
  `\n1. frames of 100 real nodes × 2,000 readings (2 sensors, random walk): ${(['FULL', 'DIFF', 'HEART'])
    .map((k) => `${k} ${((sample.kinds[k] / sample.n) * 100).toFixed(1)}% of ${(sample.bytes[k] / Math.max(1, sample.kinds[k])).toFixed(1)} B`)
    .join(', ')}; mean ${sample.meanBytes.toFixed(1)} B a frame on the wire`,
);
// On JetStream each frame is also a message: its subject (`os.frames.NN`), the message-id and peer
// headers and the file store's record: 140.7 B stored for a 22 B frame (`bench/nats-node.bench.mjs`).
const NATS_OVERHEAD = Number(env.BENCH_NATS_OVERHEAD ?? 118.7);
const perDay = [60, 10, 1].map((period) => {
  const frames = 86_400 / period;
  return { period, frames, wire: frames * sample.meanBytes, nats: frames * (sample.meanBytes + NATS_OVERHEAD) };
});
console.table(perDay.map((r) => ({ 'a reading every': `${r.period} s`, 'frames a day': fmt(r.frames), 'wire bytes a day': fmt(r.wire), 'KiB a day': fmt(r.wire / 1024, 1), 'on JetStream (+119 B a message)': `${fmt(r.nats / 1024, 1)} KiB` })));

// ------------------------------------------------------------------ 2. per-partition load

/**
 * A fleet of `devices` (aids 1..), each on a period of the mix and a phase, routed over
 * `partitions`: per partition its devices and frames/s, and `arrivals.get(period)[phase][p]`,
 * the devices of that period that send at the seconds ≡ phase (what the simulation adds up).
 */
function fleet(devices, partitions) {
  const arrivals = new Map(MIX.map((m) => [m.period, Array.from({ length: m.period }, () => new Float64Array(partitions))]));
  const devicesPer = new Float64Array(partitions);
  const ratePer = new Float64Array(partitions);
  const t0 = performance.now();
  for (let d = 0; d < devices; d++) {
    let r = rand();
    let k = 0;
    while (k < MIX.length - 1 && r >= MIX[k].share) r -= MIX[k++].share;
    const period = MIX[k].period;
    const p = partitionOf(1 + d, partitions);
    arrivals.get(period)[Math.floor(rand() * period)][p]++;
    devicesPer[p]++;
    ratePer[p] += 1 / period;
  }
  const rates = Array.from(ratePer);
  const devs = Array.from(devicesPer);
  const total = rates.reduce((a, b) => a + b, 0);
  return { devices, partitions, arrivals, devicesPer, ratePer, total, routedMs: performance.now() - t0, devs, rates, maxRate: Math.max(...rates) };
}

const describeFleet = (f) =>
  `${fmt(f.devices)} devices over ${f.partitions} partitions (routed in ${fmt(f.routedMs)} ms): ${fmt(f.total)} frames/s; per partition devices min ${fmt(Math.min(...f.devs))} / median ${fmt(median(f.devs))} / max ${fmt(Math.max(...f.devs))}, frames/s min ${fmt(Math.min(...f.rates))} / median ${fmt(median(f.rates))} / max ${fmt(f.maxRate)} (${((f.maxRate / (f.total / f.partitions) - 1) * 100).toFixed(1)}% over the mean)`;

const million = fleet(DEVICES, PARTITIONS);
console.log(`\n2. ${describeFleet(million)}`);

// ------------------------------------------------------------------ 3. state cost on PostgreSQL

const pg = await startPostgres({ log: (m) => console.log(`   ${m}`) });
let preloadUsPerDevice;
let changeMs;
try {
  const store = await openPostgresStore({ connection: pg.url, schema: 'scale_bench', kinds: ['templates'] });
  // The writer: a receiver node that learns templates from real FULLs and makes each durable.
  const writer = new OpenSynaptic({ assignedId: 1, deviceId: 'RX', fusion: { registry: { store, syncIntervalMs: 0, maxEntries: TEMPLATES + 10 } } });
  await writer.open();
  const changes = [];
  const t0 = Date.now();
  for (let d = 0; d < TEMPLATES; d++) {
    const dev = new OpenSynaptic({ assignedId: 1 + d, deviceId: `D${d}` });
    const { frame } = dev.transmit(
      [
        ['T1', 'OK', 20 + (d % 7), 'Cel'],
        ['H1', 'OK', 40 + (d % 13), '%'],
      ],
      { t: t0 },
    );
    const a = performance.now();
    const out = writer.receive(frame);
    if (out.type !== 'data') throw new Error(`device ${d}: the FULL was not decoded (${out.type})`);
    // Every 100th FULL is timed alone (received, then flushed: the cost a receiver pays before it
    // may ack a FULL that changed a template); the others go out in the next flush together.
    if (d % 100 === 0) {
      await writer.flush();
      changes.push(performance.now() - a);
    }
  }
  await writer.flush();
  changeMs = median(changes);
  console.log(`\n3. a template change made durable in PostgreSQL (FULL received, then flush; fsync on): median ${changeMs.toFixed(2)} ms, p90 ${quantile(changes, 0.9).toFixed(2)} ms (${changes.length} timed)`);
  await writer.close?.();
  // The taker: a fresh node preloads one partition's devices, as a receiver claiming it does.
  const times = [];
  for (let p = 0; p < Math.min(PARTITIONS, 8); p++) {
    const taker = new OpenSynaptic({ assignedId: 2, deviceId: 'TAKER', fusion: { registry: { store, maxEntries: TEMPLATES + 10 } } });
    const aids = [];
    for (let d = 0; d < TEMPLATES; d++) if (partitionOf(1 + d, PARTITIONS) === p) aids.push(1 + d);
    const a = performance.now();
    const loaded = await taker.fusion.registry.preload(aids);
    const ms = performance.now() - a;
    if (loaded !== aids.length) throw new Error(`partition ${p}: preloaded ${loaded} of ${aids.length} templates`);
    times.push((ms * 1000) / aids.length);
    await taker.close?.();
  }
  preloadUsPerDevice = median(times);
  console.log(`   a partition's templates preloaded by the node taking it over: median ${preloadUsPerDevice.toFixed(1)} µs a device (${Math.round(TEMPLATES / PARTITIONS)} devices a partition, 8 partitions)`);
  await store.close();
} finally {
  pg.stop();
}

// ------------------------------------------------------------------ 4. time-compressed failover

/**
 * `SIM_SECONDS` of fleet `f` through `receivers` receivers of `RECEIVER_RATE` each, second by
 * second: partitions dealt round-robin; receiver 0 dies at `KILL_AT`; once its leases expire the
 * live receivers claim its partitions, fewest owned first; a claimed partition is consumed once its
 * devices' templates are preloaded; each live receiver serves its ready partitions' backlog
 * (JetStream holds what waits), its capacity shared in proportion to the backlog.
 */
function simulate(f, receivers) {
  const P = f.partitions;
  const owner = new Int32Array(P);
  for (let p = 0; p < P; p++) owner[p] = p % receivers;
  const readyAt = new Float64Array(P);
  const backlog = new Float64Array(P);
  const alive = new Array(receivers).fill(true);
  const lagMax = { msgs: 0, s: 0 };
  let caughtUpAt = null;
  let claimed = false;
  const loadBefore = new Float64Array(receivers);
  const loadAfter = new Float64Array(receivers);
  const t0 = performance.now();
  for (let t = 0; t < SIM_SECONDS; t++) {
    if (t === KILL_AT) alive[0] = false;
    if (!claimed && t >= KILL_AT + LEASE_TTL_S) {
      claimed = true;
      const count = new Array(receivers).fill(0);
      for (let p = 0; p < P; p++) if (alive[owner[p]]) count[owner[p]]++;
      for (let p = 0; p < P; p++) {
        if (alive[owner[p]]) continue;
        let best = -1;
        for (let r = 0; r < receivers; r++) if (alive[r] && (best < 0 || count[r] < count[best])) best = r;
        owner[p] = best;
        count[best]++;
        readyAt[p] = t + (f.devicesPer[p] * preloadUsPerDevice) / 1e6;
      }
    }
    for (const m of MIX) {
      const a = f.arrivals.get(m.period)[t % m.period];
      for (let p = 0; p < P; p++) backlog[p] += a[p];
    }
    const want = new Float64Array(receivers);
    for (let p = 0; p < P; p++) if (alive[owner[p]] && readyAt[p] <= t) want[owner[p]] += backlog[p];
    const done = new Float64Array(receivers);
    for (let p = 0; p < P; p++) {
      const r = owner[p];
      if (!alive[r] || readyAt[p] > t || want[r] === 0) continue;
      const n = backlog[p] * Math.min(1, RECEIVER_RATE / want[r]);
      backlog[p] -= n;
      done[r] += n;
    }
    for (let r = 0; r < receivers; r++) {
      if (t >= KILL_AT - 60 && t < KILL_AT) loadBefore[r] += done[r] / 60;
      if (t >= SIM_SECONDS - 60) loadAfter[r] += done[r] / 60;
    }
    let waiting = 0;
    let worst = 0;
    for (let p = 0; p < P; p++) {
      waiting += backlog[p];
      worst = Math.max(worst, backlog[p] / Math.max(1e-9, f.ratePer[p]));
    }
    lagMax.msgs = Math.max(lagMax.msgs, waiting);
    lagMax.s = Math.max(lagMax.s, worst);
    if (t > KILL_AT && claimed && caughtUpAt === null && worst < 1) caughtUpAt = t;
    if (caughtUpAt !== null && worst >= 1) caughtUpAt = null; // fell behind again: not caught up
  }
  return { receivers, lagMax, caughtUpAt, loadBefore, loadAfter, ms: performance.now() - t0 };
}

/** The fewest receivers with which fleet `f` loses one and is caught up within 120 s, and that run. */
function sized(f) {
  if (f.maxRate > RECEIVER_RATE) return { impossible: true };
  for (let r = Math.ceil(f.total / RECEIVER_RATE) + 1; r <= f.partitions + 1; r++) {
    const run = simulate(f, r);
    if (run.caughtUpAt !== null && run.caughtUpAt - KILL_AT <= 120) return run;
  }
  return { impossible: true };
}

function report(f, run, label) {
  if (run.impossible) {
    console.log(`   ${label}: no number of receivers works: a partition carries ${fmt(f.maxRate)} frames/s and one receiver takes ${fmt(RECEIVER_RATE)} (a partition has one owner, for order): more partitions are needed`);
    return;
  }
  const live = [...run.loadAfter].slice(1);
  const naive = Math.ceil(f.total / RECEIVER_RATE) + 1;
  const nv = naive < run.receivers ? simulate(f, naive) : null;
  console.log(
    `   ${label}: ${run.receivers} receivers (${fmt(f.total)} frames/s; ${fmt(SIM_SECONDS)} s simulated in ${fmt(run.ms)} ms): receiver 0 killed at ${KILL_AT} s; the most waiting at once ${fmt(run.lagMax.msgs)} frames, the worst partition ${run.lagMax.s.toFixed(1)} s behind, caught up ${run.caughtUpAt - KILL_AT} s after the kill; load per live receiver the minute before ${fmt(Math.min(...run.loadBefore))}-${fmt(Math.max(...run.loadBefore))}/s, the last minute ${fmt(Math.min(...live))}-${fmt(Math.max(...live))}/s (at most ${((Math.max(...live) / RECEIVER_RATE) * 100).toFixed(0)}% of capacity)` +
      (nv === null ? '' : `; with ${naive} (the rate alone, N + 1) it ${nv.caughtUpAt === null ? 'never caught up' : `caught up only after ${nv.caughtUpAt - KILL_AT} s`}: the partitions do not divide evenly over the survivors`),
  );
}

const preloadMax = (Math.max(...million.devs) * preloadUsPerDevice) / 1e6;
console.log(`\n4. failover, time-compressed: receivers of ${fmt(RECEIVER_RATE)} frames/s, leases expire after ${LEASE_TTL_S} s, a claimed partition's templates load in ${(preloadMax * 1000).toFixed(0)} ms at most (${fmt(Math.max(...million.devs))} devices × ${preloadUsPerDevice.toFixed(1)} µs)`);
const runs = [];
for (const [devices, partitions] of [
  [DEVICES, PARTITIONS],
  [DEVICES, 256],
  [DEVICES * 10, 256],
  [DEVICES * 10, 1024],
]) {
  const f = devices === DEVICES && partitions === PARTITIONS ? million : fleet(devices, partitions);
  if (f !== million) console.log(`   ${describeFleet(f)}`);
  const run = sized(f);
  report(f, run, `${fmt(devices)} devices, ${partitions} partitions`);
  runs.push({ f, run });
}

// ------------------------------------------------------------------ 5. sizing

const perDevice = million.total / DEVICES;
console.log(`\n5. sizing (a device sends ${perDevice.toFixed(3)} frames/s on this mix, 2 sensors a frame; capacities: receiver ${fmt(RECEIVER_RATE)} frames/s, NATS ${fmt(NATS_NODE_RATE)} messages/s a core of a node, gateway ${PUBACK_MS} ms a PubAck per partition, PostgreSQL ${fmt(PG_RATE)} rows/s)`);
console.table(
  runs
    .filter(({ run }) => !run.impossible)
    .map(({ f, run }) => ({
      devices: fmt(f.devices),
      partitions: f.partitions,
      'frames/s': fmt(f.total),
      'receivers (survive losing one)': run.receivers,
      // One publish in flight per partition: a gateway moves at most partitions / PubAck time.
      'gateways (+1)': Math.ceil(f.total / ((f.partitions * 1000) / PUBACK_MS)) + 1,
      // Every message of a 3-replica stream is handled by 3 nodes: 3 × the rate over the cores.
      'NATS node-cores (R3)': Math.max(3, Math.ceil((3 * f.total) / NATS_NODE_RATE)),
      'PostgreSQL rows/s': fmt(f.total * 2),
      'PostgreSQL servers (or shards)': Math.ceil((f.total * 2) / PG_RATE),
      'wire GiB a day': fmt((f.total * 86_400 * sample.meanBytes) / 2 ** 30, 1),
    })),
);
