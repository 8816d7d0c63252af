// Leases in NATS KV against a real nats-server: claim, compare-and-set renewal, expiry after the
// TTL (a receiver that died), release, membership.
import { NatsCluster } from '@opensynaptic/config/nats';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PartitionLeases } from '../src/index.js';

const TTL = 1500;
let nats: NatsCluster;
let nc: NatsConnection;
let a: PartitionLeases;
let b: PartitionLeases;

beforeAll(async () => {
  nats = await NatsCluster.start({ nodes: 1 });
  nc = await connect({ servers: nats.urls });
  const kv = await nc.jetstream().views.kv('lease_test', { ttl: TTL, history: 1 });
  a = new PartitionLeases(kv, 'a');
  b = new PartitionLeases(kv, 'b');
});
afterAll(async () => {
  await nc?.close();
  await nats?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('partition leases (NATS KV, one nats-server)', () => {
  it('one claim wins; renewal is a compare-and-set on the revision', async () => {
    const rev = await a.claim(0);
    expect(rev).toBeGreaterThan(0);
    expect(await b.claim(0)).toBeNull();
    expect((await b.holder(0))?.owner).toBe('a');
    const rev2 = await a.renew(0, rev!);
    expect(rev2).toBeGreaterThan(rev!);
    // A stale revision of another receiver renews nothing; the owner's own (a renewal whose
    // answer it lost) is taken at the key's revision.
    expect(await b.renew(0, rev!)).toBeNull();
    expect((await b.holder(0))?.revision).toBe(rev2);
    const rev3 = await a.renew(0, rev!);
    expect(rev3).toBeGreaterThan(rev2!);
    expect(await a.release(0, rev2!)).toBe(false);
    expect(await a.release(0, rev3!)).toBe(true);
    expect(await b.claim(0)).toBeGreaterThan(0);
  });

  it('a receiver takes back its own live lease (after it stopped renewing) but never another’s', async () => {
    const rev = await a.claim(2);
    const again = await a.claim(2);
    expect(again).toBeGreaterThan(rev!);
    expect(await b.claim(2)).toBeNull();
    expect((await b.holder(2))?.owner).toBe('a');
    expect(await a.release(2, again!)).toBe(true);
  });

  it('a lease that is not renewed expires after the TTL and another receiver takes it', async () => {
    const rev = await a.claim(1);
    expect(rev).not.toBeNull();
    expect(await b.claim(1)).toBeNull();
    await sleep(TTL / 2);
    // Renewed: alive past its first TTL.
    const rev2 = await a.renew(1, rev!);
    await sleep(TTL * 0.75);
    expect(await b.claim(1)).toBeNull();
    // Then a dies: no renewal for longer than the TTL.
    await sleep(TTL + 500);
    expect(await a.holder(1)).toBeNull();
    const taken = await b.claim(1);
    expect(taken).not.toBeNull();
    // The dead one's renewal, if it came back, is refused.
    expect(await a.renew(1, rev2!)).toBeNull();
    expect((await a.holder(1))?.owner).toBe('b');
  });

  it('membership keys: heartbeats make members, a leave or the TTL removes them', async () => {
    await a.heartbeat();
    await b.heartbeat();
    expect(await a.members()).toEqual(['a', 'b']);
    await b.leave();
    expect(await a.members()).toEqual(['a']);
    await sleep(TTL + 500);
    expect(await a.members()).toEqual([]);
  });
});
