import { OpenSynapticServer } from '@opensynaptic/server';
import { isOpenSynapticError } from '@opensynaptic/internal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CSV_HEADER, DashboardService, type DeviceView } from '../src/index.js';
import { committed, type Stack, stack, until } from './helpers.js';

const TOKEN = 'a-test-token-of-some-length';

describe('the HTTP API against a real server (UDP, SQLite)', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await stack(2);
    for (let i = 0; i < 5; i++) for (const d of s.devices) await d.send();
    await until(async () => (await committed(s.server)) === 5 * 2 * 2, 'the readings stored');
  });
  afterAll(() => s?.close());

  it('lists the devices with their state, strategy mix and bytes', async () => {
    const res = await fetch(`${s.base}/api/devices`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { devices: DeviceView[]; thresholds: { staleAfterMs: number } };
    expect(body.thresholds.staleAfterMs).toBe(10_000);
    expect(body.devices.map((d) => d.deviceId).sort()).toEqual(['sim-1', 'sim-2']);
    for (const d of body.devices) {
      expect(d.aid).toBe(s.devices.find((x) => x.name === d.deviceId)?.aid);
      expect(d.state).toBe('online');
      expect(d.frames.FULL + d.frames.DIFF + d.frames.HEART).toBe(5);
      expect(d.frames.FULL).toBeGreaterThanOrEqual(1);
      expect(d.wireBytes).toBeGreaterThan(0);
      expect(d.wireBytes).toBeLessThan(d.jsonBytes);
      expect(d.templates).toBeGreaterThanOrEqual(1);
      expect(d.sensors.map((x) => x.id).sort()).toEqual(['H1', 'T1']);
    }
  });

  it('answers the history of one sensor, in JSON and CSV, with the stored rows', async () => {
    const d = s.devices[0];
    const res = await fetch(`${s.base}/api/readings?aid=${d?.aid}&sensor=T1`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { count: number; truncated: boolean; readings: { value: number; sensorId: string }[] };
    expect(body.count).toBe(5);
    expect(body.truncated).toBe(false);
    // Sent in Cel 20.5, 21, ... 22.5; the standardizer stores kelvin.
    expect(body.readings.map((r) => Number((r.value - 273.15).toFixed(2)))).toEqual([20.5, 21, 21.5, 22, 22.5]);
    const csv = await fetch(`${s.base}/api/readings.csv?aid=${d?.aid}&sensor=T1`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe(CSV_HEADER);
    expect(lines.slice(1).map((l) => Number(l.split(',')[6]))).toEqual(body.readings.map((r) => r.value));
    const limited = (await (await fetch(`${s.base}/api/readings?aid=${d?.aid}&limit=3`)).json()) as { count: number; truncated: boolean };
    expect(limited).toMatchObject({ count: 3, truncated: true });
  });

  it.each([
    ['aid=x', 'aid'],
    ['aid=4294967296', 'aid'],
    ['from=yesterday', 'from'],
    ['from=2000&to=1000', 'to'],
    ['limit=0', 'limit'],
    ['limit=100001', 'limit'],
    ['order=up', 'order'],
    ['colour=red', 'colour'],
    ['sensor=T1&sensor=H1', 'sensor'],
  ])('answers 400 naming the parameter for %s', async (query, key) => {
    const res = await fetch(`${s.base}/api/readings?${query}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; key: string } };
    expect(body.error.code).toBe('ERR_DASHBOARD_QUERY');
    expect(body.error.key).toBe(key);
    expect(body.error.message).toContain(`"${key}"`);
  });

  it('keeps the last data frames of each device for the inspector: hex, command, strategy, CRCs, the check', async () => {
    for (const d of s.devices) {
      const res = await fetch(`${s.base}/api/frames?aid=${d.aid}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { frames: { length: number; hex: string; command: string; strategy: string; secure: boolean; check: string; body: string | null; crc16: number }[] };
      expect(body.frames).toHaveLength(5);
      for (const f of body.frames) {
        expect(f.hex).toHaveLength(2 * f.length);
        expect(f.command).toMatch(/^DATA_/);
        expect(['FULL', 'DIFF', 'HEART']).toContain(f.strategy);
        expect(f.check).toMatch(/^ok/);
        expect(f.crc16).toBe(Number.parseInt(f.hex.slice(-4), 16));
        if (!f.secure && f.strategy === 'FULL') expect(f.body).toContain(';');
      }
      expect(body.frames[0]?.strategy).toBe('FULL');
    }
    const bad = await fetch(`${s.base}/api/frames`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { key: string } }).error.key).toBe('aid');
  });

  it('serves the health document in the shape of the status file', async () => {
    const h = (await (await fetch(`${s.base}/api/health`)).json()) as Record<string, unknown> & { transports: Record<string, { medium: string; framesIn: number }>; server: { readings: number } };
    expect(h.version).toBe(1);
    expect(h.state).toBe('running');
    expect(h.transports.udp?.medium).toBe('udp');
    expect(h.transports.udp?.framesIn).toBeGreaterThanOrEqual(10);
    expect(h.server.readings).toBe(10);
    expect(Object.keys(h)).toEqual(expect.arrayContaining(['pid', 'startedAtMs', 'updatedAtMs', 'intervalMs', 'services', 'devices']));
  });

  it('answers 404, 405, and 403 for a write with no token configured', async () => {
    expect((await fetch(`${s.base}/api/nothing`)).status).toBe(404);
    expect((await fetch(`${s.base}/api/devices`, { method: 'DELETE' })).status).toBe(403);
    const forget = await fetch(`${s.base}/api/devices/forget?key=1:x`, { method: 'POST' });
    expect(forget.status).toBe(403);
    expect(((await forget.json()) as { error: { code: string } }).error.code).toBe('ERR_DASHBOARD_TOKEN');
    expect((await fetch(`${s.base}/api/devices/forget`)).status).toBe(405);
    expect((await fetch(`${s.base}/../../etc/passwd`)).status).toBe(404);
  });

  it('refuses a Host header that is not loopback when no token is set (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((ok, fail) => {
      const req = request(`${s.base}/api/devices`, { headers: { host: 'attacker.example:80' } }, (res) => {
        res.resume();
        ok(res.statusCode ?? 0);
      });
      req.on('error', fail);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('pushes a new reading over the live feed without being asked, after a hello with the whole state', async () => {
    const ws = new WebSocket(`${s.base.replace('http', 'ws')}/api/live`);
    const messages: { type: string; devices?: DeviceView[]; readings?: { key: string; sensors: { id: string; value: number }[] }[] }[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    await until(() => messages.some((m) => m.type === 'hello'), 'the hello');
    expect(messages[0]?.type).toBe('hello');
    expect(messages[0]?.devices).toHaveLength(2);
    const d = s.devices[1];
    await d?.send([['T1', 'OK', 99.5, 'Cel'], ['H1', 'OK', 41, '%']]);
    // 99.5 Cel arrives standardized: 372.65 K.
    await until(() => messages.some((m) => m.type === 'update' && (m.readings ?? []).some((r) => r.sensors.some((x) => x.id === 'T1' && Math.abs(x.value - 372.65) < 1e-9))), 'the pushed reading');
    ws.close();
  });
});

describe('the token', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await stack(1, { token: TOKEN });
    await s.devices[0]?.send();
    await until(async () => (await committed(s.server)) === 2, 'stored');
  });
  afterAll(() => s?.close());

  it('is needed for every API call and the feed once configured; the page itself is served', async () => {
    expect((await fetch(`${s.base}/api/devices`)).status).toBe(401);
    expect((await fetch(`${s.base}/api/devices`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
    expect((await fetch(`${s.base}/api/devices`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${s.base}/api/readings.csv?token=${TOKEN}`)).status).toBe(200);
    expect((await fetch(`${s.base}/`)).status).toBe(200);
    const refused = await new Promise<number>((ok) => {
      const ws = new WebSocket(`${s.base.replace('http', 'ws')}/api/live`);
      ws.on('unexpected-response', (_req, res) => ok(res.statusCode ?? 0));
      ws.on('open', () => ok(101));
    });
    expect(refused).toBe(401);
  });

  it('lets a write action through with it', async () => {
    const key = `${s.devices[0]?.aid}:sim-1`;
    expect((await fetch(`${s.base}/api/devices/forget?key=${key}`, { method: 'POST' })).status).toBe(401);
    const ok = await fetch(`${s.base}/api/devices/forget?key=${encodeURIComponent(key)}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    const body = (await (await fetch(`${s.base}/api/devices?token=${TOKEN}`)).json()) as { devices: unknown[] };
    expect(body.devices).toHaveLength(0);
  });
});

describe('options', () => {
  const server = new OpenSynapticServer({ transports: [{ medium: 'udp', options: { host: '127.0.0.1', port: 0 } }] });
  it.each([
    [{ host: '0.0.0.0' }, 'token'],
    [{ token: 'short' }, 'token'],
    [{ port: 70000 }, 'port'],
    [{ maxClients: 0 }, 'maxClients'],
    [{ staleAfterMs: 5000, offlineAfterMs: 1000 }, 'offlineAfterMs'],
    [{ maxHistoryRows: 2_000_000 }, 'maxHistoryRows'],
  ])('refuse %j naming %s', (options, key) => {
    let error: unknown;
    try {
      new DashboardService(server, options);
    } catch (e) {
      error = e;
    }
    expect(isOpenSynapticError(error, 'ERR_DASHBOARD_OPTION')).toBe(true);
    expect((error as { key: string }).key).toBe(key);
  });

  it('bind wider with a token', () => {
    expect(new DashboardService(server, { host: '0.0.0.0', token: TOKEN }).host).toBe('0.0.0.0');
  });
});
