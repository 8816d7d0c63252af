import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { isStoreError } from '@opensynaptic/store';
import { abstractReadingsSinkSuite, abstractStoreSuite, sampleFrame } from '@opensynaptic/store/testing';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openSqliteReadingsSink, openSqliteStore, SQLITE_BATCH_SIZE } from '../src/index.js';
import { sample } from './fixtures/child.js';

const here = dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
const dbFile = () => join(tempDir('sqlite-store-'), 'os.db');
const killChild = (() => {
  const work = tempDir('sqlite-kill-');
  const [moduleUrl] = compileForChild([join(here, 'fixtures', 'child.ts')], join(work, 'bundle'));
  return { killLoop, moduleUrl: moduleUrl!, workDir: work };
})();

abstractStoreSuite({ describe, it }, {
  name: 'SQLite store (synchronous full)',
  newLocation: dbFile,
  open: (path) => openSqliteStore({ path }),
  persistent: true,
  kinds: ['templates', 'leases'],
  sample,
  index: (_kind, v) => (v as { n: number }).n,
  kill: killChild,
});

abstractStoreSuite({ describe, it }, {
  name: 'SQLite store (synchronous normal)',
  newLocation: dbFile,
  open: (path) => openSqliteStore({ path, synchronous: 'normal', kinds: ['sessions', 'leases'] }),
  persistent: true,
  kinds: ['sessions', 'leases'],
  sample,
  index: (_kind, v) => (v as { n: number }).n,
});

abstractReadingsSinkSuite({ describe, it }, {
  name: 'SQLite readings sink (writer thread)',
  newLocation: dbFile,
  open: (path, options) => openSqliteReadingsSink({ path, ...options }),
  persistent: true,
  kill: killChild,
});

abstractReadingsSinkSuite({ describe, it }, {
  name: 'SQLite readings sink (commits on the caller thread)',
  newLocation: dbFile,
  open: (path, options) => openSqliteReadingsSink({ path, worker: false, ...options }),
  persistent: true,
});

describe('SQLite readings sink: batching', () => {
  it('by default one transaction takes up to SQLITE_BATCH_SIZE queued readings (more than the core default of 1000)', async () => {
    const events: { readings: number }[] = [];
    const sink = await openSqliteReadingsSink({ path: dbFile(), flushIntervalMs: 60_000, onCommit: (e) => events.push(e) });
    try {
      // Writes of 64 one-sensor frames (a batch holds whole writes; 64 divides the default).
      const total = SQLITE_BATCH_SIZE + 64;
      for (let n = 0; n < total; n += 64) await sink.write(Array.from({ length: 64 }, (_, j) => sampleFrame(1, n + j, { sensors: 1 })));
      await sink.flush();
      expect(SQLITE_BATCH_SIZE).toBeGreaterThan(1000);
      expect(events.map((e) => e.readings)).toEqual([SQLITE_BATCH_SIZE, 64]);
      expect((await sink.status()).committed).toBe(total);
    } finally {
      await sink.close();
    }
  });
});

describe('SQLite readings sink: failures', () => {
  it('a full database (maxPages): ERR_STORE_WRITE naming SQLITE_FULL, retried, nothing partial stored; writes resume once there is room', async () => {
    const path = dbFile();
    const errors: string[] = [];
    // Small enough that a few hundred readings fill it.
    const sink = await openSqliteReadingsSink({ path, maxPages: 40, batchSize: 50, retryMinMs: 5, retryMaxMs: 20, onError: (e) => errors.push(e.message) });
    let n = 0;
    const room = async () => (await sink.status()).lastError === null;
    while ((await room()) && n < 20_000) {
      await sink.write([sampleFrame(1, n++, { sensors: 1 })]);
      if (n % 50 === 0) await sink.flush().catch(() => undefined);
    }
    const st = await sink.status();
    expect(st.lastError?.code).toBe('ERR_STORE_WRITE');
    expect(errors[0]).toMatch(/SQLITE_FULL/);
    expect(st.lost).toBe(0);
    // Each batch is all or nothing: what is stored is what was committed.
    expect(st.stored.readings).toBe(st.committed);
    expect(st.buffered).toBeGreaterThan(0);
    // Room again (the cap lifted on the writer's connection, as freeing disk space would): the retried batch lands.
    const { default: Database } = await import('better-sqlite3');
    const other = new Database(path);
    other.exec("DELETE FROM os_reading_rows WHERE seq <= 200");
    other.close();
    await vi.waitFor(async () => expect((await sink.status()).buffered).toBe(0), { timeout: 10_000, interval: 20 });
    const end = await sink.status();
    expect(end.committed).toBe(n);
    expect(end.lost).toBe(0);
    await sink.close();
  });

  it('worker: true on an in-memory database is refused (ERR_STORE_OPTION); maxPages is checked', async () => {
    const a = await openSqliteReadingsSink({ path: ':memory:', worker: true }).catch((e) => e);
    expect(isStoreError(a, 'ERR_STORE_OPTION')).toBe(true);
    const b = await openSqliteReadingsSink({ path: dbFile(), maxPages: 0 }).catch((e) => e);
    expect(isStoreError(b, 'ERR_STORE_OPTION') && /maxPages/.test(b.message)).toBe(true);
  });

  it('retries a batch the database refused (locked by another connection), reporting the error, and stores it once', async () => {
    const path = dbFile();
    const errors: string[] = [];
    const sink = await openSqliteReadingsSink({ path, busyTimeoutMs: 0, retryMinMs: 5, retryMaxMs: 20, onError: (e) => errors.push(e.code) });
    const { default: Database } = await import('better-sqlite3');
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE'); // holds the write lock
    await sink.write([sampleFrame(1, 1), sampleFrame(1, 2)]);
    await expect(sink.flush()).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE') && /SQLITE_BUSY/.test((e as Error).message));
    other.exec('ROLLBACK');
    other.close();
    await vi.waitFor(async () => expect((await sink.status()).committed).toBe(4), { timeout: 5000, interval: 10 });
    await sink.flush();
    const st = await sink.status();
    expect([st.stored.readings, st.lost, st.failedAttempts > 0, st.lastError?.code]).toEqual([4, 0, true, 'ERR_STORE_WRITE']);
    expect(errors[0]).toBe('ERR_STORE_WRITE');
    await sink.close();
  });

  it('reports a file that is not a SQLite database as ERR_STORE_CORRUPT naming it, for the store and the sink', async () => {
    const path = dbFile();
    writeFileSync(path, 'this is not a database, just some text long enough to be read as a header '.repeat(20));
    for (const open of [() => openSqliteReadingsSink({ path }), () => openSqliteStore({ path })]) {
      const err = await open().catch((e) => e);
      expect(isStoreError(err, 'ERR_STORE_CORRUPT') && err.message.includes(path)).toBe(true);
    }
  });

  it('opens read-only beside a writer: queries and status work, writes are refused', async () => {
    const path = dbFile();
    const writer = await openSqliteReadingsSink({ path });
    await writer.write([sampleFrame(2, 1)]);
    await writer.flush();
    const reader = await openSqliteReadingsSink({ path, readonly: true });
    expect((await reader.status()).stored.readings).toBe(2);
    expect((await reader.query({ aid: 2 })).length).toBe(2);
    await expect(reader.write([sampleFrame(2, 2)])).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE') && /read-only/.test((e as Error).message));
    expect(() => reader.tryWrite([sampleFrame(2, 2)])).toThrow(expect.objectContaining({ code: 'ERR_STORE_WRITE' }));
    await reader.close();
    await writer.close();
  });
});

describe('SQLite readings sink: schema version 2 (texts by id)', () => {
  const V1 = `
CREATE TABLE os_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO os_meta (key, value) VALUES ('readings_schema', '1');
CREATE TABLE os_readings (seq INTEGER PRIMARY KEY, aid INTEGER NOT NULL, device_id TEXT NOT NULL, sensor_id TEXT NOT NULL,
  state TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL);
CREATE INDEX os_readings_device ON os_readings (aid, sensor_id, ts_ms);
CREATE INDEX os_readings_time ON os_readings (ts_ms);
CREATE TABLE os_devices (aid INTEGER NOT NULL, device_id TEXT NOT NULL, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,
  templates INTEGER, full_frames INTEGER NOT NULL, diff_frames INTEGER NOT NULL, heart_frames INTEGER NOT NULL, readings INTEGER NOT NULL,
  PRIMARY KEY (aid, device_id)) WITHOUT ROWID;
INSERT INTO os_devices VALUES (7, 'DEV-7', 1000, 3000, 1, 1, 2, 0, 3);
INSERT INTO os_readings (seq, aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms) VALUES
  (5, 7, 'DEV-7', 'T1', 'OK', 21.5, 'Cel', 1000, 1001),
  (9, 7, 'DEV-7', 'H1', 'OK', 40, '%', 2000, 2001),
  (12, 7, 'DEV-7', 'T1', 'WARN', 22.25, 'Cel', 3000, 3001);`;

  it('a version 1 file opened read-only says it must be opened writable once; opened writable, it is brought to version 2 with every reading and seq kept', async () => {
    const path = dbFile();
    const { default: Database } = await import('better-sqlite3');
    const v1 = new Database(path);
    v1.exec(V1);
    v1.close();
    const ro = await openSqliteReadingsSink({ path, readonly: true }).catch((e) => e);
    expect(isStoreError(ro, 'ERR_STORE_READ') && /version 1; open it writable once/.test(ro.message)).toBe(true);
    const sink = await openSqliteReadingsSink({ path });
    try {
      const all = await sink.query({});
      expect(all.map((r) => [r.sensorId, r.state, r.value, r.unit, r.timestampMs, r.receivedAtMs])).toEqual([
        ['T1', 'OK', 21.5, 'Cel', 1000, 1001],
        ['H1', 'OK', 40, '%', 2000, 2001],
        ['T1', 'WARN', 22.25, 'Cel', 3000, 3001],
      ]);
      expect((await sink.query({ deviceId: 'DEV-7', sensorId: 'T1' })).map((r) => r.value)).toEqual([21.5, 22.25]);
      expect(await sink.query({ sensorId: 'NOPE' })).toEqual([]);
      // New readings after the migrated ones, under the same texts.
      await sink.write([{ ...sampleFrame(7, 4000, { sensors: 1 }), deviceId: 'DEV-7' }]);
      await sink.flush();
      expect((await sink.status()).stored.readings).toBe(4);
    } finally {
      await sink.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare("SELECT value FROM os_meta WHERE key = 'readings_schema'").pluck().get()).toBe('2');
      expect(db.prepare('SELECT seq FROM os_readings ORDER BY seq').pluck().all().slice(0, 3)).toEqual([5, 9, 12]);
      // Each text once, the rows by id; the view shows them as version 1 did.
      const texts = db.prepare('SELECT text FROM os_texts').pluck().all() as string[];
      expect(new Set(texts).size).toBe(texts.length);
      expect(db.prepare("SELECT typeof(sensor_id) FROM os_reading_rows LIMIT 1").pluck().get()).toBe('integer');
      expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'os_readings' AND type = 'view'").pluck().get()).toBe(1);
    } finally {
      db.close();
    }
  });

  it('texts added by a transaction that rolled back (a full database) are not remembered: the retried batch stores its own texts', async () => {
    const path = dbFile();
    const sink = await openSqliteReadingsSink({ path, maxPages: 40, batchSize: 50, retryMinMs: 5, retryMaxMs: 20 });
    try {
      let n = 0;
      while ((await sink.status()).lastError === null && n < 20_000) {
        // Every frame brings texts of its own (sensor ids), so a failed batch had inserted some.
        await sink.write([{ ...sampleFrame(1, n, { sensors: 1 }), sensors: [{ id: `S${n}`, state: 'OK', value: n, unit: 'Cel' }] }]);
        n++;
        if (n % 50 === 0) await sink.flush().catch(() => undefined);
      }
      expect(n).toBeLessThan(20_000);
      const { default: Database } = await import('better-sqlite3');
      const other = new Database(path);
      other.exec('DELETE FROM os_reading_rows WHERE seq <= 300');
      other.close();
      await vi.waitFor(async () => expect((await sink.status()).buffered).toBe(0), { timeout: 10_000, interval: 20 });
      const rows = await sink.query({ fromMs: 0, limit: 100_000 });
      for (const r of rows) expect(r.sensorId).toBe(`S${r.value}`);
      expect(rows.length).toBe(n - 300);
    } finally {
      await sink.close();
    }
  });
});
