// Readings into SQLite through the sink: batch sizes 1, 100 and 1000 with synchronous full (the
// default), and 1000 with synchronous normal. BENCH_SECONDS per case (default 4).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchSink } from '@opensynaptic/config/sink-bench';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';

const dir = mkdtempSync(join(tmpdir(), 'sqlite-bench-'));
let n = 0;
const open = (synchronous) => (options) => openSqliteReadingsSink({ path: join(dir, `bench-${++n}.db`), synchronous, ...options });
try {
  await benchSink(`SQLite readings sink (${dir}, WAL)`, [
    { name: 'sqlite full', batchSize: 1, open: open('full') },
    { name: 'sqlite full', batchSize: 100, open: open('full') },
    { name: 'sqlite full', batchSize: 1000, open: open('full') },
    { name: 'sqlite normal', batchSize: 1000, open: open('normal') },
  ]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
