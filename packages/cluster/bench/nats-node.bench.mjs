// What one NATS node takes, apart from our gateway's ordering: JetStream publishes of frame-sized
// messages (22 B, the median DIFF, with a message-id header like the gateway's) with many in
// flight, PubAcked messages/s, on one node (replicas 1) and on a three-node cluster (replicas 3);
// and the bytes the stream keeps per message (its state's bytes / messages), for the sizing in
// the README; and the CPU the nats-server processes spent per message (/proc), from which what
// one node would take on a core of its own. `node bench/nats-node.bench.mjs [messages=100000] [inflight=2048]`.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { NatsCluster } from '@opensynaptic/config/nats';
import { connect, headers, RetentionPolicy, StorageType } from 'nats';

const MESSAGES = Number(process.argv[2] ?? 100_000);
const INFLIGHT = Number(process.argv[3] ?? 2048);
const PARTITIONS = 64;
const payload = new Uint8Array(22).map((_, i) => i * 7);
const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds (user + system) of every running nats-server process. */
function natsCpuSeconds() {
  let pids = [];
  try {
    pids = execFileSync('pgrep', ['-x', 'nats-server'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return 0;
  }
  let ticks = 0;
  for (const pid of pids) {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // the process ended
    }
  }
  return ticks / TICK;
}

async function run(nodes, replicas) {
  const cluster = await NatsCluster.start({ nodes });
  try {
    const nc = await connect({ servers: cluster.urls });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'BENCH', subjects: ['os.frames.*'], num_replicas: replicas, storage: StorageType.File, retention: RetentionPolicy.Limits, duplicate_window: 120_000_000_000 });
    const js = nc.jetstream();
    const pending = new Set();
    const cpu0 = natsCpuSeconds();
    const t0 = performance.now();
    for (let i = 0; i < MESSAGES; i++) {
      const h = headers();
      h.set('Nats-Msg-Id', `gw-1-lx2k9q-${i}`);
      h.set('OS-Peer', 'udp:10.0.0.7:40123');
      const p = js.publish(`os.frames.${i % PARTITIONS}`, payload, { headers: h }).then(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= INFLIGHT) await Promise.race(pending);
    }
    await Promise.all(pending);
    const ms = performance.now() - t0;
    const cpu = natsCpuSeconds() - cpu0;
    const info = await jsm.streams.info('BENCH');
    await nc.close();
    // Each node of a replicated stream handles every message: CPU per message per node.
    return { nodes, replicas, perS: Math.round((MESSAGES / ms) * 1000), bytesPerMessage: info.state.bytes / info.state.messages, messages: info.state.messages, cpuUsPerNode: (cpu * 1e6) / MESSAGES / nodes };
  } finally {
    await cluster.close();
  }
}

const rows = [];
for (const [nodes, replicas] of [
  [1, 1],
  [3, 3],
]) {
  const runs = [];
  for (let k = 0; k < 3; k++) runs.push(await run(nodes, replicas));
  runs.sort((a, b) => a.perS - b.perS);
  const m = runs[1];
  rows.push({ 'NATS nodes': nodes, replicas, 'PubAcked messages/s (median of 3)': m.perS.toLocaleString('en-US'), 'runs': runs.map((r) => r.perS).join(' / '), 'stream bytes per message': m.bytesPerMessage.toFixed(1), 'nats-server CPU µs a message, per node': m.cpuUsPerNode.toFixed(1), 'one node on a core of its own, messages/s': Math.round(1e6 / m.cpuUsPerNode).toLocaleString('en-US'), stored: m.messages });
}
console.log(`nats-node bench: node ${process.version}, ${MESSAGES.toLocaleString('en-US')} messages of ${payload.length} B over ${PARTITIONS} subjects, ${INFLIGHT} in flight`);
console.table(rows);
