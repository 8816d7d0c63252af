/**
 * A large fleet that is mostly idle: BENCH_FLEET_DEVICES (100,000) devices that each send one
 * FULL and then only HEARTs, over UDP on loopback into a server made from a configuration as
 * `os-node serve` makes it (SQLite storage: readings, leases, sessions and templates in one file,
 * synchronous full; `engine.cachedDevices` = the fleet). Reports the server's memory per device
 * known (heap and RSS after a full GC, against the started server before any frame), then stops
 * it, starts a new one on the same file and reports the time to restart (open, preload every
 * template) and whether every device's next HEART decodes with no FULL sent again. The sender is
 * sender.mjs in another process (BENCH_STRATEGY=heart). Run after the build, with --expose-gc:
 * `node --expose-gc bench/fleet.bench.mjs`.
 *
 * Environment (defaults in brackets):
 *   BENCH_FLEET_DEVICES [100000]   devices
 *   BENCH_HEART_ROUNDS [3]         HEART rounds (one HEART of every device each) before the restart
 *   BENCH_RATE [25000]             HEARTs/s sent
 *   BENCH_FULL_RATE [10000]        FULLs/s sent (a new device costs a template learned and stored:
 *                                  at 20,000/s the intake queue overflowed here, counted as
 *                                  dropped at intake)
 *   BENCH_CACHED [the fleet]       engine.cachedDevices (1024, the default, shows the misses)
 */
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { serverFromConfig } from '@opensynaptic/server';
import { validateConfig } from '@opensynaptic/server/config';

const env = process.env;
const DEVICES = Number(env.BENCH_FLEET_DEVICES ?? 100_000);
const ROUNDS = Number(env.BENCH_HEART_ROUNDS ?? 3);
const RATE = Number(env.BENCH_RATE ?? 25_000);
const FULL_RATE = Number(env.BENCH_FULL_RATE ?? 10_000);
const CACHED = Number(env.BENCH_CACHED ?? DEVICES);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const mb = (b) => (b / 1048576).toFixed(1);
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (the memory per device is read after a full GC)');

const child = fork(new URL('./sender.mjs', import.meta.url), [], {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  env: { ...env, BENCH_DEVICES: String(DEVICES), BENCH_STRATEGY: 'heart', BENCH_SENSORS: '1', BENCH_FULL_RATE: String(FULL_RATE) },
});
const replies = [];
let wake;
child.on('message', (m) => {
  replies.push(m);
  wake?.();
});
async function reply() {
  while (replies.length === 0) await new Promise((r) => (wake = r));
  return replies.shift();
}
const t0 = performance.now();
const { ready } = await reply();
console.log(`fleet bench: node ${process.version}, ${fmt(ready.devices)} devices (sender ready in ${((performance.now() - t0) / 1000).toFixed(1)} s), FULLs at ${fmt(FULL_RATE)}/s, ${ROUNDS} HEART round(s) at ${fmt(RATE)}/s, engine.cachedDevices ${fmt(CACHED)}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const send = async (run) => {
  child.send({ run });
  return (await reply()).done;
};

// A UDP port for both servers (the sender's target stays the same across the restart).
const probe = createSocket('udp4');
await new Promise((r) => probe.bind(0, '127.0.0.1', r));
const port = probe.address().port;
await new Promise((r) => probe.close(r));

const dir = mkdtempSync(join(tmpdir(), 'os-fleet-bench-'));
const path = join(dir, 'fleet.db');
const { config } = validateConfig({
  transports: [{ medium: 'udp', options: { host: '127.0.0.1', port, recvBufferSize: 8 * 1024 * 1024 } }],
  engine: { cachedDevices: CACHED },
  storage: { driver: 'sqlite', path },
});

function heap() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss, external: m.external + m.arrayBuffers };
}

async function settle(server, want, what) {
  let last = -1;
  for (const end = Date.now() + 600_000; ; ) {
    await new Promise((r) => setTimeout(r, 200));
    const s = await server.status();
    if (s.frames >= want && s.intake === 0 && s.frames === last) return s;
    if (Date.now() > end) throw new Error(`${what}: ${s.frames} frames taken of ${want} in 10 min`);
    last = s.frames;
  }
}
const counted = (o) => Object.entries(o).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') || 'none';
const refused = (s) => `${counted(s.errors)}; ignored: ${counted(s.ignored)}; dropped at intake ${fmt(s.dropped.device)}`;
const rows = [];

try {
  // ------------------------------------------------------------------ first server: learn the fleet
  let server = await serverFromConfig(config);
  await server.start();
  const base = heap();
  let t = performance.now();
  await send({ to: { medium: 'udp', port }, rate: 0, seconds: 0, full: true });
  let s = await settle(server, ready.fullFrames, 'the FULLs');
  const fullSeconds = (performance.now() - t) / 1000;
  const fullReadings = s.readings;
  rows.push({ step: `FULLs of every device (${ready.fullFrames / DEVICES} each, as a node sends them)`, frames: fmt(s.frames), readings: fmt(s.readings), refused: refused(s), seconds: fullSeconds.toFixed(1) });
  t = performance.now();
  const sent = await send({ to: { medium: 'udp', port }, rate: RATE, seconds: 1e9, full: false, frames: DEVICES * ROUNDS });
  s = await settle(server, ready.fullFrames + DEVICES * ROUNDS, 'the HEARTs');
  rows.push({ step: `${ROUNDS} HEART round(s)`, frames: fmt(sent.sent), readings: fmt(s.readings - fullReadings), refused: refused(s), seconds: ((performance.now() - t) / 1000).toFixed(1) });
  const known = heap();
  const cached = server.node.fusion.registry.size;
  const perDevice = {
    heap: (known.heap - base.heap) / DEVICES,
    rss: (known.rss - base.rss) / DEVICES,
    external: (known.external - base.external) / DEVICES,
  };
  t = performance.now();
  await server.stop();
  const stopSeconds = (performance.now() - t) / 1000;
  server = undefined;
  const afterStop = heap();

  // ------------------------------------------------------------------ restart on the same file
  t = performance.now();
  server = await serverFromConfig(config);
  await server.start();
  const restartSeconds = (performance.now() - t) / 1000;
  const loaded = server.node.fusion.registry.size;
  const restarted = heap();
  t = performance.now();
  const sent2 = await send({ to: { medium: 'udp', port }, rate: RATE, seconds: 1e9, full: false, frames: DEVICES });
  s = await settle(server, DEVICES, 'the HEARTs after the restart');
  rows.push({ step: 'restart, then 1 HEART round (no FULL)', frames: fmt(sent2.sent), readings: fmt(s.readings), refused: refused(s), seconds: ((performance.now() - t) / 1000).toFixed(1) });
  await server.stop();
  server = undefined;

  console.table(rows);
  console.log(`memory per device known (after a full GC, against the started server with none): heap ${fmt(perDevice.heap)} B, RSS ${fmt(perDevice.rss)} B, external ${fmt(perDevice.external)} B; ${fmt(cached)} registries cached`);
  console.log(`  heap ${mb(base.heap)} → ${mb(known.heap)} MB, RSS ${mb(base.rss)} → ${mb(known.rss)} MB; after stop() heap ${mb(afterStop.heap)} MB (${stopSeconds.toFixed(2)} s to stop and flush)`);
  console.log(`restart with every device known: ${restartSeconds.toFixed(2)} s from serverFromConfig to started (${fmt(loaded)} registries preloaded from ${mb(statSync(path).size)} MB of SQLite), heap ${mb(restarted.heap)} MB, RSS ${mb(restarted.rss)} MB`);
} finally {
  child.send({ exit: true });
  rmSync(dir, { recursive: true, force: true });
}
