import { createServer, type Server } from 'node:http';
import { until } from '@opensynaptic/config/until';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { isTransportError, type TransportEvent } from '../src/index.js';
import { transportConformanceSuite } from '../src/testing.js';
import { CLOSE_UNSUPPORTED_DATA, createWebSocketTransport, type WebSocketClass, type WebSocketTransport } from '../src/websocket.js';

// Node 20 has no global WebSocket: the client is given ws's, which has the standard API.
const WS = WebSocket as unknown as WebSocketClass;
const urlOf = (t: WebSocketTransport) => `ws://127.0.0.1:${t.address!.port}`;

transportConformanceSuite({ describe, it }, {
  name: 'websocket (ws server, standard-API client)',
  connectionOriented: true,
  pair: async ({ inbound }) => {
    const b = createWebSocketTransport({ listen: { host: '127.0.0.1', port: 0 }, inbound });
    await b.start();
    const a = createWebSocketTransport({ url: urlOf(b), WebSocket: WS, inbound, reconnect: { initialDelayMs: 50 } });
    await a.start();
    return { a, b };
  },
});

async function httpServer(): Promise<Server> {
  const http = createServer((_req, res) => res.end('page'));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  return http;
}

transportConformanceSuite({ describe, it }, {
  name: 'websocket (attached to a shared HTTP server, standard-API client)',
  connectionOriented: true,
  pair: async ({ inbound }) => {
    const http = await httpServer();
    const b = createWebSocketTransport({ attach: { server: http, path: '/frames' }, inbound });
    await b.start();
    // The HTTP server outlives the transport: closed with the pair's client.
    b.on('state', ({ to }) => {
      if (to === 'stopped' || to === 'destroyed') http.close();
    });
    http.unref();
    const a = createWebSocketTransport({ url: `ws://127.0.0.1:${b.address!.port}/frames`, WebSocket: WS, inbound, reconnect: { initialDelayMs: 50 } });
    await a.start();
    return { a, b };
  },
});

async function server(options: Parameters<typeof createWebSocketTransport>[0] = {}) {
  const t = createWebSocketTransport({ listen: { host: '127.0.0.1', port: 0 }, ...options });
  const errors: TransportEvent<'error'>[] = [];
  const dropped: TransportEvent<'dropped'>[] = [];
  t.on('error', (e) => errors.push(e));
  t.on('dropped', (e) => dropped.push(e));
  await t.start();
  return { t, errors, dropped };
}

const opened = (ws: WebSocket) => new Promise<void>((r) => ws.once('open', () => r()));
const closed = (ws: WebSocket) => new Promise<number>((r) => ws.once('close', (code) => r(code)));

describe('websocket: bad input is bounded and reported', () => {
  it('a text message from a client is a protocol error: reported, dropped, the connection closed with 1003; others are served', async () => {
    const s = await server();
    try {
      const bad = new WebSocket(urlOf(s.t));
      await opened(bad);
      const code = closed(bad);
      bad.send('{"not":"a frame"}');
      expect(await code).toBe(CLOSE_UNSUPPORTED_DATA);
      expect(isTransportError(s.errors[0]?.error, 'ERR_TRANSPORT_PROTOCOL')).toBe(true);
      expect(s.t.stats().dropped.protocol).toBe(1);
      const good = new WebSocket(urlOf(s.t));
      await opened(good);
      good.send(new Uint8Array([1, 2]));
      expect([...(await s.t.frames().next()).value!.frame]).toEqual([1, 2]);
      good.close();
    } finally {
      await s.t.destroy();
    }
  });

  it('a text message from the server is a protocol error for our client, which closes with 1003', async () => {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const codes: number[] = [];
    wss.on('connection', (ws) => {
      ws.on('close', (code) => codes.push(code));
      ws.send('hello');
    });
    const c = createWebSocketTransport({ url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, WebSocket: WS, reconnect: false });
    const errors: TransportEvent<'error'>[] = [];
    c.on('error', (e) => errors.push(e));
    try {
      await c.start();
      const deadline = Date.now() + 5000;
      while (codes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(codes).toEqual([CLOSE_UNSUPPORTED_DATA]);
      expect(isTransportError(errors[0]?.error, 'ERR_TRANSPORT_PROTOCOL')).toBe(true);
      expect(c.stats().framesIn).toBe(0);
    } finally {
      await c.destroy();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });

  it('a message over maxFrameBytes closes that connection (1009) and is reported as oversize', async () => {
    const s = await server({ maxFrameBytes: 1000 });
    try {
      const big = new WebSocket(urlOf(s.t));
      await opened(big);
      const code = closed(big);
      big.send(new Uint8Array(1001));
      expect(await code).toBe(1009);
      expect(s.t.stats().dropped.oversize).toBe(1);
      expect(s.t.stats().framesIn).toBe(0);
    } finally {
      await s.t.destroy();
    }
  });

  it('pings find a half-open client (it stopped answering) and close it', async () => {
    const s = await server({ pingIntervalMs: 50 });
    const down: TransportEvent<'disconnected'>[] = [];
    s.t.on('disconnected', (e) => down.push(e));
    try {
      const frozen = new WebSocket(urlOf(s.t));
      await opened(frozen);
      // Stops reading: no pong goes back, nothing is closed from this side.
      (frozen as unknown as { _socket: { pause(): void } })._socket.pause();
      const deadline = Date.now() + 3000;
      while (down.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(down.length).toBe(1);
      expect(s.errors.some((e) => isTransportError(e.error, 'ERR_TRANSPORT_TIMEOUT'))).toBe(true);
      frozen.terminate();
    } finally {
      await s.t.destroy();
    }
  });

  it('refuses bad options with ERR_TRANSPORT_OPTION, and a client with no WebSocket class with ERR_TRANSPORT_UNSUPPORTED', async () => {
    for (const [options, field] of [
      [{}, 'url / listen / attach'],
      [{ attach: { server: {} } }, 'attach.server'],
      [{ attach: { server: { on() {}, off() {} }, path: 'live' } }, 'attach.path'],
      [{ listen: {}, attach: { server: { on() {}, off() {} } } }, 'attach'],
      [{ listen: {}, verifyUpgrade: 'yes' }, 'verifyUpgrade'],
      [{ listen: {}, maxFrameBytes: 100, maxInboundBytes: 101 }, 'maxInboundBytes'],
      [{ url: 'http://x' }, 'url'],
      [{ listen: { port: 99999 } }, 'listen.port'],
      [{ listen: { path: 'x' } }, 'listen.path'],
      [{ url: 'ws://x', WebSocket: 42 }, 'WebSocket'],
    ] as const) {
      let error: unknown;
      try {
        createWebSocketTransport(options as never);
      } catch (x) {
        error = x;
      }
      expect(isTransportError(error, 'ERR_TRANSPORT_OPTION'), JSON.stringify(options)).toBe(true);
      expect((error as { option: string }).option).toBe(field);
    }
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    delete g.WebSocket;
    try {
      const e = await createWebSocketTransport({ url: 'ws://127.0.0.1:1' }).start().catch((x: unknown) => x);
      expect(isTransportError(e, 'ERR_TRANSPORT_UNSUPPORTED')).toBe(true);
    } finally {
      if (saved !== undefined) g.WebSocket = saved;
    }
  });
});

/** The HTTP status a raw client gets for an upgrade (101 when it opened). */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((ok) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      ok(res.statusCode ?? 0);
      res.resume();
    });
    ws.on('open', () => {
      ok(101);
      ws.close();
    });
    ws.on('error', () => undefined);
  });
}

describe('websocket: a server that shares an HTTP server and checks upgrades', () => {
  it('attach: answers its path, leaves the HTTP server serving pages and running after stop()', async () => {
    const http = await httpServer();
    const port = (http.address() as { port: number }).port;
    const t = createWebSocketTransport({ attach: { server: http, path: '/live' } });
    try {
      await t.start();
      expect(t.address?.port).toBe(port);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(await page.text()).toBe('page');
      const c = new WebSocket(`ws://127.0.0.1:${port}/live?x=1`);
      await opened(c);
      c.send(new Uint8Array([7, 8, 9]));
      const got = (await t.frames().next()).value!;
      expect([...got.frame]).toEqual([7, 8, 9]);
      // The server side sends back to that peer.
      const echo = new Promise<number[]>((r) => c.once('message', (d: Buffer) => r([...d])));
      await t.send(new Uint8Array([1]), got.peer);
      expect(await echo).toEqual([1]);
      // The only upgrade listener refuses another path with 404.
      expect(await upgradeStatus(`ws://127.0.0.1:${port}/other`)).toBe(404);
      c.close();
      await t.stop();
      expect(http.listening).toBe(true);
      expect(http.listenerCount('upgrade')).toBe(0);
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('page');
    } finally {
      await t.destroy();
      await new Promise((r) => http.close(r));
    }
  });

  it('two transports attached to one HTTP server on two paths each get their own connections', async () => {
    const http = await httpServer();
    const port = (http.address() as { port: number }).port;
    const a = createWebSocketTransport({ attach: { server: http, path: '/a' } });
    const b = createWebSocketTransport({ attach: { server: http, path: '/b' } });
    try {
      await a.start();
      await b.start();
      const ca = new WebSocket(`ws://127.0.0.1:${port}/a`);
      const cb = new WebSocket(`ws://127.0.0.1:${port}/b`);
      await Promise.all([opened(ca), opened(cb)]);
      ca.send(new Uint8Array([0xa]));
      cb.send(new Uint8Array([0xb]));
      expect([...(await a.frames().next()).value!.frame]).toEqual([0xa]);
      expect([...(await b.frames().next()).value!.frame]).toEqual([0xb]);
      expect(a.peers().length).toBe(1);
      expect(b.peers().length).toBe(1);
      ca.close();
      cb.close();
    } finally {
      await a.destroy();
      await b.destroy();
      await new Promise((r) => http.close(r));
    }
  });

  it('verifyUpgrade refuses with its status (sync or async), a throw refuses with 500 and is reported; listen and attach alike', async () => {
    const http = await httpServer();
    const seen: string[] = [];
    const verifyUpgrade = async (req: { url?: string | undefined; headers: Readonly<Record<string, string | string[] | undefined>> }) => {
      seen.push(req.url ?? '');
      if (req.headers['x-boom'] !== undefined) throw new Error('boom');
      await new Promise((r) => setTimeout(r, 5));
      return req.headers.authorization === 'Bearer good' ? (true as const) : { status: 401, reason: 'Unauthorized' };
    };
    const attached = createWebSocketTransport({ attach: { server: http, path: '/live' }, verifyUpgrade });
    const listening = createWebSocketTransport({ listen: { host: '127.0.0.1', port: 0 }, verifyUpgrade });
    const errors: TransportEvent<'error'>[] = [];
    attached.on('error', (e) => errors.push(e));
    listening.on('error', (e) => errors.push(e));
    try {
      await attached.start();
      await listening.start();
      for (const base of [`ws://127.0.0.1:${(http.address() as { port: number }).port}/live`, urlOf(listening)]) {
        expect(await upgradeStatus(`${base}?t=1`)).toBe(401);
        expect(await upgradeStatus(base, { authorization: 'Bearer bad' })).toBe(401);
        expect(await upgradeStatus(base, { authorization: 'Bearer good' })).toBe(101);
        expect(await upgradeStatus(base, { 'x-boom': '1' })).toBe(500);
      }
      expect(seen.filter((u) => u.endsWith('?t=1')).length).toBe(2);
      expect(errors.filter((e) => isTransportError(e.error, 'ERR_TRANSPORT_IO')).length).toBe(2);
      await until(() => attached.peers().length + listening.peers().length === 0, 'the accepted ones closed');
      expect(attached.stats().framesIn + listening.stats().framesIn).toBe(0);
    } finally {
      await attached.destroy();
      await listening.destroy();
      await new Promise((r) => http.close(r));
    }
  });

  it('maxConnections refuses the next upgrade with 503 before it completes', async () => {
    const s = await server({ maxConnections: 1 });
    try {
      const first = new WebSocket(urlOf(s.t));
      await opened(first);
      expect(await upgradeStatus(urlOf(s.t))).toBe(503);
      expect(s.t.peers().length).toBe(1);
      first.close();
    } finally {
      await s.t.destroy();
    }
  });

  it('bufferedBytes grows for a peer that stops reading, and disconnect({ force }) cuts it', async () => {
    const s = await server({ maxPendingBytes: 64 * 1024 * 1024 });
    const down: TransportEvent<'disconnected'>[] = [];
    s.t.on('disconnected', (e) => down.push(e));
    try {
      const slow = new WebSocket(urlOf(s.t));
      await opened(slow);
      await until(() => s.t.peers().length === 1, 'the connection');
      const peer = s.t.peers()[0]!;
      expect(s.t.bufferedBytes(peer)).toBe(0);
      (slow as unknown as { _socket: { pause(): void } })._socket.pause();
      const chunk = new Uint8Array(64 * 1024);
      // Sends settle once written to the socket: a stalled reader leaves them pending.
      const sends: Promise<void>[] = [];
      await until(async () => {
        for (let i = 0; i < 16; i++) sends.push(s.t.send(chunk, peer).catch(() => undefined));
        await new Promise((r) => setTimeout(r, 5));
        return (s.t.bufferedBytes(peer) ?? 0) > 1024 * 1024;
      }, 'a backlog', 20_000);
      expect(s.t.disconnect(peer, { force: true })).toBe(true);
      await until(() => down.length === 1, 'disconnected');
      expect(s.t.bufferedBytes(peer)).toBeUndefined();
      expect(s.t.disconnect(peer)).toBe(false);
      await Promise.all(sends);
      slow.terminate();
    } finally {
      await s.t.destroy();
    }
  });

  it('maxInboundBytes bounds what is received below what may be sent', async () => {
    const s = await server({ maxFrameBytes: 100_000, maxInboundBytes: 100 });
    try {
      const c = new WebSocket(urlOf(s.t));
      await opened(c);
      await until(() => s.t.peers().length === 1, 'the connection');
      const big = new Promise<number>((r) => c.once('message', (d: Buffer) => r(d.length)));
      await s.t.send(new Uint8Array(50_000), s.t.peers()[0]!);
      expect(await big).toBe(50_000);
      const code = closed(c);
      c.send(new Uint8Array(101));
      expect(await code).toBe(1009);
      expect(s.t.stats().dropped.oversize).toBe(1);
    } finally {
      await s.t.destroy();
    }
  });
});
