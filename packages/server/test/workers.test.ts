import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSynaptic } from '@opensynaptic/core';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { partitionOf } from '../src/partition.js';
import type { ReadingFrame } from '@opensynaptic/store';
import { OpenSynapticServer } from '../src/server.js';
import type { IngestReading, WorkerIngest as WorkerIngestClass, WorkerIngestOptions } from '../src/worker-ingest.js';
import { ensureId, linkNode } from '../src/device.js';
import { portOf, tick, udp, until } from './helpers.js';

// The workers run the built program (a worker thread cannot load the TypeScript source), and the
// class is taken from the build too, so its default workerUrl (beside its module) is what is tested.
const built = (await import(new URL('../dist/workers.js', import.meta.url).href)) as typeof import('../src/workers.js');
const { WorkerIngest } = built;
const SLOW_SINK = new URL('./fixtures/slow-sink.mjs', import.meta.url).href;

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});
const tmp = mkdtempSync(join(tmpdir(), 'os-workers-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const DEVICES = 300;
const T0 = 1_700_000_000_000;

/**
 * Each device's FULLs (a node sends its first few frames as FULLs), one DIFF (its value changed)
 * and one HEART (unchanged), from nodes with pre-assigned ids.
 */
function fleetFrames(devices = DEVICES): { full: Uint8Array[]; diff: Uint8Array[]; heart: Uint8Array[] } {
  const out = { full: [] as Uint8Array[], diff: [] as Uint8Array[], heart: [] as Uint8Array[] };
  for (let d = 0; d < devices; d++) {
    const node = new OpenSynaptic({ assignedId: 5000 + d, deviceId: `W${d}` });
    let t = T0;
    for (;;) {
      const f = node.transmit([['T', 'OK', d, 'Cel']], { t });
      t += 1000;
      // The first frame after the FULLs, unchanged values: a HEART the receiver never needs.
      if (f.kind !== 'FULL') break;
      out.full.push(f.frame);
    }
    const b = node.transmit([['T', 'OK', d + 0.5, 'Cel']], { t });
    const c = node.transmit([['T', 'OK', d + 0.5, 'Cel']], { t: t + 1000 });
    expect([b.kind, c.kind]).toEqual(['DIFF', 'HEART']);
    out.diff.push(b.frame);
    out.heart.push(c.frame);
  }
  expect(out.full.length).toBeGreaterThanOrEqual(devices);
  return out;
}

/** Sends in small paced bursts (a loopback socket buffer holds a few hundred datagrams). */
async function send(sender: Transport, port: number, frames: readonly Uint8Array[]): Promise<void> {
  for (let i = 0; i < frames.length; i++) {
    await sender.send(frames[i]!, { address: '127.0.0.1', port });
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 2));
  }
}

async function startIngest(options: Partial<WorkerIngestOptions> = {}): Promise<{ ingest: WorkerIngestClass; port: number; readings: (IngestReading & { worker: number })[] }> {
  const transport = await udp({ recvBufferSize: 4 * 1024 * 1024 });
  const ingest = new WorkerIngest({ transports: [{ name: 'udp', transport }], workers: 2, forwardReadings: true, ...options });
  cleanup.push(() => ingest.destroy());
  const readings: (IngestReading & { worker: number })[] = [];
  ingest.on('readings', (e) => {
    for (const r of e.readings) readings.push({ ...r, worker: e.worker });
  });
  await ingest.start();
  return { ingest, port: portOf(transport), readings };
}

async function sender(): Promise<Transport> {
  const t = await udp();
  cleanup.push(() => t.destroy());
  return t;
}

/** Sends `frames` in order over one TCP stream connection to the ingest's `tcp` transport. */
async function sendOverTcp(ingest: WorkerIngestClass, frames: readonly Uint8Array[]): Promise<void> {
  const link = await createTransport('tcp', { connect: { host: '127.0.0.1', port: portOf(ingest.transport('tcp')!) } });
  await link.start();
  cleanup.push(() => link.destroy());
  for (const f of frames) await link.send(f);
}

/** What a reading says, for comparing two runs (receive times differ). */
const key = (r: { aid: number; deviceId: string; strategy: string; timestampMs: number; sensors: readonly { id: string; value: number; unit: string; state: string }[] }) =>
  JSON.stringify([r.aid, r.deviceId, r.strategy, r.timestampMs, r.sensors.map((s) => [s.id, s.state, s.value, s.unit])]);

async function runFleet(port: number, s: Transport, frames: ReturnType<typeof fleetFrames>, received: () => number): Promise<void> {
  // Each phase once the last one is in: a DIFF must not overtake its FULL in the kernel's buffer.
  const fulls = frames.full.length;
  await send(s, port, frames.full);
  await until(() => received() >= fulls, 'the FULLs decoded', 20_000);
  await send(s, port, frames.diff);
  await until(() => received() >= fulls + DEVICES, 'the DIFFs decoded', 20_000);
  await send(s, port, frames.heart);
  await until(() => received() >= fulls + 2 * DEVICES, 'the HEARTs decoded', 20_000);
}

describe('WorkerIngest', () => {
  it('decodes every reading exactly once with its values, each device on the worker owning its partition, into SQLite', async () => {
    const path = join(tmp, 'fleet.db');
    const { ingest, port, readings } = await startIngest({ workers: 2, sink: { module: '@opensynaptic/store-sqlite', export: 'openSqliteReadingsSink', options: { path } } });
    const frames = fleetFrames();
    const total = frames.full.length + 2 * DEVICES;
    await runFleet(port, await sender(), frames, () => readings.length);
    const status = await ingest.status();
    await ingest.stop();

    expect(readings).toHaveLength(total);
    expect(new Set(readings.map((r) => `${r.aid}/${r.timestampMs}`)).size).toBe(total);
    expect(readings.filter((r) => r.strategy === 'DIFF')).toHaveLength(DEVICES);
    expect(readings.filter((r) => r.strategy === 'HEART')).toHaveLength(DEVICES);
    const diffAt = new Map(readings.filter((r) => r.strategy === 'DIFF').map((r) => [r.aid, r.timestampMs]));
    for (const r of readings) {
      const d = r.aid - 5000;
      expect(r.deviceId).toBe(`W${d}`);
      // Standardized as the single-thread server does: Celsius to kelvin.
      expect(r.sensors).toHaveLength(1);
      expect(r.sensors[0]).toMatchObject({ id: 'T', state: 'OK', unit: 'temperature' });
      expect(r.sensors[0]!.value).toBeCloseTo(273.15 + (r.strategy === 'FULL' ? d : d + 0.5), 6);
      // FULLs before the DIFF, the HEART a second after it.
      if (r.strategy === 'FULL') expect(r.timestampMs).toBeLessThan(diffAt.get(r.aid)!);
      if (r.strategy === 'HEART') expect(r.timestampMs).toBe(diffAt.get(r.aid)! + 1000);
      expect(r.via).toBe('udp');
      expect(r.peer?.address).toBe('127.0.0.1');
      // The routing contract: the worker is the device's partition.
      expect(r.worker).toBe(partitionOf(r.aid, 2));
    }
    // Both workers had devices; every frame routed was decoded, nothing dropped or refused.
    expect(status.workers.map((w) => w.readings)).toEqual(status.workers.map((w) => w.routed));
    expect(status.workers.every((w) => w.readings > DEVICES / 2)).toBe(true);
    expect(status.workers.reduce((a, w) => a + w.readings, 0)).toBe(total);
    expect(status.workers.every((w) => w.errors === 0 && w.dropped.ringFull === 0 && w.state === 'running')).toBe(true);
    expect(status.workers.every((w) => w.utilization !== null)).toBe(true);
    expect(status.main.frames).toBe(0);
    // Two workers' sinks wrote one SQLite file: every reading is in it once.
    const check = await openSqliteReadingsSink({ path, readonly: true });
    cleanup.push(() => check.close());
    expect((await check.status()).stored.readings).toBe(total);
    const stored = await check.query({ limit: 10_000 });
    expect(new Set(stored.map((r) => `${r.aid}/${r.timestampMs}`)).size).toBe(total);
  });

  it('with workers: 1 and workers: 2 gives the readings the single-thread server gives', async () => {
    const frames = fleetFrames();
    const single: ReadingFrame[] = [];
    const transport = await udp({ recvBufferSize: 4 * 1024 * 1024 });
    const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport }], services: [{ name: 'collect', onReading: (r) => single.push(r) }] });
    cleanup.push(() => server.destroy());
    await server.start();
    const s = await sender();
    await runFleet(portOf(transport), s, frames, () => single.length);
    await server.stop();
    const want = single.map(key).sort();
    expect(want).toHaveLength(frames.full.length + 2 * DEVICES);
    for (const workers of [1, 2]) {
      // A 64 KiB ring wraps in the run (some 120 KB of records): DIFFs and HEARTs decode against templates
      // whose FULL's bytes were overwritten since (a node holding a view into the ring would fail).
      const { ingest, port, readings } = await startIngest({ workers, ringBytes: 65_536 });
      await runFleet(port, s, frames, () => readings.length);
      await ingest.stop();
      expect(readings.map(key).sort()).toEqual(want);
    }
  });

  it('a full ring drops what a datagram medium cannot hold back, counted per worker, and loses nothing it took', async () => {
    // Tiny rings (about 40 records) behind sinks that take nothing for 1.5 s.
    const { ingest, port, readings } = await startIngest({ workers: 2, ringBytes: 2048, sinkBatch: 8, sink: { module: SLOW_SINK, export: 'openSlowSink', options: { holdMs: 1500 } } });
    const frames = fleetFrames();
    const s = await sender();
    await send(s, port, frames.full);
    await until(async () => (await ingest.status()).workers.reduce((a, w) => a + w.routed + w.dropped.ringFull, 0) >= frames.full.length, 'every FULL routed or dropped');
    const held = await ingest.status();
    await until(() => readings.length >= held.workers.reduce((a, w) => a + w.routed, 0), 'the routed FULLs decoded');
    await ingest.stop();
    const status = await ingest.status();
    for (const w of status.workers) {
      expect(w.dropped.ringFull).toBeGreaterThan(0);
      expect(readings.filter((r) => r.worker === w.index)).toHaveLength(w.routed);
      // Every frame placed in the ring became a reading, and the sink took it once it opened.
      expect(w.readings).toBe(w.routed);
      expect(w.written).toBe(w.routed);
    }
    expect(status.workers.reduce((a, w) => a + w.routed + w.dropped.ringFull, 0)).toBe(frames.full.length);
    expect(readings.length).toBeLessThan(frames.full.length);
  });

  it('reports a worker that dies, counts what it held, drops its partition counted, and the other keeps serving', async () => {
    const { ingest, port, readings } = await startIngest({ workers: 2 });
    const deaths: { worker: number; error: Error }[] = [];
    ingest.on('worker-error', (e) => deaths.push(e));
    const frames = fleetFrames();
    const s = await sender();
    await send(s, port, frames.full);
    await until(() => readings.length >= frames.full.length, 'the FULLs decoded', 20_000);
    await ingest.thread(0)!.terminate();
    await until(() => deaths.length > 0, 'the worker-error event');
    expect(deaths[0]!.worker).toBe(0);
    expect(deaths[0]!.error.message).toMatch(/worker 0 exited/);
    await send(s, port, frames.diff);
    const ofOne = frames.diff.filter((_, d) => partitionOf(5000 + d, 2) === 1).length;
    await until(() => readings.filter((r) => r.strategy === 'DIFF').length >= ofOne, 'worker 1 decoding its DIFFs', 20_000);
    const status = await ingest.status();
    expect(status.workers[0]!.state).toBe('failed');
    expect(status.workers[1]!.state).toBe('running');
    expect(status.workers[0]!.dropped.down).toBe(DEVICES - ofOne);
    expect(readings.filter((r) => r.strategy === 'DIFF').every((r) => r.worker === 1)).toBe(true);
    await ingest.stop();
    expect(ingest.state).toBe('stopped');
  });

  it('a worker whose sink ends its thread mid-run is reported with the frames it left unread', async () => {
    const { ingest, port } = await startIngest({ workers: 1, ringBytes: 1 << 16, sink: { module: SLOW_SINK, export: 'openSlowSink', options: { exitOnWrite: true } } });
    const deaths: { lostFrames: number }[] = [];
    ingest.on('worker-error', (e) => deaths.push(e));
    const fulls = fleetFrames().full;
    await send(await sender(), port, fulls);
    await until(() => deaths.length > 0, 'the worker-error event');
    const w = (await ingest.status()).workers[0]!;
    expect(w.state).toBe('failed');
    // What it took off its ring, what it left there, and what came after: each frame counted once.
    await until(async () => {
      const x = (await ingest.status()).workers[0]!;
      return x.routed + x.dropped.down === fulls.length;
    }, 'every FULL routed or dropped');
    expect(w.lost.frames).toBe(w.routed - w.frames);
    await ingest.stop();
  });

  it('a reliable medium waits for room in a full ring instead of dropping: every frame decoded', async () => {
    const ingest = new WorkerIngest({
      transports: [{ name: 'tcp', medium: 'tcp', options: { listen: { host: '127.0.0.1', port: 0 } } }],
      workers: 2,
      ringBytes: 2048,
      sinkBatch: 8,
      forwardReadings: true,
      sink: { module: SLOW_SINK, export: 'openSlowSink', options: { holdMs: 1500 } },
    });
    cleanup.push(() => ingest.destroy());
    let readings = 0;
    ingest.on('readings', (e) => {
      readings += e.readings.length;
    });
    await ingest.start();
    const frames = fleetFrames();
    await sendOverTcp(ingest, frames.full);
    // While the sinks hold, the rings (about 25 records each) cannot take every frame: the
    // transport's loop waits, it does not drop.
    await tick(500);
    const held = await ingest.status();
    expect(held.workers.reduce((a, w) => a + w.routed, 0)).toBeLessThan(frames.full.length);
    await until(() => readings >= frames.full.length, 'every FULL decoded once the sinks take them');
    const status = await ingest.status();
    expect(status.workers.reduce((a, w) => a + w.routed, 0)).toBe(frames.full.length);
    expect(status.workers.every((w) => w.dropped.ringFull === 0 && w.readings === w.routed)).toBe(true);
    await ingest.stop();
    expect(readings).toBe(frames.full.length);
  });

  it('a main thread slow to take forwarded readings holds its workers: at most 64 batches in flight each', async () => {
    const ingest = new WorkerIngest({ transports: [{ name: 'tcp', medium: 'tcp', options: { listen: { host: '127.0.0.1', port: 0 } } }], workers: 1, sinkBatch: 1, forwardReadings: true });
    cleanup.push(() => ingest.destroy());
    let handled = 0;
    let most = 0;
    ingest.on('readings', (e) => {
      handled += e.readings.length;
      // A busy main thread: 3 ms a batch.
      const end = performance.now() + 3;
      while (performance.now() < end);
    });
    await ingest.start();
    const frames = fleetFrames();
    await sendOverTcp(ingest, frames.full);
    while (handled < frames.full.length) {
      const w = (await ingest.status()).workers[0]!;
      // Decoded by the worker and not yet handled here: the batches in flight (one reading each) and the one being made.
      most = Math.max(most, w.readings - handled);
      await tick(5);
    }
    expect(most).toBeGreaterThan(8);
    expect(most).toBeLessThanOrEqual(64 + 1);
    expect(handled).toBe(frames.full.length);
    await ingest.stop();
  });

  it('answers ID requests on the main thread (one allocator: unique ids); secure sessions open and stay on the devices\' workers', async () => {
    const { ingest, port, readings } = await startIngest({ workers: 2 });
    const nodes: { node: OpenSynaptic; transport: Transport }[] = [];
    for (let i = 0; i < 8; i++) {
      const transport = await udp({ remote: { address: '127.0.0.1', port } });
      cleanup.push(() => transport.destroy());
      const node = new OpenSynaptic({ deviceId: `ID_${i}`, requestTimeoutMs: 2000 });
      linkNode(node, transport);
      await ensureId(node, { timeoutMs: 2000, retries: 3 });
      nodes.push({ node, transport });
    }
    const ids = nodes.map((n) => n.node.assignedId);
    expect(new Set(ids).size).toBe(8);
    const allocator = ingest.node.protocol.allocator!;
    const leased = ids.map((id) => allocator.leaseOf(id)!.expiresAtMs);
    await tick(20);
    for (const { node, transport } of nodes) {
      for (let k = 0; k < 5; k++) {
        await transport.send(node.transmit([['T', 'OK', k, 'Cel']], { t: T0 + k * 1000 }).frame);
        await tick(2); // the session's answer comes back between frames
      }
    }
    await until(() => readings.length >= 40, 'every reading of the 8 devices');
    await tick(50);
    const status = await ingest.status();
    expect(readings).toHaveLength(40);
    expect(status.main.control).toBeGreaterThanOrEqual(8);
    // The first plain frame opens the device's session on its worker, which decodes its secure frames too.
    for (const r of readings) expect(r.worker).toBe(partitionOf(r.aid, 2));
    expect(readings.filter((r) => r.secure).length).toBeGreaterThan(8);
    expect(status.main.frames).toBe(status.main.control);
    expect(status.workers.every((w) => w.errors === 0)).toBe(true);
    // The workers report the aids they heard (once a second): the main thread's allocator renewed their leases.
    await until(() => ids.every((id, i) => allocator.leaseOf(id)!.expiresAtMs > leased[i]!), 'the leases renewed', 5000);
    for (const { node } of nodes) expect(readings.filter((r) => r.aid === node.assignedId).map((r) => r.timestampMs)).toEqual([0, 1, 2, 3, 4].map((k) => T0 + k * 1000));
    await ingest.stop();
  });

  it('refuses bad options with typed errors', () => {
    const t = { name: 'x', medium: 'udp' };
    expect(() => new WorkerIngest({ transports: [] })).toThrow(/at least one transport/);
    expect(() => new WorkerIngest({ transports: [t], workers: 0 })).toThrow(/workers/);
    expect(() => new WorkerIngest({ transports: [t], ringBytes: 1000 })).toThrow(/ringBytes/);
    expect(() => new WorkerIngest({ transports: [t], maxPeers: 1000 })).toThrow(/power of two/);
  });
});
