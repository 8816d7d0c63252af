/**
 * Suite 2 (X25519) through a server made from a configuration (UDP on loopback, SQLite): the
 * private key read from `auth.x25519.privateKeyFile`, a device pinning the public key, readings
 * marked `auth-x25519` beside a suite-1 device's `auth-psk`, and the configuration's checks.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSynaptic } from '@opensynaptic/core';
import { type AuthClientOptions, type AuthKinds, generateX25519KeyPair, secretToText } from '@opensynaptic/handshake';
import { openSqliteStore } from '@opensynaptic/store-sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config.js';
import { linkNode } from '../src/device.js';
import { isOpenSynapticError } from '../src/index.js';
import { serverFromConfig } from '../src/from-config.js';
import type { ServerReading } from '../src/server.js';
import { portOf, udp, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const SECRET = new Uint8Array(32).fill(5);

describe('auth.x25519 in a configuration', () => {
  it('a device pinning the server key authenticates; its readings are auth-x25519, a PSK device\'s auth-psk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'os-auth-x25519-'));
    const path = join(dir, 'x.db');
    const pair = generateX25519KeyPair();
    const keyFile = join(dir, 'server.key');
    await writeFile(keyFile, `${hex(pair.privateKey)}\n`, { mode: 0o600 });
    const store = await openSqliteStore<AuthKinds>({ path, kinds: ['keys', 'auth'] });
    // 601 enrolled for suite 2 (a record without a secret), 602 with a pre-shared secret.
    await store.write([
      { op: 'put', kind: 'keys', key: '601', value: { aid: 601, keys: [] } },
      { op: 'put', kind: 'keys', key: '602', value: { aid: 602, keys: [{ kid: 0, secret: secretToText(SECRET), addedMs: Date.now() }] } },
    ]);
    await store.close();
    const { config } = validateConfig({ server: { port: 0 }, storage: { driver: 'sqlite', path, synchronous: 'normal' }, auth: { x25519: { privateKeyFile: keyFile, kid: 1 } } });
    const seen: ServerReading[] = [];
    const server = await serverFromConfig(config, { services: [{ name: 'seen', onReading: (r: ServerReading) => void seen.push(r) }] });
    cleanup.push(() => server.destroy());
    await server.start();
    const port = portOf(server.transport('udp') as never);
    const node = async (aid: number, auth: AuthClientOptions) => {
      const transport = await udp({ remote: { address: '127.0.0.1', port } });
      cleanup.push(() => transport.destroy());
      const n = new OpenSynaptic({ assignedId: aid, deviceId: `D${aid}`, requestTimeoutMs: 2000, auth });
      linkNode(n, transport);
      return { node: n, transport };
    };
    const x = await node(601, { serverPublicKey: pair.publicKey, kid: 1, mode: 'require' });
    const psk = await node(602, { secret: SECRET, mode: 'require' });
    // The PSK device cannot take the X25519 path (no downgrade) ...
    const sneaky = await node(602, { serverPublicKey: pair.publicKey, kid: 1, mode: 'require' });
    const refused = await sneaky.node.authenticate({ timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(isOpenSynapticError(refused, 'ERR_AUTH_REJECTED')).toBe(true);
    expect((refused as Error).message).toContain('NO_DOWNGRADE');
    // ... and an aid that is not enrolled is refused under the default 'known'.
    const stranger = await node(603, { serverPublicKey: pair.publicKey, kid: 1, mode: 'require' });
    expect(String(await stranger.node.authenticate({ timeoutMs: 3000 }).catch((e: unknown) => e))).toContain('NO_KEY');

    expect(await x.node.authenticate({ timeoutMs: 3000 })).toBe('authenticated');
    expect(await psk.node.authenticate({ timeoutMs: 3000 })).toBe('authenticated');
    for (let i = 0; i < 4; i++) {
      for (const d of [x, psk]) await d.transport.send(d.node.transmit([['T', 'OK', 20 + i, 'Cel']], { t: 1_700_000_000_000 + i * 1000 }).frame);
    }
    await until(async () => (await server.status()).readings === 8, 'every reading', 5000);
    const modes = (aid: number) => new Set(seen.filter((r) => r.aid === aid).map((r) => r.authMode));
    expect(modes(601)).toEqual(new Set(['auth-x25519']));
    expect(modes(602)).toEqual(new Set(['auth-psk']));
    expect((await server.status()).auth).toMatchObject({ rejects: { NO_DOWNGRADE: 1, NO_KEY: 1 } });
  });

  it('refuses a configuration with both or neither key, a bad key, or a key file that is not one', async () => {
    for (const x25519 of [{}, { privateKey: 'ab'.repeat(32), privateKeyFile: 'k' }, { privateKey: 'abcd' }, { privateKey: 'ab'.repeat(32), accept: 'all' }]) {
      expect(() => validateConfig({ auth: { x25519 } }), JSON.stringify(x25519)).toThrow(/auth\.x25519/);
    }
    const dir = await mkdtemp(join(tmpdir(), 'os-auth-x25519-bad-'));
    const bad = join(dir, 'bad.key');
    await writeFile(bad, 'not a key\n');
    for (const file of [bad, join(dir, 'missing.key')]) {
      const { config } = validateConfig({ storage: { driver: 'none' }, auth: { x25519: { privateKeyFile: file } } });
      const e = await serverFromConfig(config).catch((err: unknown) => err);
      expect(isOpenSynapticError(e, 'ERR_SERVER_CONFIG'), String(e)).toBe(true);
      expect(String(e)).toContain('auth.x25519.privateKeyFile');
    }
  });
});
