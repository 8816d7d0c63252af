// The failover the cluster promises, for real on loopback: a 3-node JetStream cluster (three
// nats-server processes), PostgreSQL, three receivers in child processes, a gateway and a load
// generator of 300 devices (pre-assigned ids; FULL first, then DIFF and HEART, some changing
// their template mid-stream). Mid-stream one receiver is killed with SIGKILL and then one NATS
// node (the frames stream's leader). At the end every reading of every frame the gateway got a PubAck for is stored exactly
// once, and the devices of the dead receiver's partitions kept decoding DIFFs after the kill.
// Two devices per partition are authenticated (pre-shared secrets in the cluster's key store):
// their sealed frames, those the dead receiver had taken and not committed included, are stored
// exactly once too, with no new HELLO after the kills (the sessions came with the batches).
import { NatsCluster } from '@opensynaptic/config/nats';
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { type AuthKinds, AuthServer } from '@opensynaptic/handshake';
import { openPostgresStore } from '@opensynaptic/store-postgres';
import { partitionOf } from '@opensynaptic/server';
import { createInProcessPair } from '@opensynaptic/transport';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ClusterDatabase, ClusterGateway } from '../src/index.js';
import { killAll, lastStatus, type ReceiverChild, startReceiverChild } from './fixtures/receiver-children.js';

const PARTITIONS = 12;
const TTL_MS = 8000;
const DEVICES = 300;
const STREAM_MS = 24_000;
const KILL_RECEIVER_AT = 4000;
const KILL_NATS_AT = 12_000;
const SCHEMA = 'failover';
const AUTH_PER_PARTITION = 2;
const SECRET = new Uint8Array(32).map((_, i) => (i * 29 + 3) & 0xff);

let nats: NatsCluster | undefined;
const children: ReceiverChild[] = [];
const pgUrl = inject('pgUrl');
const unavailable = inject('pgUnavailable');

beforeAll(async () => {
  if (unavailable) return;
  nats = await NatsCluster.start({ nodes: 3, log: (m) => console.log(m) });
});

afterAll(async () => {
  killAll(children);
  await nats?.close();
});

function startReceiver(id: string): ReceiverChild {
  const child = startReceiverChild({ id, servers: nats!.urls, pgUrl, schema: SCHEMA, partitions: PARTITIONS, ttlMs: TTL_MS });
  children.push(child);
  return child;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(unavailable !== '')('failover on a 3-node JetStream cluster', () => {
  it('kill -9 of a receiver and of a NATS node mid-stream: every acknowledged reading stored once, moved devices keep decoding DIFFs', async () => {
    // Two authenticated devices per partition, their secrets in the cluster's key store.
    const authAids: number[] = [];
    const per = new Map<number, number>();
    for (let aid = 90_000; authAids.length < PARTITIONS * AUTH_PER_PARTITION; aid++) {
      const p = partitionOf(aid, PARTITIONS);
      if ((per.get(p) ?? 0) >= AUTH_PER_PARTITION) continue;
      per.set(p, (per.get(p) ?? 0) + 1);
      authAids.push(aid);
    }
    await (await ClusterDatabase.open({ connection: pgUrl, schema: SCHEMA })).close();
    const keyStore = await openPostgresStore<AuthKinds>({ connection: pgUrl, schema: SCHEMA, kinds: ['keys', 'auth'] });
    const admin = new AuthServer({ store: keyStore });
    await admin.load(Date.now());
    for (const aid of authAids) admin.setKey(aid, 0, SECRET);
    await admin.flush(Date.now());
    await keyStore.close();
    const receivers = ['r1', 'r2', 'r3'].map(startReceiver);
    // Every partition owned and consuming, a third each.
    await until(
      () =>
        receivers.every((c) => {
          const s = lastStatus(c);
          return s !== undefined && s.owned.length === PARTITIONS / 3 && s.partitions.every((p) => p.state === 'consuming');
        }),
      `the receivers to share the partitions (${receivers.map((c) => c.stderr).join(' ')})`,
      30_000,
      50,
    );

    const [device, edge] = createInProcessPair();
    const gateway = new ClusterGateway({ id: 'g1', nats: { servers: nats!.urls }, transports: [edge], partitions: PARTITIONS, stream: { replicas: 3 } });
    const acked = new Map<string, { partition: number; seq: number; sensors: number }>();
    const sensorsOfFrame = new Map<string, number>();
    gateway.on('ack', (a) => acked.set(a.msgId, { partition: a.partition, seq: a.seq, sensors: sensorsOfFrame.get(hex(a.frame)) ?? -1 }));
    await device.start();
    await gateway.start();

    const watcher = await connect({ servers: nats!.urls });
    let killedNode = -1;
    const plainAids = Array.from({ length: DEVICES }, (_, i) => 5000 + i * 7);
    const nodes = plainAids.map((aid) => new OpenSynaptic({ assignedId: aid, deviceId: `dev-${aid}` }));
    const sealed = authAids.map((aid) => new OpenSynaptic({ assignedId: aid, deviceId: `auth-${aid}`, auth: { secret: SECRET, mode: 'require' }, send: (p) => device.send(p) }));
    void (async () => {
      for await (const batch of device.batches()) for (const inbound of batch) for (const n of sealed) n.receive(inbound.frame);
    })();
    for (const n of sealed) expect(await n.authenticate({ timeoutMs: 5000 })).toBe('authenticated');
    const hellosBefore = gateway.status().hellos;
    expect(hellosBefore).toBe(authAids.length);
    nodes.push(...sealed);
    const aids = [...plainAids, ...authAids];
    const t0 = Date.now();
    let killedAt = 0;
    let moved: number[] = [];
    let round = 0;
    while (Date.now() - t0 < STREAM_MS) {
      const elapsed = Date.now() - t0;
      if (killedAt === 0 && elapsed >= KILL_RECEIVER_AT) {
        moved = lastStatus(receivers[0]!)!.owned;
        receivers[0]!.proc.kill('SIGKILL');
        killedAt = Date.now();
      }
      if (elapsed >= KILL_NATS_AT && !natsKilled) {
        // The node leading the frames stream: its replicas must elect another mid-stream.
        natsKilled = true;
        const info = await (await watcher.jetstreamManager()).streams.info('OS_FRAMES');
        killedNode = Math.max(0, nats!.nodes.findIndex((n) => n.name === info.cluster?.leader));
        await nats!.kill(killedNode);
      }
      for (let i = 0; i < nodes.length; i++) {
        // Every tenth device changes its sensor set (a new template, a FULL) every 20 rounds.
        const extra = i % 10 === 0 && Math.floor(round / 20) % 2 === 1;
        const sensors: [string, string, number, string][] = [
          ['T1', 'OK', 20 + ((round + i) % 9), 'Cel'],
          ['H1', 'OK', round % 3 === 0 ? 50 : 40 + (i % 5), '%'],
        ];
        if (extra) sensors.push(['P1', 'OK', 1000 + (round % 4), 'hPa']);
        const { frame, authenticated } = nodes[i]!.transmit(sensors);
        if (i >= DEVICES && !authenticated) throw new Error(`device ${aids[i]} sent a frame that is not sealed`);
        sensorsOfFrame.set(hex(frame), sensors.length);
        await device.send(frame);
      }
      round++;
      await sleep(250);
    }
    await until(() => gateway.status().queued === 0, 'the gateway to publish what it took', 30_000, 20);
    const gw = gateway.status();
    await gateway.stop();
    await device.destroy();
    await watcher.close();
    expect(killedAt).toBeGreaterThan(0);
    expect(killedNode).toBeGreaterThanOrEqual(0);
    expect(moved.length).toBeGreaterThan(0);
    expect(gw.failed, 'frames the gateway gave up').toBe(0);
    // The sessions survived both kills: no device had to authenticate again.
    expect(gw.hellos, 'HELLOs (one per authenticated device, none after the kills)').toBe(authAids.length);
    // One ack per frame (a retry JetStream had already is flagged duplicate, counted once).
    expect(acked.size).toBe(gw.acked);
    expect(acked.size).toBeGreaterThan(DEVICES * 40);

    const db = await ClusterDatabase.open({ connection: pgUrl, schema: SCHEMA });
    try {
      // Drained: every acknowledged frame has its rows.
      let stored = 0;
      try {
        await until(
          async () => {
            stored = Number((await db.query<{ n: number }>('SELECT count(DISTINCT msg_id)::bigint AS n FROM $schema.os_cluster_readings'))[0]!.n);
            return stored >= acked.size;
          },
          'the receivers to store every acknowledged frame',
          30_000,
          250,
        );
      } catch (e) {
        // What the receivers said, for the failure's report.
        for (const c of receivers) {
          const events = c.lines.filter((l) => l.ev !== 'status').map((l) => JSON.stringify(l));
          console.log(`${c.id}: ${events.slice(-60).join('\n')}\nlast status: ${JSON.stringify(lastStatus(c))}\nstderr: ${c.stderr}`);
        }
        const have = new Set((await db.query<{ msg_id: string }>('SELECT DISTINCT msg_id FROM $schema.os_cluster_readings')).map((r) => r.msg_id));
        const missing = [...acked].filter(([id]) => !have.has(id)).slice(0, 20);
        throw new Error(`${stored} of ${acked.size} acknowledged frames stored (missing: ${JSON.stringify(missing)}): ${(e as Error).message}`);
      }
      const counts = new Map((await db.query<{ msg_id: string; n: number }>('SELECT msg_id, count(*)::bigint AS n FROM $schema.os_cluster_readings GROUP BY msg_id')).map((r) => [r.msg_id, Number(r.n)]));
      const wrong: string[] = [];
      for (const [msgId, a] of acked) if (counts.get(msgId) !== a.sensors) wrong.push(`${msgId}: ${counts.get(msgId) ?? 0} rows, ${a.sensors} sensors`);
      expect(wrong.slice(0, 10), `${wrong.length} of ${acked.size} acknowledged frames not stored exactly once`).toEqual([]);
      // Nothing stored that the gateway did not acknowledge.
      expect(counts.size).toBe(acked.size);

      // The dead receiver's devices: DIFFs decoded after its death, by the receivers that took over.
      const movedSet = new Set(moved);
      const movedAids = aids.filter((aid) => movedSet.has(partitionOf(aid, PARTITIONS)));
      expect(movedAids.length).toBeGreaterThan(0);
      const after = await db.query<{ aid: number }>("SELECT DISTINCT aid FROM $schema.os_cluster_readings WHERE strategy = 'DIFF' AND received_ms > $1 AND receiver <> 'r1' AND aid = ANY($2::bigint[])", [killedAt + TTL_MS, movedAids]);
      expect(after.map((r) => Number(r.aid)).sort((a, b) => a - b)).toEqual(movedAids);
      expect(movedAids.filter((aid) => aid >= 90_000).length, 'authenticated devices among the moved').toBe(moved.length * AUTH_PER_PARTITION);
    } finally {
      await db.close();
    }

    const survivors = receivers.slice(1);
    const undecodable = survivors.flatMap((c) => c.lines.filter((l) => l.ev === 'undecodable'));
    expect(undecodable, 'DIFF or HEART frames whose template was unknown').toEqual([]);
    // The dead receiver's partitions were claimed by the survivors after the kill.
    const claimedAfter = new Set(survivors.flatMap((c) => c.lines.filter((l) => l.ev === 'claimed' && Number(l.at) > killedAt).map((l) => Number(l.partition))));
    for (const p of moved) expect(claimedAfter.has(p), `partition ${p} taken over`).toBe(true);
    // The dead receiver held messages it had not acknowledged: they came again to the new owners
    // (and, the check above says, were stored once).
    const heldByDead = survivors.flatMap((c) => c.lines.filter((l) => l.ev === 'claimed' && Number(l.at) > killedAt && moved.includes(Number(l.partition))).map((l) => Number(l.ackPending)));
    expect(heldByDead.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    for (const c of survivors) c.proc.kill('SIGTERM');
    await Promise.all(survivors.map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once('exit', r)))));
    const finals = survivors.map((c) => c.lines.find((l) => l.ev === 'stopped') as { totals: Record<string, number>; templateCommitMs: Record<string, number> } | undefined);
    console.log(JSON.stringify({ acked: acked.size, gateway: gw, moved, killedNode, finals: finals.map((f) => f && { totals: f.totals, templateCommitMs: f.templateCommitMs }) }));
    for (const f of finals) expect(f?.totals.undecodable).toBe(0);
  }, 120_000);
});

let natsKilled = false;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
