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
// until its state is durable). Plain timings (median of the runs given), no assertions.
import { NatsCluster } from '@opensynaptic/config/nats';
import { startPostgres } from '@opensynaptic/config/postgres';
import { OpenSynaptic } from '@opensynaptic/core';
import { createInProcessPair } from '@opensynaptic/transport';
import { ClusterDatabase, ClusterGateway, ClusterReceiver } from '../dist/index.js';

const FRAMES = Number(process.argv[2] ?? 24_000);
const DEVICES = Number(process.argv[3] ?? 200);
const PARTITIONS = 12;
const SENSORS = 2;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function publish(urls, prefix, replicas) {
  const [device, edge] = createInProcessPair();
  const gateway = new ClusterGateway({ id: 'bench', nats: { servers: urls }, transports: [edge], prefix, partitions: PARTITIONS, stream: { replicas, maxBytes: 256 << 20 } });
  await device.start();
  await gateway.start();
  const nodes = Array.from({ length: DEVICES }, (_, i) => new OpenSynaptic({ assignedId: 100 + i, deviceId: `b${i}` }));
  const t0 = performance.now();
  for (let k = 0; k < FRAMES / DEVICES; k++) {
    for (let i = 0; i < DEVICES; i++) await device.send(nodes[i].transmit([['T1', 'OK', (k + i) % 50, 'Cel'], ['H1', 'OK', k % 7, '%']]).frame);
  }
  while (gateway.status().queued > 0) await sleep(5);
  const ms = performance.now() - t0;
  const st = gateway.status();
  await gateway.stop();
  return { frames: st.acked, ms, perS: Math.round((st.acked / ms) * 1000) };
}

async function drain(urls, pg, prefix, schema, receivers, replicas) {
  const db = await ClusterDatabase.open({ connection: pg.url, schema });
  const rs = Array.from({ length: receivers }, (_, i) => new ClusterReceiver({ id: `rx${i}`, nats: { servers: urls }, postgres: { connection: pg.url, schema }, prefix, partitions: PARTITIONS, leaseTtlMs: 3000, stream: { replicas, maxBytes: 256 << 20 } }));
  await Promise.all(rs.map((r) => r.start()));
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
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
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

const pg = await startPostgres();
const results = [];
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
    } finally {
      await nats.close();
    }
  }
  const cost = await templateCost(pg);
  console.log(`\n${FRAMES} frames of ${DEVICES} devices, ${SENSORS} sensors each, ${PARTITIONS} partitions; node ${process.version}`);
  console.table(results);
  console.log(`template change: commit of one reading ${cost.withoutMs.toFixed(2)} ms, with one template record ${cost.withMs.toFixed(2)} ms (marginal ${cost.marginalMs.toFixed(2)} ms, medians of 300)`);
} finally {
  pg.stop();
}
