/**
 * The readings sink on SQLite. Tables (schema version 1):
 * - `os_readings (seq, aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms)`,
 *   indexed by `(aid, sensor_id, ts_ms)` and by `ts_ms`;
 * - `os_devices (aid, device_id, first_seen_ms, last_seen_ms, templates, full_frames,
 *   diff_frames, heart_frames, readings)`, one row per (aid, device id);
 * - `os_meta`: schema versions and `last_write_ms`.
 * Each batch of the buffering core is one `BEGIN IMMEDIATE` transaction: its readings, its
 * device rows and the last-write time commit together or not at all.
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
  type StoreDurability,
  StoreError,
  type StoredStatus,
} from '@opensynaptic/store';
import { nodeBuiltin } from '@opensynaptic/internal';
import { ensureSchema, openConnection, type SqliteConnection, type SqliteOptions, storeError } from './database.js';

/** Options of {@link openSqliteReadingsSink}: the file's and the buffering core's. */
export interface SqliteReadingsSinkOptions extends SqliteOptions, ReadingsSinkOptions {}

const READINGS_DDL = `
CREATE TABLE IF NOT EXISTS os_readings (
  seq INTEGER PRIMARY KEY,
  aid INTEGER NOT NULL,
  device_id TEXT NOT NULL,
  sensor_id TEXT NOT NULL,
  state TEXT NOT NULL,
  value REAL NOT NULL,
  unit TEXT NOT NULL,
  ts_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS os_readings_device ON os_readings (aid, sensor_id, ts_ms);
CREATE INDEX IF NOT EXISTS os_readings_time ON os_readings (ts_ms);
CREATE TABLE IF NOT EXISTS os_devices (
  aid INTEGER NOT NULL,
  device_id TEXT NOT NULL,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  templates INTEGER,
  full_frames INTEGER NOT NULL,
  diff_frames INTEGER NOT NULL,
  heart_frames INTEGER NOT NULL,
  readings INTEGER NOT NULL,
  PRIMARY KEY (aid, device_id)
) WITHOUT ROWID;
`;

// Readings go in statements of up to 64 rows: fewer statement steps than one row each, and the
// parameter count (8 per row) stays far below SQLite's limit.
const ROWS_PER_INSERT = 64;
const insertSql = (rows: number) =>
  `INSERT INTO os_readings (aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;

const DEVICE_UPSERT = `
INSERT INTO os_devices (aid, device_id, first_seen_ms, last_seen_ms, templates, full_frames, diff_frames, heart_frames, readings)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (aid, device_id) DO UPDATE SET
  first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
  templates = CASE WHEN excluded.templates IS NOT NULL AND (excluded.last_seen_ms >= last_seen_ms OR templates IS NULL) THEN excluded.templates ELSE templates END,
  last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
  full_frames = full_frames + excluded.full_frames,
  diff_frames = diff_frames + excluded.diff_frames,
  heart_frames = heart_frames + excluded.heart_frames,
  readings = readings + excluded.readings`;

interface Fs {
  statSync(path: string, options: { throwIfNoEntry: false }): { size: number } | undefined;
}

class SqliteReadingsBackend implements ReadingsBackend {
  readonly name = 'sqlite';
  readonly durability: StoreDurability;
  readonly readonly: boolean;
  readonly location: string;
  readonly #conn: SqliteConnection;
  readonly #commit: ((batch: ReadingsBatch) => void) | undefined;
  readonly #status;
  readonly #lastWrite;

  constructor(conn: SqliteConnection) {
    this.#conn = conn;
    this.durability = conn.durability;
    this.location = conn.path;
    this.readonly = conn.readonly;
    const db = conn.db;
    this.#status = db.prepare<[], { readings: number; devices: number }>('SELECT coalesce(sum(readings), 0) AS readings, count(*) AS devices FROM os_devices');
    this.#lastWrite = db.prepare<[], { value: string }>("SELECT value FROM os_meta WHERE key = 'last_write_ms'");
    if (conn.readonly) return;
    const insertFull = db.prepare(insertSql(ROWS_PER_INSERT));
    const insertOne = db.prepare(insertSql(1));
    const upsert = db.prepare(DEVICE_UPSERT);
    const meta = db.prepare("INSERT INTO os_meta (key, value) VALUES ('last_write_ms', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    const params: (string | number)[] = [];
    const tx = db.transaction((batch: ReadingsBatch) => {
      let rows = 0;
      params.length = 0;
      for (const f of batch.frames) {
        for (const s of f.sensors) {
          params.push(f.aid, f.deviceId, s.id, s.state, s.value, s.unit, f.timestampMs, f.receivedAtMs);
          if (++rows === ROWS_PER_INSERT) {
            insertFull.run(params);
            params.length = 0;
            rows = 0;
          }
        }
      }
      for (let i = 0; i < rows; i++) insertOne.run(params.slice(i * 8, i * 8 + 8));
      for (const d of batch.devices) upsert.run(d.aid, d.deviceId, d.firstSeenMs, d.lastSeenMs, d.templates, d.full, d.diff, d.heart, d.readings);
      meta.run(String(batch.atMs));
    });
    this.#commit = (batch) => tx.immediate(batch);
  }

  async commit(batch: ReadingsBatch): Promise<void> {
    if (this.#commit === undefined) throw new StoreError('ERR_STORE_WRITE', 'was opened read-only', { path: this.location });
    try {
      this.#commit(batch);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_WRITE', `a batch of ${batch.readings} readings cannot be committed`, this.location);
    }
  }

  async query(q: CheckedReadingQuery): Promise<Reading[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.aid !== undefined) {
      where.push('aid = ?');
      params.push(q.aid);
    } else if (q.deviceId !== undefined) {
      // Through the device rows, so the (aid, sensor_id, ts_ms) index serves a query by device id.
      where.push('aid IN (SELECT aid FROM os_devices WHERE device_id = ?)');
      params.push(q.deviceId);
    }
    if (q.deviceId !== undefined) {
      where.push('device_id = ?');
      params.push(q.deviceId);
    }
    if (q.sensorId !== undefined) {
      where.push('sensor_id = ?');
      params.push(q.sensorId);
    }
    if (q.fromMs !== undefined) {
      where.push('ts_ms >= ?');
      params.push(q.fromMs);
    }
    if (q.toMs !== undefined) {
      where.push('ts_ms < ?');
      params.push(q.toMs);
    }
    const dir = q.order === 'desc' ? 'DESC' : 'ASC';
    const sql = `SELECT aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms FROM os_readings${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ts_ms ${dir}, seq ${dir} LIMIT ?`;
    params.push(q.limit);
    try {
      return (this.#conn.db.prepare(sql).all(params) as ReadingRow[]).map(readingFromRow);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', 'readings cannot be queried', this.location);
    }
  }

  async devices(q: CheckedDeviceQuery): Promise<DeviceSummary[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.aid !== undefined) {
      where.push('aid = ?');
      params.push(q.aid);
    }
    if (q.deviceId !== undefined) {
      where.push('device_id = ?');
      params.push(q.deviceId);
    }
    params.push(q.limit);
    const sql = `SELECT * FROM os_devices${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY aid, device_id LIMIT ?`;
    try {
      return (this.#conn.db.prepare(sql).all(params) as DeviceRow[]).map(deviceFromRow);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', 'devices cannot be queried', this.location);
    }
  }

  async status(): Promise<StoredStatus> {
    try {
      const counts = this.#status.get()!;
      const last = this.#lastWrite.get();
      let sizeBytes: number | null = null;
      const fs = nodeBuiltin<Fs>('node:fs');
      if (this.location !== ':memory:' && fs !== undefined) {
        sizeBytes = 0;
        for (const f of [this.location, `${this.location}-wal`]) sizeBytes += fs.statSync(f, { throwIfNoEntry: false })?.size ?? 0;
      }
      return { readings: counts.readings, devices: counts.devices, sizeBytes, lastWriteMs: last === undefined ? null : Number(last.value) };
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', 'status cannot be read', this.location);
    }
  }

  async close(): Promise<void> {
    this.#conn.db.close();
  }
}

/**
 * Opens the readings sink on the SQLite file `options.path` (created when missing; see the
 * module comment for the tables). `durability`: `'power'` with the default
 * `synchronous: 'full'`, `'process'` with `'normal'`, `'none'` for `':memory:'`.
 */
export async function openSqliteReadingsSink(options: SqliteReadingsSinkOptions): Promise<BufferedReadingsSink> {
  const conn = openConnection(options);
  try {
    ensureSchema(conn, 'readings', 1, READINGS_DDL);
    return new BufferedReadingsSink(new SqliteReadingsBackend(conn), options);
  } catch (e) {
    conn.db.close();
    throw e;
  }
}
