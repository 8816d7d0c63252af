// Ids assigned by the cluster, on one nats-server and PostgreSQL: two gateways ask the one
// allocator (the owner of partition 0) for their devices' ids; every id is distinct and in the
// range, the devices' frames are stored under them; the owner stops, the next receiver loads the
// leases, gives a device asking again its id and new devices ids no one has. Leases are renewed
// by the devices' stored frames: with the range full, a device that stopped sending loses its
// id to a newcomer once its lease ran out, and the devices that kept sending keep theirs.
// Without an allocator in the cluster the gateway's own node answers, as before (NACK). A kill -9
// of the allocator's owner amid ID requests gives no id to two devices.
import { until } from '@opensynaptic/config/until';
import type { OpenSynaptic } from '@opensynaptic/core';
import { createInProcessPair, type InProcessTransport } from '@opensynaptic/transport';
import { describe, expect, it } from 'vitest';
import { consuming, devicesOn } from './fixtures/devices.js';
import { killAll, lastStatus, type ReceiverChild, startReceiverChild } from './fixtures/receiver-children.js';
import { ClusterIds } from '../src/ids.js';
import { ClusterGateway, ClusterReceiver, isOpenSynapticError } from '../src/index.js';
import { clusterEnv } from './fixtures/cluster-env.js';

const SCHEMA = 'ids';
const env = clusterEnv(SCHEMA);
const { pgUrl, unavailable } = env;
const PARTITIONS = 2;
const PREFIX = 'id';
const START = 5000;
// Fifteen ids: the test fills the range, so the next request must reclaim an expired lease.
const END = 5014;
const LEASE_MS = 6000;


const receiver = (id: string) =>
  new ClusterReceiver({ id, nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema: SCHEMA }, prefix: PREFIX, partitions: PARTITIONS, leaseTtlMs: 60_000, ids: { start: START, end: END, leaseMs: LEASE_MS } });

describe.skipIf(unavailable !== '')('ids assigned by the cluster', () => {
  it('one allocator for every gateway, distinct ids, leases that survive a takeover', async () => {
    const links: InProcessTransport[] = [];
    const gateways: ClusterGateway[] = [];
    for (const id of ['gi1', 'gi2']) {
      const [link, edge] = createInProcessPair();
      await link.start();
      const g = new ClusterGateway({ id, nats: { servers: env.nats.urls }, transports: [edge], prefix: PREFIX, partitions: PARTITIONS });
      await g.start();
      env.defer(() => g.stop(), () => link.destroy());
      links.push(link);
      gateways.push(g);
    }
    const via = links.map((link) => {
      const on = devicesOn(link);
      return (deviceId: string) => on({ deviceId });
    });

    // No receiver assigns ids yet: the gateway's own node answers, as without a cluster.
    const early = via[0]!('early');
    const nack = await early.requestId({ meta: { device_id: 'early' }, timeoutMs: 3000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isOpenSynapticError(nack)).toBe(true);
    expect((nack as { name?: string }).name).toBe('RequestNackError');
    expect(gateways[0]!.status().idRequests).toBe(0);

    const a = receiver('ia');
    await a.start();
    env.defer(() => a.stop());
    await consuming(a, PARTITIONS);
    await until(async () => (await a.status()).ids !== null, 'the allocator to run', 10_000, 20);
    // One at a time: devices behind one link share it, and an answer goes to the one that asked.
    const assigned = new Map<string, number>();
    const nodes = new Map<string, OpenSynaptic>();
    for (let i = 0; i < 10; i++) {
      const name = `dev-${i}`;
      const n = via[i % 2]!(name);
      nodes.set(name, n);
      assigned.set(name, await n.requestId({ meta: { device_id: name }, timeoutMs: 3000 }));
    }
    const ids = [...assigned.values()];
    expect(new Set(ids).size).toBe(10);
    expect(ids.every((id) => id >= START && id <= END)).toBe(true);
    expect(gateways[0]!.status().idRequests + gateways[1]!.status().idRequests).toBe(10);
    expect((await a.status()).ids).toMatchObject({ requests: 10, leases: 10 });

    // Their frames are stored under those ids.
    for (const [i, n] of [...nodes.values()].entries()) await links[i % 2]!.send(n.transmit([['T1', 'OK', 20 + i, 'Cel']]).frame);
    const stored = async () => (await env.db.query<{ aid: number }>('SELECT DISTINCT aid FROM $schema.os_cluster_readings')).map((r) => Number(r.aid)).sort((x, y) => x - y);
    await until(async () => (await stored()).length === 10, 'the FULLs under the assigned ids', 10_000, 20);
    expect(await stored()).toEqual([...ids].sort((x, y) => x - y));
    await a.stop();

    const b = receiver('ib');
    await b.start();
    env.defer(() => b.stop());
    await consuming(b, PARTITIONS);
    await until(async () => ((await b.status()).ids?.renewed ?? 0) >= 10, 'the stored devices\' leases to be renewed', 10_000, 20);
    expect((await b.status()).ids).toMatchObject({ leases: 10 });
    // The same device asks again, through the other gateway: its id.
    const again = via[1]!('dev-0 again');
    expect(await again.requestId({ meta: { device_id: 'dev-0' }, timeoutMs: 3000 })).toBe(assigned.get('dev-0'));
    // New devices: ids no one has.
    const fresh: number[] = [];
    for (let i = 0; i < 5; i++) {
      const name = `new-${i}`;
      const n = via[i % 2]!(name);
      nodes.set(name, n);
      fresh.push(await n.requestId({ meta: { device_id: name }, timeoutMs: 3000 }));
    }
    expect(new Set([...ids, ...fresh]).size).toBe(15);
    expect((await b.status()).ids).toMatchObject({ requests: 6, leases: 15, available: 0 });

    // Every device but dev-9 keeps sending for longer than a lease; then a newcomer asks. The
    // range is full, so it gets the id whose lease ran out, dev-9's, and no other.
    const quiet = assigned.get('dev-9')!;
    const t0 = Date.now();
    for (let round = 0; Date.now() - t0 < LEASE_MS + 3000; round++) {
      for (const [i, [name, n]] of [...nodes.entries()].entries()) if (name !== 'dev-9') await links[i % 2]!.send(n.transmit([['T1', 'OK', 30 + round, 'Cel']]).frame);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const newcomer = await via[0]!('newcomer').requestId({ meta: { device_id: 'newcomer' }, timeoutMs: 3000 });
    expect(newcomer).toBe(quiet);
  });

  it("kill -9 of the allocator's owner amid ID requests: no id goes to two devices, every id handed out stays taken", async () => {
    const schema = 'ids_kill';
    const prefix = 'ik';
    const ttlMs = 3000;
    const ids = { start: 7000, end: 7999, leaseMs: 600_000 };
    const children: ReceiverChild[] = [];
    env.defer(async () => killAll(children));
    const first = startReceiverChild({ id: 'ka', servers: env.nats.urls, pgUrl, schema, partitions: PARTITIONS, ttlMs, options: { prefix, ids, stream: { replicas: 1 } } });
    children.push(first);
    await until(() => lastStatus(first)?.ids != null, 'the first allocator to run', 20_000, 50).catch((e: Error) => {
      throw new Error(`${e.message}; its stderr: ${first.stderr}`);
    });

    // Four links, one request at a time on each (see devicesOn): four requests in flight at once.
    const links: InProcessTransport[] = [];
    const edges = [];
    for (let i = 0; i < 4; i++) {
      const [link, edge] = createInProcessPair();
      await link.start();
      env.defer(() => link.destroy());
      links.push(link);
      edges.push(edge);
    }
    const g = new ClusterGateway({ id: 'gk', nats: { servers: env.nats.urls }, transports: edges, prefix, partitions: PARTITIONS });
    await g.start();
    env.defer(() => g.stop());
    const holder = new Map<number, string>();
    const clashes: string[] = [];
    const names: string[] = [];
    let answered = 0;
    let unanswered = 0;
    let stop = false;
    const ask = async (on: ReturnType<typeof devicesOn>, name: string) => {
      try {
        // Longer than the gateway's own wait for the allocator (helloTimeoutMs, 2 s): no answer comes after this one gave up.
        const id = await on({ deviceId: name }).requestId({ meta: { device_id: name }, timeoutMs: 3000 });
        const had = holder.get(id);
        if (had !== undefined && had !== name) clashes.push(`${id}: ${had} and ${name}`);
        holder.set(id, name);
        answered++;
        return id;
      } catch {
        unanswered++;
        return null;
      }
    };
    const ons = links.map(devicesOn);
    const loops = ons.map(async (on, l) => {
      for (let i = 0; !stop; i++) {
        const name = `k${l}-${i}`;
        if ((await ask(on, name)) !== null) names.push(name);
      }
    });
    await until(() => answered >= 60, 'ids from the first allocator', 20_000, 5);
    const beforeKill = [...names];
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));

    const atKill = answered;
    const killedAt = Date.now();
    const second = new ClusterReceiver({ id: 'kb', nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema }, prefix, partitions: PARTITIONS, leaseTtlMs: ttlMs, ids });
    await second.start();
    env.defer(() => second.stop());
    await until(() => answered > atKill, 'the first id from the next owner of partition 0', 30_000, 20);
    const takeoverMs = Date.now() - killedAt;
    await until(() => answered >= atKill + 60, 'ids from the next owner of partition 0', 30_000, 20);
    stop = true;
    await Promise.all(loops);

    // Devices answered before the kill ask again: their own id if its lease was written before
    // the kill, else a new one; never one another device holds.
    let same = 0;
    for (const name of beforeKill.slice(0, 20)) {
      const old = [...holder].find(([, n]) => n === name)![0];
      // One more try for a slow answer on a loaded machine (no answer is a timeout, never a wrong id).
      const id = (await ask(ons[0]!, name)) ?? (await ask(ons[0]!, name));
      expect(id, `${name} asking again`).not.toBeNull();
      if (id === old) same++;
    }
    expect(clashes).toEqual([]);
    const st = (await second.status()).ids!;
    // Every id handed out, before the kill or after, is leased (or held as possibly sent).
    expect(st.leases).toBeGreaterThanOrEqual(holder.size);
    expect(st.leases + st.available).toBe(ids.end - ids.start + 1);
    console.log(JSON.stringify({ takeoverMs, answered, unanswered, beforeKill: beforeKill.length, ids: holder.size, sameAfterKill: same, leases: st.leases }));
  }, 90_000);

  it('one allocator per schema: a second waits for the first to close (its advisory lock), then loads its leases', async () => {
    const postgres = { connection: pgUrl, schema: 'ids_lock' };
    const first = await ClusterIds.open(env.db, postgres, { start: 1, end: 9 }, () => undefined);
    await expect(ClusterIds.open(env.db, postgres, { start: 1, end: 9 }, () => undefined)).rejects.toMatchObject({ code: 'ERR_CLUSTER_STATE' });
    expect(first.status()).toMatchObject({ leases: 0, available: 9 });
    await first.close();
    const second = await ClusterIds.open(env.db, postgres, { start: 1, end: 9 }, () => undefined);
    await second.close();
  });

  it('refuses ids options the allocator would refuse, when the receiver is made', () => {
    const bad = () => new ClusterReceiver({ id: 'ix', nats: { servers: ['nats://127.0.0.1:1'] }, postgres: { connection: pgUrl, schema: SCHEMA }, ids: { start: 10, end: 5 } });
    expect(bad).toThrow(expect.objectContaining({ code: 'ERR_CLUSTER_OPTION' }));
  });
});
