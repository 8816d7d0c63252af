import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until as waitUntil } from '@opensynaptic/config/until';
import { OpenSynaptic, type SensorTuple } from '@opensynaptic/core';
import { OpenSynapticServer } from '@opensynaptic/server';
import { ensureId, linkNode, type NodeLink } from '@opensynaptic/server/device';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { attachDashboard, type DashboardOptions, type DashboardService } from '../src/index.js';

export const portOf = (t: Transport): number => (t as unknown as { address: { port: number } }).address.port;
export const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` holds (bounded: fails the test rather than hanging; 15 s here, a browser is slow to start). */
export const until = (done: () => boolean | Promise<boolean>, what: string, ms = 15_000): Promise<void> => waitUntil(done, what, ms, 10);

/** A TCP port free on loopback right now. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

/** A simulated sensor device: its own node and UDP socket, its id from the server. */
export interface SimDevice {
  name: string;
  node: OpenSynaptic;
  transport: Transport;
  link: NodeLink;
  aid: number;
  sent: number;
  /** Sends one reading (the values given, or a temperature that moves with each call). */
  send(sensors?: SensorTuple[]): Promise<void>;
}

export interface Stack {
  server: OpenSynapticServer;
  dashboard: DashboardService;
  base: string;
  devices: SimDevice[];
  dir: string;
  close(): Promise<void>;
}

/** A real server over UDP on loopback storing into SQLite, its dashboard, and `count` devices that got their ids. */
export async function stack(count: number, options: DashboardOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'os-dashboard-'));
  const sink = await openSqliteReadingsSink({ path: join(dir, 'readings.db') });
  const server = new OpenSynapticServer({ transports: [{ name: 'udp', medium: 'udp', options: { host: '127.0.0.1', port: 0 } }], sinks: [sink], node: { deviceId: 'SERVER' } });
  const dashboard = attachDashboard(server, { port: 0, feedIntervalMs: 50, healthIntervalMs: 200, ...options });
  await server.start();
  const udpPort = portOf(server.transport('udp') as Transport);
  const devices: SimDevice[] = [];
  for (let i = 0; i < count; i++) {
    const name = `sim-${i + 1}`;
    const transport = await createTransport('udp', { host: '127.0.0.1', port: 0, remote: { address: '127.0.0.1', port: udpPort } });
    await transport.start();
    const node = new OpenSynaptic({ deviceId: name, requestTimeoutMs: 2000 });
    const link = linkNode(node, transport);
    const aid = await ensureId(node, { timeoutMs: 2000, retries: 3 });
    let t = 20 + i;
    const d: SimDevice = {
      name,
      node,
      transport,
      link,
      aid,
      sent: 0,
      async send(sensors) {
        t = Number((t + 0.5).toFixed(1));
        const r = node.transmit(sensors ?? [['T1', 'OK', t, 'Cel'], ['H1', 'OK', 40 + i, '%']], { t: Date.now() });
        await transport.send(r.frame);
        d.sent++;
      },
    };
    devices.push(d);
  }
  const { host, port } = dashboard.address;
  return {
    server,
    dashboard,
    base: `http://${host}:${port}`,
    devices,
    dir,
    async close() {
      for (const d of devices) {
        d.node.connect(null);
        await d.node.close().catch(() => undefined);
        await d.transport.stop().catch(() => undefined);
        await d.link.done;
      }
      await server.stop().catch(() => undefined);
      await server.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The committed count of the server's storage sink. */
export async function committed(server: OpenSynapticServer): Promise<number> {
  const s = (await server.status()).services.storage as { committed?: number } | null;
  return s?.committed ?? 0;
}

/**
 * Makes a simulated device send `geohash` with each reading (a moving temperature, or the
 * values given), as a device that knows where it is does.
 */
export function withGeohash(d: SimDevice, geohash: string): SimDevice {
  let t = 20;
  d.send = async (sensors) => {
    t = Number((t + 0.5).toFixed(1));
    const r = d.node.transmit(sensors ?? [['T1', 'OK', t, 'Cel'], ['H1', 'OK', 40, '%']], { t: Date.now(), geohash });
    await d.transport.send(r.frame);
    d.sent++;
  };
  return d;
}

/** A POST of JSON to the dashboard (`token`: sent as the bearer token). */
export async function postJson(base: string, path: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A browser `openBrowser` opened. */
export type OpenedBrowser = Awaited<ReturnType<typeof openBrowser>>;

/** Debian's chromium (installed with apt-get where missing) through playwright-core, headless, one page. */
export async function openBrowser(options: { viewport?: { width: number; height: number } } = {}): Promise<{ context: import('playwright-core').BrowserContext; page: import('playwright-core').Page; problems: string[]; close(): Promise<void> }> {
  const CHROMIUM = '/usr/bin/chromium';
  const { ensureDebianPackages } = await import('@opensynaptic/config/apt');
  ensureDebianPackages([{ program: CHROMIUM, pkg: 'chromium' }]);
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'os-dashboard-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    viewport: options.viewport ?? { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  return {
    context,
    page,
    problems,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
