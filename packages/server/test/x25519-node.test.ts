/** node:crypto's X25519 (`nodeX25519`), the configured server's suite-2 function: the same bytes as the handshake's default. */
import { AuthClient, AuthError, AuthServer, generateX25519KeyPair, x25519SharedSecret } from '@opensynaptic/handshake';
import { describe, expect, it } from 'vitest';
import { nodeX25519 } from '../src/index.js';

const hex = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => Number.parseInt(b, 16)));

describe('nodeX25519', () => {
  it('gives RFC 7748 section 6.1 shared secret', () => {
    const alicePrivate = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    expect(nodeX25519(alicePrivate, bobPublic)).toEqual(hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'));
  });

  it('agrees with the handshake default (@noble/curves) on random keys, in both directions', () => {
    for (let i = 0; i < 100; i++) {
      const a = generateX25519KeyPair();
      const b = generateX25519KeyPair();
      const viaNode = nodeX25519(a.privateKey, b.publicKey);
      expect(viaNode).toEqual(x25519SharedSecret(a.privateKey, b.publicKey));
      expect(nodeX25519(b.privateKey, a.publicKey)).toEqual(viaNode);
    }
  });

  it('leaves a low-order key to the handshake check: ERR_AUTH_LOW_ORDER, as with the default', () => {
    const a = generateX25519KeyPair();
    for (const low of [new Uint8Array(32), Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : 0))]) {
      for (const dh of [undefined, nodeX25519]) {
        let error: unknown;
        try {
          x25519SharedSecret(a.privateKey, low, 7, dh);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(AuthError);
        expect((error as AuthError).code).toBe('ERR_AUTH_LOW_ORDER');
      }
    }
  });

  it('is what an AuthServer given it computes the HELLOs with (sessions open, frames verify)', () => {
    const server = generateX25519KeyPair();
    let calls = 0;
    const s = new AuthServer({
      x25519: {
        privateKey: server.privateKey,
        kid: 1,
        accept: 'any',
        sharedSecret: (p, q) => {
          calls++;
          return nodeX25519(p, q);
        },
      },
    });
    const c = new AuthClient({ serverPublicKey: server.publicKey, kid: 1, mode: 'require' });
    const r = s.onHello(c.hello(77), 0);
    expect(calls).toBe(1);
    expect(c.onWelcome(r.response)).toBe('established');
    expect(() => new AuthServer({ x25519: { privateKey: server.privateKey, kid: 1, sharedSecret: 'fast' as never } })).toThrow(/x25519.sharedSecret is a function/);
  });
});
