// Fault: a consumer that takes little. A `readings()` iterator that takes one reading at a time
// with a pause, overflow 'wait': the pressure must reach the transport (TCP stops reading, so the
// sender waits; UDP drops at the intake, counted) and the server's memory must stay bounded.
import { OpenSynaptic } from '@opensynaptic/core';
import { createTransport } from '@opensynaptic/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureId, linkNode } from '../src/device.js';
import { OpenSynapticServer, type ServerReading } from '../src/server.js';
import { device, portOf, tick, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

/** Frames the device sends (each a few dozen bytes). */
const FRAMES = 20_000;
/** The iterator's buffer: the server holds at most this many readings for it. */
const BUFFER = 256;
/**
 * Generous (the devices run in this process too, and their garbage counts): what the server holds
 * is bounded by the buffers; keeping every frame of the run would be several times this.
 */
const HEAP_BOUND = 96 * 1024 * 1024;

/** 24 sensors a frame (a few hundred bytes): enough bytes to fill the sockets' kernel buffers between the two ends. */
const WIDE = (k: number): [string, string, number, string][] => Array.from({ length: 24 }, (_, j) => [`S${j}`, 'OK', (k * 7 + j) % 1000, 'Pa']);

/** A consumer taking one reading every `everyMs` for `forMs`, then as fast as it can (so the test ends). */
function slowConsumer(server: OpenSynapticServer, everyMs: number, forMs: number) {
  const seen: ServerReading[] = [];
  const until = Date.now() + forMs;
  const done = (async () => {
    for await (const r of server.readings()) {
      seen.push(r);
      if (Date.now() < until) await tick(everyMs);
    }
  })();
  return { seen, done };
}

function heapWatch() {
  global.gc?.();
  const start = process.memoryUsage();
  let heap = 0;
  let rss = 0;
  return {
    sample() {
      const m = process.memoryUsage();
      heap = Math.max(heap, m.heapUsed - start.heapUsed);
      rss = Math.max(rss, m.rss - start.rss);
    },
    get heapGrowth() {
      return heap;
    },
    get rssGrowth() {
      return rss;
    },
  };
}

describe('a slow consumer', () => {
  it(`TCP: the iterator holds the loop, the transport stops reading the connection (what is held server-side stays within its queues); nothing dropped, all ${FRAMES} readings in order, memory bounded`, async () => {
    // Frames held server-side: the transport's inbound queue (1024, plus the frames of the socket
    // read it was decoding when it filled: 64 KiB of ~140-byte frames), the intake queue (1024)
    // and one batch the intake takes at once over it (1024).
    const held = 3 * 1024 + 512;
    const server = new OpenSynapticServer({ transports: [{ name: 'tcp', medium: 'tcp', options: { listen: { host: '127.0.0.1', port: 0 }, inbound: { maxFrames: 1024 } } }], readingsBuffer: BUFFER, overflow: 'wait', queueFrames: 1024 });
    cleanup.push(() => server.destroy());
    await server.start();
    const pressure: boolean[] = [];
    server.transport('tcp')!.on('backpressure', (e) => {
      if (e.direction === 'inbound') pressure.push(e.active);
    });
    const consumer = slowConsumer(server, 1, 1500);
    const t = await createTransport('tcp', { connect: { host: '127.0.0.1', port: portOf(server.transport('tcp') as never) } });
    cleanup.push(() => t.destroy());
    await t.start();
    const node = new OpenSynaptic({ deviceId: 'SLOW_TCP' });
    linkNode(node, t);
    await ensureId(node, { timeoutMs: 2000 });
    const mem = heapWatch();
    let maxQueued = 0;
    let maxInbound = 0;
    // Sampled on a timer while the consumer works (the server's side of what is held).
    const sampler = setInterval(() => {
      void server.status().then((st) => {
        maxQueued = Math.max(maxQueued, st.queued);
        maxInbound = Math.max(maxInbound, st.intake + st.transports.tcp!.inboundQueued);
        mem.sample();
      });
    }, 20);
    try {
      for (let k = 0; k < FRAMES; k++) {
        await t.send(node.transmit(WIDE(k), { t: 1.7e12 + k * 1000 }).frame);
        if (k % 256 === 255) await tick(0);
      }
      await until(() => consumer.seen.length === FRAMES, 'every reading taken', 30_000);
    } finally {
      clearInterval(sampler);
    }
    mem.sample();
    const status = await server.status();
    console.log(`slow consumer, TCP (measured on a loaded machine): readings queued for the iterator ≤ ${maxQueued}, frames held by the intake and the transport ≤ ${maxInbound}, heap +${(mem.heapGrowth / 2 ** 20).toFixed(1)} MiB, rss +${(mem.rssGrowth / 2 ** 20).toFixed(1)} MiB`);
    // The transport stopped reading the connection (the kernel's buffers and then the sender hold the rest).
    expect(pressure).toContain(true);
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(BUFFER);
    expect(maxInbound).toBeLessThanOrEqual(held);
    expect(mem.heapGrowth).toBeLessThan(HEAP_BOUND);
    expect(status.dropped).toEqual({ iterator: 0, sink: 0, rejected: 0, device: 0 });
    expect(Object.values(status.transports.tcp!.dropped).reduce((a, b) => a + b, 0)).toBe(0);
    expect(consumer.seen.map((r) => r.timestampMs)).toEqual(Array.from({ length: FRAMES }, (_, k) => 1.7e12 + k * 1000));
  });

  it(`UDP: the iterator holds the loop, the intake fills and drops what exceeds it, counted; memory bounded`, async () => {
    const transport = await createTransport('udp', { host: '127.0.0.1', port: 0 });
    const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport }], readingsBuffer: BUFFER, overflow: 'wait', deviceQueue: 128, queueFrames: 1024 });
    cleanup.push(() => server.destroy());
    await server.start();
    const consumer = slowConsumer(server, 1, 1000);
    const d = await device('SLOW_UDP', portOf(transport));
    cleanup.push(() => d.transport.destroy());
    await ensureId(d.node, { timeoutMs: 2000 });
    const mem = heapWatch();
    let maxQueued = 0;
    let maxIntake = 0;
    for (let k = 0; k < FRAMES; k++) {
      await d.transport.send(d.node.transmit([['T1', 'OK', k % 100, 'Cel']], { t: 1.7e12 + k * 1000 }).frame);
      if (k % 16 === 15) await tick(0); // lets the server read its socket: the drops are then its own, counted
      if (k % 500 === 0) {
        const st = await server.status();
        maxQueued = Math.max(maxQueued, st.queued);
        maxIntake = Math.max(maxIntake, st.intake);
        mem.sample();
      }
    }
    const counted = async () => {
      const st = await server.status();
      return st.dropped.device + Object.values(st.transports.udp!.dropped).reduce((a, b) => a + b, 0);
    };
    let last = -1;
    await until(async () => {
      const now = consumer.seen.length;
      const quiet = now === last && (await server.status()).intake === 0;
      last = now;
      if (!quiet) await tick(100);
      return quiet;
    }, 'the intake drained', 30_000);
    mem.sample();
    const dropped = await counted();
    console.log(`slow consumer, UDP (measured on a loaded machine): ${consumer.seen.length} of ${FRAMES} taken, ${dropped} dropped and counted, queued ≤ ${maxQueued}, intake ≤ ${maxIntake}, heap +${(mem.heapGrowth / 2 ** 20).toFixed(1)} MiB, rss +${(mem.rssGrowth / 2 ** 20).toFixed(1)} MiB`);
    expect(dropped).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(BUFFER);
    expect(maxIntake).toBeLessThanOrEqual(1024);
    expect(mem.heapGrowth).toBeLessThan(HEAP_BOUND);
    // Taken plus counted drops: at most what was sent (the kernel may drop more on a busy machine,
    // before anyone can count them), and most of it.
    expect(consumer.seen.length + dropped).toBeLessThanOrEqual(FRAMES);
    expect(consumer.seen.length + dropped).toBeGreaterThan(FRAMES / 2);
    expect((await server.status()).dropped.iterator).toBe(0);
  });
});
