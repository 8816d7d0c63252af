import { Mosquitto } from '@opensynaptic/config/mosquitto';
import { OpenSynaptic } from '@opensynaptic/core';
import { MemoryReadingsSink, MemoryStore } from '@opensynaptic/store';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureId, ensureTime, linkNode } from '../src/device.js';
import { OpenSynapticServer } from '../src/server.js';
import { tick, until } from './helpers.js';

// A real broker: Debian's mosquitto on a free loopback port, started here (installed by the
// global setup when missing).
let broker: Mosquitto;
beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterAll(() => broker?.close());

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function mqtt(options: object = {}): Promise<Transport> {
  const t = await createTransport('mqtt', { url: broker.url, reconnectPeriodMs: 100, ...options });
  cleanup.push(() => t.destroy());
  await t.start();
  return t;
}

describe('OpenSynapticServer over MQTT (mosquitto)', () => {
  it('devices on the reference topics get ids and the time from the server, and every reading they publish is stored', async () => {
    const sink = new MemoryReadingsSink();
    const server = new OpenSynapticServer({
      transports: [{ name: 'mqtt', medium: 'mqtt', options: { url: broker.url, reconnectPeriodMs: 100 } }],
      sinks: [sink],
      store: new MemoryStore({ kinds: ['leases', 'sessions'] }),
    });
    cleanup.push(() => server.destroy());
    await server.start();
    // Each device publishes to os/sensors/raw and hears os/sensors/# (the reference's topics);
    // the server answers on the topic a request came from.
    const nodes: OpenSynaptic[] = [];
    const links: Transport[] = [];
    for (let i = 0; i < 3; i++) {
      const node = new OpenSynaptic({ deviceId: `MQTT_DEV_${i}`, requestTimeoutMs: 2000 });
      const t = await mqtt();
      linkNode(node, t);
      links.push(t);
      // One at a time: on a shared topic every device hears every answer, matched by sequence number.
      await ensureId(node, { timeoutMs: 2000, meta: { serial: `SN-${i}` } });
      nodes.push(node);
    }
    expect(new Set(nodes.map((n) => n.assignedId)).size).toBe(3);
    const sync = await ensureTime(nodes[0]!, { timeoutMs: 2000 });
    expect(sync.serverTimeMs).toBeGreaterThan(1e12);

    const base = Math.floor(Date.now() / 1000) * 1000;
    const sent: { aid: number; deviceId: string; t: number; value: number }[] = [];
    for (let k = 0; k < 10; k++) {
      for (const [i, node] of nodes.entries()) {
        const value = i === 0 ? 20 + k : 20; // device 0 changes (DIFF), the others hold (HEART)
        const r = node.transmit(
          [
            ['T1', 'OK', value, 'Cel'],
            ['H1', 'OK', 50 + i, '%'],
          ],
          { t: base + k * 1000 },
        );
        await links[i]!.send(r.frame);
        sent.push({ aid: node.assignedId, deviceId: node.deviceId, t: r.timestampMs, value });
      }
      await tick(10);
    }
    await until(async () => (await server.status()).readings >= sent.length && (await sink.query({ limit: 10_000 })).length >= 2 * sent.length, 'every published reading stored');
    const status = await server.status();
    expect(status.readings).toBe(sent.length);
    expect(status.errors).toEqual({});
    for (const node of nodes) {
      const rows = await sink.query({ aid: node.assignedId, sensorId: 'T1', limit: 1000 });
      const want = sent.filter((s) => s.aid === node.assignedId);
      expect(rows.map((r) => [r.deviceId, r.timestampMs, r.unit])).toEqual(want.map((s) => [s.deviceId, s.t, 'temperature']));
      for (const [j, r] of rows.entries()) expect(r.value).toBeCloseTo(want[j]!.value + 273.15, 9);
    }
    expect((await sink.query({ limit: 10_000 })).length).toBe(sent.length * 2);
    // The devices went secure with the server through its answers on the broker.
    for (const node of nodes) expect(server.node.protocol.getSession(node.assignedId)).toMatchObject({ state: 'SECURE', decryptConfirmed: true });
  });
});
