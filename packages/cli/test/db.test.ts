import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { beforeAll, describe, expect, it } from 'vitest';
import { osNode } from './helpers/run.js';

const dir = mkdtempSync(join(tmpdir(), 'os-cli-db-'));
const path = join(dir, 'os.db');
const T0 = 1_700_000_000_000;

beforeAll(async () => {
  const sink = await openSqliteReadingsSink({ path });
  const frames = [];
  for (let i = 0; i < 20; i++) {
    for (const [aid, deviceId] of [[7, 'dev-7'], [8, 'dev, "8"']] as const) {
      frames.push({ aid, deviceId, strategy: i === 0 ? 'FULL' : 'DIFF', timestampMs: T0 + i * 1000, receivedAtMs: T0 + i * 1000 + 5, sensors: [{ id: 't1', state: 'U', value: 290 + i / 4, unit: 'K' }, { id: 'h1', state: 'U', value: 40 + i, unit: '%' }] } as const);
    }
  }
  await sink.write(frames);
  await sink.flush();
  await sink.close();
});

function parseCsv(text: string): string[][] {
  // Enough CSV for the fields written here: quoted fields with doubled quotes and commas.
  return text
    .trim()
    .split('\n')
    .map((line) => [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(?:,|$)/g)].map((m) => m[1] as string).slice(0, -1).map((f) => (f.startsWith('"') ? f.slice(1, -1).replace(/""/g, '"') : f)));
}

describe('db status and db query, read-only, against a file the SQLite sink wrote', () => {
  it('db status counts what the sink stored', async () => {
    const r = await osNode(['db', 'status', path, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.stored.readings).toBe(80);
    expect(s.stored.devices).toBe(2);
    expect(s.devices.map((d: { aid: number; readings: number; frames: { FULL: number } }) => [d.aid, d.readings, d.frames.FULL])).toEqual([[7, 40, 1], [8, 40, 1]]);
    const human = await osNode(['db', 'status', path]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('80 reading(s)');
  });

  it('db query by device, sensor and time range gives the same readings as the sink, in CSV and JSON', async () => {
    const sink = await openSqliteReadingsSink({ path, readonly: true });
    const expected = await sink.query({ aid: 8, sensorId: 't1', fromMs: T0 + 5000, toMs: T0 + 12_000 });
    const byDevice = await sink.query({ deviceId: 'dev-7', order: 'desc', limit: 3 });
    await sink.close();
    expect(expected).toHaveLength(7);
    const args = ['db', 'query', path, '--aid', '8', '--sensor', 't1', '--from', String(T0 + 5000), '--to', new Date(T0 + 12_000).toISOString()];
    const json = await osNode([...args, '--format', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).readings).toEqual(expected);
    const csv = await osNode([...args, '--format', 'csv']);
    expect(csv.code).toBe(0);
    const [header, ...rows] = parseCsv(csv.stdout);
    expect(header).toEqual(['aid', 'deviceId', 'sensorId', 'state', 'value', 'unit', 'timestampMs', 'receivedAtMs']);
    expect(rows.map((row) => Object.fromEntries((header as string[]).map((h, i) => [h, ['aid', 'value', 'timestampMs', 'receivedAtMs'].includes(h) ? Number(row[i]) : row[i]])))).toEqual(expected);
    const desc = await osNode(['db', 'query', path, '--device', 'dev-7', '--order', 'desc', '--limit', '3', '--json']);
    expect(JSON.parse(desc.stdout).readings).toEqual(byDevice);
  });

  it('refuses a missing or damaged file (5) and bad query options (2)', async () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is not a database, just text that is long enough to be read as a header....');
    const cases: [string[], number][] = [
      [['db', 'status', join(dir, 'missing.db')], 5],
      [['db', 'query', join(dir, 'missing.db')], 5],
      [['db', 'status', junk], 5],
      [['db', 'query', path, '--order', 'sideways'], 2],
      [['db', 'query', path, '--format', 'xml'], 2],
      [['db', 'query', path, '--from', 'yesterday-ish'], 2],
      [['db', 'query', path, '--limit', '0'], 2],
      [['db', 'query', path, '--aid', '-1'], 2],
      [['db', 'query'], 2],
    ];
    for (const [args, code] of cases) {
      const r = await osNode(args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr.length).toBeGreaterThan(0);
    }
  });
});
