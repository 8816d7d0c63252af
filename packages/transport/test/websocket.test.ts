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
      [{}, 'url / listen'],
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
