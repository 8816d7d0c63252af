// The readings table and the shared template state in PostgreSQL: a frame delivered again stores
// nothing twice, and its template state lands in the same transaction, readable by the project's
// PostgreSQL store.
import { openPostgresStore } from '@opensynaptic/store-postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ClusterDatabase, type ClusterReadingRow } from '../src/index.js';

const pgUrl = inject('pgUrl');
const unavailable = inject('pgUnavailable');
let db: ClusterDatabase;

beforeAll(async () => {
  if (unavailable) return;
  db = await ClusterDatabase.open({ connection: pgUrl, schema: 'dedup' });
});
afterAll(async () => {
  await db?.close();
});

const row = (msgId: string, index: number, value: number): ClusterReadingRow => ({
  msgId,
  index,
  streamSeq: 7,
  partition: 3,
  aid: 42,
  deviceId: 'dev-42',
  strategy: 'DIFF',
  sensorId: `s${index}`,
  state: 'OK',
  value,
  unit: 'K',
  timestampMs: 1_700_000_000_000,
  receivedAtMs: 1_700_000_000_100,
});

describe.skipIf(unavailable !== '')('dedup by message id (PostgreSQL)', () => {
  it('a redelivered frame stores nothing twice; a new frame stores its rows', async () => {
    const first = await db.commit([row('g1-a-1', 0, 1), row('g1-a-1', 1, 2)], [], 'r1');
    expect(first.inserted).toBe(2);
    // The same frame again (a redelivery after a failover), even from another receiver and with other values.
    const again = await db.commit([row('g1-a-1', 0, 9), row('g1-a-1', 1, 9)], [], 'r2');
    expect(again.inserted).toBe(0);
    // Mixed: one known frame, one new.
    const mixed = await db.commit([row('g1-a-1', 0, 1), row('g1-a-2', 0, 3)], [], 'r2');
    expect(mixed.inserted).toBe(1);
    const rows = await db.query<{ msg_id: string; idx: number; value: number; receiver: string }>('SELECT msg_id, idx, value, receiver FROM $schema.os_cluster_readings ORDER BY msg_id, idx');
    expect(rows).toEqual([
      { msg_id: 'g1-a-1', idx: 0, value: 1, receiver: 'r1' },
      { msg_id: 'g1-a-1', idx: 1, value: 2, receiver: 'r1' },
      { msg_id: 'g1-a-2', idx: 0, value: 3, receiver: 'r2' },
    ]);
  });

  it('commits template state with the readings, in the format of the PostgreSQL store', async () => {
    const record = { aid: 42, templates: [[1, 'sig{}', ['a', 'b']]] as [number, string, string[]][] };
    await db.commit([row('g1-b-1', 0, 5)], [{ key: '42', record }], 'r1');
    expect(await db.templates(['42', '43'])).toEqual([record, undefined]);
    expect(await db.templateKeys()).toContain('42');
    const store = await openPostgresStore<{ templates: unknown }>({ connection: pgUrl, schema: 'dedup', kinds: ['templates'] });
    try {
      expect(await store.get('templates', '42')).toEqual(record);
    } finally {
      await store.close();
    }
    await db.commit([], [{ key: '42', record: undefined }], 'r1');
    expect(await db.templates(['42'])).toEqual([undefined]);
  });

  it('a failed commit stores neither readings nor templates (ERR_CLUSTER_STORE)', async () => {
    const bad = { ...row('g1-c-1', 0, 1), value: Number.NaN, deviceId: 'x\u0000' };
    await expect(db.commit([bad], [{ key: '77', record: { aid: 77, templates: [] } }], 'r1')).rejects.toMatchObject({ code: 'ERR_CLUSTER_STORE' });
    expect(await db.templates(['77'])).toEqual([undefined]);
    expect(await db.query('SELECT 1 FROM $schema.os_cluster_readings WHERE msg_id = $1', ['g1-c-1'])).toEqual([]);
  });

  it('a commit fenced by an older claim is refused in its transaction (ERR_CLUSTER_FENCED): nothing stored', async () => {
    const sessions = [{ kind: 'auth' as const, aid: 42, partition: 5, record: { aid: 42, window: 'a' } }];
    expect(await db.claimPartition(5, 'ra', 10)).toBe(true);
    await db.commit([row('f-a-1', 0, 1)], [], 'ra', [], sessions, { partition: 5, revision: 10 });
    // rb claims the partition (a newer lease revision); ra, paused past its lease, commits on.
    expect(await db.claimPartition(5, 'rb', 20)).toBe(true);
    const stale = [{ kind: 'auth' as const, aid: 42, partition: 5, record: { aid: 42, window: 'stale' } }];
    await expect(db.commit([row('f-a-2', 0, 2)], [{ key: '42', record: { aid: 42, templates: [] } }], 'ra', [], stale, { partition: 5, revision: 10 })).rejects.toMatchObject({ code: 'ERR_CLUSTER_FENCED' });
    expect(await db.query('SELECT 1 FROM $schema.os_cluster_readings WHERE msg_id = $1', ['f-a-2'])).toEqual([]);
    expect(await db.templates(['42'])).toEqual([undefined]);
    expect(await db.sessionRecords('auth', ['42'])).toEqual([{ aid: 42, window: 'a' }]);
    await db.commit([row('f-b-1', 0, 3)], [], 'rb', [], [], { partition: 5, revision: 20 });
    // The stale claim is refused; a claim with force (its holder checked the lease) is recorded.
    expect(await db.claimPartition(5, 'ra', 10)).toBe(false);
    expect(await db.claimPartition(5, 'ra', 3, true)).toBe(true);
    await expect(db.commit([row('f-b-2', 0, 4)], [], 'rb', [], [], { partition: 5, revision: 20 })).rejects.toMatchObject({ code: 'ERR_CLUSTER_FENCED' });
    // A partition nobody claimed: refused too.
    await expect(db.commit([], [], 'rc', [], [], { partition: 6, revision: 1 })).rejects.toMatchObject({ code: 'ERR_CLUSTER_FENCED' });
  });
});
