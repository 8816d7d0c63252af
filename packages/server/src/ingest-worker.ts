/**
 * The program of one `WorkerIngest` worker thread: reads its partition's frames from its
 * `FrameRing`, decodes them with a node of its own (the templates of its devices only), writes
 * the readings to its own sink (opened from the `sink` spec) and, when asked, hands them to the
 * main thread in batches. Counters go into the ring's stat slots, so `status()` costs no message.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { isSecureData } from '@opensynaptic/cmd';
import { OpenSynaptic, type OpenSynapticOptions } from '@opensynaptic/core';
import type { ReadingFrame, ReadingsSink } from '@opensynaptic/store';
import { FrameRing } from './frame-ring.js';
import { deviceIdOf, sensorsOf, strategyOf } from './server.js';
import { MAX_FORWARD_BATCHES, STAT, type WorkerData, type WorkerReading, type WorkerToMain, type MainToWorker } from './worker-protocol.js';

const data = workerData as WorkerData;
const port = parentPort!;
const post = (m: WorkerToMain): void => port.postMessage(m);

/** Records handled between two looks at the event loop (a stop or status message must get through). */
const YIELD_EVERY = 4096;
const IDLE_WAIT_MS = 100;
/** How often the aids heard are reported for their id leases, and most aids in one report. */
const TOUCH_EVERY_MS = 1000;
const TOUCH_MAX = 65_536;

async function openSink(): Promise<ReadingsSink | null> {
  const spec = data.sink;
  if (spec === null) return null;
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const open = mod[spec.export ?? 'default'];
  if (typeof open !== 'function') throw new Error(`sink: module "${spec.module}" has no function export "${spec.export ?? 'default'}"`);
  return (await open({ ...(spec.options ?? {}) })) as ReadingsSink;
}

async function main(): Promise<void> {
  const ring = FrameRing.attach(data.ring);
  const stats = ring.stats;
  const node = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', ...(data.node as OpenSynapticOptions) });
  await node.open();
  const sink = await openSink();
  const errors: Record<string, number> = {};
  const deviceIds = new Map<number, { raw: string; id: string }>();
  let batch: WorkerReading[] = [];
  let stopping = false;
  let forwarded = 0;
  // Every valid data frame renews its device's id lease; the leases live with the main thread's
  // allocator, so the aids heard go there once a second (bounded: the rest wait a report).
  let heard = new Set<number>();
  const report = (): void => {
    if (heard.size === 0) return;
    const aids = [...heard].slice(0, TOUCH_MAX);
    heard = aids.length === heard.size ? new Set() : new Set([...heard].slice(TOUCH_MAX));
    post({ type: 'touch', aids });
  };
  const touchTimer = setInterval(report, TOUCH_EVERY_MS);

  const idOf = (raw: string, aid: number): string => {
    const known = deviceIds.get(aid);
    if (known !== undefined && known.raw === raw) return known.id;
    const id = deviceIdOf(raw, aid);
    if (deviceIds.size >= 16_384) deviceIds.clear();
    deviceIds.set(aid, { raw, id });
    return id;
  };

  const visit = (frame: Uint8Array, peerId: number, receivedAt: number, transport: number): void => {
    stats[STAT.frames]!++;
    const out = node.receive(frame, null);
    if (out.response !== null) {
      stats[STAT.responses]!++;
      post({ type: 'respond', peerId, transport, bytes: out.response.slice() });
    }
    if (out.type === 'data') {
      stats[STAT.readings]!++;
      if (heard.size < TOUCH_MAX) heard.add(out.aid);
      batch.push({
        aid: out.aid,
        deviceId: idOf(String(out.fact.id), out.aid),
        strategy: strategyOf(out.cmd),
        timestampMs: out.timestampMs,
        receivedAtMs: Math.trunc(receivedAt),
        sensors: sensorsOf(out.fact as unknown as Record<string, unknown>),
        secure: isSecureData(out.cmd),
        transport,
        peerId,
        ...(typeof out.fact.geohash === 'string' ? { geohash: out.fact.geohash } : {}),
      });
    } else if (out.type === 'error') {
      stats[STAT.errors]!++;
      const code = (out.error as { code?: unknown }).code;
      const key = typeof code === 'string' ? code : out.error.name;
      // Codes are a small fixed set; the bound only guards against a node that names errors freely.
      if (key in errors || Object.keys(errors).length < 64) errors[key] = (errors[key] ?? 0) + 1;
    } else if (out.type === 'ignored') stats[STAT.ignored]!++;
  };

  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const readings = batch;
    batch = [];
    if (data.forward) {
      // A main thread that falls behind holds this loop (and so the ring), not an unbounded queue of messages.
      while (forwarded - stats[STAT.forwardDone]! >= MAX_FORWARD_BATCHES) await new Promise<void>((resolve) => setTimeout(resolve, 1));
      forwarded++;
      post({ type: 'readings', readings });
    }
    if (sink === null) return;
    const frames = readings as readonly ReadingFrame[];
    try {
      let seq = sink.tryWrite(frames);
      // A full sink holds this loop: the ring fills, and the main thread waits or counts drops.
      if (seq === false) seq = await sink.write(frames);
      stats[STAT.written]! += readings.length;
      if (sink.committed !== undefined) {
        const n = readings.length;
        void sink.committed(seq).then((ok) => {
          if (ok) stats[STAT.committed]! += n;
        });
      }
    } catch (error) {
      stats[STAT.rejected]! += readings.length;
      post({ type: 'sink-error', message: error instanceof Error ? error.message : String(error) });
    }
  };

  port.on('message', (m: MainToWorker) => {
    if (m.type === 'stop') stopping = true;
    else if (m.type === 'status') {
      const elu = performance.eventLoopUtilization();
      void (async () => {
        const sinkStatus = sink === null ? null : await sink.status().catch(() => null);
        post({ type: 'status', id: m.id, elu: elu.utilization, errors: { ...errors }, sink: sinkStatus === null ? null : { committed: sinkStatus.committed, lost: sinkStatus.lost, buffered: sinkStatus.buffered } });
      })();
    }
  });
  post({ type: 'ready' });

  let run = 0;
  for (;;) {
    const k = ring.drain(visit, data.sinkBatch - batch.length);
    if (k > 0) {
      if (batch.length >= data.sinkBatch || ring.used === 0) await flush();
      run += k;
      if (run >= YIELD_EVERY) {
        run = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      continue;
    }
    await flush();
    // The main thread sends `stop` only once it routes nothing more: an empty ring then is the end.
    if (stopping && ring.used === 0) break;
    await ring.readable(IDLE_WAIT_MS);
  }
  await flush();
  clearInterval(touchTimer);
  report();
  if (sink !== null) await sink.close();
  await node.close('worker stopped');
  post({ type: 'stopped' });
  port.close();
}

main().catch((error: unknown) => {
  post({ type: 'failed', message: error instanceof Error ? error.message : String(error), code: (error as { code?: unknown })?.code === undefined ? '' : String((error as { code: unknown }).code) });
  // A worker that cannot serve ends: the main thread sees the exit and reports it.
  process.exit(1);
});
