import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTransportError, type TransportEvent } from '../src/index.js';
import { createTcpTransport, createUnixTransport, DEFAULT_TCP_PORT, type StreamSocketTransport } from '../src/tcp.js';
import { transportConformanceSuite } from '../src/testing.js';
import { freezeProxy } from './helpers/freeze-proxy.js';

const dir = mkdtempSync(join(tmpdir(), 'os-transport-unix-'));
let sockN = 0;
const sockPath = () => join(dir, `s${++sockN}.sock`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const portOf = (t: StreamSocketTransport) => (t.address as { port: number }).port;
const pathOf = (t: StreamSocketTransport) => (t.address as { path: string }).path;

transportConformanceSuite({ describe, it }, {
  name: 'tcp stream (length-prefixed, one connection)',
  connectionOriented: true,
  pair: async ({ inbound }) => {
    const b = createTcpTransport({ listen: { host: '127.0.0.1', port: 0 }, inbound });
    await b.start();
    const a = createTcpTransport({ connect: { host: '127.0.0.1', port: portOf(b) }, inbound, reconnect: { initialDelayMs: 50 } });
    await a.start();
    return { a, b };
  },
  halfOpen: {
    withinMs: 3000,
    pair: async () => {
      const b = createTcpTransport({ listen: { host: '127.0.0.1', port: 0 } });
      await b.start();
      const proxy = await freezeProxy(portOf(b));
      const a = createTcpTransport({ connect: { host: '127.0.0.1', port: proxy.port }, heartbeatMs: 50, idleTimeoutMs: 300, reconnect: false });
      await a.start();
      return { a, b, freeze: async () => proxy.freeze(), close: () => proxy.close() };
    },
  },
});

transportConformanceSuite({ describe, it }, {
  name: 'tcp reference mode (one frame per connection)',
  burst: 1000,
  flood: 1500,
  window: 64,
  pair: async ({ inbound }) => {
    const b = createTcpTransport({ mode: 'reference', listen: { host: '127.0.0.1', port: 0 }, inbound });
    await b.start();
    const a = createTcpTransport({ mode: 'reference', listen: { host: '127.0.0.1', port: 0 }, connect: { host: '127.0.0.1', port: portOf(b) }, inbound });
    await a.start();
    return { a, b, toA: { address: '127.0.0.1', port: portOf(a) } };
  },
});

transportConformanceSuite({ describe, it }, {
  name: 'unix socket stream',
  connectionOriented: true,
  pair: async ({ inbound }) => {
    const b = createUnixTransport({ listen: { path: sockPath() }, inbound });
    await b.start();
    const a = createUnixTransport({ connect: { path: pathOf(b) }, inbound, reconnect: { initialDelayMs: 50 } });
    await a.start();
    return { a, b };
  },
});

transportConformanceSuite({ describe, it }, {
  name: 'unix socket reference mode',
  burst: 1000,
  flood: 1500,
  window: 64,
  pair: async ({ inbound }) => {
    const b = createUnixTransport({ mode: 'reference', listen: { path: sockPath() }, inbound });
    await b.start();
    const a = createUnixTransport({ mode: 'reference', listen: { path: sockPath() }, connect: { path: pathOf(b) }, inbound });
    await a.start();
    return { a, b, toA: { path: pathOf(a) } as never };
  },
});

/** A raw client of a streaming server, for bytes our transport would never send. */
async function rawClient(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, closed };
}

async function streamServer(options: Parameters<typeof createTcpTransport>[0] = {}) {
  const t = createTcpTransport({ listen: { host: '127.0.0.1', port: 0 }, ...options });
  const errors: TransportEvent<'error'>[] = [];
  const dropped: TransportEvent<'dropped'>[] = [];
  const down: TransportEvent<'disconnected'>[] = [];
  t.on('error', (e) => errors.push(e));
  t.on('dropped', (e) => dropped.push(e));
  t.on('disconnected', (e) => down.push(e));
  await t.start();
  return { t, port: portOf(t), errors, dropped, down };
}

const waitFor = async (pred: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('tcp stream: bad input is bounded and reported', () => {
  it('refuses a length prefix announcing 4 GiB without allocating, closes that connection, serves the others', async () => {
    const s = await streamServer();
    try {
      const good = createTcpTransport({ connect: { host: '127.0.0.1', port: s.port } });
      await good.start();
      const heap = process.memoryUsage().arrayBuffers;
      const bad = await rawClient(s.port);
      bad.socket.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
      await bad.closed;
      await waitFor(() => s.errors.length > 0 && s.dropped.length > 0);
      expect(isTransportError(s.errors[0]!.error, 'ERR_TRANSPORT_PROTOCOL')).toBe(true);
      expect(s.errors[0]!.error.message).toMatch(/4294967295 bytes, over maxFrameBytes \(1048576\)/);
      expect(s.dropped[0]!.reason).toBe('protocol');
      expect(s.t.stats().dropped.protocol).toBe(1);
      expect(process.memoryUsage().arrayBuffers - heap).toBeLessThan(1 << 20);
      await good.send(new Uint8Array([42]));
      const m = (await s.t.frames().next()).value!;
      expect([...m.frame]).toEqual([42]);
      await good.destroy();
    } finally {
      await s.t.destroy();
    }
  });

  it('bounds the prefix by the maxFrameBytes option (a bounded max frame)', async () => {
    const s = await streamServer({ maxFrameBytes: 1000 });
    try {
      const bad = await rawClient(s.port);
      bad.socket.write(new Uint8Array([0, 0, 0x03, 0xe9])); // 1001
      await bad.closed;
      await waitFor(() => s.errors.length > 0);
      expect(s.errors[0]!.error.message).toMatch(/1001 bytes, over maxFrameBytes \(1000\)/);
      const ok = await rawClient(s.port);
      ok.socket.write(new Uint8Array([0, 0, 0x03, 0xe8, ...new Uint8Array(1000)]));
      const m = (await s.t.frames().next()).value!;
      expect(m.frame.byteLength).toBe(1000);
      ok.socket.destroy();
    } finally {
      await s.t.destroy();
    }
  });

  it('takes garbage with plausible lengths as frames (the codec judges them), discards a frame cut by the close', async () => {
    const s = await streamServer();
    try {
      const c = await rawClient(s.port);
      // Two records split across writes, then one cut short by the close.
      c.socket.write(new Uint8Array([0, 0, 0, 3, 9, 9]));
      await new Promise((r) => setTimeout(r, 10));
      c.socket.write(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 1, 7, 0, 0, 0, 50, 1, 2]));
      c.socket.end();
      await c.closed;
      const it = s.t.frames();
      expect([...(await it.next()).value!.frame]).toEqual([9, 9, 9]);
      expect([...(await it.next()).value!.frame]).toEqual([7]);
      await waitFor(() => s.down.length > 0);
      expect(s.t.stats().framesIn).toBe(2);
    } finally {
      await s.t.destroy();
    }
  });

  it('closes a half-open client connection (silent: no data, no heartbeat) after idleTimeoutMs and reports it', async () => {
    const s = await streamServer({ heartbeatMs: 40, idleTimeoutMs: 200 });
    try {
      const c = await rawClient(s.port);
      c.socket.on('data', () => undefined); // reads our heartbeats, never answers
      await c.closed;
      await waitFor(() => s.down.length > 0);
      expect(isTransportError(s.down[0]!.error, 'ERR_TRANSPORT_TIMEOUT')).toBe(true);
      expect(s.errors.some((e) => isTransportError(e.error, 'ERR_TRANSPORT_TIMEOUT'))).toBe(true);
    } finally {
      await s.t.destroy();
    }
  });

  it('keeps a quiet connection alive with heartbeats (zero-length records)', async () => {
    const s = await streamServer({ heartbeatMs: 30, idleTimeoutMs: 150 });
    const c = createTcpTransport({ connect: { host: '127.0.0.1', port: s.port }, heartbeatMs: 30, idleTimeoutMs: 150 });
    try {
      await c.start();
      await new Promise((r) => setTimeout(r, 500));
      expect(s.down).toEqual([]);
      expect(c.stats().connections).toBe(1);
      await c.send(new Uint8Array([5]));
      expect([...(await s.t.frames().next()).value!.frame]).toEqual([5]);
    } finally {
      await Promise.all([c.destroy(), s.t.destroy()]);
    }
  });

  it('refuses connections beyond maxConnections and reports it', async () => {
    const s = await streamServer({ maxConnections: 2 });
    try {
      const c1 = await rawClient(s.port);
      const c2 = await rawClient(s.port);
      await waitFor(() => s.t.stats().connections === 2);
      const c3 = await rawClient(s.port);
      await c3.closed;
      await waitFor(() => s.errors.length > 0);
      expect(isTransportError(s.errors[0]!.error, 'ERR_TRANSPORT_QUEUE_FULL')).toBe(true);
      c1.socket.destroy();
      c2.socket.destroy();
    } finally {
      await s.t.destroy();
    }
  });

  it('reconnects after the server restarts, and sends made meanwhile wait (bounded) and go out', async () => {
    const first = await streamServer();
    const port = first.port;
    const client = createTcpTransport({ connect: { host: '127.0.0.1', port }, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    const events: string[] = [];
    client.on('reconnecting', () => events.push('reconnecting'));
    client.on('connected', () => events.push('connected'));
    await client.start();
    await first.t.destroy();
    await waitFor(() => events.includes('reconnecting'));
    const waiting = client.send(new Uint8Array([1, 2, 3]));
    const second = await streamServer({ listen: { host: '127.0.0.1', port } });
    try {
      await waiting;
      const m = (await second.t.frames().next()).value!;
      expect([...m.frame]).toEqual([1, 2, 3]);
      expect(events.filter((e) => e === 'connected').length).toBe(2);
    } finally {
      await Promise.all([client.destroy(), second.t.destroy()]);
    }
  });

  it('refuses a send to a peer whose connection is gone with ERR_TRANSPORT_PEER', async () => {
    const s = await streamServer();
    try {
      const c = await rawClient(s.port);
      c.socket.write(new Uint8Array([0, 0, 0, 1, 8]));
      const m = (await s.t.frames().next()).value!;
      c.socket.destroy();
      await waitFor(() => s.down.length > 0);
      const e = await s.t.send(new Uint8Array([1]), m.peer).catch((x: unknown) => x);
      expect(isTransportError(e, 'ERR_TRANSPORT_PEER')).toBe(true);
      const none = await s.t.send(new Uint8Array([1])).catch((x: unknown) => x);
      expect(isTransportError(none, 'ERR_TRANSPORT_PEER')).toBe(true);
    } finally {
      await s.t.destroy();
    }
  });

  it('refuses bad options with ERR_TRANSPORT_OPTION naming the option', () => {
    for (const [options, field] of [
      [{}, 'listen / connect'],
      [{ listen: { port: 70000 } }, 'listen.port'],
      [{ connect: { port: 1 } }, 'connect.host'],
      [{ connect: { host: 'h' }, mode: 'batch' }, 'mode'],
      [{ connect: { host: 'h' }, heartbeatMs: 100, idleTimeoutMs: 50 }, 'idleTimeoutMs'],
      [{ connect: { host: 'h' }, maxFrameBytes: 2 ** 32 }, 'maxFrameBytes'],
      [{ connect: { host: 'h' }, reconnect: { factor: 0 } }, 'reconnect.factor'],
    ] as const) {
      let error: unknown;
      try {
        createTcpTransport(options as never);
      } catch (e) {
        error = e;
      }
      expect(isTransportError(error, 'ERR_TRANSPORT_OPTION'), JSON.stringify(options)).toBe(true);
      expect((error as { option: string }).option).toBe(field);
    }
    expect(DEFAULT_TCP_PORT).toBe(8888);
  });
});

describe('tcp reference mode: bad input', () => {
  it('drops a connection that carries more than maxFrameBytes, and delivers what a sender that never closes sent', async () => {
    const t = createTcpTransport({ mode: 'reference', listen: { host: '127.0.0.1', port: 0 }, maxFrameBytes: 100, connectionTimeoutMs: 200 });
    await t.start();
    try {
      const big = await rawClient(portOf(t));
      big.socket.write(new Uint8Array(101));
      await big.closed;
      expect(t.stats().dropped.oversize).toBe(1);
      const lingering = await rawClient(portOf(t));
      lingering.socket.write(new Uint8Array([1, 2, 3]));
      const m = (await t.frames().next()).value!;
      expect([...m.frame]).toEqual([1, 2, 3]);
      await lingering.closed;
      const reply = await t.send(new Uint8Array([1]), m.peer).catch((e: unknown) => e);
      expect(isTransportError(reply, 'ERR_TRANSPORT_PEER')).toBe(true);
    } finally {
      await t.destroy();
    }
  });

  it('reports a refused connection as ERR_TRANSPORT_IO (ECONNREFUSED)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const t = createTcpTransport({ mode: 'reference', connect: { host: '127.0.0.1', port } });
    await t.start();
    try {
      const e = await t.send(new Uint8Array([1])).catch((x: unknown) => x);
      expect(isTransportError(e, 'ERR_TRANSPORT_IO')).toBe(true);
      expect((e as { errno?: string }).errno).toBe('ECONNREFUSED');
    } finally {
      await t.destroy();
    }
  });
});

describe('unix sockets', () => {
  it('replaces a stale socket file nobody listens on, never a file that is not a socket', async () => {
    const path = sockPath();
    writeFileSync(path, 'not a socket');
    const first = createUnixTransport({ listen: { path } });
    const e = await first.start().catch((x: unknown) => x);
    expect(isTransportError(e, 'ERR_TRANSPORT_IO')).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('not a socket');
    rmSync(path);
    // A process killed while listening leaves its socket file behind.
    const child = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(child.signal).toBe('SIGKILL');
    expect(statSync(path).isSocket()).toBe(true);
    const t = createUnixTransport({ listen: { path } });
    await t.start();
    const c = createUnixTransport({ connect: { path } });
    await c.start();
    await c.send(new Uint8Array([3]));
    expect([...(await t.frames().next()).value!.frame]).toEqual([3]);
    await Promise.all([c.destroy(), t.destroy()]);
  });
});
