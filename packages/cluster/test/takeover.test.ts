// A takeover on one nats-server, step by step: a receiver stores a stream and stops gracefully
// (its leases go at once); the consumers are then left with every message delivered and none
// acknowledged, as a receiver killed after its commits and before its acks would leave them. The
// next receiver takes the partitions without waiting for the TTL, finds those frames stored,
// acknowledges them without decoding them over the newer state, stores nothing twice, and
// decodes the devices' next DIFFs against the state the first one left.
// And a consumer reset whose create timed out on the client while the servers made the consumer:
// its retry keeps that consumer instead of deleting it and waiting again. And a stop during
// start, which must leave no member behind for the others to assign partitions to.
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { createInProcessPair } from '@opensynaptic/transport';
import { AckPolicy, connect, DeliverPolicy, type JetStreamManager } from 'nats';
import { describe, expect, it } from 'vitest';
import { ClusterGateway, ClusterReceiver, consumerName, framesSubject, leaseBucket, memberKey, streamName } from '../src/index.js';
import { clusterEnv } from './fixtures/cluster-env.js';
import { type ConsumerReset, ensureFramesStream, resetConsumer } from '../src/nats.js';

const SCHEMA = 'takeover';
const env = clusterEnv(SCHEMA);
const { pgUrl, unavailable } = env;
const PARTITIONS = 2;
const PREFIX = 'tk';


const rows = async () => Number((await env.db.query<{ n: number }>('SELECT count(*)::bigint AS n FROM $schema.os_cluster_readings'))[0]!.n);

describe.skipIf(unavailable !== '')('takeover of partitions whose messages were stored and not acknowledged', () => {
  it('skips what is stored, stores nothing twice, and keeps decoding DIFFs from the stored state', async () => {
    // A stream that keeps acknowledged frames, so that the test can hand them out again: on a
    // work queue, what a kill -9 between the commits and the acks leaves is the same frames,
    // unacknowledged.
    const stream = { retention: 'limits' } as const;
    const receiver = (id: string) => new ClusterReceiver({ id, nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema: SCHEMA }, prefix: PREFIX, partitions: PARTITIONS, leaseTtlMs: 60_000, stream });
    const [device, edge] = createInProcessPair();
    const gateway = new ClusterGateway({ id: 'gt', nats: { servers: env.nats.urls }, transports: [edge], prefix: PREFIX, partitions: PARTITIONS, stream });
    await device.start();
    await gateway.start();
    const nodes = Array.from({ length: 20 }, (_, i) => new OpenSynaptic({ assignedId: 900 + i, deviceId: `t${i}` }));
    const send = async (round: number) => {
      for (const [i, n] of nodes.entries()) await device.send(n.transmit([['T1', 'OK', round * 10 + i, 'Cel'], ['H1', 'OK', 50, '%']]).frame);
    };

    const a = receiver('ra');
    await a.start();
    for (let round = 0; round < 5; round++) await send(round);
    await until(() => gateway.status().queued === 0, 'the publishes', 10_000);
    await until(async () => (await rows()) === 100 * 2, 'the first receiver to store 100 frames', 20_000, 50);
    await a.stop();

    // Every message delivered again and none acknowledged: what a kill -9 between the commits
    // and the acks leaves.
    const nc = await connect({ servers: env.nats.urls });
    try {
      const jsm = await nc.jetstreamManager();
      for (let p = 0; p < PARTITIONS; p++) {
        const name = consumerName(PREFIX, p);
        await jsm.consumers.delete(streamName(PREFIX), name);
        await jsm.consumers.add(streamName(PREFIX), { durable_name: name, filter_subject: framesSubject(PREFIX, p), ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: 60_000_000_000 });
        const c = await nc.jetstream().consumers.get(streamName(PREFIX), name);
        const got = await c.fetch({ max_messages: 1000, expires: 1000 });
        for await (const _m of got) {
          // taken, not acknowledged
        }
        const info = await jsm.consumers.info(streamName(PREFIX), name);
        expect(info.ack_floor.stream_seq).toBe(0);
        expect(info.num_ack_pending).toBeGreaterThan(0);
      }
    } finally {
      await nc.close();
    }

    const b = receiver('rb');
    const t0 = Date.now();
    await b.start();
    // The leases were released on stop: taken at once, not after the 60 s TTL.
    await until(async () => (await b.status()).partitions.filter((p) => p.state === 'consuming').length === PARTITIONS, 'the second receiver to take both partitions', 10_000, 20);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await until(async () => (await b.status()).totals.skipped === 100, 'the redelivered frames to be skipped', 20_000, 50);
    for (let round = 5; round < 8; round++) await send(round);
    await until(async () => (await rows()) === 160 * 2, 'the new DIFFs to be stored', 20_000, 50);
    const st = await b.status();
    expect(st.totals.duplicates).toBe(0);
    expect(st.totals.undecodable).toBe(0);
    expect(st.totals.errors).toBe(0);
    // The DIFFs after the takeover decoded against the state the first receiver left: T1 of
    // device i in round r is r * 10 + i.
    const late = await env.db.query<{ aid: number; value: number; ts: number; strategy: string }>(
      "SELECT aid, value, strategy FROM $schema.os_cluster_readings WHERE sensor_id = 'T1' AND receiver = 'rb' ORDER BY aid, stream_seq",
    );
    expect(late.length).toBe(60);
    expect(late.every((r) => r.strategy === 'DIFF')).toBe(true);
    const byAid = new Map<number, number[]>();
    for (const r of late) byAid.set(Number(r.aid), [...(byAid.get(Number(r.aid)) ?? []), Number(r.value)]);
    for (const [aid, values] of byAid) {
      const i = aid - 900;
      // Celsius stored as kelvin by the standardizer.
      expect(values.map((v) => Math.round((v - 273.15) * 100) / 100)).toEqual([50 + i, 60 + i, 70 + i]);
    }
    await b.stop();
    await gateway.stop();
    await device.destroy();
  });

  it('stop() during start() waits for it, then leaves: no member and no lease left behind', async () => {
    const r = new ClusterReceiver({ id: 'rs', nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema: SCHEMA }, prefix: 'st', partitions: PARTITIONS, leaseTtlMs: 60_000 });
    const started = r.start();
    await r.stop();
    await started;
    expect((await r.status()).state).toBe('stopped');
    const nc = await connect({ servers: env.nats.urls });
    try {
      const kv = await nc.jetstream().views.kv(leaseBucket('st'));
      // Before, the start went on after the stop: it announced itself (a member others would
      // assign partitions to for a whole TTL) and ran its rounds on.
      const member = await kv.get(memberKey('rs'));
      expect(member === null || member.operation !== 'PUT').toBe(true);
      const lease = await kv.get('p.0');
      expect(lease === null || lease.operation !== 'PUT').toBe(true);
    } finally {
      await nc.close();
    }
  });

  it('a reset retried after its create timed out on the client keeps the consumer the servers made', async () => {
    const nc = await connect({ servers: env.nats.urls });
    try {
      const jsm = await nc.jetstreamManager();
      await ensureFramesStream(jsm, 'rc');
      const created = async () => (await jsm.consumers.info(streamName('rc'), consumerName('rc', 0))).created;
      // The servers make the consumer; its answer is lost (what a create waiting for a new
      // consumer's leader after a NATS node died looks like to the client).
      let lose = true;
      const consumers = new Proxy(jsm.consumers, {
        get(target, key) {
          const v = Reflect.get(target, key, target) as unknown;
          if (key === 'add')
            return async (...args: Parameters<typeof target.add>) => {
              const r = await target.add(...args);
              if (!lose) return r;
              lose = false;
              throw Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' });
            };
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      const flaky = { consumers } as unknown as JetStreamManager;
      const known: ConsumerReset = { ackFloor: 0, ackPending: 0, pending: 0, delivered: 0 };
      const options = { ackWaitMs: 60_000, maxAckPending: 64, workqueue: true, known };
      await expect(resetConsumer(flaky, 'rc', 0, options)).rejects.toMatchObject({ code: 'ERR_CLUSTER_NATS' });
      const made = await created();
      // The retry finds it fresh (nothing delivered) and keeps it rather than starting over.
      expect(await resetConsumer(flaky, 'rc', 0, options)).toMatchObject({ ackFloor: 0, ackPending: 0 });
      expect(await created()).toBe(made);
      // A reset of its own (a takeover) still makes it anew.
      await resetConsumer(jsm, 'rc', 0, { ackWaitMs: 60_000, maxAckPending: 64, workqueue: true });
      expect(await created()).not.toBe(made);
    } finally {
      await nc.close();
    }
  });
});
