import { isOpenSynapticError } from '@opensynaptic/internal';
import { OpenSynapticServer } from '@opensynaptic/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type ConsoleResult, DashboardService, decodeGeohash, type DeviceView, type InspectedFrame } from '../src/index.js';
import { postJson, type Stack, stack, until, withGeohash } from './helpers.js';

const TOKEN = 'a-console-token-of-some-length';

describe('the console needs the token always', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await stack(1);
  });
  afterAll(() => s?.close());

  it('is refused (403) when no token is configured', async () => {
    const r = await postJson(s.base, '/api/console', { aid: s.devices[0]?.aid, action: 'ping' });
    expect(r.status).toBe(403);
    expect((r.body.error as { code: string }).code).toBe('ERR_DASHBOARD_TOKEN');
    expect((await fetch(`${s.base}/api/console`)).status).toBe(405);
  });
});

describe('the console against a real server (UDP) and simulated device nodes', () => {
  let s: Stack;
  const post = (body: unknown, token: string | undefined = TOKEN) => postJson(s.base, '/api/console', body, token);
  beforeAll(async () => {
    s = await stack(2, { token: TOKEN, consoleTimeoutMs: 3000 });
    for (const d of s.devices) await d.send();
    await until(() => s.devices.every((d) => s.server.peerOf(d.aid) !== undefined), 'the devices heard');
  });
  afterAll(() => s?.close());

  it('refuses a request without the token or with a wrong one (401)', async () => {
    expect((await postJson(s.base, '/api/console', { aid: s.devices[0]?.aid, action: 'ping' })).status).toBe(401);
    expect((await post({ aid: s.devices[0]?.aid, action: 'ping' }, 'wrong-token-wrong-token-wrong')).status).toBe(401);
  });

  it('sends a PING and answers the matching PONG with its round trip; the feed gets it too', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    const ws = new WebSocket(`${s.base.replace('http', 'ws')}/api/live?token=${TOKEN}`);
    const pushed: ConsoleResult[] = [];
    ws.on('message', (m) => {
      const msg = JSON.parse(String(m)) as { type: string; result?: ConsoleResult };
      if (msg.type === 'console' && msg.result !== undefined) pushed.push(msg.result);
    });
    await new Promise((ok) => ws.once('open', ok));
    const r = await post({ aid: d.aid, action: 'ping' });
    expect(r.status).toBe(200);
    const result = r.body as unknown as ConsoleResult;
    expect(result.sent.command).toBe('PING');
    expect(result.sent.hex).toMatch(/^09[0-9a-f]{4}$/);
    expect(result.via).toBe('udp');
    expect(result.peer).toBe(`udp:127.0.0.1:${(d.transport as unknown as { address: { port: number } }).address.port}`);
    expect(result.timedOut).toBe(false);
    expect(result.reply?.command).toBe('PONG');
    expect(result.reply?.seq).toBe(result.sent.seq);
    expect(result.reply?.hex).toBe(`0a${result.sent.hex.slice(2)}`);
    expect(result.reply?.result).toEqual({ status: 'PONG', seq: result.sent.seq });
    expect(result.reply?.rttMs).toBeGreaterThanOrEqual(0);
    expect(result.reply?.rttMs).toBeLessThan(3000);
    await until(() => pushed.length === 1, 'the console message on the feed');
    expect(pushed[0]?.reply?.seq).toBe(result.sent.seq);
    ws.close();
  });

  it('sends TIME_REQUEST, ID_ASSIGN and raw hex, each answered', async () => {
    const d = s.devices[1];
    if (d === undefined) throw new Error('no device');
    const time = (await post({ aid: d.aid, action: 'time-request' })).body as unknown as ConsoleResult;
    expect(time.reply?.command).toBe('TIME_RESPONSE');
    expect(time.reply?.seq).toBe(time.sent.seq);
    const serverTime = Number((time.reply?.result as { server_time?: number } | undefined)?.server_time);
    expect(Math.abs(serverTime - Date.now() / 1000)).toBeLessThan(5);
    const assign = (await post({ aid: d.aid, action: 'id-assign', id: 4_294_967_294 })).body as unknown as ConsoleResult;
    expect(assign.sent.hex.slice(6, 14)).toBe('fffffffe');
    expect(assign.reply?.command).toBe('HANDSHAKE_ACK');
    expect(assign.reply?.seq).toBe(assign.sent.seq);
    const raw = (await post({ aid: d.aid, action: 'raw', hex: '09 12 34' })).body as unknown as ConsoleResult;
    expect(raw.sent.hex).toBe('091234');
    expect(raw.reply).toMatchObject({ command: 'PONG', seq: 0x1234, hex: '0a1234' });
  });

  it('times out when the device does not answer', async () => {
    const d = s.devices[1];
    if (d === undefined) throw new Error('no device');
    // A HANDSHAKE_ACK asks for no answer: the console waits for any control packet and gets none.
    const r = (await post({ aid: d.aid, action: 'raw', hex: '050001', timeoutMs: 300 })).body as unknown as ConsoleResult;
    expect(r).toMatchObject({ reply: null, timedOut: true });
    // timeoutMs 0: sent, not waited for. (Last: a raw packet that calls for no reply takes any
    // control packet of the device as its reply, this PING's PONG too.)
    const quick = (await post({ aid: d.aid, action: 'ping', timeoutMs: 0 })).body as unknown as ConsoleResult;
    expect(quick).toMatchObject({ reply: null, timedOut: false });
  });

  it.each([
    [{ action: 'ping' }, 'aid'],
    [{ aid: -1, action: 'ping' }, 'aid'],
    [{ aid: 4_294_967_296, action: 'ping' }, 'aid'],
    [{ aid: '1', action: 'ping' }, 'aid'],
    [{ aid: 1, action: 'reboot' }, 'action'],
    [{ aid: 1, action: 'id-assign' }, 'id'],
    [{ aid: 1, action: 'id-assign', id: 0 }, 'id'],
    [{ aid: 1, action: 'id-assign', id: 4_294_967_295 }, 'id'],
    [{ aid: 1, action: 'id-assign', id: 1.5 }, 'id'],
    [{ aid: 1, action: 'ping', id: 3 }, 'id'],
    [{ aid: 1, action: 'raw' }, 'hex'],
    [{ aid: 1, action: 'raw', hex: '' }, 'hex'],
    [{ aid: 1, action: 'raw', hex: '091' }, 'hex'],
    [{ aid: 1, action: 'raw', hex: 'zz' }, 'hex'],
    [{ aid: 1, action: 'raw', hex: 'ab'.repeat(513) }, 'hex'],
    [{ aid: 1, action: 'raw', hex: 'a'.repeat(100_000) }, 'hex'],
    [{ aid: 1, action: 'ping', timeoutMs: 30_001 }, 'timeoutMs'],
    [{ aid: 1, action: 'ping', extra: true }, 'extra'],
    [[1, 2], 'body'],
    ['{not json', 'body'],
  ])('refuses %j (400, key %s)', async (body, key) => {
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'ERR_DASHBOARD_CONSOLE', key });
  });

  it('refuses a body that is not JSON by its type, an unknown aid (404), and a body too large', async () => {
    const res = await fetch(`${s.base}/api/console`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'text/plain' }, body: '{}' });
    expect(res.status).toBe(400);
    const unknown = await post({ aid: 77_777, action: 'ping' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'ERR_SERVER_UNKNOWN_DEVICE', key: 'aid' });
    const big = await post(JSON.stringify({ aid: 1, action: 'raw', hex: 'a'.repeat(300_000) }));
    expect(big.status).toBe(400);
    expect(big.body.error).toMatchObject({ code: 'ERR_DASHBOARD_CONSOLE', key: 'body' });
  });
});

describe('the inspector decodes DIFF and HEART frames; the device view keeps its position', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await stack(1);
  });
  afterAll(() => s?.close());

  it('shows which sensors a DIFF changed, the template of a HEART, and the geohash', async () => {
    const d = withGeohash(s.devices[0] as NonNullable<Stack['devices'][0]>, 'u4pruydqqvj');
    // The sender goes FULL three times before it sends DIFF (the reference's threshold).
    for (let i = 0; i < 3; i++) await d.send([['T1', 'OK', 20, 'Cel'], ['H1', 'OK', 40, '%'], ['P1', 'OK', 1000, 'hPa']]);
    await d.send([['T1', 'OK', 21, 'Cel'], ['H1', 'OK', 40, '%'], ['P1', 'OK', 1000, 'hPa']]); // DIFF: T1
    await d.send([['T1', 'OK', 21, 'Cel'], ['H1', 'OK', 45, '%'], ['P1', 'OK', 1001, 'hPa']]); // DIFF: H1, P1
    await d.send([['T1', 'OK', 21, 'Cel'], ['H1', 'OK', 45, '%'], ['P1', 'OK', 1001, 'hPa']]); // HEART
    let frames: InspectedFrame[] = [];
    await until(async () => {
      frames = ((await (await fetch(`${s.base}/api/frames?aid=${d.aid}`)).json()) as { frames: InspectedFrame[] }).frames;
      return frames.length === 6 && frames.every((f) => f.decoded !== null);
    }, 'six decoded frames');
    expect(frames.map((f) => f.strategy)).toEqual(['FULL', 'FULL', 'FULL', 'DIFF', 'DIFF', 'HEART']);
    const [full, , , diff1, diff2, heart] = frames as InspectedFrame[] as [InspectedFrame, InspectedFrame, InspectedFrame, InspectedFrame, InspectedFrame, InspectedFrame];
    // A plain DIFF's mask is read; a secure one's values are compared with the previous reading.
    const by = diff1.secure ? 'previous' : 'mask';
    expect(full.decoded).toMatchObject({ changedBy: 'full', changed: ['T1', 'H1', 'P1'], template: null, geohash: 'u4pruydqqvj' });
    expect(diff1.decoded).toMatchObject({ changedBy: by, changed: ['T1'] });
    expect(diff1.decoded?.sensors.map((x) => [x.id, x.changed])).toEqual([['T1', true], ['H1', false], ['P1', false]]);
    // Kelvin: the standardizer stores SI.
    expect(diff1.decoded?.sensors[0]?.value).toBeCloseTo(294.15, 6);
    expect(diff2.decoded).toMatchObject({ changedBy: by, changed: ['H1', 'P1'] });
    expect(diff2.decoded?.sensors.find((x) => x.id === 'H1')?.value).toBe(45);
    expect(heart.decoded).toMatchObject({ changedBy: 'heart', changed: [] });
    expect(heart.decoded?.template).toMatchObject({ tid: heart.tid, values: 6 });
    expect(heart.decoded?.template?.text).toContain('T1>');
    expect(heart.decoded?.template?.text).toContain('&u4pruydqqvj|');
    expect(heart.decoded?.position?.lat).toBeCloseTo(57.64911, 4);
    // The device view keeps the latest position.
    const devices = ((await (await fetch(`${s.base}/api/devices`)).json()) as { devices: DeviceView[] }).devices;
    expect(devices[0]?.position).toMatchObject({ geohash: 'u4pruydqqvj' });
    expect(devices[0]?.position?.lon).toBeCloseTo(10.40744, 4);
  });
});

describe('decodeGeohash', () => {
  it.each([
    // The standard examples: the cell's centre within its error.
    ['ezs42', 42.605, -5.603],
    ['u4pruydqqvj', 57.64911, 10.40744],
    ['9q8yyk8yuv', 37.7749, -122.4194],
    ['s0000', 0.02197265625, 0.02197265625],
    ['EZS42', 42.605, -5.603],
  ])('%s → %f, %f', (hash, lat, lon) => {
    const p = decodeGeohash(hash);
    expect(p).not.toBeNull();
    expect(Math.abs((p?.lat ?? 0) - lat)).toBeLessThanOrEqual(Math.max(p?.latErr ?? 0, 1e-4));
    expect(Math.abs((p?.lon ?? 0) - lon)).toBeLessThanOrEqual(Math.max(p?.lonErr ?? 0, 1e-4));
  });

  it('halves the cell with each bit', () => {
    expect(decodeGeohash('s')).toEqual({ geohash: 's', lat: 22.5, lon: 22.5, latErr: 22.5, lonErr: 22.5 });
    expect(decodeGeohash('0')).toMatchObject({ lat: -67.5, lon: -157.5 });
    expect(decodeGeohash('zzzzzzzzzzzz')?.lat).toBeCloseTo(90, 6);
  });

  it.each([[''], ['a'], ['ezs4i'], ['ezs4l'], ['ezs4o'], ['u4 pr'], ['u'.repeat(23)], [12], [null], [undefined], [{}]])('gives null for %j, never throws', (bad) => {
    expect(decodeGeohash(bad)).toBeNull();
  });
});

describe('the map options', () => {
  const server = new OpenSynapticServer({ transports: [{ medium: 'udp' }] });

  it.each([['ftp://tiles.example/{z}/{x}/{y}.png'], ['https://tiles.example/{z}/{x}.png'], ['not a url {z}{x}{y}'], [42]])('refuses tileUrl %j', (tileUrl) => {
    try {
      new DashboardService(server, { tileUrl: tileUrl as string });
      expect.unreachable();
    } catch (e) {
      expect(isOpenSynapticError(e, 'ERR_DASHBOARD_OPTION')).toBe(true);
      expect((e as { key?: string }).key).toBe('tileUrl');
    }
  });

  it('refuses a bad console option', () => {
    expect(() => new DashboardService(server, { consoleTimeoutMs: 0 })).toThrow(/consoleTimeoutMs/);
    expect(() => new DashboardService(server, { maxConsoleBytes: 70_000 })).toThrow(/maxConsoleBytes/);
  });

  it('allows the tile server in the page CSP and tells the page in its hello', async () => {
    const s = await stack(0, { tileUrl: 'https://{s}.tile.example.org/{z}/{x}/{y}.png', tileAttribution: '© example' });
    try {
      const page = await fetch(`${s.base}/`);
      expect(page.headers.get('content-security-policy')).toContain("img-src 'self' data: https://*.tile.example.org");
      const ws = new WebSocket(`${s.base.replace('http', 'ws')}/api/live`);
      const hello = await new Promise<{ map: unknown }>((ok) => ws.once('message', (m) => ok(JSON.parse(String(m)) as { map: unknown })));
      ws.close();
      expect(hello.map).toEqual({ tileUrl: 'https://{s}.tile.example.org/{z}/{x}/{y}.png', attribution: '© example' });
    } finally {
      await s.close();
    }
    const plain = await stack(0);
    try {
      expect((await fetch(`${plain.base}/`)).headers.get('content-security-policy')).toMatch(/img-src 'self' data:$/);
    } finally {
      await plain.close();
    }
  });
});
