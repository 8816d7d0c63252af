/**
 * The readings sink on SQLite. Tables (schema version 2):
 * - `os_reading_rows (seq, aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms)`,
 *   the four text columns as ids of `os_texts (id, text)`, indexed by `(aid, sensor_id, ts_ms)`
 *   and by `ts_ms`; the view `os_readings` shows them with their texts (the columns of version 1
 *   and of the PostgreSQL sink);
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
  packReadings,
  type StoreDurability,
  StoreError,
  type StoredStatus,
} from '@opensynaptic/store';
import { nodeBuiltin } from '@opensynaptic/internal';
import { connectionPragmas, ensureSchema, openConnection, type SqliteConnection, type SqliteOptions, storeError } from './database.js';

/** Options of {@link openSqliteReadingsSink}: the file's and the buffering core's. */
export interface SqliteReadingsSinkOptions extends SqliteOptions, ReadingsSinkOptions {
  /**
   * Commit in a worker thread (default true for a file, false for `':memory:'`, which a second
   * thread cannot see): the thread that calls `write` only hands each batch over and carries on
   * (decoding the next frames, on a server) while the worker inserts and waits for the fsync, so
   * both use a core. Queries and `status` read on the caller's thread (WAL: readers never wait
   * for the writer). `false`: commits run on the caller's thread, blocking it for their duration.
   */
  worker?: boolean | undefined;
}

/** The schema version of the readings tables this package writes (`os_meta.readings_schema`). */
export const READINGS_SCHEMA = 2;

const READING_ROWS_DDL = `
CREATE TABLE IF NOT EXISTS os_texts (
  id INTEGER PRIMARY KEY,
  text TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS os_reading_rows (
  seq INTEGER PRIMARY KEY,
  aid INTEGER NOT NULL,
  device_id INTEGER NOT NULL,
  sensor_id INTEGER NOT NULL,
  state INTEGER NOT NULL,
  value REAL NOT NULL,
  unit INTEGER NOT NULL,
  ts_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS os_reading_rows_device ON os_reading_rows (aid, sensor_id, ts_ms);
CREATE INDEX IF NOT EXISTS os_reading_rows_time ON os_reading_rows (ts_ms);
`;

/** A text column of `os_reading_rows` (alias `r`) as its text: one primary-key lookup per row returned. */
const textOf = (column: string) => `(SELECT text FROM os_texts WHERE id = r.${column})`;
/** The readings as texts, in the columns of schema version 1. */
const READING_COLUMNS = `r.seq AS seq, r.aid AS aid, ${textOf('device_id')} AS device_id, ${textOf('sensor_id')} AS sensor_id, ${textOf('state')} AS state, r.value AS value, ${textOf('unit')} AS unit, r.ts_ms AS ts_ms, r.received_ms AS received_ms`;

const READINGS_DDL = `${READING_ROWS_DDL}
CREATE VIEW IF NOT EXISTS os_readings AS SELECT ${READING_COLUMNS} FROM os_reading_rows AS r;
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

/**
 * Version 1 to 2: the texts of every reading go into `os_texts` once and the rows keep their ids
 * (a 1-sensor reading's row and index entries shrink by about half, and an insert costs about a
 * fifth less, bench/writer-variants); `seq` is kept. One transaction: a failure leaves version 1.
 */
const MIGRATE_1_TO_2 = `${READING_ROWS_DDL}
INSERT OR IGNORE INTO os_texts (text) SELECT device_id FROM os_readings UNION SELECT sensor_id FROM os_readings UNION SELECT state FROM os_readings UNION SELECT unit FROM os_readings;
INSERT INTO os_reading_rows (seq, aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms)
  SELECT o.seq, o.aid, d.id, s.id, st.id, o.value, u.id, o.ts_ms, o.received_ms FROM os_readings AS o
  JOIN os_texts AS d ON d.text = o.device_id JOIN os_texts AS s ON s.text = o.sensor_id
  JOIN os_texts AS st ON st.text = o.state JOIN os_texts AS u ON u.text = o.unit ORDER BY o.seq;
DROP TABLE os_readings;
CREATE VIEW os_readings AS SELECT ${READING_COLUMNS} FROM os_reading_rows AS r;
`;

/**
 * Readings per transaction by default (`batchSize`). A batch only fills this far while the
 * previous commit is in flight (the core takes what is queued), so it costs latency only when
 * the writer is behind. The insert into the `(aid, sensor_id, ts_ms)` index lands on one page per
 * device and sensor, each written once per transaction: 16384-row transactions measured about
 * 1.3 times the rate of 4096-row ones at a fifth less CPU per reading (bench/).
 */
export const SQLITE_BATCH_SIZE = 16384;

/**
 * Readings the sink holds for its writer by default (`maxBuffered`): 300000, three times the core's
 * default, since they are held packed (about 120 bytes a reading, some 36 MB when full): a writer
 * stall of a few seconds at 100,000 readings/s (a WAL checkpoint) is ridden out rather than pushed
 * back to the server, which would drop datagrams (bench/: 60 s at 100,000/s, 524 lost with 100000,
 * none with 300000).
 */
export const PACKED_MAX_BUFFERED = 300_000;

/**
 * A batch as the writer takes it, cheap to hand to a worker: the core's packed rows (8 numbers a
 * reading in one Float64Array: aid, device id, sensor id, state, value, unit, timestamp, receive
 * time; the texts as indexes into `texts`, see `PackedReadings`), so the rows cross to the worker
 * as one transferred buffer instead of a structured clone of every value; the device rows are few
 * and go as they are.
 */
interface PackedBatch {
  readonly rows: Float64Array;
  readonly texts: readonly string[];
  readonly devices: (string | number | null)[];
  readonly atMs: number;
}

function pack(batch: ReadingsBatch): PackedBatch {
  // The backend sets `packed`, so the core always hands the rows over packed.
  const p = batch.packed ?? packReadings(batch.frames, batch.readings);
  const devices: (string | number | null)[] = [];
  for (const d of batch.devices) devices.push(d.aid, d.deviceId, d.firstSeenMs, d.lastSeenMs, d.templates, d.full, d.diff, d.heart, d.readings);
  return { rows: p.rows, texts: p.texts, devices, atMs: batch.atMs };
}

/**
 * The writing half of the backend: prepares its statements on `db` and returns the commit of a
 * packed batch (one `BEGIN IMMEDIATE` transaction). Self-contained (no outer names): the worker
 * thread runs this very function from its source text, so the two modes share one definition.
 */
function sqliteWriter(db: {
  prepare(sql: string): { run(...params: unknown[]): unknown; get(...params: unknown[]): unknown; all(...params: unknown[]): unknown[] };
  transaction<T>(fn: (b: T) => void): { immediate(b: T): void };
}): (batch: PackedBatch) => void {
  // Readings go in statements of up to 256 rows: fewer statement steps than one row each, and
  // the parameter count (8 per row) stays far below SQLite's limit of 32766.
  const ROWS = 256;
  const insert = (rows: number) =>
    `INSERT INTO os_reading_rows (aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;
  const many = db.prepare(insert(ROWS));
  const one = db.prepare(insert(1));
  // A text's id: the one it has (another connection may have added it), or a new one.
  const textId = db.prepare('INSERT INTO os_texts (text) VALUES (?) ON CONFLICT (text) DO UPDATE SET text = excluded.text RETURNING id');
  // Ids of the texts already committed (ids never change once committed). Bounded: past MAX_TEXTS
  // it starts again from empty, and a text it forgot costs one lookup in the next batch.
  const MAX_TEXTS = 100_000;
  const ids = new Map<string, number>();
  for (const row of db.prepare('SELECT id, text FROM os_texts LIMIT ?').all(MAX_TEXTS) as { id: number; text: string }[]) ids.set(row.text, row.id);
  let fresh: [string, number][] = [];
  const upsert = db.prepare(`
INSERT INTO os_devices (aid, device_id, first_seen_ms, last_seen_ms, templates, full_frames, diff_frames, heart_frames, readings)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (aid, device_id) DO UPDATE SET
  first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
  templates = CASE WHEN excluded.templates IS NOT NULL AND (excluded.last_seen_ms >= last_seen_ms OR templates IS NULL) THEN excluded.templates ELSE templates END,
  last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
  full_frames = full_frames + excluded.full_frames,
  diff_frames = diff_frames + excluded.diff_frames,
  heart_frames = heart_frames + excluded.heart_frames,
  readings = readings + excluded.readings`);
  const meta = db.prepare("INSERT INTO os_meta (key, value) VALUES ('last_write_ms', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  const params: number[] = [];
  // The rows go in by device, sensor and time, not as they arrived: each device's run of
  // readings then lands together in the (aid, sensor_id, ts_ms) index instead of one B-tree
  // descent to a different place per row (bench/writer-variants: 5.6 → 4.4 µs a row with 100
  // devices, 11.7 → 6.8 with 1000). Ties keep their arrival order, so `seq` still orders the
  // readings of one sensor; only readings of different devices may swap within one batch.
  const order = (b: PackedBatch): Uint32Array => {
    const r = b.rows;
    const idx = new Uint32Array(r.length >>> 3);
    for (let k = 0; k < idx.length; k++) idx[k] = k;
    return idx.sort((x, y) => r[x * 8]! - r[y * 8]! || r[x * 8 + 2]! - r[y * 8 + 2]! || r[x * 8 + 6]! - r[y * 8 + 6]! || x - y);
  };
  // One statement's parameters from the rows `from`..`to` of `idx`, the batch's text indexes as ids.
  const bind = (b: PackedBatch, map: Float64Array, idx: Uint32Array, from: number, to: number) => {
    params.length = 0;
    const r = b.rows;
    for (let k = from; k < to; k++) {
      const i = idx[k]! * 8;
      params.push(r[i]!, map[r[i + 1]!]!, map[r[i + 2]!]!, map[r[i + 3]!]!, r[i + 4]!, map[r[i + 5]!]!, r[i + 6]!, r[i + 7]!);
    }
    return params;
  };
  const tx = db.transaction((b: PackedBatch) => {
    const map = new Float64Array(b.texts.length);
    for (let k = 0; k < b.texts.length; k++) {
      const t = b.texts[k]!;
      let id = ids.get(t);
      if (id === undefined) {
        id = (textId.get(t) as { id: number }).id;
        fresh.push([t, id]);
      }
      map[k] = id;
    }
    const idx = order(b);
    const n = idx.length;
    let k = 0;
    for (; k + ROWS <= n; k += ROWS) many.run(bind(b, map, idx, k, k + ROWS));
    for (; k < n; k++) one.run(bind(b, map, idx, k, k + 1));
    const d = b.devices;
    for (let j = 0; j < d.length; j += 9) upsert.run(d.slice(j, j + 9));
    meta.run(String(b.atMs));
  });
  return (b) => {
    fresh = [];
    try {
      tx.immediate(b);
    } catch (e) {
      fresh = []; // rolled back: those ids were never committed
      throw e;
    }
    if (ids.size + fresh.length > MAX_TEXTS) ids.clear();
    for (const [t, id] of fresh) ids.set(t, id);
  };
}

/** The worker thread's program (CommonJS, run with `eval`): opens its own connection, then commits what it is sent. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let commit;
try {
  const db = new Database(workerData.path, { timeout: workerData.busyTimeoutMs });
  for (const p of workerData.pragmas) db.pragma(p);
  commit = (${sqliteWriter.toString()})(db);
  parentPort.on('message', (m) => {
    if (m.close) {
      db.close();
      parentPort.postMessage({ closed: true });
      return;
    }
    try {
      commit(m.batch);
      parentPort.postMessage({ id: m.id });
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: { message: String(e && e.message), code: e && typeof e.code === 'string' ? e.code : '' } });
    }
  });
  parentPort.postMessage({ ready: true });
} catch (e) {
  parentPort.postMessage({ failed: { message: String(e && e.message), code: e && typeof e.code === 'string' ? e.code : '' } });
}
`;

// The part of node:worker_threads used here (no @types/node in the published declarations).
interface WorkerLike {
  on(event: 'message', listener: (m: WorkerMessage) => void): void;
  on(event: 'error', listener: (e: Error) => void): void;
  on(event: 'exit', listener: (code: number) => void): void;
  postMessage(m: unknown, transfer?: unknown[]): void;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}
interface WorkerThreads {
  Worker: new (source: string, options: { eval: true; workerData: unknown }) => WorkerLike;
}
interface ModuleBuiltin {
  createRequire(from: string): { resolve(id: string): string };
}
type WorkerMessage = { ready?: true; closed?: true; id?: number; error?: { message: string; code: string }; failed?: { message: string; code: string } };

/** A SQLite error as better-sqlite3 throws it, rebuilt from what the worker sent. */
function sqliteError(e: { message: string; code: string }): Error {
  return Object.assign(new Error(e.message), { code: e.code });
}

/**
 * The writer thread: one connection of its own, batches in order, one at a time (the buffering
 * core commits one batch at a time). A worker that dies fails the commit in flight (the core
 * retries it) and is started again for the next.
 */
class WriterThread {
  readonly #data: object;
  readonly #location: string;
  #worker: WorkerLike | undefined;
  #ready: Promise<void> | undefined;
  #next = 0;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>();
  #closing: (() => void) | undefined;

  constructor(data: object, location: string) {
    this.#data = data;
    this.#location = location;
  }

  #start(): Promise<void> {
    if (this.#ready !== undefined) return this.#ready;
    const threads = nodeBuiltin<WorkerThreads>('node:worker_threads');
    if (threads === undefined) return Promise.reject(new StoreError('ERR_STORE_OPTION', 'worker: true needs node:worker_threads', { path: this.#location }));
    const worker = new threads.Worker(WORKER_SOURCE, { eval: true, workerData: this.#data });
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m) => {
        if (m.ready) {
          // Idle, the thread does not keep the process alive (a connection would not either).
          if (this.#pending.size === 0) worker.unref();
          resolve();
        }
        else if (m.failed) reject(sqliteError(m.failed));
        else if (m.closed) this.#closing?.();
        else if (m.id !== undefined) {
          const p = this.#pending.get(m.id);
          this.#pending.delete(m.id);
          if (this.#pending.size === 0) worker.unref();
          if (m.error === undefined) p?.resolve();
          else p?.reject(sqliteError(m.error));
        }
      });
      const gone = (why: unknown) => {
        reject(why);
        for (const p of this.#pending.values()) p.reject(why);
        this.#pending.clear();
        this.#worker = undefined;
        this.#ready = undefined;
        this.#closing?.();
      };
      worker.on('error', gone);
      worker.on('exit', (code) => gone(new Error(`the SQLite writer thread exited (${code})`)));
    });
    // A failed start is retried by the next commit.
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  async commit(batch: PackedBatch): Promise<void> {
    await this.#start();
    const id = ++this.#next;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // A commit in flight keeps the process alive until it lands.
      this.#worker!.ref();
      // A copy of the rows' buffer is moved, not cloned: the core keeps the original for a retry.
      const rows = batch.rows.slice();
      this.#worker!.postMessage({ id, batch: { ...batch, rows } }, [rows.buffer]);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined || this.#ready === undefined) return;
    await this.#ready.catch(() => undefined);
    await new Promise<void>((resolve) => {
      this.#closing = resolve;
      worker.ref();
      worker.postMessage({ close: true });
    });
    await worker.terminate();
    this.#worker = undefined;
  }
}

interface Fs {
  statSync(path: string, options: { throwIfNoEntry: false }): { size: number } | undefined;
}

class SqliteReadingsBackend implements ReadingsBackend {
  readonly name = 'sqlite';
  readonly packed = true;
  readonly durability: StoreDurability;
  readonly readonly: boolean;
  readonly location: string;
  readonly #conn: SqliteConnection;
  readonly #commit: ((batch: PackedBatch) => void) | undefined;
  readonly #writer: WriterThread | undefined;
  readonly #status;
  readonly #lastWrite;

  constructor(conn: SqliteConnection, writer: WriterThread | undefined) {
    this.#conn = conn;
    this.durability = conn.durability;
    this.location = conn.path;
    this.readonly = conn.readonly;
    const db = conn.db;
    this.#status = db.prepare<[], { readings: number; devices: number }>('SELECT coalesce(sum(readings), 0) AS readings, count(*) AS devices FROM os_devices');
    this.#lastWrite = db.prepare<[], { value: string }>("SELECT value FROM os_meta WHERE key = 'last_write_ms'");
    if (conn.readonly) return;
    this.#writer = writer;
    if (writer === undefined) this.#commit = sqliteWriter(db as unknown as Parameters<typeof sqliteWriter>[0]);
  }

  async commit(batch: ReadingsBatch): Promise<void> {
    if (this.readonly) throw new StoreError('ERR_STORE_WRITE', 'was opened read-only', { path: this.location });
    try {
      const packed = pack(batch);
      if (this.#writer !== undefined) await this.#writer.commit(packed);
      else this.#commit!(packed);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_WRITE', `a batch of ${batch.readings} readings cannot be committed`, this.location);
    }
  }

  async query(q: CheckedReadingQuery): Promise<Reading[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.aid !== undefined) {
      where.push('r.aid = ?');
      params.push(q.aid);
    } else if (q.deviceId !== undefined) {
      // Through the device rows, so the (aid, sensor_id, ts_ms) index serves a query by device id.
      where.push('r.aid IN (SELECT aid FROM os_devices WHERE device_id = ?)');
      params.push(q.deviceId);
    }
    // A text no reading has gives a NULL id, so no rows.
    if (q.deviceId !== undefined) {
      where.push('r.device_id = (SELECT id FROM os_texts WHERE text = ?)');
      params.push(q.deviceId);
    }
    if (q.sensorId !== undefined) {
      where.push('r.sensor_id = (SELECT id FROM os_texts WHERE text = ?)');
      params.push(q.sensorId);
    }
    if (q.fromMs !== undefined) {
      where.push('r.ts_ms >= ?');
      params.push(q.fromMs);
    }
    if (q.toMs !== undefined) {
      where.push('r.ts_ms < ?');
      params.push(q.toMs);
    }
    const dir = q.order === 'desc' ? 'DESC' : 'ASC';
    const sql = `SELECT ${READING_COLUMNS} FROM os_reading_rows AS r${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY r.ts_ms ${dir}, r.seq ${dir} LIMIT ?`;
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
    try {
      await this.#writer?.close();
    } finally {
      this.#conn.db.close();
    }
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
    ensureSchema(conn, 'readings', READINGS_SCHEMA, READINGS_DDL, { 1: MIGRATE_1_TO_2 });
    const worker = options.worker ?? conn.path !== ':memory:';
    if (typeof worker !== 'boolean') throw new StoreError('ERR_STORE_OPTION', `worker must be true or false, got ${String(worker)}`);
    if (worker && conn.path === ':memory:') throw new StoreError('ERR_STORE_OPTION', 'worker: true needs a file (a second thread cannot see a \':memory:\' database)');
    const writer = worker && !conn.readonly ? new WriterThread(writerData(conn, options), conn.path) : undefined;
    // Larger transactions than the core's default: each one writes the index pages it touches
    // once, however many of its rows land on them (SQLITE_BATCH_SIZE says what was measured).
    return new BufferedReadingsSink(new SqliteReadingsBackend(conn, writer), { ...options, batchSize: options.batchSize ?? SQLITE_BATCH_SIZE, maxBuffered: options.maxBuffered ?? PACKED_MAX_BUFFERED });
  } catch (e) {
    conn.db.close();
    throw e;
  }
}

/** What the writer thread needs to open its connection as `openConnection` opened the caller's. */
function writerData(conn: SqliteConnection, options: SqliteOptions): object {
  const module = nodeBuiltin<ModuleBuiltin>('node:module');
  if (module === undefined) throw new StoreError('ERR_STORE_OPTION', 'worker: true needs node:module', { path: conn.path });
  // The worker loads the same better-sqlite3 this package resolves (by file, whatever the cwd).
  const driver = module.createRequire(import.meta.url).resolve('better-sqlite3');
  return { driver, path: conn.path, busyTimeoutMs: options.busyTimeoutMs ?? 5000, pragmas: connectionPragmas(options) };
}
