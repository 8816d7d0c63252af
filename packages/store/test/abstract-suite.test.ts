import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { afterAll, describe, it } from 'vitest';
import { FileStore, MemoryStore } from '../src/index.js';
import { abstractStoreSuite } from '../src/testing.js';
import { sample } from './fixtures/file-store-child.js';

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
const index = (_kind: string, v: unknown) => (v as { n: number }).n;

abstractStoreSuite({ describe, it }, {
  name: 'MemoryStore',
  newLocation: () => 'memory',
  open: async () => new MemoryStore(),
  persistent: false,
  kinds: ['templates', 'sessions'],
  sample,
  index,
});

abstractStoreSuite({ describe, it }, {
  name: 'FileStore (files layout)',
  newLocation: () => tempDir('store-files-'),
  open: (root) => FileStore.open({ root }),
  persistent: true,
  kinds: ['templates', 'leases'],
  sample,
  index,
  kill: (() => {
    const work = tempDir('store-kill-');
    const [moduleUrl] = compileForChild([join(here, 'fixtures', 'file-store-child.ts')], join(work, 'bundle'));
    return { killLoop, moduleUrl: moduleUrl!, workDir: work };
  })(),
});

abstractStoreSuite({ describe, it }, {
  name: 'FileStore (snapshot layout, not durable)',
  newLocation: () => tempDir('store-snap-'),
  open: (root) => FileStore.open({ root, durable: false, layouts: { sessions: { type: 'snapshot' }, leases: { type: 'snapshot' } } }),
  persistent: true,
  kinds: ['sessions', 'leases'],
  sample,
  index,
});
