import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeBuiltin } from '@opensynaptic/internal';
import { FileStore } from '../src/index.js';

// The CommonJS `node:fs` object is the one `process.getBuiltinModule` hands to the store.
const fs = createRequire(import.meta.url)('node:fs') as Record<string, unknown>;
const SYNC_IO = ['openSync', 'writeSync', 'fsyncSync', 'renameSync', 'readFileSync', 'closeSync', 'mkdirSync', 'rmSync', 'readdirSync', 'statSync', 'writeFileSync'] as const;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Runs `body` with every synchronous file call of `node:fs` counted. */
async function countingSyncIo(body: () => Promise<void>): Promise<string[]> {
  const calls: string[] = [];
  const saved = new Map<string, unknown>();
  for (const name of SYNC_IO) {
    const original = fs[name] as (...args: unknown[]) => unknown;
    saved.set(name, original);
    fs[name] = (...args: unknown[]) => {
      calls.push(name);
      return original(...args);
    };
  }
  try {
    await body();
  } finally {
    for (const [name, original] of saved) fs[name] = original;
  }
  return calls;
}

describe('FileStore I/O stays off the event loop', () => {
  it('opens (stale temporary files removed), writes, flushes (fsync included), reads and lists with no synchronous file call', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-nosync-'));
    dirs.push(root);
    let store!: FileStore<Record<string, unknown>>;
    const calls = await countingSyncIo(async () => {
      store = await FileStore.open<Record<string, unknown>>({ root, layouts: { sessions: { type: 'snapshot' } } });
      await store.write([
        { op: 'put', kind: 'templates', key: 'a', value: { n: 1 } },
        { op: 'put', kind: 'sessions', key: 's', value: { n: 2 } },
      ]);
      await store.flush();
      await store.write([{ op: 'delete', kind: 'templates', key: 'a' }]);
      await store.flush();
      expect(await store.get('templates', 'a')).toBeUndefined();
      expect(await store.keys('templates')).toEqual([]);
      await store.close();
      // Reopened: the stale-file scan and the snapshot read.
      store = await FileStore.open<Record<string, unknown>>({ root, layouts: { sessions: { type: 'snapshot' } }, staleTempMs: 0 });
      expect(await store.get('sessions', 's')).toEqual({ n: 2 });
    });
    expect(calls).toEqual([]);
    await store.close();
  });

  it('catches synchronous calls on the same fs object the store would get', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-nosync-'));
    dirs.push(root);
    const calls = await countingSyncIo(async () => {
      const sync = nodeBuiltin<{ writeFileSync(p: string, d: Uint8Array): void; readdirSync(p: string): string[] }>('node:fs')!;
      sync.writeFileSync(join(root, 'x.json'), new Uint8Array([1]));
      sync.readdirSync(root);
    });
    expect(calls).toEqual(expect.arrayContaining(['writeFileSync', 'readdirSync']));
  });
});
