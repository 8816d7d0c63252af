// The MQTT edge: two gateways on one mosquitto, each with the shared subscription
// `$share/gateways/os/sensors/#` (MQTT 5), QoS 1 with the device's PUBACK deferred until
// JetStream's. The broker shares the stream out: each gateway publishes part of it, together
// everything, each frame on its device's partition. Behind them a receiver puts each device's
// frames back in order (the gateways mark theirs unordered) and decodes every value right.
import { Mosquitto } from '@opensynaptic/config/mosquitto';
import { NatsCluster } from '@opensynaptic/config/nats';
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { framePartition } from '@opensynaptic/server';
import { type BatchOptions, createTransport, type Inbound, type Transport } from '@opensynaptic/transport';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ClusterGateway, ClusterReceiver, frameMessageId } from '../src/index.js';

const pgUrl = inject('pgUrl');
const unavailable = inject('pgUnavailable');

let broker: Mosquitto;
let nats: NatsCluster;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  broker = await Mosquitto.start();
  nats = await NatsCluster.start({ nodes: 1 });
});
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  await broker?.close();
  await nats?.close();
});

const PARTITIONS = 8;

/** `t`, with each batch of inbound frames handed over `ms` later. */
function slower(t: Transport, ms: number): Transport {
  async function* late(it: AsyncIterableIterator<Inbound[]>) {
    for await (const b of it) {
      await new Promise((r) => setTimeout(r, ms));
      yield b;
    }
  }
  return new Proxy(t, {
    get(target, key) {
      if (key === 'batches') return (o?: BatchOptions) => late(target.batches(o));
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('MQTT shared subscription in front of two gateways', () => {
  it('each gateway gets part of the stream, together all of it, on the right partitions', async () => {
    const acks: { gateway: string; partition: number; frame: Uint8Array }[] = [];
    const gateways: ClusterGateway[] = [];
    for (const id of ['ga', 'gb']) {
      const t = await createTransport('mqtt', { url: broker.url, qos: 1, subscribe: ['$share/gateways/os/sensors/#'], noLocal: false, clientId: `os-${id}`, reconnectPeriodMs: 50 });
      const g = new ClusterGateway({ id, nats: { servers: nats.urls }, transports: [t], prefix: 'mq', partitions: PARTITIONS });
      g.on('ack', (a) => acks.push({ gateway: id, partition: a.partition, frame: a.frame }));
      await g.start();
      cleanup.push(() => g.stop());
      gateways.push(g);
    }
    const sender: Transport = await createTransport('mqtt', { url: broker.url, qos: 1, subscribe: false, publishTopic: 'os/sensors/raw' });
    await sender.start();
    cleanup.push(() => sender.destroy());
    const devices = Array.from({ length: 40 }, (_, i) => new OpenSynaptic({ assignedId: 300 + i, deviceId: `m${i}` }));
    let sent = 0;
    for (let round = 0; round < 10; round++) {
      for (const [i, d] of devices.entries()) {
        await sender.send(d.transmit([['T1', 'OK', round + i, 'Cel']]).frame);
        sent++;
      }
    }
    await until(() => acks.length >= sent, `JetStream acknowledgements of the ${sent} frames (${acks.length} so far)`, 20_000, 20);
    const per = { ga: acks.filter((a) => a.gateway === 'ga').length, gb: acks.filter((a) => a.gateway === 'gb').length };
    expect(per.ga + per.gb).toBe(sent);
    expect(per.ga).toBeGreaterThan(0);
    expect(per.gb).toBeGreaterThan(0);
    for (const a of acks) expect(a.partition).toBe(framePartition(a.frame, PARTITIONS));
    // The stream holds each frame once.
    const nc = await import('nats').then((m) => m.connect({ servers: nats.urls }));
    try {
      const info = await (await nc.jetstreamManager()).streams.info('MQ_FRAMES');
      expect(info.state.messages).toBe(sent);
    } finally {
      await nc.close();
    }
  });

  it.skipIf(unavailable !== '')('a receiver behind them decodes every DIFF of every device to the value sent, each frame once', async () => {
    const prefix = 'mr';
    const gateways: ClusterGateway[] = [];
    const acked = new Set<string>();
    for (const id of ['ra', 'rb']) {
      const t = await createTransport('mqtt', { url: broker.url, qos: 1, subscribe: ['$share/rx/os/rx/#'], noLocal: false, clientId: `os-${id}`, reconnectPeriodMs: 50 });
      // The second gateway is slower (40 ms more per batch: a busier machine, a longer path), so
      // a device's frames through it reach JetStream after the device's next ones through the first.
      const g = new ClusterGateway({ id, nats: { servers: nats.urls }, transports: [id === 'rb' ? slower(t, 40) : t], prefix, partitions: PARTITIONS });
      expect(g.ordered).toBe(false);
      g.on('ack', (a) => acked.add(a.msgId));
      await g.start();
      cleanup.push(() => g.stop());
      gateways.push(g);
    }
    const receiver = new ClusterReceiver({ id: 'rx', nats: { servers: nats.urls }, postgres: { connection: pgUrl, schema: 'mqtt_share' }, prefix, partitions: PARTITIONS });
    await receiver.start();
    cleanup.push(() => receiver.stop());
    const sender: Transport = await createTransport('mqtt', { url: broker.url, qos: 1, subscribe: false, publishTopic: 'os/rx/raw' });
    await sender.start();
    cleanup.push(() => sender.destroy());
    // An odd count: the broker's round robin then hands each device's frames to both gateways in turn.
    // Frames carry whole seconds (as the reference writes them), and a receiver can only put a
    // device's frames back in order when their seconds differ: the devices here report once a
    // second of their (simulated) clock, sent as fast as the broker takes them.
    let clock = Math.trunc(Date.now() / 1000) * 1000;
    const devices = Array.from({ length: 31 }, (_, i) => new OpenSynaptic({ assignedId: 700 + i, deviceId: `x${i}`, clock: () => clock }));
    // What each frame carries (T1 changes every round, H1 every third): the expected readings by message id.
    const expected = new Map<string, { T1: number; H1: number; kind: string }>();
    const rounds = 30;
    for (let round = 0; round < rounds; round++) {
      clock += 1000;
      const sends: Promise<void>[] = [];
      for (const [i, d] of devices.entries()) {
        const T1 = round * 100 + i;
        const H1 = Math.floor(round / 3) + i;
        const r = d.transmit([['T1', 'OK', T1, 'Cel'], ['H1', 'OK', H1, 'Cel']]);
        expected.set(frameMessageId(r.frame)!, { T1, H1, kind: r.kind });
        // Not awaited one by one: many in flight, as a fleet publishes.
        sends.push(sender.send(r.frame));
      }
      await Promise.all(sends);
    }
    expect(expected.size).toBe(rounds * devices.length);
    expect([...expected.values()].filter((e) => e.kind === 'DIFF').length).toBeGreaterThan(rounds * devices.length * 0.8);
    await until(() => acked.size >= expected.size, `JetStream acknowledgements (${acked.size} of ${expected.size})`, 30_000, 20);
    await until(async () => (await receiver.status()).totals.acked >= expected.size, 'the receiver to store every frame', 30_000, 50);
    const db = (await import('../src/index.js')).ClusterDatabase;
    const check = await db.open({ connection: pgUrl, schema: 'mqtt_share' });
    try {
      const rows = await check.query<{ msg_id: string; sensor_id: string; value: number }>('SELECT msg_id, sensor_id, value FROM $schema.os_cluster_readings');
      expect(rows.length).toBe(expected.size * 2);
      const wrong: string[] = [];
      for (const r of rows) {
        const e = expected.get(r.msg_id);
        const v = Math.round((Number(r.value) - 273.15) * 100) / 100;
        if (e === undefined || e[r.sensor_id as 'T1' | 'H1'] !== v) wrong.push(`${r.msg_id} ${r.sensor_id}=${v}, sent ${JSON.stringify(e)}`);
      }
      expect(wrong.slice(0, 5)).toEqual([]);
    } finally {
      await check.close();
    }
    const st = await receiver.status();
    expect(st.totals.late).toBe(0);
    expect(st.totals.undecodable).toBe(0);
    expect(st.totals.errors).toBe(0);
    const per = gateways.map((g) => g.status().acked);
    console.log(`mqtt share: ${expected.size} frames, gateways ${per.join(' + ')}, reordered ${st.totals.reordered} back into device order`);
    expect(per.every((n) => n > 0)).toBe(true);
    // The slower gateway did put frames out of order, and they were put back.
    expect(st.totals.reordered).toBeGreaterThan(0);
  });
});
