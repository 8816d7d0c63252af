// What a device or a publisher on the frames subjects can send that a receiver must survive, on
// one nats-server and PostgreSQL: a reading whose texts PostgreSQL cannot keep (NUL), a frame of
// another partition's device, headers that are not what the gateway writes (a fractional
// receive time, a gateway id with blanks, a message id with NUL), a HELLO of another partition's
// device, and a device whose peer key NATS cannot carry in a header (CR, LF). Each is refused or
// mended and counted; the partition goes on committing the frames after them. Before, the NUL
// and the fractional time failed their batch's commit at every retry, and the peer key crashed
// the gateway.
import { AUTH_HELLO } from '@opensynaptic/cmd';
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { partitionOf } from '@opensynaptic/server';
import { InProcessTransport } from '@opensynaptic/transport';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consuming } from './fixtures/devices.js';
import { ClusterDatabase, ClusterGateway, ClusterReceiver, type ReceiverEvents } from '../src/index.js';
import { clusterEnv } from './fixtures/cluster-env.js';

const SCHEMA = 'hostile';
const env = clusterEnv(SCHEMA);
const { pgUrl, unavailable } = env;
const PREFIX = 'ho';
const PARTITIONS = 2;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  if (unavailable) return;
  nc = await connect({ servers: env.nats.urls });
});
afterAll(async () => {
  await nc?.close();
});

/** The first aid from `from` up whose device is in partition `p`. */
const aidIn = (p: number, from: number) => {
  let aid = from;
  while (partitionOf(aid, PARTITIONS) !== p) aid++;
  return aid;
};

describe.skipIf(unavailable !== '')('hostile input to the cluster', () => {
  it('refuses what PostgreSQL cannot keep and what belongs elsewhere, mends bad headers, and keeps committing', async () => {
    const receiver = new ClusterReceiver({ id: 'rh', nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema: SCHEMA }, prefix: PREFIX, partitions: PARTITIONS, node: { handshake: { auth: { server: {} } } } });
    const refused: ReceiverEvents['undecodable'][] = [];
    receiver.on('undecodable', (e) => refused.push(e));
    await receiver.start();
    env.defer(() => receiver.stop());
    await consuming(receiver, PARTITIONS);

    // The device's end of the link is named with CR and LF: its peer key cannot be a NATS header.
    const device = new InProcessTransport('dev\r\nOs-Gateway: evil');
    const edge = new InProcessTransport('edge');
    device.link(edge);
    edge.link(device);
    await device.start();
    const gateway = new ClusterGateway({ id: 'gh', nats: { servers: env.nats.urls }, transports: [edge], prefix: PREFIX, partitions: PARTITIONS });
    await gateway.start();
    env.defer(() => gateway.stop(), () => device.destroy());

    const good = aidIn(0, 300);
    const nul = aidIn(0, good + 1);
    const misplaced = aidIn(1, 400);
    const a = new OpenSynaptic({ assignedId: good, deviceId: 'good' });
    const b = new OpenSynaptic({ assignedId: nul, deviceId: 'nul' });
    const c = new OpenSynaptic({ assignedId: misplaced, deviceId: 'misplaced' });

    // Through the gateway: A's FULL, B's FULL with a NUL in a sensor id.
    await device.send(a.transmit([['T1', 'OK', 20, 'Cel']]).frame);
    await device.send(b.transmit([['T\u00001', 'OK', 21, 'Cel']]).frame);
    // By hand on partition 0's subject: A's next frame with a fractional receive time, a gateway
    // id with blanks and a message id with NUL; then C's FULL, whose device is in partition 1.
    const js = nc!.jetstream();
    const h = headers();
    h.set('Os-Received', '1.5');
    h.set('Os-Gateway', 'a b c');
    h.set('Os-Peer', 'somewhere');
    await js.publish(`${PREFIX}.frames.0`, a.transmit([['T1', 'OK', 22, 'Cel']]).frame, { msgID: 'bad\u0000id', headers: h });
    await js.publish(`${PREFIX}.frames.0`, c.transmit([['T1', 'OK', 23, 'Cel']]).frame, { msgID: 'misplaced-1' });
    // Then A again through the gateway: the partition must still be committing.
    await device.send(a.transmit([['T1', 'OK', 24, 'Cel']]).frame);

    const rows = async () => env.db.query<{ aid: number; value: number; msg_id: string; received_ms: number }>('SELECT aid, value, msg_id, received_ms FROM $schema.os_cluster_readings ORDER BY stream_seq');
    await until(async () => (await rows()).length === 3, 'the three frames of the good device', 15_000, 20);
    const got = await rows();
    expect(got.map((r) => [Number(r.aid), r.value])).toEqual([
      [good, 293.15],
      [good, 295.15],
      [good, 297.15],
    ]);
    // The mended headers: the stream's time for the fraction, the stream sequence for the id.
    expect(Number.isSafeInteger(Number(got[1]!.received_ms)) && Math.abs(Number(got[1]!.received_ms) - Date.now()) < 60_000).toBe(true);
    expect(got[1]!.msg_id).toMatch(/^HO_FRAMES-\d+$/);

    const codes = refused.map((e) => [e.code, e.aid, e.partition]);
    expect(codes).toContainEqual(['ERR_CLUSTER_VALUE', nul, 0]);
    expect(codes).toContainEqual(['ERR_CLUSTER_PARTITION', misplaced, 0]);
    const st = await receiver.status();
    const p0 = st.partitions.find((p) => p.partition === 0)!;
    expect(p0.errors).toMatchObject({ ERR_CLUSTER_VALUE: 1, ERR_CLUSTER_PARTITION: 1 });

    // The gateway published every frame of the CR/LF device, without its peer key.
    const gs = gateway.status();
    expect(gs).toMatchObject({ frames: 3, acked: 3, failed: 0 });
    expect(gs.peersUnnamed).toBe(3);

    // A HELLO of partition 1's device asked of partition 0: no answer, counted as dropped.
    const hello = new Uint8Array(5);
    hello[0] = AUTH_HELLO;
    new DataView(hello.buffer).setUint32(1, misplaced);
    const before = p0.hellosDropped;
    await expect(nc!.request(`${PREFIX}.hello.0`, hello, { timeout: 500 })).rejects.toBeDefined();
    await until(async () => (await receiver.status()).partitions.find((p) => p.partition === 0)!.hellosDropped === before + 1, 'the HELLO of another partition to be dropped', 5000, 20);
  });

  it('sends no answer to an Os-Gateway that is not a gateway id (it would be a subject); a real one gets its answer', async () => {
    const prefix = 'hr';
    // A schema of its own: a cluster (a prefix) owns its schema's partition claims.
    const schema = 'hostile_reply';
    const rdb = await ClusterDatabase.open({ connection: pgUrl, schema });
    env.defer(() => rdb.close());
    const receiver = new ClusterReceiver({ id: 'rr', nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema }, prefix, partitions: PARTITIONS, node: { handshake: { auth: { server: {} } } } });
    await receiver.start();
    env.defer(() => receiver.stop());
    await consuming(receiver, PARTITIONS);
    const replies: string[] = [];
    const watch = nc!.subscribe(`${prefix}.reply.>`, { callback: (_e, m) => replies.push(m.subject) });
    env.defer(async () => watch.unsubscribe());
    const js = nc!.jetstream();
    // A device's first FULL gets an answer (SECURE_DICT_READY), sent to the gateway it names.
    const publish = async (aid: number, gateway: string) => {
      const h = headers();
      h.set('Os-Gateway', gateway);
      h.set('Os-Peer', `peer-${aid}`);
      await js.publish(`${prefix}.frames.0`, new OpenSynaptic({ assignedId: aid, deviceId: `r${aid}` }).transmit([['T1', 'OK', 1, 'Cel']]).frame, { headers: h });
    };
    const forged = aidIn(0, 500);
    const real = aidIn(0, forged + 1);
    await publish(forged, 'a b c');
    await publish(real, 'watch');
    await until(() => replies.length >= 1, 'the answer to the real gateway', 10_000, 20);
    const count = async () => Number((await rdb.query<{ n: number }>('SELECT count(*) AS n FROM $schema.os_cluster_readings WHERE aid = ANY($1::bigint[])', [[forged, real]]))[0]!.n);
    await until(async () => (await count()) === 2, 'both FULLs to be stored', 10_000, 20);
    await nc!.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(replies).toEqual([`${prefix}.reply.watch`]);
    const p0 = (await receiver.status()).partitions.find((p) => p.partition === 0)!;
    expect(p0.replies).toBe(1);
  });
});
