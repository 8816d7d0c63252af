import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { controlPostgres } from '@opensynaptic/config/postgres';
import { deviceDeltas, isStoreError } from '@opensynaptic/store';
import { abstractReadingsSinkSuite, abstractStoreSuite, sampleFrame } from '@opensynaptic/store/testing';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { openPostgresReadingsBackend, openPostgresReadingsSink, openPostgresStore } from '../src/index.js';
import { sample } from './fixtures/child.js';

const url = inject('pgUrl');
const unavailable = inject('pgUnavailable');
if (unavailable !== '') console.warn(`SKIPPED: ${unavailable}`);
process.env.OS_TEST_PG_URL = url;

const here = dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
let schemas = 0;
const newSchema = () => `t${process.pid}_${++schemas}`;
const killChild = () => {
  const work = mkdtempSync(join(tmpdir(), 'pg-kill-'));
  dirs.push(work);
  const [moduleUrl] = compileForChild([join(here, 'fixtures', 'child.ts')], join(work, 'bundle'));
  return { killLoop, moduleUrl: moduleUrl!, workDir: work };
};

describe.skipIf(unavailable !== '')('PostgreSQL', () => {
  abstractStoreSuite({ describe, it }, {
    name: 'PostgreSQL store',
    newLocation: newSchema,
    open: (schema) => openPostgresStore({ connection: url, schema }),
    persistent: true,
    kinds: ['templates', 'leases'],
    sample,
    index: (_kind, v) => (v as { n: number }).n,
    kill: unavailable === '' ? { ...killChild(), rounds: 4 } : undefined,
  });

  abstractReadingsSinkSuite({ describe, it }, {
    name: 'PostgreSQL readings sink',
    newLocation: newSchema,
    open: (schema, options) => openPostgresReadingsSink({ connection: url, schema, ...options }),
    persistent: true,
    kill: unavailable === '' ? { ...killChild(), rounds: 4 } : undefined,
  });

  it('rejects at open with ERR_STORE_READ naming the server when it cannot be reached', async () => {
    const port = Number(new URL(url).port);
    const wrong = `postgres://postgres@127.0.0.1:${port === 1 ? 2 : 1}/postgres`;
    const err = await openPostgresReadingsSink({ connection: wrong, connectTimeoutMs: 2000 }).catch((e) => e);
    expect(isStoreError(err, 'ERR_STORE_READ') && /127\.0\.0\.1:[12]\/postgres/.test(err.message)).toBe(true);
    const bad = await openPostgresStore({ connection: url, schema: 'Robert"); DROP' }).catch((e) => e);
    expect(isStoreError(bad, 'ERR_STORE_OPTION')).toBe(true);
  });

  it('commits a retried batch once when its first commit landed but its answer was lost', async () => {
    const schema = newSchema();
    const backend = await openPostgresReadingsBackend({ connection: url, schema });
    try {
      const frames = [sampleFrame(5, 1), sampleFrame(5, 2)];
      const batch = { id: 'batch-1', frames, readings: 4, devices: deviceDeltas(frames), atMs: Date.now() };
      await backend.commit(batch);
      await backend.commit(batch); // the retry of a commit whose answer never came
      const st = await backend.status();
      expect([st.readings, st.devices]).toEqual([4, 1]);
      expect((await backend.query({ limit: 100, order: 'asc' })).length).toBe(4);
      expect((await backend.devices({ limit: 10 }))[0]?.frames.FULL).toBe(2);
    } finally {
      await backend.close();
    }
  });

  it('keeps what it accepted while the server is down, writes it once the server is back, and never crashes', async () => {
    const errors: string[] = [];
    const sink = await openPostgresReadingsSink({ connection: url, schema: newSchema(), retryMinMs: 50, retryMaxMs: 200, connectTimeoutMs: 1000, onError: (e) => errors.push(e.message) });
    try {
      await sink.write([sampleFrame(9, 1)]);
      await sink.flush();
      controlPostgres(inject('pgDataDir'), 'stop');
      try {
        await sink.write([sampleFrame(9, 2), sampleFrame(9, 3)]);
        await expect(sink.flush()).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE'));
        expect((await sink.status().catch((e) => e)).code).toBe('ERR_STORE_READ');
      } finally {
        controlPostgres(inject('pgDataDir'), 'start');
      }
      await vi.waitFor(async () => expect((await sink.status()).committed).toBe(6), { timeout: 20_000, interval: 50 });
      await sink.flush();
      const st = await sink.status();
      expect([st.stored.readings, st.lost, st.failedAttempts > 0, errors.length > 0]).toEqual([6, 0, true, true]);
      expect((await sink.query({ aid: 9 })).map((r) => r.value)).toEqual([1, 1.1, 2, 2.1, 3, 3.1]);
    } finally {
      await sink.close();
    }
  }, 60_000);

  it('batches in flight at once that touch the same devices in any order commit without deadlocks', async () => {
    const errors: string[] = [];
    const sink = await openPostgresReadingsSink({ connection: url, schema: newSchema(), maxConnections: 5, batchSize: 40, onError: (e) => errors.push(e.message) });
    let n = 0;
    for (let round = 0; round < 40; round++) {
      // Forty devices per batch, in rising then falling order: two transactions in flight take
      // the same device rows in opposite orders unless the upsert orders them.
      const aids = Array.from({ length: 40 }, (_, i) => (round % 2 === 0 ? i : 39 - i));
      await sink.write(aids.map((aid) => sampleFrame(aid, n++, { sensors: 1 })));
    }
    await sink.flush();
    const st = await sink.status();
    expect(errors).toEqual([]);
    expect([st.committed, st.stored.readings, st.failedAttempts]).toEqual([n, n, 0]);
    await sink.close();
  });
});
