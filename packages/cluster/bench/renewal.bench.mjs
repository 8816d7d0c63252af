// The id allocator's renewal pass over `os_cluster_devices`, and what its paging costs the commits.
//
//   node bench/renewal.bench.mjs [devices=1000000] [touched=4096]
//
// `devices` device rows, all seen since the last pass (typical rates: every device sends within
// a minute). A pass reads them 4,096 at a time, paged three ways: on the primary key (aid order,
// `updated_ms` filtered; what the allocator does), on `(updated_ms, aid)` without an index (each
// page sorts the table again), and on `(updated_ms, aid)` with an index on those columns. Then
// the price of that index where it is paid: the devices upsert of one batch commit (`touched`
// devices, each row's `updated_ms` new) with and without it. Plain timings (medians), no assertions.
import { startPostgres } from '@opensynaptic/config/postgres';
import pg from 'pg';
import { ClusterDatabase } from '../dist/index.js';

const DEVICES = Number(process.argv[2] ?? 1_000_000);
const TOUCHED = Number(process.argv[3] ?? 4096);
const PAGE = 4096;
const SCHEMA = 'renewal';
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const server = await startPostgres({ fsync: true });
const db = await ClusterDatabase.open({ connection: server.url, schema: SCHEMA });
await db.close();
const c = new pg.Client({ connectionString: server.url });
await c.connect();
const t = `${SCHEMA}.os_cluster_devices`;
const now = Date.now();
await c.query(`INSERT INTO ${t} (aid, partition, ts_ms, msg_id, updated_ms)
  SELECT g, g % 12, ${now}, 'm' || g, ${now} - (g::bigint * 7919 % 60000) FROM generate_series(1, ${DEVICES}) g`);
await c.query(`VACUUM ANALYZE ${t}`);
const since = now - 120_000;

async function pass(byTime) {
  const t0 = performance.now();
  let n = 0;
  for (let ms = since - 1, aid = -1; ; ) {
    const r = byTime
      ? await c.query(`SELECT aid, updated_ms FROM ${t} WHERE (updated_ms, aid) > ($1, $2) ORDER BY updated_ms, aid LIMIT $3`, [ms, aid, PAGE])
      : await c.query(`SELECT aid FROM ${t} WHERE aid > $2 AND updated_ms >= $1 ORDER BY aid LIMIT $3`, [since, aid, PAGE]);
    n += r.rows.length;
    if (r.rows.length < PAGE) break;
    const last = r.rows[r.rows.length - 1];
    aid = Number(last.aid);
    if (byTime) ms = Number(last.updated_ms);
    // Without an index each page costs a scan of the table: a few pages tell the pass's cost.
    if (byTime === 'sample' && n >= PAGE * 5) return ((performance.now() - t0) / 5) * Math.ceil(DEVICES / PAGE);
  }
  if (n !== DEVICES) throw new Error(`the pass read ${n} of ${DEVICES} devices`);
  return performance.now() - t0;
}

async function commits(runs) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    const first = 1 + ((i * TOUCHED * 13) % (DEVICES - TOUCHED));
    const aids = Array.from({ length: TOUCHED }, (_, k) => first + k);
    const t0 = performance.now();
    await c.query('BEGIN');
    await c.query(
      `INSERT INTO ${t} (aid, partition, ts_ms, msg_id, updated_ms)
       SELECT u.*, $5::bigint FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[]) AS u ORDER BY 1
       ON CONFLICT (aid) DO UPDATE SET partition = excluded.partition, ts_ms = excluded.ts_ms, msg_id = excluded.msg_id, updated_ms = excluded.updated_ms`,
      [aids, aids.map((a) => a % 12), aids.map(() => now + i + 1), aids.map((a) => `n${i}-${a}`), now + i + 1],
    );
    await c.query('COMMIT');
    out.push(performance.now() - t0);
  }
  return median(out);
}

const rows = [];
rows.push({ measure: `renewal pass, ${DEVICES} devices, paged on aid (used)`, ms: Math.round(median([await pass(false), await pass(false), await pass(false)])) });
rows.push({ measure: 'renewal pass, paged on (updated_ms, aid), no index (5 pages, scaled)', ms: Math.round(await pass('sample')) });
const commitPlain = await commits(30);
await c.query(`CREATE INDEX renewal_seen ON ${t} (updated_ms, aid)`);
await c.query(`VACUUM ANALYZE ${t}`);
rows.push({ measure: 'renewal pass, paged on (updated_ms, aid), with its index', ms: Math.round(median([await pass(true), await pass(true), await pass(true)])) });
const commitIndexed = await commits(30);
rows.push({ measure: `devices upsert of one commit, ${TOUCHED} devices, no index on updated_ms (used)`, ms: Number(commitPlain.toFixed(1)) });
rows.push({ measure: `devices upsert of one commit, ${TOUCHED} devices, with the (updated_ms, aid) index`, ms: Number(commitIndexed.toFixed(1)) });
console.table(rows);
console.log(`the index costs each commit ${(commitIndexed / commitPlain).toFixed(2)}x the upsert time`);
await c.end();
server.stop();
