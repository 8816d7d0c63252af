// The readings sink bench shared by the SQLite and PostgreSQL packages: for each batch size, a
// writer pushes one-sensor frames as fast as the sink takes them (so the buffer stays full and
// every transaction holds `batchSize` readings) for `seconds`, then flushes. Reported per case:
// readings committed per second, p50/p99 of write-to-commit latency per reading (from the
// `write` call to the `onCommit` of its batch; with a buffer of four batches, so queueing is
// part of it as it would be under load), and this process's CPU per reading.
import { performance } from 'node:perf_hooks';

function quantile(sorted, q) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Runs the cases and prints a table. `cases`: `[{ name, batchSize, open(options) }]`; `open`
 * gets the buffering options and returns a fresh sink. Resolves to the rows.
 */
export async function benchSink(title, cases, { seconds = Number(process.env.BENCH_SECONDS ?? 4) } = {}) {
  const rows = [];
  for (const c of cases) {
    const sent = [];
    const latencies = [];
    let settled = 0;
    const sink = await c.open({
      batchSize: c.batchSize,
      maxBuffered: Math.max(4 * c.batchSize, 4),
      flushIntervalMs: 5,
      onCommit: (e) => {
        const now = performance.now();
        for (; settled < e.throughSeq; settled++) latencies.push(now - sent[settled]);
      },
    });
    const chunk = Math.min(100, c.batchSize);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const end = t0 + seconds * 1000;
    let n = 0;
    while (performance.now() < end) {
      const frames = [];
      const at = performance.now();
      for (let j = 0; j < chunk; j++, n++) {
        frames.push({
          aid: n % 100,
          deviceId: `bench-${n % 100}`,
          strategy: n % 10 === 0 ? 'FULL' : 'DIFF',
          timestampMs: 1_700_000_000_000 + n,
          receivedAtMs: 1_700_000_000_000 + n,
          sensors: [{ id: 't1', state: 'U', value: 20 + (n % 1000) / 100, unit: 'Cel' }],
        });
        sent.push(at);
      }
      await sink.write(frames);
    }
    await sink.flush();
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const st = await sink.status();
    await sink.close();
    if (st.committed !== n || st.lost !== 0) throw new Error(`${c.name}: committed ${st.committed} of ${n} readings, lost ${st.lost}`);
    latencies.sort((a, b) => a - b);
    rows.push({
      case: c.name,
      batch: c.batchSize,
      'readings/s': Math.round(n / elapsed).toLocaleString('en-US'),
      'p50 ms': quantile(latencies, 0.5).toFixed(2),
      'p99 ms': quantile(latencies, 0.99).toFixed(2),
      'CPU µs/reading': (((cpu.user + cpu.system) / n)).toFixed(1),
      readings: n.toLocaleString('en-US'),
      batches: st.batches,
    });
  }
  console.log(`\n${title}`);
  console.table(rows);
  return rows;
}
