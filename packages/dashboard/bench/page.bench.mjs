/**
 * The dashboard page under load: a real OpenSynapticServer (UDP on loopback, SQLite sink in a
 * temporary directory) with the dashboard attached, BENCH_DEVICES simulated devices (default
 * 1,000) at BENCH_DEVICE_RATE readings/s each (default 10: 10,000 updates/s) sent from a child
 * process (page-sender.mjs, so the sender's CPU is neither the page's nor the server's), and
 * Debian's chromium (headless, through playwright-core) showing the page with one device selected
 * (its sensors, sparklines and history plot live, the plot reloaded every sample, as a user does).
 * Run after the build: `pnpm --filter @opensynaptic/dashboard bench`.
 *
 * Measured in the page, every BENCH_SAMPLE_SECONDS (10): long tasks (PerformanceObserver
 * 'longtask': count, total, max), frame gaps (a requestAnimationFrame loop: fps, p50/p99/max
 * ms), what the feed brought and what the page drew (window.osDashboardStats: update messages,
 * readings, syncs, coalesced pushes, renders and their time, the longest push-to-page lag, the
 * readings not on screen yet), the main thread's busy time (CDP Performance.getMetrics
 * TaskDuration), the JS heap (JSHeapUsedSize) and the DOM (live elements; CDP `Nodes`, which
 * counts detached ones not yet collected too). Server side: the dashboard's status counters
 * (pushes, skipped, dropped, coalesced), the server's RSS and heap, frames and readings in,
 * readings stored against sent. The heap of both is also read after a forced collection at the
 * start, the middle and the end (flat or growing, without the sawtooth).
 *
 * Environment (defaults in brackets):
 *   BENCH_SECONDS [600]           length of the measured run (10 minutes)
 *   BENCH_DEVICES [1000], BENCH_DEVICE_RATE [10]
 *   BENCH_SAMPLE_SECONDS [10]
 *   BENCH_ROW_SECONDS [60]        one table row per this many seconds
 *   BENCH_CHROMIUM [/usr/bin/chromium]
 *   BENCH_TRACE_SECONDS [0]       a chromium trace of this long after the first sample: the
 *                                 renderer main thread's time per event (top 12) is printed
 *   BENCH_HEAP_SNAPSHOTS []       a folder: the page's heap snapshots at the start, the middle and
 *                                 the end go there (start.heapsnapshot, ...), for
 *                                 `node bench/heap-diff.mjs middle.heapsnapshot end.heapsnapshot`
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureDebianPackages } from '@opensynaptic/config/apt';
import { OpenSynapticServer } from '@opensynaptic/server';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { chromium } from 'playwright-core';
import { attachDashboard } from '../dist/index.js';

const env = process.env;
const SECONDS = Number(env.BENCH_SECONDS ?? 600);
const DEVICES = Number(env.BENCH_DEVICES ?? 1000);
const PER_DEVICE = Number(env.BENCH_DEVICE_RATE ?? 10);
const SAMPLE_S = Number(env.BENCH_SAMPLE_SECONDS ?? 10);
const ROW_S = Number(env.BENCH_ROW_SECONDS ?? 60);
const CHROMIUM = env.BENCH_CHROMIUM ?? '/usr/bin/chromium';
const TRACE_S = Number(env.BENCH_TRACE_SECONDS ?? 0);
const SNAPSHOTS = env.BENCH_HEAP_SNAPSHOTS ?? '';
const SENSORS = 2;
const mb = (b) => (b / 1048576).toFixed(1);
const f0 = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const f1 = (n) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const median = (xs) => quantile(xs, 0.5);
const max = (xs) => (xs.length === 0 ? Number.NaN : Math.max(...xs));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const loadStart = load();
console.log(`page bench: ${DEVICES} devices × ${PER_DEVICE}/s = ${f0(DEVICES * PER_DEVICE)} updates/s (${SENSORS} sensors each) for ${SECONDS} s; load average ${loadStart}`);

// ------------------------------------------------------------------- the device simulator

const child = fork(new URL('./page-sender.mjs', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...env, BENCH_DEVICES: String(DEVICES), BENCH_DEVICE_RATE: String(PER_DEVICE) } });
const replies = [];
let wake;
let lastTick = { sent: 0, failed: 0, cpuMs: 0 };
child.on('message', (m) => {
  if (m.tick !== undefined) lastTick = m.tick;
  else {
    replies.push(m);
    wake?.();
  }
});
const reply = async () => {
  while (replies.length === 0) await new Promise((r) => (wake = r));
  return replies.shift();
};
const { ready } = await reply();
const cyc = ready.kinds;
console.log(`sender: ${ready.devices} nodes (aid ${ready.aid0}..), a FULL each, then per period ${f1((cyc.DIFF / (cyc.DIFF + cyc.HEART + cyc.FULL)) * 100)}% DIFF, ${f1((cyc.HEART / (cyc.DIFF + cyc.HEART + cyc.FULL)) * 100)}% HEART, ${f1((cyc.FULL / (cyc.DIFF + cyc.HEART + cyc.FULL)) * 100)}% FULL`);

// ------------------------------------------------------------------------------ the server

const dir = mkdtempSync(join(tmpdir(), 'os-page-bench-'));
const sink = await openSqliteReadingsSink({ path: join(dir, 'readings.db') });
const server = new OpenSynapticServer({ transports: [{ name: 'udp', medium: 'udp', options: { host: '127.0.0.1', port: 0, recvBufferSize: 4 * 1024 * 1024 } }], sinks: [sink], node: { deviceId: 'SERVER' } });
// The defaults but for `staleAfterMs`: chromium's start must not turn the first devices stale.
const dashboard = attachDashboard(server, { port: 0, staleAfterMs: 60_000, offlineAfterMs: 120_000 });
await server.start();
const udpPort = server.transport('udp').address.port;

// ------------------------------------------------------------------------------ the browser

ensureDebianPackages([{ program: CHROMIUM, pkg: 'chromium' }]);
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  timeout: 60_000,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-precise-memory-info'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
// Installed before the page's own scripts: long tasks and the gaps between animation frames.
await page.addInitScript(() => {
  const b = { longtasks: [], gaps: [] };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) b.longtasks.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
  let last = performance.now();
  const loop = (t) => {
    b.gaps.push(t - last);
    last = t;
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  window.__benchTake = () => {
    const out = { longtasks: b.longtasks, gaps: b.gaps, elements: document.getElementsByTagName('*').length };
    b.longtasks = [];
    b.gaps = [];
    return out;
  };
});
const cdp = await page.context().newCDPSession(page);
await cdp.send('Performance.enable');
const metrics = async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
/** The heaps after a forced collection: the page's (CDP) and the server's (with --expose-gc). */
const collected = async () => {
  await cdp.send('HeapProfiler.collectGarbage');
  const page = (await cdp.send('Runtime.getHeapUsage')).usedSize;
  globalThis.gc?.();
  return { page, server: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss };
};
/** With BENCH_HEAP_SNAPSHOTS, the page's heap snapshot `name` (after the collection just made). */
const snapshot = async (name) => {
  if (SNAPSHOTS === '') return;
  const chunks = [];
  const onChunk = (e) => chunks.push(e.chunk);
  cdp.on('HeapProfiler.addHeapSnapshotChunk', onChunk);
  await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  cdp.off('HeapProfiler.addHeapSnapshotChunk', onChunk);
  writeFileSync(join(SNAPSHOTS, `${name}.heapsnapshot`), chunks.join(''));
};

// ------------------------------------------------------------------------------ the run

child.send({ run: { port: udpPort, seconds: SECONDS + 60 } }); // longer than the measured part: it is stopped with exit
await page.goto(dashboard.url(), { waitUntil: 'load', timeout: 30_000 });
const rowsShown = () => page.evaluate(() => document.querySelectorAll('#devices tbody tr[data-key]').length);
const seen = Date.now() + 60_000;
while ((await rowsShown()) < DEVICES && Date.now() < seen) await sleep(250);
const rows0 = await rowsShown();
if (rows0 < DEVICES) console.log(`only ${rows0} of ${DEVICES} devices in the table after 60 s`);
const key = `${ready.aid0}:SIM0000`;
// A click as a user's (the table listens on the table; the row is replaced as it re-renders).
await page.evaluate((k) => document.querySelector(`#devices tbody tr[data-key="${k}"]`)?.click(), key);
await page.waitForFunction(() => Number(document.querySelector('#plot')?.getAttribute('data-points') ?? 0) > 0, null, { timeout: 30_000 }).catch(() => problems.push('the plot of the selected device did not draw within 30 s'));
await sleep(2000);

const storedOf = async () => (await server.status()).services.storage?.committed ?? 0;
const serverCounters = async () => {
  const s = await server.status();
  const udp = s.transports.udp;
  const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + (typeof b === 'number' ? b : 0), 0);
  return { framesIn: udp.framesIn, udpDropped: sum(udp.dropped), readings: s.readings, errors: sum(s.errors), serverDropped: sum(s.dropped), stored: s.services.storage?.committed ?? 0, lost: s.services.storage?.lost ?? 0, dashboard: dashboard.status() };
};
await page.evaluate(() => window.__benchTake());
const heapStart = await collected();
await snapshot('start');
const samples = [];
let prev = { t: performance.now(), stats: await page.evaluate(() => window.osDashboardStats()), m: await metrics(), server: await serverCounters(), sent: lastTick.sent, cpu: process.cpuUsage(), senderCpu: lastTick.cpuMs };
let heapMiddle = null;
let traced = null;
/** The renderer main thread's time per trace event name (nested events are counted in their parents too). */
async function trace(seconds) {
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8'] });
  await sleep(seconds * 1000);
  const events = JSON.parse((await browser.stopTracing()).toString()).traceEvents;
  const main = new Set(events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const by = new Map();
  for (const e of events) if (e.ph === 'X' && main.has(`${e.pid}:${e.tid}`) && e.dur > 0) by.set(e.name, (by.get(e.name) ?? 0) + e.dur / 1000);
  return { seconds, top: [...by].sort((a, b) => b[1] - a[1]).slice(0, 12) };
}
const t0 = performance.now();
console.log(`measuring: ${rows0} rows, ${key} selected; a line every ${SAMPLE_S} s`);
for (let i = 1; i * SAMPLE_S <= SECONDS; i++) {
  await sleep(t0 + i * SAMPLE_S * 1000 - performance.now());
  if (heapMiddle === null && i * SAMPLE_S >= SECONDS / 2) {
    heapMiddle = await collected();
    await snapshot('middle');
  }
  const took = await page.evaluate(() => window.__benchTake());
  const stats = await page.evaluate(() => window.osDashboardStats());
  const m = await metrics();
  const srv = await serverCounters();
  const now = performance.now();
  const cpu = process.cpuUsage();
  const dt = (now - prev.t) / 1000;
  const mem = process.memoryUsage();
  const s = {
    at: (now - t0) / 1000,
    dt,
    sentPerS: (lastTick.sent - prev.sent) / dt,
    storedPerS: (srv.stored - prev.server.stored) / SENSORS / dt,
    framesInPerS: (srv.framesIn - prev.server.framesIn) / dt,
    pageReadingsPerS: (stats.readings - prev.stats.readings) / dt,
    updatesPerS: (stats.updates - prev.stats.updates) / dt,
    syncs: stats.syncs - prev.stats.syncs,
    pageCoalesced: stats.coalesced - prev.stats.coalesced,
    behind: stats.readings - stats.renderedReadings,
    lagMaxMs: stats.lagMaxMs,
    rendersPerS: (stats.renders - prev.stats.renders) / dt,
    renderMean: (stats.renderMs - prev.stats.renderMs) / Math.max(1, stats.renders - prev.stats.renders),
    renderMaxMs: stats.renderMaxMs,
    longtasks: took.longtasks.length,
    longtaskMs: took.longtasks.reduce((a, b) => a + b, 0),
    longtaskMax: max(took.longtasks),
    fps: took.gaps.length / dt,
    gaps: took.gaps,
    busy: (m.TaskDuration - prev.m.TaskDuration) / dt,
    script: (m.ScriptDuration - prev.m.ScriptDuration) / dt,
    layout: (m.LayoutDuration - prev.m.LayoutDuration) / dt,
    style: (m.RecalcStyleDuration - prev.m.RecalcStyleDuration) / dt,
    heap: m.JSHeapUsedSize,
    nodes: m.Nodes,
    elements: took.elements,
    pushesPerS: (srv.dashboard.pushes - prev.server.dashboard.pushes) / dt,
    skipped: srv.dashboard.skipped - prev.server.dashboard.skipped,
    dropped: srv.dashboard.dropped - prev.server.dashboard.dropped,
    coalesced: srv.dashboard.coalesced - prev.server.dashboard.coalesced,
    udpDropped: srv.udpDropped - prev.server.udpDropped,
    serverCpu: (cpu.user - prev.cpu.user + cpu.system - prev.cpu.system) / 1000 / (dt * 1000),
    senderCpu: (lastTick.cpuMs - prev.senderCpu) / (dt * 1000),
    rss: mem.rss,
    serverHeap: mem.heapUsed,
  };
  samples.push(s);
  console.log(
    `${f0(s.at).padStart(4)} s  sent ${f0(s.sentPerS)}/s  stored ${f0(s.storedPerS)}/s  page ${f0(s.pageReadingsPerS)} readings/s in ${f1(s.updatesPerS)} pushes/s, ${f1(s.rendersPerS)} renders/s (${f1(s.renderMean)} ms)  long tasks ${s.longtasks} (${f0(s.longtaskMs)} ms, max ${f0(s.longtaskMax)})  ${f1(s.fps)} fps  busy ${f0(s.busy * 100)}% (script ${f0(s.script * 100)}, layout ${f0(s.layout * 100)}, style ${f0(s.style * 100)})  heap ${mb(s.heap)} MB  skipped ${s.skipped} coalesced ${s.coalesced} syncs ${s.syncs}`,
  );
  if (i === 1 && TRACE_S > 0) traced = await trace(TRACE_S);
  // As a user looking at the plot would: the history again.
  await page.evaluate(() => document.getElementById('h-reload')?.click());
  prev = { t: now, stats, m, server: srv, sent: lastTick.sent, cpu, senderCpu: lastTick.cpuMs };
}
// Rows out of view are written when they scroll in: the last row's counts, before and after.
const lastRowMix = () => page.evaluate(() => document.querySelector('#devices tbody tr:last-child td:nth-child(6)')?.textContent ?? '');
const mixBefore = await lastRowMix();
await page.evaluate(() => document.querySelector('#devices tbody tr:last-child')?.scrollIntoView());
await sleep(1000);
const mixAfter = await lastRowMix();
await page.evaluate(() => window.scrollTo(0, 0));
const heapEnd = await collected();
await snapshot('end');
const loadEnd = load();
const pageEnd = await page.evaluate(() => ({ stats: window.osDashboardStats(), rows: document.querySelectorAll('#devices tbody tr[data-key]').length, points: Number(document.querySelector('#plot')?.getAttribute('data-points') ?? 0), value: document.querySelector('[data-sensor="T1"]')?.getAttribute('data-value') ?? null }));

// Stop the sender and let the store catch up: stored against sent.
child.send({ stop: true });
const { done } = await reply();
child.send({ exit: true });
await new Promise((r) => child.once('exit', r));
const sentTotal = done.sent;
let stored = await storedOf();
for (let still = 0, last = -1; still < 10 && stored < sentTotal * SENSORS; ) {
  await sleep(500);
  stored = await storedOf();
  still = stored === last ? still + 1 : 0;
  last = stored;
}
const end = await serverCounters();

// ------------------------------------------------------------------------------ the report

const rowsOf = [];
for (const s of samples) {
  const r = Math.floor((s.at - SAMPLE_S / 2) / ROW_S); // a sample counts for the row its middle falls in
  rowsOf[r] ??= [];
  rowsOf[r].push(s);
}
const col = (xs, w) => xs.map((x, i) => String(x).padStart(w[i])).join('  ');
const head = [ROW_S === 60 ? 'min' : 'row', 'sent/s', 'stored/s', 'page rd/s', 'renders/s', 'render ms', 'long tasks', 'lt ms', 'lt max', 'fps', 'gap p50', 'gap p99', 'gap max', 'busy %', 'lag max', 'skipped', 'dropped', 'coalesced', 'syncs', 'page heap', 'DOM', 'srv RSS', 'srv heap'];
const width = head.map((h) => Math.max(h.length, 7));
console.log(`\nper ${ROW_S} s (rates are means; long tasks per row, scaled to a minute; lag max since the start; heaps and RSS in MB, sampled)`);
console.log(col(head, width));
const perRow = [];
for (const [r, ss] of rowsOf.entries()) {
  if (ss === undefined) continue;
  const secs = ss.reduce((a, s) => a + s.dt, 0);
  const mean = (k) => ss.reduce((a, s) => a + s[k] * s.dt, 0) / secs;
  const total = (k) => ss.reduce((a, s) => a + s[k], 0);
  const gaps = ss.flatMap((s) => s.gaps);
  const last = ss[ss.length - 1];
  const row = {
    sent: mean('sentPerS'),
    stored: mean('storedPerS'),
    page: mean('pageReadingsPerS'),
    renders: mean('rendersPerS'),
    render: ss.reduce((a, s) => a + s.renderMean * s.rendersPerS * s.dt, 0) / Math.max(1, ss.reduce((a, s) => a + s.rendersPerS * s.dt, 0)),
    longtasks: total('longtasks') * (60 / secs),
    longtaskMs: total('longtaskMs') * (60 / secs),
    longtaskMax: max(ss.map((s) => s.longtaskMax).filter(Number.isFinite)),
    fps: mean('fps'),
    p50: quantile(gaps, 0.5),
    p99: quantile(gaps, 0.99),
    gapMax: max(gaps),
    busy: mean('busy'),
    script: mean('script'),
    layout: mean('layout'),
    style: mean('style'),
    lag: last.lagMaxMs,
    skipped: total('skipped'),
    dropped: total('dropped'),
    coalesced: total('coalesced'),
    syncs: total('syncs'),
    heap: last.heap,
    elements: last.elements,
    rss: last.rss,
    serverHeap: last.serverHeap,
    serverCpu: mean('serverCpu'),
    senderCpu: mean('senderCpu'),
  };
  perRow.push(row);
  console.log(
    col(
      [r + 1, f0(row.sent), f0(row.stored), f0(row.page), f1(row.renders), f1(row.render), f0(row.longtasks), f0(row.longtaskMs), f0(row.longtaskMax), f1(row.fps), f1(row.p50), f1(row.p99), f0(row.gapMax), f0(row.busy * 100), f0(row.lag), row.skipped, row.dropped, row.coalesced, row.syncs, mb(row.heap), f0(row.elements), mb(row.rss), mb(row.serverHeap)],
      width,
    ),
  );
}

const pick = (k) => perRow.map((r) => r[k]);
const trend = (a, b) => {
  const grew = (b - a) / a;
  return Math.abs(b - a) < 2 * 1048576 || Math.abs(grew) < 0.1 ? 'flat' : grew > 0 ? `growing (+${f0(grew * 100)}%)` : `shrinking (${f0(grew * 100)}%)`;
};
const mid = heapMiddle ?? heapEnd;
const allGaps = samples.flatMap((s) => s.gaps);
const sentRows = sentTotal * SENSORS; // the FULLs among them
console.log(`\nsummary over ${f0(samples.reduce((a, s) => a + s.dt, 0))} s (medians of the rows / maxima)`);
console.log(`  updates: sent ${f0(median(pick('sent')))}/s, page received ${f0(median(pick('page')))} readings/s in ${f1(median(samples.map((s) => s.updatesPerS)))} pushes/s; ${f1(median(pick('renders')))} renders/s of ${f1(median(pick('render')))} ms (max ${f0(pageEnd.stats.renderMaxMs)} ms); longest push-to-page lag ${f0(pageEnd.stats.lagMaxMs)} ms; not yet drawn at the end ${pageEnd.stats.readings - pageEnd.stats.renderedReadings}`);
console.log(`  long tasks per minute: ${f0(median(pick('longtasks')))} (max ${f0(max(pick('longtasks')))}), ${f0(median(pick('longtaskMs')))} ms of them (max ${f0(max(pick('longtaskMs')))}), the longest ${f0(max(pick('longtaskMax').filter(Number.isFinite)))} ms`);
console.log(`  frames: ${f1(median(pick('fps')))} fps, gaps p50 ${f1(quantile(allGaps, 0.5))} / p99 ${f1(quantile(allGaps, 0.99))} / max ${f0(max(allGaps))} ms; main thread busy ${f0(median(pick('busy')) * 100)}% (max ${f0(max(pick('busy')) * 100)}%): script ${f0(median(pick('script')) * 100)}%, layout ${f0(median(pick('layout')) * 100)}%, style ${f0(median(pick('style')) * 100)}%`);
console.log(`  dropped/coalesced: server skipped ${end.dashboard.skipped}, dropped ${end.dashboard.dropped}, coalesced ${end.dashboard.coalesced} readings, pushes ${end.dashboard.pushes}; page syncs ${pageEnd.stats.syncs}, coalesced pushes ${pageEnd.stats.coalesced}`);
console.log(`  the last row (out of view) read ${mixBefore} (FULL / DIFF / HEART), ${mixAfter} once scrolled into view`);
console.log(`  page: ${pageEnd.rows} rows, plot ${pageEnd.points} points, DOM ${f0(samples[0]?.elements)} → ${f0(samples.at(-1)?.elements)} elements (CDP nodes ${f0(samples[0]?.nodes)} → ${f0(samples.at(-1)?.nodes)})`);
console.log(`  page heap after a forced GC: start ${mb(heapStart.page)} / middle ${mb(mid.page)} / end ${mb(heapEnd.page)} MB: ${trend(mid.page, heapEnd.page)} from the middle to the end`);
console.log(`    (start to middle: ${trend(heapStart.page, mid.page)}; the sparklines fill up to 60 points per sensor of each device in the first seconds;`);
console.log(`    sampled, not collected: ${mb(samples[0]?.heap ?? 0)} → ${mb(samples.at(-1)?.heap ?? 0)} MB, max ${mb(max(samples.map((s) => s.heap)))} MB)`);
console.log(`  server heap${globalThis.gc ? ' after a forced GC' : ' (run with --expose-gc for a collected one)'}: start ${mb(heapStart.server)} / middle ${mb(mid.server)} / end ${mb(heapEnd.server)} MB: ${trend(mid.server, heapEnd.server)} from the middle to the end; RSS ${mb(heapStart.rss)} / ${mb(mid.rss)} / ${mb(heapEnd.rss)} MB`);
console.log(`  CPU (of one core): server process ${f0(median(pick('serverCpu')) * 100)}%, sender ${f0(median(pick('senderCpu')) * 100)}%`);
console.log(`  readings: sent ${f0(sentRows)} (${f0(sentTotal)} frames × ${SENSORS}), server frames in ${f0(end.framesIn)}, readings ${f0(end.readings)}, stored ${f0(end.stored)} (${sentRows === end.stored ? 'all' : `missing ${f0(sentRows - end.stored)}`}); UDP dropped ${end.udpDropped}, server dropped ${end.serverDropped}, errors ${end.errors}, sink lost ${end.lost}${end.serverDropped > 0 ? ' (the server drops at its intake the frames its loop cannot take in time: status().dropped.device)' : ''}`);
console.log(`  load average: start ${loadStart}, end ${loadEnd}`);
if (traced !== null) console.log(`  trace (${traced.seconds} s, renderer main thread, ms per s): ${traced.top.map(([n, ms]) => `${n} ${f0(ms / traced.seconds)}`).join(', ')}`);
if (problems.length > 0) console.log(`  the page reported: ${problems.slice(0, 5).join('; ')}`);

await browser.close();
await server.stop().catch(() => undefined);
await server.destroy();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
