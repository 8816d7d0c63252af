/**
 * Suite 2 of the authenticated mode: X25519 between the device's ephemeral key and the server's
 * static one (pinned by the device), then suite 1's key schedule, WELCOME and data frames.
 */
import { encodeFrame } from '@opensynaptic/packet';
import { thrown } from '@opensynaptic/config/assert';
import { describe, expect, it } from 'vitest';
import {
  AUTH_HELLO_BYTES,
  AUTH_HELLO_X25519_BYTES,
  AUTH_REJECT_REASONS,
  AUTH_SUITE_PSK_CHACHA20_POLY1305,
  AUTH_SUITE_X25519_CHACHA20_POLY1305,
  AuthClient,
  AuthError,
  AuthServer,
  type AuthX25519Options,
  buildAuthHello,
  generateX25519KeyPair,
  parseAuthHello,
  parseAuthReject,
} from '../src/index.js';

const AID = 4242;
const NOW = 1_700_000_000_000;
const SERVER = generateX25519KeyPair(new Uint8Array(32).map((_, i) => (i * 37 + 5) & 0xff));
const KID = 3;

function plain(i: number): Uint8Array {
  return encodeFrame({ cmd: 0xaa, routes: [AID], tid: 1, timestamp: NOW + i, body: new TextEncoder().encode(`v${i}`) });
}

function server(x25519: Partial<AuthX25519Options> = {}): AuthServer {
  return new AuthServer({ x25519: { privateKey: SERVER.privateKey, kid: KID, accept: 'any', ...x25519 } });
}
const client = (serverPublicKey: Uint8Array = SERVER.publicKey) => new AuthClient({ serverPublicKey, kid: KID, mode: 'require' });

/** The typed error `fn` throws (fails the test when it does not throw one). */
describe('suite 2 (X25519)', () => {
  it('makes key pairs whose public half is the X25519 base-point multiple', () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    expect(a.privateKey).toHaveLength(32);
    expect(a.publicKey).toHaveLength(32);
    expect(a.publicKey).not.toEqual(b.publicKey);
    // Deterministic from the private key.
    expect(generateX25519KeyPair(a.privateKey).publicKey).toEqual(a.publicKey);
    expect(thrown(() => generateX25519KeyPair(new Uint8Array(31)), AuthError).code).toBe('ERR_AUTH_BAD_PACKET');
  });

  it('round-trips: HELLO of 55 bytes, WELCOME, frames that open on the server', () => {
    const s = server();
    const c = client();
    expect(c.suite).toBe(AUTH_SUITE_X25519_CHACHA20_POLY1305);
    const hello = c.hello(AID);
    expect(hello).toHaveLength(AUTH_HELLO_X25519_BYTES);
    expect(hello[5]).toBe(AUTH_SUITE_X25519_CHACHA20_POLY1305);
    expect(hello[6]).toBe(KID);
    const r = s.onHello(hello, NOW);
    expect(r.sid).toBe(1);
    expect(c.onWelcome(r.response)).toBe('established');
    for (let i = 0; i < 5; i++) {
      const p = plain(i);
      const { frame, authenticated } = c.seal(p, AID);
      expect(authenticated).toBe(true);
      const o = s.open(frame, NOW);
      expect(o.ok).toBe(true);
      if (o.ok) {
        expect(o.plain).toEqual(p);
        expect(o.suite).toBe(AUTH_SUITE_X25519_CHACHA20_POLY1305);
      }
    }
    expect(s.sessionSuite(AID)).toBe(AUTH_SUITE_X25519_CHACHA20_POLY1305);
    expect(s.x25519PublicKey).toEqual(SERVER.publicKey);
  });

  it('uses a fresh ephemeral key per HELLO, so every session has other keys', () => {
    const c = client();
    const a = parseAuthHello(c.hello(AID));
    const b = parseAuthHello(c.hello(AID));
    expect(a.ephemeralPublicKey).toHaveLength(32);
    expect(a.ephemeralPublicKey).not.toEqual(b.ephemeralPublicKey);
  });

  it('a device pinning another server key gets no session (the WELCOME tag fails, typed)', () => {
    const s = server();
    const c = client(generateX25519KeyPair().publicKey);
    const welcome = s.onHello(c.hello(AID), NOW).response;
    expect(c.onWelcome(welcome)).toBe('ignored');
    expect(c.state).toBe('hello-sent');
    expect(c.sid).toBeNull();
    expect(c.lastWelcomeError).toBeInstanceOf(AuthError);
    expect(c.lastWelcomeError?.code).toBe('ERR_AUTH_TAG');
    expect(thrown(() => c.seal(plain(0), AID), AuthError).code).toBe('ERR_AUTH_REQUIRED');
  });

  it('a bit flipped in the HELLO\'s ephemeral key gives keys the device does not have', () => {
    const s = server();
    const c = client();
    const hello = c.hello(AID);
    for (const at of [AUTH_HELLO_BYTES, AUTH_HELLO_BYTES + 17, AUTH_HELLO_X25519_BYTES - 1]) {
      const forged = hello.slice();
      forged[at]! ^= 0x04;
      const r = s.onHello(forged, NOW);
      // The server answers (it cannot tell), but the device cannot verify that WELCOME ...
      expect(r.sid).not.toBeNull();
      expect(c.onWelcome(r.response)).toBe('ignored');
      expect(c.lastWelcomeError?.code).toBe('ERR_AUTH_TAG');
    }
    // ... and the genuine HELLO still works.
    expect(c.onWelcome(s.onHello(hello, NOW).response)).toBe('established');
  });

  it('a bit flipped anywhere in the WELCOME is ignored, and the genuine one then establishes', () => {
    const s = server();
    const c = client();
    const welcome = s.onHello(c.hello(AID), NOW).response;
    for (let at = 1; at < welcome.length; at++) {
      const forged = welcome.slice();
      forged[at]! ^= 1 << at % 8;
      expect(c.onWelcome(forged)).toBe('ignored');
      expect(c.state).toBe('hello-sent');
    }
    expect(c.onWelcome(welcome)).toBe('established');
  });

  it('refuses a low-order ephemeral key (all-zero shared secret) with a typed error, no session', () => {
    const s = server();
    const hello = parseAuthHello(client().hello(AID));
    for (const low of [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))]) {
      const e = thrown(() => s.onHello(buildAuthHello({ ...hello, ephemeralPublicKey: low }), NOW), AuthError);
      expect(e.code).toBe('ERR_AUTH_LOW_ORDER');
      expect(e.aid).toBe(AID);
    }
    expect(s.devices).toBe(0);
    expect(s.counters.welcomes).toBe(0);
  });

  it('a device pinning a low-order server key cannot even say HELLO', () => {
    const c = client(new Uint8Array(32));
    expect(thrown(() => c.hello(AID), AuthError).code).toBe('ERR_AUTH_LOW_ORDER');
    expect(c.state).toBe('none');
  });

  it("'known' refuses an aid that is not enrolled (NO_KEY) and accepts an enrolled one", () => {
    const s = server({ accept: 'known' });
    const c = client();
    const refused = parseAuthReject(s.onHello(c.hello(AID), NOW).response);
    expect(refused.reason).toBe('NO_KEY');
    expect(s.acceptsX25519(AID)).toBe(false);
    s.enrolX25519(AID);
    expect(s.acceptsX25519(AID)).toBe(true);
    expect(s.hasKey(AID)).toBe(false);
    expect(c.onWelcome(s.onHello(c.hello(AID), NOW).response)).toBe('established');
    // Removing the enrolment ends it.
    expect(s.removeKey(AID)).toBe(true);
    expect(parseAuthReject(s.onHello(c.hello(AID), NOW).response).reason).toBe('NO_KEY');
  });

  it("'known' is the default policy", () => {
    const s = new AuthServer({ x25519: { privateKey: SERVER.privateKey, kid: KID } });
    expect(parseAuthReject(s.onHello(client().hello(AID), NOW).response).reason).toBe('NO_KEY');
  });

  it("'any' accepts an aid the server has never heard of", () => {
    const s = server({ accept: 'any' });
    const c = client();
    expect(s.acceptsX25519(77)).toBe(true);
    expect(c.onWelcome(s.onHello(c.hello(77), NOW).response)).toBe('established');
  });

  it('a device with a pre-shared secret asking for suite 2 gets REJECT NO_DOWNGRADE, under both policies', () => {
    for (const accept of ['any', 'known'] as const) {
      const s = server({ accept });
      s.setKey(AID, 0, new Uint8Array(32).fill(9));
      const c = new AuthClient({ serverPublicKey: SERVER.publicKey, kid: KID, mode: 'prefer' });
      const response = s.onHello(c.hello(AID), NOW).response;
      const r = parseAuthReject(response);
      expect(r.reason).toBe('NO_DOWNGRADE');
      expect(r.code).toBe(AUTH_REJECT_REASONS.NO_DOWNGRADE);
      expect(s.counters.rejects.NO_DOWNGRADE).toBe(1);
      expect(s.devices).toBe(0);
      expect(c.onReject(response)).toBe('refused');
      expect(c.lastRefusal).toContain('NO_DOWNGRADE');
    }
  });

  it('a suite-1 device keeps working beside suite 2', () => {
    const s = server();
    const secret = new Uint8Array(32).fill(7);
    s.setKey(AID, 0, secret);
    const c = new AuthClient({ secret, mode: 'require' });
    expect(c.suite).toBe(AUTH_SUITE_PSK_CHACHA20_POLY1305);
    expect(c.hello(AID)).toHaveLength(AUTH_HELLO_BYTES);
    expect(c.onWelcome(s.onHello(c.hello(AID), NOW).response)).toBe('established');
    const o = s.open(c.seal(plain(1), AID).frame, NOW);
    expect(o.ok && o.suite).toBe(AUTH_SUITE_PSK_CHACHA20_POLY1305);
    expect(s.sessionSuite(AID)).toBe(AUTH_SUITE_PSK_CHACHA20_POLY1305);
  });

  it('another kid, or a server without x25519, is refused (NO_KEY, SUITE)', () => {
    const other = new AuthClient({ serverPublicKey: SERVER.publicKey, kid: KID + 1 });
    expect(parseAuthReject(server().onHello(other.hello(AID), NOW).response).reason).toBe('NO_KEY');
    expect(parseAuthReject(new AuthServer().onHello(client().hello(AID), NOW).response).reason).toBe('SUITE');
  });

  it('HELLO lengths are exact: 22 and 54 truncated, 24 and 56 bad, typed', () => {
    const c1 = new AuthClient({ secret: new Uint8Array(16).fill(1) }).hello(AID);
    const c2 = client().hello(AID);
    const s = server();
    const cases: [Uint8Array, string][] = [
      [c1.slice(0, 22), 'ERR_AUTH_TRUNCATED'],
      [Uint8Array.of(...c1, 0), 'ERR_AUTH_BAD_PACKET'],
      [c2.slice(0, 54), 'ERR_AUTH_TRUNCATED'],
      [Uint8Array.of(...c2, 0), 'ERR_AUTH_BAD_PACKET'],
      // A suite-2 HELLO cut to the suite-1 length is not mistaken for one.
      [c2.slice(0, 23), 'ERR_AUTH_TRUNCATED'],
    ];
    for (const [p, code] of cases) {
      expect(thrown(() => parseAuthHello(p), AuthError).code, `${p.length} bytes`).toBe(code);
      expect(thrown(() => s.onHello(p, NOW), AuthError).code, `${p.length} bytes at the server`).toBe(code);
    }
    expect(parseAuthHello(c1).ephemeralPublicKey).toBeUndefined();
    expect(parseAuthHello(c2).ephemeralPublicKey).toEqual(c2.slice(23));
  });

  it('the builder and the client refuse inconsistent inputs', () => {
    const hello = parseAuthHello(client().hello(AID));
    expect(thrown(() => buildAuthHello({ ...hello, ephemeralPublicKey: undefined }), AuthError).code).toBe('ERR_AUTH_BAD_PACKET');
    expect(thrown(() => buildAuthHello({ ...hello, suite: 1 }), AuthError).code).toBe('ERR_AUTH_BAD_PACKET');
    expect(thrown(() => new AuthClient({}), AuthError).code).toBe('ERR_AUTH_SECRET');
    expect(thrown(() => new AuthClient({ secret: new Uint8Array(16), serverPublicKey: SERVER.publicKey }), AuthError).code).toBe('ERR_AUTH_SECRET');
    expect(thrown(() => new AuthClient({ serverPublicKey: new Uint8Array(31) }), AuthError).code).toBe('ERR_AUTH_BAD_PACKET');
    expect(thrown(() => new AuthServer({ x25519: { privateKey: SERVER.privateKey, kid: 0, accept: 'all' as never } }), AuthError).code).toBe('ERR_AUTH_BAD_PACKET');
  });
});
