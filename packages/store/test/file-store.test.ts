import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { escapeKey, FileStore, isStoreError, MemoryStore, putMany, type StoreError } from '../src/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'store-file-'));
  dirs.push(d);
  return d;
};
const code = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return (e as StoreError).code;
  }
  return 'resolved';
};

describe('FileStore', () => {
  it('writes nothing until flush, then one file per key in the default layout', async () => {
    const root = tempDir();
    const s = await FileStore.open({ root });
    await s.write(putMany('templates', [['Dev-1', { a: 1 }], ['x/y', { b: 2 }]]));
    expect(existsSync(join(root, 'templates'))).toBe(false);
    expect(s.pendingWrites).toBe(2);
    await s.flush();
    expect(s.pendingWrites).toBe(0);
    expect(readdirSync(join(root, 'templates')).sort()).toEqual([`${escapeKey('Dev-1')}.json`, `${escapeKey('x/y')}.json`].sort());
    expect(escapeKey('Dev-1')).toBe('%44ev-1');
    expect(JSON.parse(readFileSync(s.pathOf('templates', 'x/y'), 'utf8'))).toEqual({ b: 2 });
    await s.close();
  });

  it('coalesces many writes of one key into one file write per flush', async () => {
    const s = await FileStore.open({ root: tempDir() });
    for (let i = 0; i < 100; i++) await s.write([{ op: 'put', kind: 'leases', key: 'k', value: i }]);
    await s.flush();
    expect(s.filesWritten).toBe(1);
    expect(await s.get('leases', 'k')).toBe(99);
    await s.close();
  });

  it('rejects a file that does not decode with ERR_STORE_CORRUPT and leaves it in place', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'templates'));
    writeFileSync(join(root, 'templates', 'k1.json'), '{"torn": ');
    const s = await FileStore.open({ root });
    expect(await code(s.get('templates', 'k1'))).toBe('ERR_STORE_CORRUPT');
    expect(readFileSync(join(root, 'templates', 'k1.json'), 'utf8')).toBe('{"torn": ');
    await s.close();
  });

  it('quarantines a file that does not decode when asked, and reads it as missing', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'templates'));
    writeFileSync(join(root, 'templates', 'k1.json'), 'not json');
    const seen: string[] = [];
    const s = await FileStore.open({ root, onCorrupt: 'quarantine', onQuarantine: (e, to) => seen.push(`${e.code} ${to}`) });
    expect(await s.get('templates', 'k1')).toBeUndefined();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^ERR_STORE_CORRUPT .*k1\.json\.corrupt-/);
    expect(existsSync(join(root, 'templates', 'k1.json'))).toBe(false);
    await s.close();
  });

  it('rejects a corrupt snapshot file at open', async () => {
    const root = tempDir();
    writeFileSync(join(root, 'sessions.json'), '[1,2]');
    expect(await code(FileStore.open({ root, layouts: { sessions: { type: 'snapshot' } } }))).toBe('ERR_STORE_CORRUPT');
  });

  it('keeps writes pending when a flush fails, and the next flush retries them', async () => {
    const root = tempDir();
    const s = await FileStore.open({ root });
    writeFileSync(join(root, 'leases'), 'a file where the folder must go');
    await s.write([{ op: 'put', kind: 'leases', key: 'a', value: 1 }]);
    const failed = await s.flush().catch((e: unknown) => e);
    expect(isStoreError(failed, 'ERR_STORE_WRITE')).toBe(true);
    expect(s.pendingWrites).toBe(1);
    expect(await s.get('leases', 'a')).toBe(1);
    rmSync(join(root, 'leases'));
    await s.flush();
    expect(s.pendingWrites).toBe(0);
    const again = await FileStore.open({ root });
    expect(await again.get('leases', 'a')).toBe(1);
    await again.close();
    await s.close();
  });

  it('rejects bad options with ERR_STORE_OPTION naming the option', async () => {
    for (const bad of [{ root: '' }, { root: 'x', kinds: [] }, { root: 'x', kinds: ['Bad Kind'] }, { root: 'x', onCorrupt: 'fix' }, { root: 'x', concurrency: 0 }, { root: 'x', staleTempMs: -1 }]) {
      const e = await FileStore.open(bad as never).catch((x: unknown) => x);
      expect(isStoreError(e, 'ERR_STORE_OPTION')).toBe(true);
    }
    expect(() => new MemoryStore({ kinds: [] })).toThrow(/kinds/);
  });

  it('refuses values a snapshot kind cannot serialise, and the batch with them', async () => {
    const s = await FileStore.open({ root: tempDir(), layouts: { sessions: { type: 'snapshot' } } });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(await code(s.write([{ op: 'put', kind: 'sessions', key: 'a', value: 1 }, { op: 'put', kind: 'sessions', key: 'b', value: cyclic }]))).toBe('ERR_STORE_VALUE');
    expect(await s.keys('sessions')).toEqual([]);
    await s.close();
  });

  it('removes stale temporary files of killed writers when it opens', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'templates'));
    writeFileSync(join(root, 'templates', '.k1.json.999999999.1.tmp'), 'half');
    const s = await FileStore.open({ root });
    expect(s.removedTempFiles).toEqual(['templates/.k1.json.999999999.1.tmp']);
    await s.close();
  });
});

describe('FileStore: files truncated while the process was down', () => {
  it('a record file cut short (empty, or half its bytes) is ERR_STORE_CORRUPT, left in place; a snapshot cut short fails the open', async () => {
    const root = tempDir();
    const s = await FileStore.open({ root });
    await s.write([{ op: 'put', kind: 'templates', key: 'k1', value: { a: 1, long: 'x'.repeat(100) } }, { op: 'put', kind: 'templates', key: 'k2', value: { b: 2 } }]);
    await s.flush();
    await s.close();
    const file = (k: string) => join(root, 'templates', `${k}.json`);
    writeFileSync(file('k1'), readFileSync(file('k1')).subarray(0, 40));
    writeFileSync(file('k2'), '');
    const again = await FileStore.open({ root });
    expect(await code(again.get('templates', 'k1'))).toBe('ERR_STORE_CORRUPT');
    expect(await code(again.get('templates', 'k2'))).toBe('ERR_STORE_CORRUPT');
    expect(readFileSync(file('k2'), 'utf8')).toBe('');
    await again.close();

    const snapRoot = tempDir();
    const layouts = { sessions: { type: 'snapshot' as const } };
    const snap = await FileStore.open<{ sessions: { n: number } }>({ root: snapRoot, kinds: ['sessions'], layouts });
    await snap.write([{ op: 'put', kind: 'sessions', key: '1', value: { n: 1 } }, { op: 'put', kind: 'sessions', key: '2', value: { n: 2 } }]);
    await snap.flush();
    await snap.close();
    const path = join(snapRoot, readdirSync(snapRoot).find((f) => f.startsWith('sessions'))!);
    writeFileSync(path, readFileSync(path).subarray(0, Math.floor(readFileSync(path).length / 2)));
    expect(await code(FileStore.open({ root: snapRoot, kinds: ['sessions'], layouts }))).toBe('ERR_STORE_CORRUPT');
  });
});
