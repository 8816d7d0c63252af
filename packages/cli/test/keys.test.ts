/**
 * `os-node keys`: secrets made, listed (never shown again), rotated and removed in a database,
 * and a secret printed by `keys add` really authenticating against a server that reads that
 * database; `snapshot` then shows the device's mode.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenSynaptic } from '@opensynaptic/core';
import { AuthClient, type AuthKinds, AuthServer, generateX25519KeyPair, parseAuthReject } from '@opensynaptic/handshake';
import { openSqliteReadingsSink, openSqliteStore } from '@opensynaptic/store-sqlite';
import { describe, expect, it } from 'vitest';
import { osNode } from './helpers/run.js';

const fromHex = (h: string) => new Uint8Array(h.length / 2).map((_, i) => Number.parseInt(h.slice(2 * i, 2 * i + 2), 16));

describe('os-node keys', () => {
  it('add, list, rotate, remove; the printed secret authenticates against a server on that database', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'os-cli-keys-')), 'keys.db');
    const first = await osNode(['keys', 'add', '5', '--db', db, '--json']);
    expect(first.code, first.stderr).toBe(0);
    const a = JSON.parse(first.stdout) as { aid: number; kid: number; secret: string; kids: number[] };
    expect(a).toMatchObject({ aid: 5, kid: 0, kids: [0] });
    expect(a.secret).toMatch(/^[0-9a-f]{64}$/);
    const given = 'ab'.repeat(16);
    const second = await osNode(['keys', 'add', '5', '--db', db, '--secret', given, '--json']);
    expect(JSON.parse(second.stdout)).toMatchObject({ aid: 5, kid: 1, secret: given, kids: [0, 1] });

    const list = await osNode(['keys', 'list', '--db', db, '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).devices).toEqual([expect.objectContaining({ aid: 5, kids: [0, 1], session: null })]);
    expect(list.stdout).not.toContain(a.secret);
    expect(list.stdout).not.toContain(given);

    // A server reading that database knows both kids; the device with kid 1's secret gets in.
    const store = await openSqliteStore<AuthKinds>({ path: db, kinds: ['keys', 'auth'] });
    const server = new AuthServer({ store: store as never });
    await server.load(Date.now());
    expect(server.kidsOf(5)).toEqual([0, 1]);
    const client = new AuthClient({ secret: fromHex(given), kid: 1, mode: 'require' });
    expect(client.onWelcome(server.onHello(client.hello(5), Date.now()).response)).toBe('established');
    const wrong = new AuthClient({ secret: fromHex(given), kid: 0, mode: 'require' });
    expect(wrong.onWelcome(server.onHello(wrong.hello(5), Date.now()).response)).toBe('ignored');
    await store.close();

    const rm = await osNode(['keys', 'remove', '5', '--kid', '0', '--db', db, '--json']);
    expect(JSON.parse(rm.stdout)).toMatchObject({ aid: 5, removed: 0, kids: [1] });
    const all = await osNode(['keys', 'remove', '5', '--db', db, '--json']);
    expect(JSON.parse(all.stdout)).toMatchObject({ aid: 5, removed: 'all', kids: [] });
    expect(JSON.parse((await osNode(['keys', 'list', '--db', db, '--json'])).stdout).devices).toEqual([]);
  });

  it('bad arguments exit 2 with a message: aid 0, a secret that is not hex or too short, an unknown kid', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'os-cli-keys-bad-')), 'keys.db');
    for (const args of [
      ['keys', 'add', '0'],
      ['keys', 'add', '7', '--secret', 'zz'],
      ['keys', 'add', '7', '--secret', 'abcd'],
      ['keys', 'add', '7', '--kid', '256'],
      ['keys', 'remove', '7'],
    ]) {
      const r = await osNode([...args, '--db', db]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.length, args.join(' ')).toBeGreaterThan(0);
    }
  });

  it('server-keypair prints a pair that works (the public key pinned by a device), or writes the private key 0600', async () => {
    const made = await osNode(['keys', 'server-keypair', '--kid', '4', '--json']);
    expect(made.code, made.stderr).toBe(0);
    const k = JSON.parse(made.stdout) as { kid: number; privateKey: string; publicKey: string; config: unknown };
    expect(k.kid).toBe(4);
    expect(k.privateKey).toMatch(/^[0-9a-f]{64}$/);
    expect(k.publicKey).toBe(Buffer.from(generateX25519KeyPair(fromHex(k.privateKey)).publicKey).toString('hex'));
    expect(k.config).toEqual({ auth: { x25519: { privateKey: k.privateKey, kid: 4 } } });
    const server = new AuthServer({ x25519: { privateKey: fromHex(k.privateKey), kid: 4, accept: 'any' } });
    const client = new AuthClient({ serverPublicKey: fromHex(k.publicKey), kid: 4, mode: 'require' });
    expect(client.onWelcome(server.onHello(client.hello(9), Date.now()).response)).toBe('established');

    const file = join(mkdtempSync(join(tmpdir(), 'os-cli-x25519-')), 'server.key');
    const given = '11'.repeat(32);
    const written = await osNode(['keys', 'server-keypair', '--private-key', given, '--out', file, '--json']);
    expect(written.code, written.stderr).toBe(0);
    const w = JSON.parse(written.stdout) as Record<string, unknown>;
    expect(w).toMatchObject({ kid: 0, privateKeyFile: file, publicKey: Buffer.from(generateX25519KeyPair(fromHex(given)).publicKey).toString('hex') });
    expect(w.privateKey).toBeUndefined();
    expect(written.stdout).not.toContain(given);
    expect(readFileSync(file, 'utf8').trim()).toBe(given);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Never over an existing key.
    expect((await osNode(['keys', 'server-keypair', '--out', file])).code).not.toBe(0);
    expect((await osNode(['keys', 'server-keypair', '--private-key', 'abcd'])).code).toBe(2);
  });

  it('add --x25519 enrols a device for suite 2 under accept "known"; a device with a secret cannot be enrolled', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'os-cli-keys-x-')), 'keys.db');
    const enrolled = await osNode(['keys', 'add', '12', '--x25519', '--db', db, '--json']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(JSON.parse(enrolled.stdout)).toMatchObject({ aid: 12, x25519: true, kids: [] });
    expect((await osNode(['keys', 'add', '13', '--db', db])).code).toBe(0);
    const refused = await osNode(['keys', 'add', '13', '--x25519', '--db', db]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('suite 1');
    const list = await osNode(['keys', 'list', '--db', db]);
    expect(list.stdout).toContain('aid 12: X25519');

    const pair = generateX25519KeyPair();
    const store = await openSqliteStore<AuthKinds>({ path: db, kinds: ['keys', 'auth'] });
    const server = new AuthServer({ store: store as never, x25519: { privateKey: pair.privateKey, kid: 0, accept: 'known' } });
    await server.load(Date.now());
    const client = new AuthClient({ serverPublicKey: pair.publicKey, mode: 'require' });
    expect(client.onWelcome(server.onHello(client.hello(12), Date.now()).response)).toBe('established');
    // A first frame makes the session current; the snapshot then names its suite.
    const plain = new OpenSynaptic({ assignedId: 12, deviceId: 'X12' }).transmit([['T1', 'OK', 1, 'Cel']]).frame;
    expect(server.open(client.seal(plain, 12).frame, Date.now()).ok).toBe(true);
    const other = new AuthClient({ serverPublicKey: pair.publicKey, mode: 'require' });
    expect(parseAuthReject(server.onHello(other.hello(13), Date.now()).response).reason).toBe('NO_DOWNGRADE');
    expect(parseAuthReject(server.onHello(other.hello(14), Date.now()).response).reason).toBe('NO_KEY');
    await server.flush(Date.now());
    await store.close();
    // The snapshot reads a server's file: its readings tables too.
    await (await openSqliteReadingsSink({ path: db })).close();
    const snap = await osNode(['snapshot', '--db', db, '--json']);
    expect(snap.code, snap.stderr).toBe(0);
    const auth = (JSON.parse(snap.stdout) as { auth: { aid: number; session: { suite: number } | null }[] }).auth;
    expect(auth.find((a) => a.aid === 12)?.session?.suite).toBe(2);
  });
});
