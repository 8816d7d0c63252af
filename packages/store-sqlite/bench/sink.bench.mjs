// Readings into SQLite through the sink (its writer thread, the default): batch sizes 1, 100,
// 1000, 4096 and 16384 (the default) with synchronous full (the default), 16384 with synchronous
// normal, and 16384 committed on the caller's thread (worker: false). BENCH_SECONDS per case
// (default 4). writer-variants.bench.mjs measures the writer's statements alone, variant by variant.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchSink } from '@opensynaptic/config/sink-bench';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';

const dir = mkdtempSync(join(tmpdir(), 'sqlite-bench-'));
let n = 0;
const open = (synchronous, extra = {}) => (options) => openSqliteReadingsSink({ path: join(dir, `bench-${++n}.db`), synchronous, ...options, ...extra });
try {
  await benchSink(`SQLite readings sink (${dir}, WAL)`, [
    { name: 'sqlite full', batchSize: 1, open: open('full') },
    { name: 'sqlite full', batchSize: 100, open: open('full') },
    { name: 'sqlite full', batchSize: 1000, open: open('full') },
    { name: 'sqlite full', batchSize: 4096, open: open('full') },
    { name: 'sqlite full', batchSize: 16384, open: open('full') },
    { name: 'sqlite normal', batchSize: 16384, open: open('normal') },
    { name: 'sqlite full, caller thread', batchSize: 16384, open: open('full', { worker: false }) },
  ]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
