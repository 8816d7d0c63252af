import { Bench } from 'tinybench';

/**
 * Side-by-side micro-benchmarks. Each task runs `inner` operations per sample so that timer
 * overhead (tens of ns) does not swamp operations that take tens of ns; the reported figure is
 * the median sample divided by `inner` (and by `items` for batch calls, to give a per-item time).
 *
 * @param {string} title
 * @param {Array<{ name: string, inner: number, items?: number, impls: Record<string, () => void> }>} cases
 * @param {{ time?: number }} [options]
 */
export async function compare(title, cases, options = {}) {
  const bench = new Bench({ time: options.time ?? Number(process.env.BENCH_TIME_MS ?? 400), warmupTime: 100 });
  for (const c of cases) {
    for (const [impl, fn] of Object.entries(c.impls)) {
      bench.add(`${c.name}|${impl}`, () => {
        for (let i = 0; i < c.inner; i++) fn();
      });
    }
  }
  await bench.run();
  const rows = [];
  for (const c of cases) {
    const row = { operation: c.name };
    const ns = {};
    for (const impl of Object.keys(c.impls)) {
      const task = bench.getTask(`${c.name}|${impl}`);
      const median = task?.result?.latency?.p50;
      ns[impl] = median === undefined ? Number.NaN : (median * 1e6) / c.inner / (c.items ?? 1);
      row[`${impl} ns`] = ns[impl].toFixed(1);
      row[`${impl} /s`] = Math.round(1e9 / ns[impl]).toLocaleString('en-US');
    }
    const impls = Object.keys(ns);
    if (impls.length === 2) row[`${impls[0]}/${impls[1]} time`] = (ns[impls[0]] / ns[impls[1]]).toFixed(2);
    rows.push(row);
  }
  console.log(`\n${title} (medians; node ${process.version}, ${process.arch})`);
  console.table(rows);
  return rows;
}
