// Fault: the MQTT broker (a real mosquitto) restarted in the middle of a QoS 1 stream, twice. The
// server's transport keeps a persistent session (clean: false, a stable client id), so the broker
// queues for it what the devices publish while it reconnects; the devices' unacknowledged QoS 1
// publishes go out again when they reconnect.
import { Mosquitto } from '@opensynaptic/config/mosquitto';
import { OpenSynaptic } from '@opensynaptic/core';
import { MemoryReadingsSink, MemoryStore } from '@opensynaptic/store';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureId, linkNode } from '../src/device.js';
import { OpenSynapticServer } from '../src/server.js';
import { tick, until } from './helpers.js';

let broker: Mosquitto;
beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterAll(() => broker?.close());
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

/** Broker restarts during the stream. */
const RESTARTS = 2;
const DEVICES = 3;

describe('the broker restarted mid-stream (mosquitto, QoS 1)', () => {
  it(`${RESTARTS} restarts: every reading whose publish the broker acknowledged is stored (duplicates from resends counted), the subscriptions come back`, async () => {
    const sink = new MemoryReadingsSink();
    const server = new OpenSynapticServer({
      transports: [{ name: 'mqtt', medium: 'mqtt', options: { url: broker.url, qos: 1, clean: false, clientId: `os-faults-server-${process.pid}`, reconnectPeriodMs: 50 } }],
      sinks: [sink],
      store: new MemoryStore({ kinds: ['leases', 'sessions'] }),
    });
    cleanup.push(() => server.destroy());
    let reconnected = 0;
    await server.start();
    server.transport('mqtt')!.on('connected', () => reconnected++);

    const devices: { node: OpenSynaptic; link: Transport }[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const link = await createTransport('mqtt', { url: broker.url, qos: 1, reconnectPeriodMs: 50 });
      cleanup.push(() => link.destroy());
      await link.start();
      const node = new OpenSynaptic({ deviceId: `BROKER_DEV_${i}`, requestTimeoutMs: 2000 });
      linkNode(node, link);
      await ensureId(node, { timeoutMs: 2000, meta: { serial: `BROKER-${i}` } });
      devices.push({ node, link });
    }

    // Each device publishes without pause; a reading counts as acknowledged once its send resolved (PUBACK).
    const acked = new Set<string>();
    let failed = 0;
    let stop = false;
    const base = 1.7e12;
    const streams = devices.map(async ({ node, link }, i) => {
      for (let k = 0; !stop; k++) {
        const t = base + k * 1000;
        const out = node.transmit([['T1', 'OK', (k + i) % 40, 'Cel']], { t });
        try {
          await link.send(out.frame);
          acked.add(`${node.assignedId}/${t}`);
        } catch {
          failed++;
        }
        if (k % 8 === 7) await tick(2);
      }
    });
    const ackedBy = async (n: number) => until(() => acked.size >= n, `${n} acknowledged readings`, 15_000);
    for (let r = 0; r < RESTARTS; r++) {
      await ackedBy(acked.size + 60);
      await broker.restart(100);
      // Publishing goes on while the broker is away: the sends wait in the clients and go out on reconnection.
    }
    await ackedBy(acked.size + 60);
    stop = true;
    await Promise.all(streams);

    await until(async () => {
      const rows = await sink.query({ limit: 100_000 });
      const keys = new Set(rows.map((x) => `${x.aid}/${x.timestampMs}`));
      return [...acked].every((k) => keys.has(k));
    }, 'every acknowledged reading stored', 20_000);
    const rows = await sink.query({ limit: 100_000 });
    const keys = new Set(rows.map((x) => `${x.aid}/${x.timestampMs}`));
    const duplicates = rows.length - keys.size;
    console.log(`broker restarts: ${acked.size} readings acknowledged, ${rows.length} stored, ${duplicates} duplicates (QoS 1 resends), ${failed} sends failed`);
    expect([...acked].filter((k) => !keys.has(k))).toEqual([]);
    // The server's transport reconnected after each restart and its subscription works again.
    expect(reconnected).toBeGreaterThanOrEqual(RESTARTS);
    const status = await server.status();
    expect(status.errors).toEqual({});
    // A fresh publish after the last restart still arrives: the subscription came back.
    const before = rows.length;
    await devices[0]!.link.send(devices[0]!.node.transmit([['T1', 'OK', 1, 'Cel']], { t: base + 9e9 }).frame);
    await until(async () => (await sink.query({ limit: 100_000 })).length > before, 'a reading published after the restarts');
  });
});
