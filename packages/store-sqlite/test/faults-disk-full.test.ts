// Fault: the disk fills up under the database. On a real size-limited filesystem made here (a
// tmpfs mount; we run as root in CI), or where mounting is not permitted, SQLite's page cap
// (`maxPages`) standing in for it, said so on the console.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStoreError } from '@opensynaptic/store';
import { sampleFrame } from '@opensynaptic/store/testing';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openSqliteReadingsSink, openSqliteStore } from '../src/index.js';

/** Size of the filesystem made for the test. */
const FS_BYTES = 768 * 1024;
/** A file that takes this much of it, deleted to give the space back. */
const BALLAST_BYTES = 256 * 1024;

const root = mkdtempSync(join(tmpdir(), 'sqlite-disk-full-'));
let mounted = false;
let fallback = '';
beforeAll(() => {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_BYTES}`, 'tmpfs', root], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    fallback = `${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`;
    console.warn(`NOT a real full disk: mounting a ${FS_BYTES}-byte tmpfs at ${root} failed (${fallback}); SQLite's max_page_count stands in for it`);
  }
});
afterAll(() => {
  if (mounted) execFileSync('umount', ['-l', root]);
  rmSync(root, { recursive: true, force: true });
});

let dirs = 0;
function place(): { path: string; ballast: string; capped: { maxPages?: number } } {
  const dir = join(root, `d${++dirs}`);
  mkdirSync(dir);
  const ballast = join(dir, 'ballast');
  if (mounted) writeFileSync(ballast, Buffer.alloc(BALLAST_BYTES, 1));
  return { path: join(dir, 'os.db'), ballast, capped: mounted ? {} : { maxPages: 60 } };
}

/** Gives the space back: the ballast file deleted (or, in the fallback, the page cap lifted on the file). */
function giveSpaceBack(p: { path: string; ballast: string }): void {
  if (mounted) unlinkSync(p.ballast);
  else {
    // The cap holds per connection: an uncapped one frees pages by deleting the oldest rows.
    const db = new Database(p.path);
    db.exec('DELETE FROM os_readings WHERE seq <= 300');
    db.close();
  }
}

describe('disk full on a tmpfs the test mounts (max_page_count where mounting is refused, said on the console)', () => {
  it('the readings sink: ERR_STORE_WRITE naming the full disk, nothing partial stored, the file whole, and writing resumes when space returns', async () => {
    const p = place();
    const errors: string[] = [];
    const sink = await openSqliteReadingsSink({ path: p.path, ...p.capped, worker: false, batchSize: 100, flushIntervalMs: 1, retryMinMs: 5, retryMaxMs: 20, onError: (e) => errors.push(e.message) });
    let n = 0;
    while ((await sink.status()).lastError === null && n < 200_000) {
      await sink.write([sampleFrame(1 + (n % 5), n, { sensors: 2 })]);
      n++;
      if (n % 100 === 0) await sink.flush().catch(() => undefined);
    }
    const full = await sink.status();
    expect(full.lastError?.code, `no error after ${n} frames`).toBe('ERR_STORE_WRITE');
    expect(errors[0]).toMatch(/SQLITE_FULL|database or disk is full/);
    expect(full.lost).toBe(0);
    expect(full.buffered).toBeGreaterThan(0);
    // Each batch is all or nothing: what the file holds is what was committed.
    expect(full.stored.readings).toBe(full.committed);
    // Another reader sees a whole file while the disk is full.
    const check = new Database(p.path, { readonly: true });
    expect(check.pragma('quick_check', { simple: true })).toBe('ok');
    check.close();

    giveSpaceBack(p);
    await vi.waitFor(async () => expect((await sink.status()).buffered).toBe(0), { timeout: 15_000, interval: 20 });
    await sink.write([sampleFrame(9, 1, { sensors: 2 })]);
    await sink.flush();
    const after = await sink.status();
    expect(after.lost).toBe(0);
    expect(after.committed).toBe(2 * (n + 1));
    await sink.close();
    // Closed and opened again: the integrity check at open passes and every committed reading is there.
    const again = await openSqliteReadingsSink({ path: p.path, worker: false, integrityCheck: 'full' });
    await again.close();
    const rows = new Database(p.path, { readonly: true });
    // (The fallback deleted 300 rows to make room.)
    expect((rows.prepare('SELECT count(*) AS n FROM os_readings').get() as { n: number }).n).toBe(mounted ? 2 * (n + 1) : 2 * (n + 1) - 300);
    rows.close();
  });

  it('the lease and session store: a flush on the full disk rejects ERR_STORE_WRITE keeping the writes pending; the next flush after space returns commits them', async () => {
    const p = place();
    // Fill the filesystem (or the cap) with readings first: the store shares the file.
    const sink = await openSqliteReadingsSink({ path: p.path, ...p.capped, worker: false, batchSize: 200, retryMinMs: 5, retryMaxMs: 20, maxAttempts: 1 });
    for (let n = 0; (await sink.status()).lastError === null && n < 200_000; n++) {
      await sink.write([sampleFrame(1, n, { sensors: 4 })]);
      if (n % 200 === 199) await sink.flush().catch(() => undefined);
    }
    await sink.close().catch(() => undefined);
    const store = await openSqliteStore<{ leases: { note: string } }>({ path: p.path, ...p.capped, kinds: ['leases'] });
    const big = 'x'.repeat(2000);
    let failed: unknown;
    let k = 0;
    for (; k < 2000 && failed === undefined; k++) {
      await store.write([{ op: 'put', kind: 'leases', key: String(k), value: { note: big } }]);
      await store.flush().catch((e) => {
        failed = e;
      });
    }
    expect(isStoreError(failed, 'ERR_STORE_WRITE'), String(failed)).toBe(true);
    expect(String((failed as Error).message)).toMatch(/SQLITE_FULL|disk is full/);
    giveSpaceBack(p);
    await store.flush();
    expect((await store.get('leases', String(k - 1)))?.note).toBe(big);
    await store.close();
    const db = new Database(p.path, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect((db.prepare("SELECT count(*) AS n FROM os_store WHERE kind = 'leases'").get() as { n: number }).n).toBe(k);
    db.close();
  });
});
