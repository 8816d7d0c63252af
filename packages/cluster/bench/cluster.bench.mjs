// Throughput of the cluster on this machine, and the cost of a template change.
//
//   node bench/cluster.bench.mjs [frames=24000] [devices=200]
//
// For one NATS node and for a three-node JetStream cluster (replicas 3): the gateway publishes
// `frames` frames of `devices` devices (FULL first, then DIFF) to the stream (publish rate), then
// one receiver drains them into PostgreSQL (readings/s per receiver), then three receivers in
// this process drain another stream of the same size (readings/s with three). Last, the cost
// of a template change: the median commit of one frame's readings without and with one template
// record (the marginal cost), and the receiver's own figure (a FULL that changed a template
// until its state is durable). Then the cost of sessions, on one NATS node: `devices`
// authenticated devices each ask for a session (AUTH_HELLO through the gateway to the
// partition's owner, its session committed, the WELCOME back: the round trip's median), then
// their sealed frames drain through one receiver (readings/s and batch commit, whose commits now
// carry each touched device's replay window), and the marginal cost of one session record in a
// commit. Last, ids assigned by the cluster: `devices` devices ask the one allocator (the owner of
// partition 0) for an id through the gateway, one after the other (the round trip's median).
// Plain timings (median of the runs given), no assertions.
import { NatsCluster } from '@opensynaptic/config/nats';
import { startPostgres } from '@opensynaptic/config/postgres';
import { OpenSynaptic } from '@opensynaptic/core';
import { AuthServer } from '@opensynaptic/handshake';
import { openPostgresStore } from '@opensynaptic/store-postgres';
import { createInProcessPair } from '@opensynaptic/transport';
import { ClusterDatabase, ClusterGateway, ClusterReceiver } from '../dist/index.js';

const FRAMES = Number(process.argv[2] ?? 24_000);
const DEVICES = Number(process.argv[3] ?? 200);
const PARTITIONS = 12;
const SENSORS = 2;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const SECRET = new Uint8Array(32).fill(7);

async function publish(urls, prefix, replicas, auth = null) {
  const [device, edge] = createInProcessPair();
  const gateway = new ClusterGateway({ id: 'bench', nats: { servers: urls }, transports: [edge], prefix, partitions: PARTITIONS, stream: { replicas, maxBytes: 256 << 20 } });
  await device.start();
  await gateway.start();
  const options = (i) => ({ assignedId: 100 + i, deviceId: `b${i}`, ...(auth === null ? {} : { auth: { secret: SECRET, mode: 'require' }, send: (p) => device.send(p) }) });
  const nodes = Array.from({ length: DEVICES }, (_, i) => new OpenSynaptic(options(i)));
  const helloMs = [];
  if (auth !== null) {
    // Answers reach every device node; each takes only its own.
    void (async () => {
      for await (const batch of device.batches()) for (const inbound of batch) for (const n of nodes) n.receive(inbound.frame);
    })();
    for (const n of nodes) {
      const t = performance.now();
      if ((await n.authenticate({ timeoutMs: 5000 })) !== 'authenticated') throw new Error('a device did not authenticate');
      helloMs.push(performance.now() - t);
    }
    await auth.afterHellos();
  }
  const t0 = performance.now();
  for (let k = 0; k < FRAMES / DEVICES; k++) {
    for (let i = 0; i < DEVICES; i++) await device.send(nodes[i].transmit([['T1', 'OK', (k + i) % 50, 'Cel'], ['H1', 'OK', k % 7, '%']]).frame);
  }
  while (gateway.status().queued > 0) await sleep(5);
  const ms = performance.now() - t0;
  const st = gateway.status();
  await gateway.stop();
  await device.destroy();
  return { frames: st.acked, ms, perS: Math.round((st.acked / ms) * 1000), helloMs: helloMs.length > 0 ? median(helloMs) : null };
}

function receiversOf(urls, pg, prefix, schema, receivers, replicas, auth) {
  const node = auth ? { node: { handshake: { auth: { server: {} } } } } : {};
  return Array.from({ length: receivers }, (_, i) => new ClusterReceiver({ id: `rx${i}`, nats: { servers: urls }, postgres: { connection: pg.url, schema }, prefix, partitions: PARTITIONS, leaseTtlMs: 3000, stream: { replicas, maxBytes: 256 << 20 }, ...node }));
}

async function drain(urls, pg, prefix, schema, receivers, replicas, started = null) {
  const db = await ClusterDatabase.open({ connection: pg.url, schema });
  const rs = started ?? receiversOf(urls, pg, prefix, schema, receivers, replicas, false);
  if (started === null) await Promise.all(rs.map((r) => r.start()));
  // From the first round's claims on (the join delay before it is not the receivers' speed).
  const t0 = performance.now();
  const want = FRAMES * SENSORS;
  for (;;) {
    const [{ n }] = await db.query('SELECT count(*)::bigint AS n FROM $schema.os_cluster_readings');
    if (Number(n) >= want) break;
    await sleep(50);
  }
  const ms = performance.now() - t0;
  const status = await Promise.all(rs.map((r) => r.status()));
  await Promise.all(rs.map((r) => r.stop()));
  await db.close();
  return { readings: want, ms, perS: Math.round((want / ms) * 1000), templateCommitMs: status.map((s) => s.templateCommitMs.median), commitMs: status.map((s) => s.commitMs.median) };
}

async function templateCost(pg) {
  const db = await ClusterDatabase.open({ connection: pg.url, schema: 'bench_tpl' });
  const row = (id) => ({ msgId: id, index: 0, streamSeq: 1, partition: 0, aid: 7, deviceId: 'd', strategy: 'FULL', sensorId: 's', state: 'OK', value: 1, unit: 'K', timestampMs: 1, receivedAtMs: 1 });
  const record = (k) => ({ aid: 7, templates: [[1, `{aid};d.ONLINE.{ts}|s>OK.K:{v}|${k}`, ['OK.K', String(k)]]] });
  const without = [];
  const withTpl = [];
  for (let i = 0; i < 300; i++) {
    let t = performance.now();
    await db.commit([row(`a${i}`)], [], 'bench');
    without.push(performance.now() - t);
    t = performance.now();
    await db.commit([row(`b${i}`)], [{ key: '7', record: record(i) }], 'bench');
    withTpl.push(performance.now() - t);
  }
  await db.close();
  return { withoutMs: median(without), withMs: median(withTpl), marginalMs: median(withTpl) - median(without) };
}

/** The marginal cost of one session record (an authenticated device's, as stored) in a commit of one reading. */
async function sessionCost(pg, schema) {
  const db = await ClusterDatabase.open({ connection: pg.url, schema });
  const [{ value }] = await db.query("SELECT value FROM $schema.os_cluster_sessions WHERE kind = 'auth' LIMIT 1");
  const session = JSON.parse(value);
  const row = (id) => ({ msgId: id, index: 0, streamSeq: 1, partition: 0, aid: 7, deviceId: 'd', strategy: 'DIFF', sensorId: 's', state: 'OK', value: 1, unit: 'K', timestampMs: 1, receivedAtMs: 1 });
  const without = [];
  const withSession = [];
  for (let i = 0; i < 300; i++) {
    let t = performance.now();
    await db.commit([row(`sa${i}`)], [], 'bench');
    without.push(performance.now() - t);
    t = performance.now();
    await db.commit([row(`sb${i}`)], [], 'bench', [], [{ kind: 'auth', aid: 7, partition: 0, record: session }]);
    withSession.push(performance.now() - t);
  }
  await db.close();
  return { bytes: value.length, withoutMs: median(without), withMs: median(withSession), marginalMs: median(withSession) - median(without) };
}

/** Sessions on one NATS node: HELLOs, then sealed frames through one receiver. */
async function authRun(urls, pg) {
  const schema = 'bench_auth';
  const store = await openPostgresStore({ connection: pg.url, schema, kinds: ['keys', 'auth'] });
  const admin = new AuthServer({ store });
  await admin.load(Date.now());
  for (let i = 0; i < DEVICES; i++) admin.setKey(100 + i, 0, SECRET);
  await admin.flush(Date.now());
  await store.close();
  const hellos = receiversOf(urls, pg, 'bauth', schema, 1, 1, true)[0];
  await hellos.start();
  while ((await hellos.status()).partitions.filter((p) => p.state === 'consuming').length < PARTITIONS) await sleep(20);
  // The receiver that answered the HELLOs stops before the frames: the one that drains them
  // loads the sessions from PostgreSQL (a takeover), like the plain drain loads templates.
  const pub = await publish(urls, 'bauth', 1, { afterHellos: () => hellos.stop() });
  const rs = receiversOf(urls, pg, 'bauth', schema, 1, 1, true);
  await rs[0].start();
  const one = await drain(urls, pg, 'bauth', schema, 1, 1, rs);
  const cost = await sessionCost(pg, schema);
  return { pub, one, cost };
}

/** Ids from the cluster's allocator: the ID_REQUEST → ID_ASSIGN round trip through the gateway. */
async function idsRun(urls, pg) {
  const rx = new ClusterReceiver({ id: 'rx-ids', nats: { servers: urls }, postgres: { connection: pg.url, schema: 'bench_ids' }, prefix: 'bids', partitions: PARTITIONS, leaseTtlMs: 3000, ids: { start: 1000, end: 100_000 } });
  await rx.start();
  // The allocator opens apart from partition 0's frames: wait for it too, or the first request
  // finds no responder and the gateway's own node refuses it (NO_ALLOCATOR).
  while ((await rx.status()).partitions.filter((p) => p.state === 'consuming').length < PARTITIONS || (await rx.status()).ids === null) await sleep(20);
  const [device, edge] = createInProcessPair();
  const gateway = new ClusterGateway({ id: 'bench-ids', nats: { servers: urls }, transports: [edge], prefix: 'bids', partitions: PARTITIONS });
  await device.start();
  await gateway.start();
  let current = null;
  void (async () => {
    for await (const batch of device.batches()) for (const inbound of batch) current?.receive(inbound.frame);
  })();
  const ms = [];
  for (let i = 0; i < DEVICES; i++) {
    current = new OpenSynaptic({ deviceId: `id-${i}`, send: (p) => device.send(p) });
    const t = performance.now();
    await current.requestId({ meta: { device_id: `id-${i}` }, timeoutMs: 5000 });
    ms.push(performance.now() - t);
  }
  await gateway.stop();
  await device.destroy();
  await rx.stop();
  return { medianMs: median(ms), maxMs: Math.max(...ms) };
}

const pg = await startPostgres();
const results = [];
let auth = null;
let ids = null;
try {
  for (const nodes of [1, 3]) {
    const nats = await NatsCluster.start({ nodes });
    try {
      const replicas = nodes;
      const pub = await publish(nats.urls, `b${nodes}a`, replicas);
      const one = await drain(nats.urls, pg, `b${nodes}a`, `bench_${nodes}_one`, 1, replicas);
      await publish(nats.urls, `b${nodes}b`, replicas);
      const three = await drain(nats.urls, pg, `b${nodes}b`, `bench_${nodes}_three`, 3, replicas);
      results.push({ nats: `${nodes} node${nodes > 1 ? 's, R3' : ''}`, 'gateway frames/s': pub.perS, '1 receiver readings/s': one.perS, '3 receivers readings/s': three.perS, 'batch commit ms (1 rx)': one.commitMs[0], 'FULL→durable ms (1 rx)': one.templateCommitMs[0] });
      if (nodes === 1) {
        auth = await authRun(nats.urls, pg);
        ids = await idsRun(nats.urls, pg);
      }
    } finally {
      await nats.close();
    }
  }
  const cost = await templateCost(pg);
  console.log(`\n${FRAMES} frames of ${DEVICES} devices, ${SENSORS} sensors each, ${PARTITIONS} partitions; node ${process.version}`);
  console.table(results);
  console.log(`template change: commit of one reading ${cost.withoutMs.toFixed(2)} ms, with one template record ${cost.withMs.toFixed(2)} ms (marginal ${cost.marginalMs.toFixed(2)} ms, medians of 300)`);
  if (auth !== null) {
    const { pub, one, cost: sc } = auth;
    console.log(`authenticated devices (1 NATS node): HELLO→WELCOME through gateway and owner ${pub.helloMs.toFixed(1)} ms (median of ${DEVICES}); gateway ${pub.perS} frames/s; 1 receiver ${one.perS} readings/s, batch commit ${one.commitMs[0]} ms`);
    console.log(`ids from the cluster's allocator (1 NATS node): ID_REQUEST→ID_ASSIGN through gateway and allocator ${ids.medianMs.toFixed(1)} ms (median of ${DEVICES}, max ${ids.maxMs.toFixed(1)})`);
    console.log(`session change: commit of one reading ${sc.withoutMs.toFixed(2)} ms, with one authenticated session record (${sc.bytes} bytes of JSON) ${sc.withMs.toFixed(2)} ms (marginal ${sc.marginalMs.toFixed(2)} ms, medians of 300)`);
  }
} finally {
  pg.stop();
}
