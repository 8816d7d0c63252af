import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { afterAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'server-kill-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('acknowledged means committed: kill -9 of a server ingesting into SQLite', () => {
  it('after each SIGKILL the file holds at least every reading onCommit had reported, and opens cleanly', async () => {
    const [url] = compileForChild([join(here, 'fixtures', 'ingest-child.ts')], join(work, 'bundle'));
    const path = join(work, 'os.db');
    const stored = async () => {
      const reader = await openSqliteReadingsSink({ path, readonly: true });
      try {
        const st = await reader.status();
        const rows = (await reader.query({ limit: 1_000_000 })).length;
        expect(rows).toBe(st.stored.readings); // rows and device rows agree: whole transactions only
        return rows;
      } finally {
        await reader.close();
      }
    };
    let before = 0;
    let acknowledged = 0;
    await killLoop({
      script: fileURLToPath(url!),
      args: (round: number) => [path, String(round)],
      rounds: 4,
      minMs: 200,
      maxMs: 600,
      check: async (_round: number, lines: string[]) => {
        const reported = lines.length === 0 ? 0 : Number(lines[lines.length - 1]);
        const now = await stored();
        expect(now - before).toBeGreaterThanOrEqual(reported);
        acknowledged += reported;
        before = now;
      },
    });
    expect(acknowledged).toBeGreaterThan(0);
    expect(before).toBeGreaterThanOrEqual(acknowledged);
  });
});
