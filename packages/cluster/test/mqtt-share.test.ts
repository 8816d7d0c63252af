// The MQTT edge: two gateways on one mosquitto, each with the shared subscription
// `$share/gateways/os/sensors/#` (MQTT 5), QoS 1 with the device's PUBACK deferred until
// JetStream's. The broker shares the stream out: each gateway publishes part of it, together
// everything, each frame on its device's partition.
import { Mosquitto } from '@opensynaptic/config/mosquitto';
import { NatsCluster } from '@opensynaptic/config/nats';
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { framePartition } from '@opensynaptic/server';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterGateway } from '../src/index.js';

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
});
