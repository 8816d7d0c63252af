// Secure and authenticated sessions across a takeover, on one nats-server and PostgreSQL: a
// device with a pre-shared secret (in the cluster's key store) authenticates through the
// gateway, whose AUTH_HELLO the partition's owner answers; its sealed frames are stored; the
// owner stops and the next receiver decodes the device's next AUTH_DIFFs with the session it
// loaded, without a new HELLO, and refuses a frame the first one already took (the replay
// window came with the batches). A legacy device gets SECURE_DICT_READY through the reply path
// and its encrypted DIFFs decode after the takeover too.
import { AUTH_DIFF, DATA_DIFF_SEC } from '@opensynaptic/cmd';
import { until } from '@opensynaptic/config/until';
import { type AuthKinds, AuthServer } from '@opensynaptic/handshake';
import { openPostgresStore } from '@opensynaptic/store-postgres';
import { createInProcessPair } from '@opensynaptic/transport';
import { connect, headers } from 'nats';
import { beforeAll, describe, expect, it } from 'vitest';
import { consuming, devicesOn } from './fixtures/devices.js';
import { ClusterGateway, ClusterReceiver, framesSubject, sourceAid } from '../src/index.js';
import { clusterEnv } from './fixtures/cluster-env.js';
import { partitionOf } from '@opensynaptic/server';

const SCHEMA = 'sessions';
const env = clusterEnv(SCHEMA);
const { pgUrl, unavailable } = env;
const PARTITIONS = 2;
const PREFIX = 'ss';
const SECRET = new Uint8Array(32).map((_, i) => (i * 53 + 7) & 0xff);
const AUTH_AID = 7001;
const LEGACY_AID = 7002;
const STRANGER_AID = 7003;

beforeAll(async () => {
  if (unavailable) return;
  await addSecret(AUTH_AID);
});

/** Puts `aid`'s secret into the cluster's key store, as `os-node keys add` does. */
async function addSecret(aid: number): Promise<void> {
  const store = await openPostgresStore<AuthKinds>({ connection: pgUrl, schema: SCHEMA, kinds: ['keys', 'auth'] });
  try {
    const admin = new AuthServer({ store });
    await admin.load(Date.now());
    admin.setKey(aid, 0, SECRET);
    await admin.flush(Date.now());
  } finally {
    await store.close();
  }
}

const receiver = (id: string) =>
  new ClusterReceiver({ id, nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema: SCHEMA }, prefix: PREFIX, partitions: PARTITIONS, leaseTtlMs: 60_000, node: { handshake: { auth: { server: {} } } } });

/** T1 of `aid` in °C as stored (kelvin), by stream order, with the receiver and strategy. */
async function stored(aid: number): Promise<{ value: number; receiver: string; strategy: string }[]> {
  const rows = await env.db.query<{ value: number; receiver: string; strategy: string }>("SELECT value, receiver, strategy FROM $schema.os_cluster_readings WHERE aid = $1 AND sensor_id = 'T1' ORDER BY stream_seq", [aid]);
  return rows.map((r) => ({ value: Math.round((Number(r.value) - 273.15) * 100) / 100, receiver: r.receiver, strategy: r.strategy }));
}

describe.skipIf(unavailable !== '')('sessions that survive a takeover', () => {
  it('an authenticated device keeps its session and replay window across a takeover; a legacy secure device keeps its key', async () => {
    const [devLink, edge] = createInProcessPair();
    await devLink.start();
    const gateway = new ClusterGateway({ id: 'gs', nats: { servers: env.nats.urls }, transports: [edge], prefix: PREFIX, partitions: PARTITIONS });
    await gateway.start();
    env.defer(() => gateway.stop(), () => devLink.destroy());
    const a = receiver('sa');
    await a.start();
    env.defer(() => a.stop());
    await consuming(a, PARTITIONS);

    const clock = { now: 1_760_000_000_000 };
    const on = devicesOn(devLink);
    const device = (options: Parameters<typeof on>[0]) => on({ ...options, clock: () => clock.now });
    const authed = device({ assignedId: AUTH_AID, deviceId: 'auth-dev', auth: { secret: SECRET, mode: 'require' } });
    // The partition's owner answers the HELLO, through the gateway's request.
    const t0 = performance.now();
    expect(await authed.authenticate({ timeoutMs: 3000 })).toBe('authenticated');
    const helloMs = performance.now() - t0;
    expect(gateway.status().hellos).toBe(1);
    const legacy = device({ assignedId: LEGACY_AID, deviceId: 'legacy-dev' });

    const sent: Uint8Array[] = [];
    const send = async (i: number) => {
      clock.now += 1000;
      const a1 = authed.transmit([['T1', 'OK', 20 + i, 'Cel']]);
      expect(a1.authenticated).toBe(true);
      sent.push(a1.frame);
      await devLink.send(a1.frame);
      await devLink.send(legacy.transmit([['T1', 'OK', 40 + i, 'Cel']]).frame);
    };
    for (let i = 0; i < 6; i++) {
      await send(i);
      // One frame after the other reaches the owner: the legacy device's SECURE_DICT_READY
      // comes back after its first FULL is committed.
      await until(async () => (await stored(LEGACY_AID)).length === i + 1, `frame ${i} to be stored`, 10_000, 20);
    }
    expect(sent.some((f) => f[0] === AUTH_DIFF)).toBe(true);
    // The legacy device's session went secure on the receiver's answer.
    await until(() => gateway.status().replies >= 1, 'SECURE_DICT_READY to reach the device', 10_000, 20);
    clock.now += 1000;
    const sec = legacy.transmit([['T1', 'OK', 46, 'Cel']]);
    expect(sec.secure).toBe(true);
    await devLink.send(sec.frame);
    await until(async () => (await stored(LEGACY_AID)).length === 7, 'the first secure frame to be stored', 10_000, 20);
    expect((await stored(AUTH_AID)).map((r) => r.value)).toEqual([20, 21, 22, 23, 24, 25]);
    const aStatus = await a.status();
    expect(aStatus.totals.hellos).toBe(1);
    expect(aStatus.totals.errors).toBe(0);
    await a.stop();

    const b = receiver('sb');
    await b.start();
    env.defer(() => b.stop());
    await consuming(b, PARTITIONS);
    const loaded = (await b.status()).partitions;
    const authPart = loaded.find((p) => p.partition === partitionOf(AUTH_AID, PARTITIONS))!;
    const legacyPart = loaded.find((p) => p.partition === partitionOf(LEGACY_AID, PARTITIONS))!;
    expect(authPart.sessionsLoaded.auth).toBeGreaterThanOrEqual(1);
    expect(legacyPart.sessionsLoaded.secure).toBeGreaterThanOrEqual(1);

    // The last sealed frame A stored, again under a new message id (what a second gateway or an
    // attacker on the stream would publish), before B has seen any frame of the device: only
    // the replay window A committed with its batches can refuse it.
    const replayed = sent[5]!;
    const replayer = await connect({ servers: env.nats.urls });
    try {
      const h = headers();
      h.set('Os-Gateway', 'gs');
      await replayer.jetstream().publish(framesSubject(PREFIX, partitionOf(sourceAid(replayed)!, PARTITIONS)), replayed, { msgID: 'replayed-1', headers: h });
    } finally {
      await replayer.close();
    }
    await until(async () => ((await b.status()).partitions.find((p) => p.partition === authPart.partition)!.ignored.ERR_AUTH_REPLAY ?? 0) === 1, 'the replay to be refused', 10_000, 20);
    expect((await stored(AUTH_AID)).length).toBe(6);

    // The next sealed DIFFs decode at the new owner with the loaded session: no new HELLO.
    for (let i = 6; i < 9; i++) {
      clock.now += 1000;
      const f = authed.transmit([['T1', 'OK', 20 + i, 'Cel']]);
      expect(f.authenticated).toBe(true);
      sent.push(f.frame);
      await devLink.send(f.frame);
      const s = legacy.transmit([['T1', 'OK', 50 + i, 'Cel']]);
      expect(s.frame[0]).toBe(DATA_DIFF_SEC);
      await devLink.send(s.frame);
    }
    await until(async () => (await stored(AUTH_AID)).length === 9 && (await stored(LEGACY_AID)).length === 10, 'the DIFFs after the takeover', 10_000, 20);
    const authRows = await stored(AUTH_AID);
    expect(authRows.map((r) => r.value)).toEqual([20, 21, 22, 23, 24, 25, 26, 27, 28]);
    expect(authRows.slice(6).every((r) => r.receiver === 'sb' && r.strategy === 'DIFF')).toBe(true);
    expect((await stored(LEGACY_AID)).slice(7).map((r) => [r.value, r.receiver])).toEqual([
      [56, 'sb'],
      [57, 'sb'],
      [58, 'sb'],
    ]);
    expect(gateway.status().hellos).toBe(1);

    expect((await stored(AUTH_AID)).length).toBe(9);
    const bStatus = await b.status();
    expect(bStatus.totals.ignored).toBe(1);
    expect(bStatus.totals.errors).toBe(0);
    expect(bStatus.totals.hellos).toBe(0);

    // A device whose secret is not in the key store: the owner refuses it (AUTH_REJECT back
    // through the gateway, not a timeout). Its secret added now is used at its next HELLO.
    const stranger = device({ assignedId: STRANGER_AID, deviceId: 'stranger', auth: { secret: SECRET, mode: 'require' } });
    const refused = await stranger.authenticate({ timeoutMs: 3000 }).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(refused?.code).toBe('ERR_AUTH_REJECTED');
    expect(refused?.message).not.toContain('no AUTH_WELCOME');
    await addSecret(STRANGER_AID);
    expect(await stranger.authenticate({ timeoutMs: 3000 })).toBe('authenticated');
    expect((await b.status()).totals.hellos).toBe(2);
    console.log(`HELLO round trip through the gateway and a durable commit: ${helloMs.toFixed(1)} ms`);
  });
});
