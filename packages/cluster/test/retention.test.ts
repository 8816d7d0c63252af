// The frames stream's retention, on one nats-server and PostgreSQL: the same traffic, four times
// what `maxBytes` holds, sent in rounds that one receiver drains, through a gateway that gives a
// frame up at its first refusal. On a work queue (the default) acknowledged frames leave the
// stream, so every frame is stored and the stream ends empty; on a `limits` stream they stay
// until `maxAgeMs`, so it fills and refuses publishes: the limit that a day of traffic over 1 GiB
// met with the defaults.
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { createInProcessPair } from '@opensynaptic/transport';
import { connect } from 'nats';
import { describe, expect, it } from 'vitest';
import { consuming } from './fixtures/devices.js';
import { ClusterGateway, ClusterReceiver, streamName } from '../src/index.js';
import { clusterEnv } from './fixtures/cluster-env.js';

const SCHEMA = 'retention';
const env = clusterEnv(SCHEMA);
const { pgUrl, unavailable } = env;
const PARTITIONS = 2;
const MAX_BYTES = 128 << 10;
const ROUNDS = 10;
const PER_ROUND = 200;


async function run(prefix: string, retention: 'workqueue' | 'limits') {
  const stream = { retention, maxBytes: MAX_BYTES };
  const receiver = new ClusterReceiver({ id: `r-${prefix}`, nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema: SCHEMA }, prefix, partitions: PARTITIONS, stream });
  const [device, edge] = createInProcessPair();
  const gateway = new ClusterGateway({ id: `g-${prefix}`, nats: { servers: env.nats.urls }, transports: [edge], prefix, partitions: PARTITIONS, stream, publishAttempts: 1 });
  await receiver.start();
  await device.start();
  await gateway.start();
  const nc = await connect({ servers: env.nats.urls });
  try {
    await consuming(receiver, PARTITIONS);
    const nodes = Array.from({ length: 20 }, (_, i) => new OpenSynaptic({ assignedId: (prefix === 'wq' ? 1000 : 2000) + i, deviceId: `${prefix}-${i}` }));
    const stored = async () => Number((await env.db.query<{ n: number }>('SELECT count(*) AS n FROM $schema.os_cluster_readings WHERE aid BETWEEN $1 AND $2', [nodes[0]!.assignedId, nodes[19]!.assignedId]))[0]!.n);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < PER_ROUND; k++) await device.send(nodes[k % 20]!.transmit([['T1', 'OK', round * 1000 + k, 'Cel']]).frame);
      await until(() => gateway.status().queued === 0, 'the round to be published', 10_000, 10);
      const acked = gateway.status().acked;
      await until(async () => (await stored()) === acked, 'the receiver to store what was acknowledged', 15_000, 20);
    }
    const jsm = await nc.jetstreamManager();
    // A work queue removes what was acknowledged as the acks arrive (they go after each commit).
    if (retention === 'workqueue') await until(async () => (await jsm.streams.info(streamName(prefix))).state.messages === 0, 'the acknowledged frames to leave the work queue', 10_000, 20);
    const info = await jsm.streams.info(streamName(prefix));
    return { gateway: gateway.status(), stored: await stored(), messages: info.state.messages, bytes: info.state.bytes };
  } finally {
    await nc.close();
    await gateway.stop();
    await receiver.stop();
    await device.destroy();
  }
}

describe.skipIf(unavailable !== '')('the frames stream holds what is not acknowledged', () => {
  it('a work queue takes four times maxBytes drained by a receiver; a limits stream fills and refuses', async () => {
    const wq = await run('wq', 'workqueue');
    const limits = await run('lim', 'limits');
    console.log(JSON.stringify({ maxBytes: MAX_BYTES, workqueue: { ...wq, gateway: undefined, acked: wq.gateway.acked, failed: wq.gateway.failed }, limits: { ...limits, gateway: undefined, acked: limits.gateway.acked, failed: limits.gateway.failed } }));
    expect(wq.gateway).toMatchObject({ frames: ROUNDS * PER_ROUND, acked: ROUNDS * PER_ROUND, failed: 0 });
    expect(wq.stored).toBe(ROUNDS * PER_ROUND);
    expect(wq.messages).toBe(0);
    // The same traffic on a stream that keeps acknowledged frames: it fills, and the rest is refused.
    expect(limits.gateway.failed).toBeGreaterThan(0);
    expect(limits.gateway.acked + limits.gateway.failed).toBe(ROUNDS * PER_ROUND);
    expect(limits.stored).toBe(limits.gateway.acked);
    expect(limits.bytes).toBeLessThanOrEqual(MAX_BYTES);
  }, 120_000);
});
