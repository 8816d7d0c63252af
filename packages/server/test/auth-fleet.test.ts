/**
 * A mixed fleet through one server made from a configuration (real UDP sockets on loopback,
 * SQLite storage): a plain device, a legacy XOR-secure one, and two authenticated ones whose
 * secrets were written into the server's database while it ran (as `os-node keys add` does).
 * Every reading of each is stored once and the server tells the modes apart; then a server that
 * requires authentication refuses the legacy devices, says so, and keeps the authenticated ones.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSynaptic } from '@opensynaptic/core';
import { type AuthKinds, secretToText } from '@opensynaptic/handshake';
import { openSqliteReadingsSink, openSqliteStore } from '@opensynaptic/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config.js';
import { linkNode } from '../src/device.js';
import { serverFromConfig } from '../src/from-config.js';
import type { OpenSynapticServer, ServerReading } from '../src/server.js';
import { portOf, udp, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

const secretOf = (aid: number) => new Uint8Array(32).map((_, i) => (aid * 7 + i * 13) & 0xff);

async function provision(path: string, aid: number): Promise<void> {
  const store = await openSqliteStore<AuthKinds>({ path, kinds: ['keys', 'auth'] });
  await store.write([{ op: 'put', kind: 'keys', key: String(aid), value: { aid, keys: [{ kid: 0, secret: secretToText(secretOf(aid)), addedMs: Date.now() }] } }]);
  await store.close();
}

/** A device on its own socket; `answers` false: it never reads the server's replies (so it stays plain). */
async function fleetDevice(server: OpenSynapticServer, aid: number, name: string, auth: boolean, answers = true) {
  const transport = await udp({ remote: { address: '127.0.0.1', port: portOf(server.transport('udp') as never) } });
  cleanup.push(() => transport.destroy());
  const node = new OpenSynaptic({ assignedId: aid, deviceId: name, requestTimeoutMs: 2000, ...(auth ? { auth: { secret: secretOf(aid), mode: 'require' as const } } : {}) });
  if (answers) linkNode(node, transport);
  return { node, transport };
}

describe('a mixed fleet through one server', () => {
  it('plain, legacy secure and authenticated devices side by side, each reading stored once; then require refuses the legacy ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'os-auth-fleet-'));
    const path = join(dir, 'fleet.db');
    const { config } = validateConfig({ server: { port: 0 }, storage: { driver: 'sqlite', path, synchronous: 'normal' } });
    const seen: ServerReading[] = [];
    const server = await serverFromConfig(config, { services: [{ name: 'seen', onReading: (r: ServerReading) => void seen.push(r) }] });
    cleanup.push(() => server.destroy());
    await server.start();
    // Secrets written by another process while the server runs: its next HELLO reads them.
    await provision(path, 501);
    await provision(path, 502);
    const plain = await fleetDevice(server, 401, 'PLAIN', false, false);
    const legacy = await fleetDevice(server, 402, 'LEGACY', false);
    const a = await fleetDevice(server, 501, 'AUTH1', true);
    const b = await fleetDevice(server, 502, 'AUTH2', true);
    expect(await a.node.authenticate({ timeoutMs: 3000 })).toBe('authenticated');
    expect(await b.node.authenticate({ timeoutMs: 3000 })).toBe('authenticated');

    const N = 12;
    const t0 = 1_700_000_000_000;
    let legacySecure = 0;
    for (let i = 0; i < N; i++) {
      for (const d of [plain, legacy, a, b]) {
        const r = d.node.transmit([['T', 'OK', 20 + (i % 3), 'Cel']], { t: t0 + i * 1000 });
        if (d === legacy && r.secure) legacySecure++;
        if (d === a || d === b) expect(r.authenticated).toBe(true);
        await d.transport.send(r.frame);
      }
      // The legacy device's SECURE_DICT_READY comes back between frames.
      await new Promise((r) => setTimeout(r, 15));
    }
    await until(async () => (await server.status()).readings === 4 * N, 'every reading', 5000);
    const status = await server.status();
    expect(status.errors).toEqual({});
    expect(status.auth).toMatchObject({ require: false, welcomes: 2, refused: { tag: 0, replay: 0 } });
    expect(status.auth!.opened).toBe(2 * N);
    expect(legacySecure).toBeGreaterThan(0);
    const mode = (aid: number) => new Set(seen.filter((r) => r.aid === aid).map((r) => (r.authenticated ? 'authenticated' : r.secure ? 'secure' : 'plain')));
    expect(mode(401)).toEqual(new Set(['plain']));
    expect(mode(402)).toEqual(new Set(['plain', 'secure']));
    expect(mode(501)).toEqual(new Set(['authenticated']));
    expect(mode(502)).toEqual(new Set(['authenticated']));
    await server.stop();
    const reader = await openSqliteReadingsSink({ path, readonly: true });
    cleanup.push(() => reader.close());
    const rows = await reader.query({ limit: 10_000 });
    for (const aid of [401, 402, 501, 502]) expect(rows.filter((r) => r.aid === aid).length).toBe(N);

    // The same database, now requiring authentication: the sessions resume, legacy frames are refused.
    const strict = await serverFromConfig(validateConfig({ server: { port: 0 }, auth: { require: true }, storage: { driver: 'sqlite', path, synchronous: 'normal' } }).config);
    cleanup.push(() => strict.destroy());
    const events: { aid: number | null; state: string }[] = [];
    strict.on('auth', (e: { aid: number | null; state: string }) => events.push(e));
    await strict.start();
    const port = portOf(strict.transport('udp') as never);
    for (const d of [plain, a]) await d.transport.destroy();
    const plain2 = await udp({ remote: { address: '127.0.0.1', port } });
    cleanup.push(() => plain2.destroy());
    const a2 = await udp({ remote: { address: '127.0.0.1', port } });
    cleanup.push(() => a2.destroy());
    // The authenticated device's session survived the restart: its next frame opens without a HELLO.
    await a2.send(a.node.transmit([['T', 'OK', 30, 'Cel']], { t: t0 + 100_000 }).frame);
    await plain2.send(plain.node.transmit([['T', 'OK', 30, 'Cel']], { t: t0 + 100_000 }).frame);
    await until(async () => (await strict.status()).readings === 1 && (await strict.status()).auth!.legacyRefused === 1, 'one reading, one refusal', 5000);
    const s = await strict.status();
    expect(s.errors.ERR_AUTH_REQUIRED).toBe(1);
    expect(events).toEqual([expect.objectContaining({ aid: 401, state: 'legacy-refused' })]);
  });
});
