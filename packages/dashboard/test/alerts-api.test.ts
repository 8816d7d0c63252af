import { isOpenSynapticError } from '@opensynaptic/internal';
import { OpenSynapticServer } from '@opensynaptic/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type Alert, type AlertRule, DashboardService, type HealthRates, RateMeter } from '../src/index.js';
import { committed, type Stack, stack, tick, until } from './helpers.js';

const TOKEN = 'a-test-token-of-some-length';
const auth = { authorization: `Bearer ${TOKEN}` };
const HOT = { id: 'hot', kind: 'above', sensor: 'T1', threshold: 320, hysteresis: 5, severity: 'critical', cooldownMs: 0 };

interface ErrorBody {
  error: { code: string; message: string; key?: string };
}

describe('the alerts API against a real server (UDP, SQLite)', () => {
  let s: Stack;
  const send = (body: unknown, method = 'POST', query = '') => fetch(`${s.base}/api/alert-rules${query}`, { method, headers: { ...auth, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  beforeAll(async () => {
    s = await stack(1, { token: TOKEN, alertRules: [HOT], rateWindowMs: 500 });
  });
  afterAll(() => s?.close());

  it('lists the rules of the options', async () => {
    const res = await fetch(`${s.base}/api/alert-rules`, { headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { rules: AlertRule[]; limits: { maxAlertRules: number } };
    expect(body.rules).toEqual([{ ...HOT, enabled: true }]);
    expect(body.limits.maxAlertRules).toBe(256);
  });

  it('creates, replaces and deletes rules (POST, PUT, DELETE)', async () => {
    const created = await send({ kind: 'below', unit: 'humidity', threshold: 10 });
    expect(created.status).toBe(201);
    const { rule } = (await created.json()) as { rule: AlertRule };
    expect(rule).toMatchObject({ id: 'rule-2', kind: 'below', unit: 'humidity', severity: 'warning' });
    const again = await send({ id: 'rule-2', kind: 'below', unit: '%', threshold: 10 });
    expect(again.status).toBe(409);
    expect(((await again.json()) as ErrorBody).error).toMatchObject({ code: 'ERR_DASHBOARD_CONFLICT', key: 'id' });
    const replaced = await send({ kind: 'below', unit: '%', threshold: 15, severity: 'info' }, 'PUT', '?id=rule-2');
    expect(replaced.status).toBe(200);
    const fresh = await send({ kind: 'stale', afterMs: 60_000 }, 'PUT', '?id=quiet');
    expect(fresh.status).toBe(201);
    const one = (await (await fetch(`${s.base}/api/alert-rules?id=rule-2`, { headers: auth })).json()) as { rule: AlertRule };
    expect(one.rule).toMatchObject({ threshold: 15, severity: 'info' });
    expect((await fetch(`${s.base}/api/alert-rules?id=rule-2`, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await fetch(`${s.base}/api/alert-rules?id=quiet`, { method: 'DELETE', headers: auth })).status).toBe(200);
    const gone = await fetch(`${s.base}/api/alert-rules?id=rule-2`, { method: 'DELETE', headers: auth });
    expect(gone.status).toBe(404);
    const list = (await (await fetch(`${s.base}/api/alert-rules`, { headers: auth })).json()) as { rules: AlertRule[] };
    expect(list.rules.map((r) => r.id)).toEqual(['hot']);
  });

  it.each([
    [{ kind: 'above', sensor: 'T1', threshold: 'high' }, 'threshold', 'ERR_DASHBOARD_RULE'],
    [{ kind: 'above', threshold: 3 }, 'sensor', 'ERR_DASHBOARD_RULE'],
    [{ kind: 'sideways', sensor: 'T1', threshold: 3 }, 'kind', 'ERR_DASHBOARD_RULE'],
    [{ kind: 'stale', afterMs: 0 }, 'afterMs', 'ERR_DASHBOARD_RULE'],
    [{ kind: 'above', sensor: 'T1', threshold: 3, extra: 1 }, 'extra', 'ERR_DASHBOARD_RULE'],
    [[1, 2], 'rule', 'ERR_DASHBOARD_RULE'],
    ['{not json', undefined, 'ERR_DASHBOARD_BODY'],
  ])('answers 400 for the rule %j naming %s', async (body, key, code) => {
    const res = await send(body);
    expect(res.status).toBe(400);
    const e = ((await res.json()) as ErrorBody).error;
    expect(e.code).toBe(code);
    expect(e.key).toBe(key);
    if (key !== undefined) expect(e.message).toContain(key);
  });

  it('answers 413 for a body past maxBodyBytes, 400 for a PUT without id or with another id in the body', async () => {
    expect((await send({ kind: 'above', sensor: 'T1', threshold: 1, message: 'x'.repeat(20_000) })).status).toBe(413);
    const noId = await send({ kind: 'above', sensor: 'T1', threshold: 1 }, 'PUT');
    expect(noId.status).toBe(400);
    expect(((await noId.json()) as ErrorBody).error.key).toBe('id');
    const other = await send({ id: 'b', kind: 'above', sensor: 'T1', threshold: 1 }, 'PUT', '?id=a');
    expect(((await other.json()) as ErrorBody).error.key).toBe('id');
  });

  it('needs the token for every rule write (401 without it)', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${s.base}/api/alert-rules?id=hot`, { method, body: method === 'DELETE' ? null : JSON.stringify(HOT) });
      expect(res.status).toBe(401);
    }
    expect((await fetch(`${s.base}/api/alert-rules`, { headers: auth })).status).toBe(200);
    const list = (await (await fetch(`${s.base}/api/alert-rules`, { headers: auth })).json()) as { rules: AlertRule[] };
    expect(list.rules.map((r) => r.id)).toEqual(['hot']);
  });

  it.each([
    ['state=open', 'state'],
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['severity=loud', 'severity'],
    ['aid=-1', 'aid'],
    ['sort=asc', 'sort'],
    ['limit=1&limit=2', 'limit'],
  ])('answers 400 naming the parameter for GET /api/alerts?%s', async (query, key) => {
    const res = await fetch(`${s.base}/api/alerts?${query}`, { headers: auth });
    expect(res.status).toBe(400);
    const e = ((await res.json()) as ErrorBody).error;
    expect(e).toMatchObject({ code: 'ERR_DASHBOARD_QUERY', key });
  });

  it('fires an alert from a real reading, pushes it live, lists it, and clears it', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    const ws = new WebSocket(`${s.base.replace('http', 'ws')}/api/live?token=${TOKEN}`);
    const messages: { type: string; event?: string; alert?: Alert; alerts?: { active: Alert[] } }[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    await until(() => messages.some((m) => m.type === 'hello'), 'the hello');
    expect(messages[0]?.alerts?.active).toEqual([]);
    await d.send([['T1', 'OK', 55, 'Cel'], ['H1', 'OK', 40, '%']]); // 328.15 K > 320
    await until(() => messages.some((m) => m.type === 'alert' && m.event === 'fired'), 'the fired alert pushed');
    const fired = messages.find((m) => m.type === 'alert')?.alert as Alert;
    expect(fired).toMatchObject({ ruleId: 'hot', severity: 'critical', aid: d.aid, deviceId: d.name, sensorId: 'T1', unit: 'temperature', limit: 320, clearedAtMs: null });
    expect(fired.value).toBeCloseTo(328.15, 9);
    const listed = (await (await fetch(`${s.base}/api/alerts`, { headers: auth })).json()) as { active: Alert[]; recent: Alert[] };
    expect(listed.active.map((a) => a.id)).toEqual([fired.id]);
    // A new connection gets it in its hello (a page resyncs from there).
    const hello = await new Promise<{ alerts: { active: Alert[] } }>((ok) => {
      const ws2 = new WebSocket(`${s.base.replace('http', 'ws')}/api/live?token=${TOKEN}`);
      ws2.once('message', (data) => {
        ok(JSON.parse(String(data)));
        ws2.close();
      });
    });
    expect(hello.alerts.active.map((a) => a.id)).toEqual([fired.id]);
    // 44 Cel = 317.15 K: under the threshold but not past the hysteresis (315): still active.
    await d.send([['T1', 'OK', 44, 'Cel'], ['H1', 'OK', 40, '%']]);
    await until(async () => (await committed(s.server)) >= 4, 'stored');
    await tick(150);
    expect(messages.filter((m) => m.type === 'alert')).toHaveLength(1);
    await d.send([['T1', 'OK', 30, 'Cel'], ['H1', 'OK', 40, '%']]);
    await until(() => messages.some((m) => m.type === 'alert' && m.event === 'cleared'), 'the cleared alert pushed');
    const cleared = messages.find((m) => m.event === 'cleared')?.alert as Alert;
    expect(cleared).toMatchObject({ id: fired.id, clearedBy: 'condition' });
    const after = (await (await fetch(`${s.base}/api/alerts?severity=critical&limit=10`, { headers: auth })).json()) as { active: Alert[]; recent: Alert[] };
    expect(after.active).toEqual([]);
    expect(after.recent.map((a) => [a.id, a.clearedBy])).toEqual([[fired.id, 'condition']]);
    const none = (await (await fetch(`${s.base}/api/alerts?rule=other`, { headers: auth })).json()) as { recent: Alert[] };
    expect(none.recent).toEqual([]);
    ws.close();
  });

  it('adds rates to the health document: frames/s, readings/s, per transport, the store write rate and backlog', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    // Readings all through the rate window (500 ms here; the feed samples every 200 ms).
    const end = Date.now() + 1200;
    while (Date.now() < end) {
      await d.send();
      await tick(40);
    }
    const h = (await (await fetch(`${s.base}/api/health`, { headers: auth })).json()) as { rates: HealthRates };
    const r = h.rates;
    expect(r.spanMs).toBeGreaterThanOrEqual(500);
    expect(r.server.readingsPerS).toBeGreaterThan(0);
    expect(r.server.framesPerS).toBeGreaterThan(0);
    expect(r.transports.udp?.framesInPerS).toBeGreaterThan(0);
    expect(r.transports.udp?.dropped).toBe(0);
    expect(r.storage.storage?.committedPerS).toBeGreaterThan(0);
    expect(r.storage.storage?.buffered).toBe(0);
    expect(r.storage.storage?.maxBuffered).toBeGreaterThan(0);
    expect(r.storage.storage?.sizeBytes).toBeGreaterThan(0);
    // At most one frame of 2 readings per 40 ms was sent: 50 readings/s.
    expect(r.server.readingsPerS as number).toBeLessThanOrEqual(50);
  });
});

describe('rule writes without a token configured', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await stack(0);
  });
  afterAll(() => s?.close());

  it('are refused (403), reads answer', async () => {
    const res = await fetch(`${s.base}/api/alert-rules`, { method: 'POST', body: JSON.stringify(HOT) });
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorBody).error.code).toBe('ERR_DASHBOARD_TOKEN');
    expect((await fetch(`${s.base}/api/alert-rules`)).status).toBe(200);
    expect((await fetch(`${s.base}/api/alerts`)).status).toBe(200);
    expect((await fetch(`${s.base}/api/alerts`, { method: 'PATCH' })).status).toBe(403);
  });
});

describe('alert, gauge and rate options', () => {
  const server = new OpenSynapticServer({ transports: [{ medium: 'udp', options: { host: '127.0.0.1', port: 0 } }] });
  it.each([
    [{ alertRules: [{ id: 'a', kind: 'above', sensor: 'T1' }] }, 'alertRules[0].threshold'],
    [{ alertRules: [{ id: 'a', kind: 'stale', afterMs: 5 }, { id: 'a', kind: 'stale', afterMs: 5 }] }, 'alertRules[1].id'],
    [{ maxAlertRules: 0 }, 'maxAlertRules'],
    [{ maxAlertRules: 1, alertRules: [{ id: 'a', kind: 'stale', afterMs: 5 }, { id: 'b', kind: 'stale', afterMs: 5 }] }, 'alertRules'],
    [{ maxAlertHistory: 0 }, 'maxAlertHistory'],
    [{ alertCheckIntervalMs: 1 }, 'alertCheckIntervalMs'],
    [{ gaugeRanges: { units: { temperature: { min: 10, max: 5 } } } }, 'gaugeRanges.units.temperature.max'],
    [{ gaugeRanges: { devices: {} } }, 'gaugeRanges.devices'],
    [{ rateWindowMs: 10 }, 'rateWindowMs'],
  ])('refuse %j naming %s', (options, key) => {
    let error: unknown;
    try {
      new DashboardService(server, options as never);
    } catch (e) {
      error = e;
    }
    expect(isOpenSynapticError(error, 'ERR_DASHBOARD_OPTION')).toBe(true);
    expect((error as { key: string }).key).toBe(key);
  });
});

describe('the rate meter', () => {
  const doc = (frames: number, framesIn: number, committed: number) => ({ server: { frames, readings: frames, dropped: {}, errors: {} }, transports: { udp: { framesIn, framesOut: 0, bytesIn: 0, dropped: { 'queue-full': 0 } } }, services: { storage: { committed, buffered: 3, maxBuffered: 100, lost: 0, stored: { sizeBytes: 4096 } } } });
  it('answers rates over the newest sample at least the window old, null before a second one and after a reset', () => {
    const m = new RateMeter(1000);
    expect(m.observe(doc(0, 0, 0), 10_000).server.framesPerS).toBeNull();
    m.observe(doc(5, 5, 5), 10_500);
    const r = m.observe(doc(20, 20, 40), 11_000);
    expect(r.spanMs).toBe(1000);
    expect(r.server.framesPerS).toBe(20);
    expect(r.transports.udp).toMatchObject({ framesInPerS: 20, dropped: 0 });
    expect(r.storage.storage).toMatchObject({ committedPerS: 40, buffered: 3, maxBuffered: 100, sizeBytes: 4096 });
    // A transport restarted (its counter went down): no rate rather than a negative one.
    expect(m.observe(doc(30, 2, 50), 12_000).transports.udp?.framesInPerS).toBeNull();
  });
});
