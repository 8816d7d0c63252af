/** The authenticated mode's stored secrets (`keys` records): one checked reading at load and at a HELLO's reload. */
import { MemoryStore } from '@opensynaptic/store';
import { describe, expect, it } from 'vitest';
import { AuthClient, AuthServer, type AuthKinds, secretToText } from '../src/index.js';

const SECRET = new Uint8Array(32).map((_, i) => i + 1);
const store = () => new MemoryStore<AuthKinds>({ kinds: ['keys', 'auth'] });
const good = (aid: number) => ({ aid, keys: [{ kid: 0, secret: secretToText(SECRET), addedMs: 0 }] });
const bad: [string, unknown, RegExp][] = [
  ['no aid', { keys: [] }, /keys record that is not one/],
  ['keys not a list', { aid: 5, keys: 'x' }, /keys record that is not one/],
  ['a kid past a byte', { aid: 5, keys: [{ kid: 300, secret: secretToText(SECRET) }] }, /a key of aid 5 that is not one/],
  ['a secret not base64url', { aid: 5, keys: [{ kid: 0, secret: '!!!!' }] }, /a key of aid 5 that is not one/],
  ['a secret too short', { aid: 5, keys: [{ kid: 0, secret: secretToText(new Uint8Array(4)) }] }, /16\.\.\d+ bytes/],
  ['a key that is null', { aid: 5, keys: [null] }, /a key of aid 5 that is not one/],
];

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected a rejection, it resolved');
}

describe('stored secrets', () => {
  it('load reads a good record (its HELLO gets a WELCOME) and refuses each damaged one with ERR_HANDSHAKE_STORE', async () => {
    const s = store();
    await s.write([{ op: 'put', kind: 'keys', key: '7', value: good(7) }]);
    const server = new AuthServer({ store: s });
    await server.load(0);
    expect(server.hasKey(7)).toBe(true);
    const client = new AuthClient({ secret: SECRET, kid: 0, mode: 'require' });
    expect(client.onWelcome(server.onHello(client.hello(7), 0).response)).toBe('established');
    for (const [what, record, message] of bad) {
      const t = store();
      await t.write([{ op: 'put', kind: 'keys', key: '5', value: record as never }]);
      const e = await rejection(new AuthServer({ store: t }).load(0));
      expect(e.code, what).toBe('ERR_HANDSHAKE_STORE');
      expect(e.message, what).toMatch(message);
    }
  });

  it('reloadKeys takes a changed record, forgets a removed one, and keeps the secrets in memory when the record is damaged', async () => {
    const s = store();
    await s.write([{ op: 'put', kind: 'keys', key: '5', value: good(5) }]);
    const server = new AuthServer({ store: s });
    await server.load(0);
    for (const [what, record, message] of bad) {
      await s.write([{ op: 'put', kind: 'keys', key: '5', value: record as never }]);
      const e = await rejection(server.reloadKeys(5));
      expect(e.code, what).toBe('ERR_HANDSHAKE_STORE');
      expect(e.message, what).toMatch(message);
      expect(server.hasKey(5), what).toBe(true);
    }
    await s.write([{ op: 'put', kind: 'keys', key: '5', value: good(6) }]);
    expect((await rejection(server.reloadKeys(5))).message).toMatch(/keys of aid 6 under aid 5/);
    await s.write([{ op: 'delete', kind: 'keys', key: '5' }]);
    await server.reloadKeys(5);
    expect(server.hasKey(5)).toBe(false);
  });
});
