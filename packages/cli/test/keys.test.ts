/**
 * `os-node keys`: secrets made, listed (never shown again), rotated and removed in a database,
 * and a secret printed by `keys add` really authenticating against a server that reads that
 * database; `snapshot` then shows the device's mode.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthClient, type AuthKinds, AuthServer } from '@opensynaptic/handshake';
import { openSqliteStore } from '@opensynaptic/store-sqlite';
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
});
