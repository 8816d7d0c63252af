import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { describe, expect, it } from 'vitest';
import { osNode, startOsNode } from './helpers/run.js';

interface DeviceSummary {
  name: string;
  aid: number;
  medium: 'udp' | 'mqtt';
  wantsSecure: boolean;
  secureSession: boolean;
  sent: number;
  kinds: { FULL: number; DIFF: number; HEART: number };
  wireBytes: number;
  jsonBytes: number;
}

interface Summary {
  event: 'summary';
  database: string;
  mqtt: string | null;
  devices: DeviceSummary[];
  sent: number;
  decoded: { frames: number; values: number; secure: number; kinds: { FULL: number; DIFF: number; HEART: number } };
  stored: { readings: number; devices: number };
  server: { errors: Record<string, number>; dropped: Record<string, number> };
  wireBytes: number;
  jsonBytes: number;
  query: string;
}

describe('os-node demo', () => {
  it('devices get ids, stream FULL/DIFF/HEART, some in secure sessions; every decoded value is stored; the wire is smaller than JSON', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'os-cli-demo-')), 'demo.db');
    const r = await osNode(['demo', '--seconds', '4', '--devices', '3', '--secure', '2', '--interval-ms', '100', '--db', db, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
    const summary = events.at(-1) as unknown as Summary;
    expect(summary.event).toBe('summary');
    expect(summary.database).toBe(db);

    // Ids through the handshake: one per device, distinct, from the demo server's range.
    const ids = events.filter((e) => e.event === 'device');
    const expectedDevices = 3 + (summary.mqtt === null ? 0 : 1);
    expect(ids).toHaveLength(expectedDevices);
    expect(new Set(ids.map((e) => e.aid)).size).toBe(expectedDevices);
    for (const e of ids) expect(e.aid).toBeGreaterThanOrEqual(1000);
    expect(summary.devices.map((d) => d.aid).sort()).toEqual(ids.map((e) => e.aid).sort());

    // FULL, DIFF and HEART all seen, sent and decoded.
    for (const k of ['FULL', 'DIFF', 'HEART'] as const) expect(summary.decoded.kinds[k], k).toBeGreaterThan(0);
    const readings = events.filter((e) => e.event === 'reading');
    expect(readings).toHaveLength(summary.decoded.frames);
    expect(new Set(readings.map((e) => e.strategy))).toEqual(new Set(['FULL', 'DIFF', 'HEART']));

    // Secure sessions came up for the devices that take them, and only for those.
    const udp = summary.devices.filter((d) => d.medium === 'udp');
    expect(udp.filter((d) => d.wantsSecure)).toHaveLength(2);
    for (const d of summary.devices) expect(d.secureSession, d.name).toBe(d.wantsSecure);
    expect(summary.decoded.secure).toBeGreaterThan(0);
    for (const e of readings) {
      const d = summary.devices.find((x) => x.aid === e.aid) as DeviceSummary;
      if (!d.wantsSecure) expect(e.secure).toBe(false);
    }
    // Over MQTT too when a broker ran.
    if (summary.mqtt !== null) expect(readings.some((e) => e.via === 'mqtt' && e.secure === true)).toBe(true);

    // Everything sent was decoded, nothing refused or dropped, and every decoded value stored.
    expect(summary.decoded.frames).toBe(summary.sent);
    expect(summary.server.errors).toEqual({});
    expect(summary.server.dropped).toEqual({ iterator: 0, sink: 0, rejected: 0, device: 0 });
    expect(summary.stored.readings).toBe(summary.decoded.values);
    expect(summary.decoded.values).toBe(summary.decoded.frames * 3);
    const sink = await openSqliteReadingsSink({ path: db, readonly: true });
    expect((await sink.status()).stored.readings).toBe(summary.decoded.values);
    await sink.close();

    // Bytes on the wire against the same readings as JSON, per device and in total.
    expect(summary.wireBytes).toBe(summary.devices.reduce((n, d) => n + d.wireBytes, 0));
    expect(summary.wireBytes).toBeLessThan(summary.jsonBytes);
    for (const e of readings) if (e.wireBytes !== null) expect(e.wireBytes as number).toBeLessThan(e.jsonBytes as number);

    // The command it prints queries what it stored.
    const [, ...args] = summary.query.split(' ');
    const q = await osNode([...(args as string[]), '--json']);
    expect(q.code).toBe(0);
    const first = summary.devices[0] as DeviceSummary;
    expect(JSON.parse(q.stdout).readings.every((x: { aid: number }) => x.aid === first.aid)).toBe(true);
  });

  it('human output: readings, sizes and where the data is; Ctrl-C stops it early (exit 130) with the summary', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'os-cli-demo-')), 'demo.db');
    const run = startOsNode(['demo', '--seconds', '60', '--devices', '2', '--no-mqtt', '--db', db]);
    let dashboard: string | undefined;
    for (;;) {
      const { value, done } = await run.lines.next();
      if (done) throw new Error('demo ended early');
      dashboard ??= /dashboard (http:\/\/127\.0\.0\.1:\d+\/)/.exec(value as string)?.[1];
      if (/ HEART /.test(value as string)) break;
    }
    // The printed dashboard URL serves the demo's devices while it runs.
    expect(dashboard).toBeDefined();
    const seen = (await (await fetch(`${dashboard}api/devices`)).json()) as { devices: { deviceId: string; position: { geohash: string; lat: number; lon: number } | null }[] };
    expect(seen.devices.map((d) => d.deviceId).sort()).toEqual(['dev-1', 'dev-2']);
    // Both send a geohash (the third device of a demo would not): the map has their places.
    for (const d of seen.devices) {
      expect(d.position?.geohash).toMatch(/^u1zr2[0-9b-hjkmnp-z]{2}$/);
      expect(d.position?.lat).toBeCloseTo(56.1, 0);
    }
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stdout).toMatch(/B wire \/ \d+ B JSON/);
    expect(r.stdout).toContain(`the data: ${db}`);
    expect(r.stdout).toContain(`os-node db query ${db}`);
    const stored = Number(/stored in SQLite: (\d+) sensor value\(s\) of (\d+) decoded/.exec(r.stdout)?.[1]);
    const decoded = Number(/stored in SQLite: (\d+) sensor value\(s\) of (\d+) decoded/.exec(r.stdout)?.[2]);
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBe(decoded);
  });

  it('bad options exit 2', async () => {
    for (const args of [['demo', '--seconds', '0'], ['demo', '--devices', '2', '--secure', '3'], ['demo', '--interval-ms', 'x']]) {
      const r = await osNode(args);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });
});
