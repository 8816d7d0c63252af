// The SQLite writer's statements alone, on the calling thread, variant by variant (schema, index
// set, statement shape, pragmas): ROWS readings per variant in 4096-row transactions, synchronous
// full, WAL; REPS rounds interleaved (variant order rotated), medians of CPU µs and wall µs per row.
// One-sensor readings from 100 devices, as sink.bench.mjs writes them.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const Database = createRequire(import.meta.url)('better-sqlite3');
const ROWS = Number(process.env.ROWS ?? 400_000);
const REPS = Number(process.env.REPS ?? 3);
const BATCH = 4096;
const dir = mkdtempSync(join(tmpdir(), 'sqlite-variants-'));

const TEXT = `CREATE TABLE os_readings (seq INTEGER PRIMARY KEY, aid INTEGER NOT NULL, device_id TEXT NOT NULL, sensor_id TEXT NOT NULL,
  state TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL);`;
const DICT = `CREATE TABLE os_texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE os_readings (seq INTEGER PRIMARY KEY, aid INTEGER NOT NULL, device_id INTEGER NOT NULL, sensor_id INTEGER NOT NULL,
  state INTEGER NOT NULL, value REAL NOT NULL, unit INTEGER NOT NULL, ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL);`;
const CLUSTERED = `CREATE TABLE os_readings (seq INTEGER NOT NULL, aid INTEGER NOT NULL, device_id TEXT NOT NULL, sensor_id TEXT NOT NULL,
  state TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
  PRIMARY KEY (aid, sensor_id, ts_ms, seq)) WITHOUT ROWID;`;
const DICT_CLUSTERED = `CREATE TABLE os_texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE os_readings (seq INTEGER NOT NULL, aid INTEGER NOT NULL, device_id INTEGER NOT NULL, sensor_id INTEGER NOT NULL,
  state INTEGER NOT NULL, value REAL NOT NULL, unit INTEGER NOT NULL, ts_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL,
  PRIMARY KEY (aid, sensor_id, ts_ms, seq)) WITHOUT ROWID;`;
const DEV_IDX = 'CREATE INDEX os_readings_device ON os_readings (aid, sensor_id, ts_ms);';
const TIME_IDX = 'CREATE INDEX os_readings_time ON os_readings (ts_ms);';

const ALL = [
  { name: 'base: text, 2 idx, 256-row VALUES', ddl: TEXT + DEV_IDX + TIME_IDX, multi: 256 },
  { name: 'text, 2 idx, 1-row prepared', ddl: TEXT + DEV_IDX + TIME_IDX, multi: 1 },
  { name: 'text, device idx only, 256', ddl: TEXT + DEV_IDX, multi: 256 },
  { name: 'text, no idx, 256', ddl: TEXT, multi: 256 },
  { name: 'dict ids, 2 idx, 256', ddl: DICT + DEV_IDX + TIME_IDX, multi: 256, dict: true },
  { name: 'dict ids, device idx only, 256', ddl: DICT + DEV_IDX, multi: 256, dict: true },
  { name: 'text, 2 idx, 256, autockpt 10000', ddl: TEXT + DEV_IDX + TIME_IDX, multi: 256, pragmas: ['wal_autocheckpoint = 10000'] },
  { name: 'clustered (aid, sensor, ts, seq) WITHOUT ROWID + ts idx, 256', ddl: CLUSTERED + TIME_IDX, multi: 256, seq: true },
  { name: 'text, 2 idx, 256, page 8K', ddl: TEXT + DEV_IDX + TIME_IDX, multi: 256, pre: ['page_size = 8192'] },
  { name: 'text, 2 idx, 256, batch 16384', ddl: TEXT + DEV_IDX + TIME_IDX, multi: 256, batch: 16384 },
  { name: 'text, 2 idx, 256, batch 16384, rows by device (shipped)', ddl: TEXT + DEV_IDX + TIME_IDX, multi: 256, batch: 16384, sorted: true },
  { name: 'dict ids, 2 idx, 256, batch 16384, rows by device', ddl: DICT + DEV_IDX + TIME_IDX, multi: 256, batch: 16384, sorted: true, dict: true },
  { name: 'dict ids, clustered + ts idx, 256, batch 16384, rows by device', ddl: DICT_CLUSTERED + TIME_IDX, multi: 256, batch: 16384, sorted: true, dict: true, seq: true },
  { name: 'clustered + ts idx, 256, batch 16384, rows by device', ddl: CLUSTERED + TIME_IDX, multi: 256, batch: 16384, sorted: true, seq: true },
];
const variants = process.env.ONLY ? ALL.filter((v) => v.name.match(new RegExp(process.env.ONLY))) : ALL;

// The packed batch as the sink hands it over: 8 numbers per row, texts as indexes.
function batches(size) {
  const out = [];
  for (let n = 0; n < ROWS; ) {
    const k = Math.min(size, ROWS - n);
    const rows = new Float64Array(k * 8);
    const texts = ['t1', 'U', 'Cel'];
    for (let d = 0; d < 100; d++) texts.push(`bench-${d}`);
    for (let j = 0; j < k; j++, n++) rows.set([n % 100, 3 + (n % 100), 0, 1, 20 + (n % 1000) / 100, 2, 1_700_000_000_000 + n, 1_700_000_000_000 + n], j * 8);
    out.push({ rows, texts });
  }
  return out;
}

function run(v, rep, data) {
  const path = join(dir, `v${variants.indexOf(v)}-${rep}.db`);
  const db = new Database(path);
  for (const p of v.pre ?? []) db.pragma(p);
  for (const p of ['journal_mode = WAL', 'synchronous = FULL', 'cache_size = -65536', ...(v.pragmas ?? [])]) db.pragma(p);
  db.exec(v.ddl);
  const sql = (r) => v.seq ? `INSERT INTO os_readings (seq, aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms) VALUES ${Array.from({ length: r }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}` : `INSERT INTO os_readings (aid, device_id, sensor_id, state, value, unit, ts_ms, received_ms) VALUES ${Array.from({ length: r }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;
  const many = db.prepare(sql(v.multi));
  const one = db.prepare(sql(1));
  const textId = v.dict && db.prepare('INSERT INTO os_texts (text) VALUES (?) ON CONFLICT (text) DO UPDATE SET text = text RETURNING id');
  const cache = new Map();
  let seq = 0;
  const params = [];
  const tx = db.transaction((b) => {
    let r = b.rows;
    if (v.sorted) {
      // As the sink's writer: the rows by device, sensor and time (the sort's cost counted).
      const idx = new Uint32Array(r.length / 8).map((_, k) => k);
      idx.sort((x, y) => r[x * 8] - r[y * 8] || r[x * 8 + 2] - r[y * 8 + 2] || r[x * 8 + 6] - r[y * 8 + 6] || x - y);
      const out = new Float64Array(r.length);
      for (let k = 0; k < idx.length; k++) out.set(r.subarray(idx[k] * 8, idx[k] * 8 + 8), k * 8);
      r = out;
    }
    const t = b.texts;
    let map;
    if (v.dict) {
      // Batch texts -> dictionary ids (cached across batches, as a writer would).
      map = t.map((s) => {
        let id = cache.get(s);
        if (id === undefined) {
          id = textId.get(s).id;
          cache.set(s, id);
        }
        return id;
      });
    }
    const bind = (from, to) => {
      params.length = 0;
      if (map && v.seq) for (let i = from; i < to; i += 8) params.push(++seq, r[i], map[r[i + 1]], map[r[i + 2]], map[r[i + 3]], r[i + 4], map[r[i + 5]], r[i + 6], r[i + 7]);
      else if (map) for (let i = from; i < to; i += 8) params.push(r[i], map[r[i + 1]], map[r[i + 2]], map[r[i + 3]], r[i + 4], map[r[i + 5]], r[i + 6], r[i + 7]);
      else if (v.seq) for (let i = from; i < to; i += 8) params.push(++seq, r[i], t[r[i + 1]], t[r[i + 2]], t[r[i + 3]], r[i + 4], t[r[i + 5]], r[i + 6], r[i + 7]);
      else for (let i = from; i < to; i += 8) params.push(r[i], t[r[i + 1]], t[r[i + 2]], t[r[i + 3]], r[i + 4], t[r[i + 5]], r[i + 6], r[i + 7]);
      return params;
    };
    const n = r.length;
    const step = v.multi * 8;
    let i = 0;
    for (; i + step <= n; i += step) many.run(bind(i, i + step));
    for (; i < n; i += 8) one.run(bind(i, i + 8));
  });
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (const b of data) tx.immediate(b);
  const c = process.cpuUsage(c0);
  const wall = Number(process.hrtime.bigint() - t0) / 1000;
  db.close();
  rmSync(path, { force: true });
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
  return { cpu: (c.user + c.system) / ROWS, wall: wall / ROWS };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const data = new Map([4096, 16384].map((b) => [b, batches(b)]));
const res = variants.map(() => ({ cpu: [], wall: [] }));
try {
  for (let rep = 0; rep < REPS; rep++) {
    for (let k = 0; k < variants.length; k++) {
      const j = (k + rep) % variants.length;
      const r = run(variants[j], rep, data.get(variants[j].batch ?? BATCH));
      res[j].cpu.push(r.cpu);
      res[j].wall.push(r.wall);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.table(variants.map((v, j) => ({
  variant: v.name,
  'CPU µs/row (median)': median(res[j].cpu).toFixed(2),
  'wall µs/row': median(res[j].wall).toFixed(2),
  'rows/s': Math.round(1e6 / median(res[j].wall)).toLocaleString('en-US'),
  'CPU runs': res[j].cpu.map((x) => x.toFixed(2)).join(' '),
})));
