// Fault: a store file truncated or damaged while the process was down. Opening it must fail with
// ERR_STORE_CORRUPT naming the file, touching nothing, or (opted in) move it aside and start a new
// one; never open it as if it were empty or whole.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { isStoreError, type StoreError } from '@opensynaptic/store';
import { sampleFrame } from '@opensynaptic/store/testing';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteReadingsSink, openSqliteStore, type SqliteQuarantineEvent } from '../src/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const dbFile = () => {
  const d = mkdtempSync(join(tmpdir(), 'sqlite-corrupt-'));
  dirs.push(d);
  return join(d, 'os.db');
};

/** A file holding readings (sink) and leases (store), checkpointed so that the WAL is empty. */
async function filled(): Promise<string> {
  const path = dbFile();
  const sink = await openSqliteReadingsSink({ path, worker: false, batchSize: 500 });
  await sink.write(Array.from({ length: 2000 }, (_, i) => sampleFrame(7, i, { sensors: 1 })));
  await sink.flush();
  await sink.close();
  const store = await openSqliteStore<{ leases: { aid: number } }>({ path, kinds: ['leases'] });
  await store.write([{ op: 'put', kind: 'leases', key: '5', value: { aid: 5 } }]);
  await store.flush();
  await store.close();
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return path;
}

const damages: [string, (path: string) => void][] = [
  ['truncated to half its size', (p) => truncateSync(p, Math.floor(statSync(p).size / 2))],
  ['truncated inside its header', (p) => truncateSync(p, 60)],
  ['its header overwritten', (p) => {
    const b = readFileSync(p);
    b.fill(0, 0, 100);
    writeFileSync(p, b);
  }],
  // Found only by reading every page (the quick check at open): the header and schema are intact.
  ['one page in the middle overwritten', (p) => {
    const b = readFileSync(p);
    const page = 4096 * 3;
    for (let i = page; i < page + 4096; i++) b[i] = (i * 7) & 255;
    writeFileSync(p, b);
  }],
];

const opens = {
  'readings sink': (path: string, extra: object = {}) => openSqliteReadingsSink({ path, worker: false, ...extra }),
  'lease and session store': (path: string, extra: object = {}) => openSqliteStore({ path, kinds: ['leases'], ...extra }),
} as const;

const failure = async (p: Promise<unknown>): Promise<StoreError> => {
  try {
    const opened = (await p) as { close(): Promise<void> };
    await opened.close();
  } catch (e) {
    return e as StoreError;
  }
  throw new Error('opened a damaged file');
};

describe('a SQLite store file damaged at startup', () => {
  for (const [what, damage] of damages) {
    for (const [kind, open] of Object.entries(opens)) {
      it(`${what}: the ${kind} refuses it with ERR_STORE_CORRUPT naming the file, and leaves it as it was`, async () => {
        const path = await filled();
        damage(path);
        const bytes = readFileSync(path);
        const err = await failure(open(path));
        expect(isStoreError(err, 'ERR_STORE_CORRUPT'), String(err)).toBe(true);
        expect(err.message).toContain(path);
        expect(readFileSync(path).equals(bytes)).toBe(true);
        expect(readdirSync(dirname(path)).filter((f) => f.includes('.corrupt-'))).toEqual([]);
      });
    }
  }

  it('onCorrupt "quarantine": the damaged file is moved aside whole, told to onQuarantine, and a new empty database works in its place', async () => {
    for (const [kind, open] of Object.entries(opens)) {
      const path = await filled();
      damages[3]![1](path);
      const bytes = readFileSync(path);
      const seen: SqliteQuarantineEvent[] = [];
      const opened = await open(path, { onCorrupt: 'quarantine', onQuarantine: (e: SqliteQuarantineEvent) => seen.push(e) });
      expect(seen, kind).toHaveLength(1);
      expect(seen[0]!.path).toBe(path);
      expect(basename(seen[0]!.movedTo)).toMatch(/^os\.db\.corrupt-\d+/);
      expect(isStoreError(seen[0]!.error, 'ERR_STORE_CORRUPT')).toBe(true);
      expect(readFileSync(seen[0]!.movedTo).equals(bytes)).toBe(true);
      if ('query' in opened) {
        expect(await opened.query({ limit: 10 })).toEqual([]);
        await opened.write([sampleFrame(1, 1)]);
        await opened.flush();
        expect((await opened.status()).stored.readings).toBeGreaterThan(0);
      } else {
        expect(await opened.get('leases', '5')).toBeUndefined();
        await opened.write([{ op: 'put', kind: 'leases', key: '6', value: { aid: 6 } }]);
        await opened.flush();
      }
      await opened.close();
      // The new file is whole.
      const db = new Database(path, { readonly: true });
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      db.close();
      expect(existsSync(seen[0]!.movedTo)).toBe(true);
    }
  });

  it('an undamaged file passes the check at open; the options are checked', async () => {
    const path = await filled();
    const sink = await openSqliteReadingsSink({ path, worker: false, integrityCheck: 'full' });
    expect((await sink.status()).stored.readings).toBe(2000);
    await sink.close();
    const bad = await failure(openSqliteStore({ path, integrityCheck: 'some' as never }));
    expect(isStoreError(bad, 'ERR_STORE_OPTION') && /integrityCheck/.test(bad.message)).toBe(true);
    const ro = await failure(openSqliteStore({ path, readonly: true, onCorrupt: 'quarantine' }));
    expect(isStoreError(ro, 'ERR_STORE_OPTION') && /onCorrupt/.test(ro.message)).toBe(true);
  });
});
