/**
 * The readings sink on PostgreSQL: the SQLite sink's tables (`os_readings`, `os_devices`,
 * `os_meta`) in the options' schema, plus `os_sink_batches`, the ids of committed batches.
 * Each batch of the buffering core is one transaction: its id, its readings (one
 * `INSERT ... SELECT FROM unnest(...)` of column arrays, so a batch is one statement whatever
 * its size), its device rows and the last-write time. The id makes a retry safe when a commit
 * landed but its answer was lost (connection cut after COMMIT): the retry finds the id and
 * commits nothing twice.
 */
import {
  BufferedReadingsSink,
  type CheckedDeviceQuery,
  type CheckedReadingQuery,
  type DeviceRow,
  type DeviceSummary,
  deviceFromRow,
  type Reading,
  type ReadingRow,
  type ReadingsBackend,
  readingFromRow,
  type ReadingsBatch,
  type ReadingsSinkOptions,
  packReadings,
  type StoreDurability,
  type StoredStatus,
} from '@opensynaptic/store';
import { ensureSchema, inTransaction, openPool, type PostgresOptions, type PostgresPool, storeError } from './database.js';

/** Options of {@link openPostgresReadingsSink}: the server's and the buffering core's. */
export interface PostgresReadingsSinkOptions extends PostgresOptions, ReadingsSinkOptions {}

const READINGS_DDL = `
CREATE TABLE IF NOT EXISTS $schema.os_readings (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  aid bigint NOT NULL,
  device_id text NOT NULL,
  sensor_id text NOT NULL,
  state text NOT NULL,
  value double precision NOT NULL,
  unit text NOT NULL,
  ts_ms bigint NOT NULL,
  received_ms bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS os_readings_device ON $schema.os_readings (aid, sensor_id, ts_ms);
CREATE INDEX IF NOT EXISTS os_readings_time ON $schema.os_readings (ts_ms);
CREATE TABLE IF NOT EXISTS $schema.os_devices (
  aid bigint NOT NULL,
  device_id text NOT NULL,
  first_seen_ms bigint NOT NULL,
  last_seen_ms bigint NOT NULL,
  templates bigint,
  full_frames bigint NOT NULL,
  diff_frames bigint NOT NULL,
  heart_frames bigint NOT NULL,
  readings bigint NOT NULL,
  PRIMARY KEY (aid, device_id)
);
CREATE TABLE IF NOT EXISTS $schema.os_sink_batches (id text PRIMARY KEY, committed_ms bigint NOT NULL);
`;

/** Readings per transaction by default (`batchSize`). */
export const POSTGRES_BATCH_SIZE = 4096;

/** How long ids of committed batches are kept (a retry comes within seconds): one day. */
const BATCH_ID_KEEP_MS = 86_400_000;

/** A PostgreSQL array literal of finite numbers (the shortest text that reads back to the same double). */
function numbers(a: readonly number[]): string {
  return `{${a.join(',')}}`;
}

/** A PostgreSQL array literal of texts: each quoted, `"` and `\\` escaped (the texts hold no NUL). */
function textArray(a: readonly string[]): string {
  let out = '{';
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    out += `${i === 0 ? '' : ','}"${/["\\]/.test(x) ? x.replace(/["\\]/g, '\\$&') : x}"`;
  }
  return `${out}}`;
}

class PostgresReadingsBackend implements ReadingsBackend {
  readonly name = 'postgres';
  /** The core packs what it accepts (see `PackedReadings`): the buffer holds numbers, not objects, while batches wait their turn. */
  readonly packed = true;
  readonly durability: StoreDurability = 'power';
  readonly location: string;
  readonly #p: PostgresPool;
  readonly #insertReadings: string;
  readonly #upsertDevices: string;
  #commits = 0;

  constructor(p: PostgresPool) {
    this.#p = p;
    this.location = p.location;
    const s = p.schema;
    // The readings as numeric column arrays, their texts as 1-based indexes into one text array
    // ($9): a batch repeats a few device ids, sensor ids, states and units, and array literals of
    // numbers are cheap to build here and to parse there (pg's own array encoding of every text
    // value cost about 4 µs per reading on the caller's thread).
    this.#insertReadings = `INSERT INTO ${s}.os_readings (aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms)
      SELECT x.a, t.v[x.d], t.v[x.s], t.v[x.st], x.val, t.v[x.u], x.ts, x.r
      FROM (SELECT $9::text[] AS v) t,
        unnest($1::bigint[], $2::int[], $3::int[], $4::int[], $5::float8[], $6::int[], $7::bigint[], $8::bigint[]) AS x (a, d, s, st, val, u, ts, r)`;
    this.#upsertDevices = `INSERT INTO ${s}.os_devices AS d (aid, device_id, first_seen_ms, last_seen_ms, templates, full_frames, diff_frames, heart_frames, readings)
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
        AS u (aid, device_id, first_seen_ms, last_seen_ms, templates, full_frames, diff_frames, heart_frames, readings)
      ORDER BY aid, device_id COLLATE "C"
      ON CONFLICT (aid, device_id) DO UPDATE SET
        first_seen_ms = LEAST(d.first_seen_ms, excluded.first_seen_ms),
        templates = CASE WHEN excluded.templates IS NOT NULL AND (excluded.last_seen_ms >= d.last_seen_ms OR d.templates IS NULL) THEN excluded.templates ELSE d.templates END,
        last_seen_ms = GREATEST(d.last_seen_ms, excluded.last_seen_ms),
        full_frames = d.full_frames + excluded.full_frames,
        diff_frames = d.diff_frames + excluded.diff_frames,
        heart_frames = d.heart_frames + excluded.heart_frames,
        readings = d.readings + excluded.readings`;
  }

  async commit(batch: ReadingsBatch): Promise<void> {
    const n = batch.readings;
    const cols = { aid: new Array<number>(n), dev: new Array<number>(n), sid: new Array<number>(n), st: new Array<number>(n), v: new Array<number>(n), u: new Array<number>(n), t: new Array<number>(n), r: new Array<number>(n) };
    // The packed rows (8 numbers a reading, texts as 0-based indexes; PostgreSQL arrays are 1-based).
    const p = batch.packed ?? packReadings(batch.frames, n);
    const texts = p.texts;
    const rows = p.rows;
    for (let i = 0, k = 0; i < n; i++, k += 8) {
      cols.aid[i] = rows[k]!;
      cols.dev[i] = rows[k + 1]! + 1;
      cols.sid[i] = rows[k + 2]! + 1;
      cols.st[i] = rows[k + 3]! + 1;
      cols.v[i] = rows[k + 4]!;
      cols.u[i] = rows[k + 5]! + 1;
      cols.t[i] = rows[k + 6]!;
      cols.r[i] = rows[k + 7]!;
    }
    const d = batch.devices;
    const s = this.#p.schema;
    const prune = ++this.#commits % 1000 === 0;
    try {
      await inTransaction(this.#p, async (c) => {
        const fresh = await c.query(`INSERT INTO ${s}.os_sink_batches (id, committed_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, [batch.id, batch.atMs]);
        if (fresh.rowCount === 0) return; // a retry of a commit that landed
        if (n > 0) {
          const { aid, dev, sid, st, v, u, t, r } = cols;
          await c.query(this.#insertReadings, [numbers(aid), numbers(dev), numbers(sid), numbers(st), numbers(v), numbers(u), numbers(t), numbers(r), textArray(texts)]);
        }
        await c.query(this.#upsertDevices, [
          d.map((x) => x.aid),
          d.map((x) => x.deviceId),
          d.map((x) => x.firstSeenMs),
          d.map((x) => x.lastSeenMs),
          d.map((x) => x.templates),
          d.map((x) => x.full),
          d.map((x) => x.diff),
          d.map((x) => x.heart),
          d.map((x) => x.readings),
        ]);
        await c.query(`INSERT INTO ${s}.os_meta (key, value) VALUES ('last_write_ms', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [String(batch.atMs)]);
        if (prune) await c.query(`DELETE FROM ${s}.os_sink_batches WHERE committed_ms < $1`, [batch.atMs - BATCH_ID_KEEP_MS]);
      });
    } catch (e) {
      throw storeError(e, 'ERR_STORE_WRITE', `a batch of ${n} readings cannot be committed`, this.location);
    }
  }

  async query(q: CheckedReadingQuery): Promise<Reading[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (sql: string, v: string | number) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.aid !== undefined) add('aid = ?', q.aid);
    // Through the device rows, so the (aid, sensor_id, ts_ms) index serves a query by device id.
    else if (q.deviceId !== undefined) add(`aid IN (SELECT aid FROM ${this.#p.schema}.os_devices WHERE device_id = ?)`, q.deviceId);
    if (q.deviceId !== undefined) add('device_id = ?', q.deviceId);
    if (q.sensorId !== undefined) add('sensor_id = ?', q.sensorId);
    if (q.fromMs !== undefined) add('ts_ms >= ?', q.fromMs);
    if (q.toMs !== undefined) add('ts_ms < ?', q.toMs);
    const dir = q.order === 'desc' ? 'DESC' : 'ASC';
    params.push(q.limit);
    const sql = `SELECT aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms FROM ${this.#p.schema}.os_readings${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ts_ms ${dir}, seq ${dir} LIMIT $${params.length}`;
    try {
      const r = await this.#p.pool.query<ReadingRow>(sql, params);
      return r.rows.map(readingFromRow);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', 'readings cannot be queried', this.location);
    }
  }

  async devices(q: CheckedDeviceQuery): Promise<DeviceSummary[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.aid !== undefined) {
      params.push(q.aid);
      where.push(`aid = $${params.length}`);
    }
    if (q.deviceId !== undefined) {
      params.push(q.deviceId);
      where.push(`device_id = $${params.length}`);
    }
    params.push(q.limit);
    const sql = `SELECT * FROM ${this.#p.schema}.os_devices${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY aid, device_id COLLATE "C" LIMIT $${params.length}`;
    try {
      const r = await this.#p.pool.query<DeviceRow>(sql, params);
      return r.rows.map(deviceFromRow);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', 'devices cannot be queried', this.location);
    }
  }

  async status(): Promise<StoredStatus> {
    const s = this.#p.schema;
    try {
      const counts = await this.#p.pool.query<{ readings: number; devices: number }>(
        `SELECT coalesce(sum(readings), 0)::bigint AS readings, count(*)::bigint AS devices FROM ${s}.os_devices`,
      );
      const last = await this.#p.pool.query<{ value: string }>(`SELECT value FROM ${s}.os_meta WHERE key = 'last_write_ms'`);
      const size = await this.#p.pool.query<{ bytes: number }>(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname IN ('os_readings', 'os_devices', 'os_meta', 'os_sink_batches')`,
        [s.slice(1, -1)],
      );
      return {
        readings: counts.rows[0]!.readings,
        devices: counts.rows[0]!.devices,
        sizeBytes: size.rows[0]!.bytes,
        lastWriteMs: last.rows.length === 0 ? null : Number(last.rows[0]!.value),
      };
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', 'status cannot be read', this.location);
    }
  }

  async close(): Promise<void> {
    await this.#p.pool.end();
  }
}

/**
 * The sink's database half alone (what `openPostgresReadingsSink` wraps in the buffering core):
 * for callers that drive commits themselves. Creates the tables like the sink.
 */
export async function openPostgresReadingsBackend(options: PostgresOptions): Promise<ReadingsBackend> {
  const p = openPool(options);
  try {
    await ensureSchema(p, 'readings', 1, READINGS_DDL);
    return new PostgresReadingsBackend(p);
  } catch (e) {
    await p.pool.end().catch(() => undefined);
    throw e;
  }
}

/**
 * Opens the readings sink in `options.schema` (default `public`) of a PostgreSQL database (see
 * the module comment). `durability: 'power'`: a resolved `flush` is a committed transaction.
 * `concurrency` defaults to `maxConnections - 1` (3): that many batches are committed at once,
 * each in its own transaction on its own connection, so they may land out of order (`seq`
 * order in the table differs from the accept order); they settle in order (`onCommit`, `flush`).
 * Rejects with `ERR_STORE_READ` when the server cannot be reached at open; later failures are
 * retried batch by batch (see the buffering options).
 */
export async function openPostgresReadingsSink(options: PostgresReadingsSinkOptions): Promise<BufferedReadingsSink> {
  const backend = await openPostgresReadingsBackend(options);
  try {
    // Batches in flight: one per connection of the pool but one, kept for queries and status.
    const concurrency = Math.max(1, (options.maxConnections ?? 4) - 1);
    // Larger transactions than the core's default (76,000 against 48,000 readings/s measured
    // with 3 in flight; each statement's fixed costs and the commit spread over more rows).
    return new BufferedReadingsSink(backend, { concurrency, ...options, batchSize: options.batchSize ?? POSTGRES_BATCH_SIZE, maxBuffered: options.maxBuffered ?? 300_000 });
  } catch (e) {
    await backend.close().catch(() => undefined);
    throw e;
  }
}
