import { OpenSynapticServer } from '@opensynaptic/server';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DashboardService } from '../src/index.js';
import { tick, until } from './helpers.js';

const server = new OpenSynapticServer({ transports: [{ medium: 'udp', options: { host: '127.0.0.1', port: 0 } }] });
const open: DashboardService[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.destroy();
});

/** Readings of `sensors` sensors each, given to the hook as the server would. */
function feed(d: DashboardService, count: number, sensors: number, base = 0): void {
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    d.onReading({ aid: 1 + ((base + i) % 50), deviceId: `dev-${(base + i) % 50}`, strategy: 'DIFF', timestampMs: now + base + i, receivedAtMs: now, sensors: Array.from({ length: sensors }, (_, k) => ({ id: `S${k}`, state: 'OK', value: base + i + k / 10, unit: 'Cel' })) });
  }
}

async function connect(d: DashboardService): Promise<{ ws: WebSocket; types: string[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${d.address.port}/api/live`);
  const types: string[] = [];
  ws.on('message', (data) => types.push((JSON.parse(String(data)) as { type: string }).type));
  await until(() => types.includes('hello'), 'hello');
  return { ws, types };
}

describe('a slow live-feed client', () => {
  it('is skipped while its unsent bytes pass the limit (pushes not queued for it), then gets one sync', async () => {
    const d = new DashboardService(server, { port: 0, feedIntervalMs: 10, maxClientBufferBytes: 64 * 1024, maxBehindMs: 60_000, healthIntervalMs: 3_600_000 });
    open.push(d);
    await d.start();
    const { ws, types } = await connect(d);
    // The client stops reading: the kernel's buffers fill, then the server's own.
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    let base = 0;
    await until(async () => {
      feed(d, 2000, 8, base);
      base += 2000;
      await tick(15);
      return d.status().skipped > 0;
    }, 'a skipped push', 60_000);
    const skipped = d.status().skipped;
    // Skipped pushes are not queued: what is unsent stays near the limit (one push past it at most).
    feed(d, 2000, 8, base);
    await tick(100);
    expect(d.status().skipped).toBeGreaterThan(skipped);
    expect(d.status().clients).toBe(1);
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await until(() => types.includes('sync'), 'the sync after draining', 60_000);
    expect(d.status().dropped).toBe(0);
    ws.close();
  });

  it('is disconnected when it stays behind longer than maxBehindMs', async () => {
    const d = new DashboardService(server, { port: 0, feedIntervalMs: 10, maxClientBufferBytes: 64 * 1024, maxBehindMs: 200, healthIntervalMs: 3_600_000 });
    open.push(d);
    await d.start();
    const { ws } = await connect(d);
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();
    let base = 0;
    await until(async () => {
      feed(d, 2000, 8, base);
      base += 2000;
      await tick(15);
      return d.status().dropped === 1;
    }, 'the client dropped', 60_000);
    expect(d.status().clients).toBe(0);
    ws.terminate();
  });

  it('coalesces more readings than maxFeedReadings in one push into the devices latest values', async () => {
    const d = new DashboardService(server, { port: 0, feedIntervalMs: 1000, maxFeedReadings: 10, healthIntervalMs: 3_600_000 });
    open.push(d);
    await d.start();
    const ws = new WebSocket(`ws://127.0.0.1:${d.address.port}/api/live`);
    const messages: { type: string; readings?: unknown[]; coalesced?: boolean; devices?: { sensors: { value: number }[] }[] }[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    await until(() => messages.some((m) => m.type === 'hello'), 'hello');
    feed(d, 25, 1);
    await until(() => messages.some((m) => m.type === 'update'), 'the push', 10_000);
    const update = messages.find((m) => m.type === 'update');
    expect(update?.readings).toHaveLength(10);
    expect(update?.coalesced).toBe(true);
    expect(d.status().coalesced).toBe(15);
    // The devices still carry the latest values (device 24 % 50 had only reading 24).
    expect(update?.devices?.length).toBe(25);
    ws.close();
  });

  it('a new connection is refused past maxClients (503), and every (re)connection starts with the whole state', async () => {
    const d = new DashboardService(server, { port: 0, maxClients: 1, healthIntervalMs: 3_600_000 });
    open.push(d);
    await d.start();
    feed(d, 3, 2);
    const first = await connect(d);
    const status = await new Promise<number>((ok) => {
      const ws = new WebSocket(`ws://127.0.0.1:${d.address.port}/api/live`);
      ws.on('unexpected-response', (_req, res) => ok(res.statusCode ?? 0));
      ws.on('open', () => ok(101));
    });
    expect(status).toBe(503);
    expect(d.status().refused).toBe(1);
    first.ws.close();
    await until(() => d.status().clients === 0, 'the close');
    const again = new WebSocket(`ws://127.0.0.1:${d.address.port}/api/live`);
    const hello = await new Promise<{ type: string; devices: unknown[] }>((ok) => again.once('message', (data) => ok(JSON.parse(String(data)))));
    expect(hello.type).toBe('hello');
    expect(hello.devices).toHaveLength(3);
    again.close();
  });
});
