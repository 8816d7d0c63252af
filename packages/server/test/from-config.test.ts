import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config.js';
import { ensureId } from '../src/device.js';
import { serverFromConfig } from '../src/from-config.js';
import type { OpenSynapticServer } from '../src/server.js';
import { device, portOf, tick, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

const portOfServer = (s: OpenSynapticServer) => portOf(s.transport('udp') as never);

describe('serverFromConfig', () => {
  it('sqlite storage (loaded by name): every reading stored, ids durable across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'os-server-sqlite-'));
    const path = join(dir, 'os.db');
    const { config } = validateConfig({ server: { port: 0 }, storage: { driver: 'sqlite', path, synchronous: 'normal' } });
    const ids: number[] = [];
    let sent = 0;
    for (let run = 0; run < 2; run++) {
      const server = await serverFromConfig(config);
      cleanup.push(() => server.destroy());
      await server.start();
      const d = await device(`SQL_${run}`, portOfServer(server));
      cleanup.push(() => d.transport.destroy());
      ids.push(await ensureId(d.node, { timeoutMs: 1000, meta: { serial: `s-${run}` } }));
      for (let i = 0; i < 20; i++) {
        await d.transport.send(d.node.transmit([['T1', 'OK', i % 3, 'Cel']], { t: 1.7e12 + i * 1000 }).frame);
        sent++;
        await tick(1);
      }
      await until(async () => (await server.status()).readings === 20, 'the readings');
      await server.stop();
    }
    expect(ids[0]).not.toBe(ids[1]);
    const reader = await openSqliteReadingsSink({ path, readonly: true });
    cleanup.push(() => reader.close());
    expect((await reader.query({ limit: 1000 })).length).toBe(sent);
    expect((await reader.devices()).map((x) => x.deviceId).sort()).toEqual(['SQL_0', 'SQL_1']);
  });

  it('engine.cachedDevices sizes the template cache; unset, the registry keeps its own default', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'os-server-cache-'));
    const sized = validateConfig({ server: { port: 0 }, engine: { cachedDevices: 150_000 }, storage: { driver: 'sqlite', path: join(dir, 'a.db') } }).config;
    const plain = validateConfig({ server: { port: 0 }, storage: { driver: 'sqlite', path: join(dir, 'b.db') } }).config;
    const a = await serverFromConfig(sized);
    cleanup.push(() => a.destroy());
    const b = await serverFromConfig(plain);
    cleanup.push(() => b.destroy());
    expect(a.node.fusion.registry.maxEntries).toBe(150_000);
    expect(b.node.fusion.registry.maxEntries).toBe(1024);
    expect(() => validateConfig({ engine: { cachedDevices: 0 } })).toThrow(/cachedDevices/);
  });

  it('a reference Config.json runs: its Server_Core port, memory storage', async () => {
    const { config, warnings } = validateConfig({ device_id: 'GW', Server_Core: { host: '127.0.0.1', port: 0 }, security_settings: {} });
    expect(warnings[0]).toContain('security_settings');
    const server = await serverFromConfig({ ...config, storage: { ...config.storage, driver: 'memory' } });
    cleanup.push(() => server.destroy());
    await server.start();
    const d = await device('REF', portOfServer(server));
    cleanup.push(() => d.transport.destroy());
    await ensureId(d.node, { timeoutMs: 1000 });
    await d.transport.send(d.node.transmit([['T1', 'OK', 1, 'Cel']]).frame);
    await until(async () => ((await server.status()).services.storage as { accepted: number } | null)?.accepted === 1, 'the stored reading');
    expect(server.node.deviceId).toBe('GW');
  });
});
