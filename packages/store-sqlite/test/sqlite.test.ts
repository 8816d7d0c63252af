import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { abstractReadingsSinkSuite, abstractStoreSuite } from '@opensynaptic/store/testing';
import { afterAll, describe, it } from 'vitest';
import { openSqliteReadingsSink, openSqliteStore } from '../src/index.js';
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
  name: 'SQLite readings sink',
  newLocation: dbFile,
  open: (path, options) => openSqliteReadingsSink({ path, ...options }),
  persistent: true,
  kill: killChild,
});
