/**
 * node:crypto's X25519 for the authenticated mode's suite 2, the server's default when it reads
 * `auth.x25519` from a configuration: the same bytes as the handshake's portable default
 * (@noble/curves, RFC 7748), about 9x faster here (142 µs against 1,300 µs a shared secret,
 * bench/x25519.bench.mjs, on a busy machine), which bounds what a
 * flood of suite-2 HELLOs costs the server's thread.
 */
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import type { X25519Function } from '@opensynaptic/handshake';

// DER wrappings of a raw 32-byte X25519 key (RFC 8410): node:crypto imports keys only wrapped.
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);

function wrapped(prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const der = new Uint8Array(prefix.length + key.length);
  der.set(prefix);
  der.set(key, prefix.length);
  return der;
}

// The server's static key is the same on every HELLO: imported once, not per call.
let lastPrivate: { raw: Uint8Array; key: KeyObject } | null = null;

function privateKeyOf(raw: Uint8Array): KeyObject {
  const last = lastPrivate;
  if (last !== null && last.raw.length === raw.length && last.raw.every((b, i) => b === raw[i])) return last.key;
  const key = createPrivateKey({ key: Buffer.from(wrapped(PKCS8_PREFIX, raw)), format: 'der', type: 'pkcs8' });
  lastPrivate = { raw: raw.slice(), key };
  return key;
}

/**
 * X25519 of a 32-byte private and public key through node:crypto; throws for a low-order public
 * key (OpenSSL refuses the all-zero result), which the handshake answers `ERR_AUTH_LOW_ORDER`.
 */
export const nodeX25519: X25519Function = (privateKey, publicKey) => {
  const pub = createPublicKey({ key: Buffer.from(wrapped(SPKI_PREFIX, publicKey)), format: 'der', type: 'spki' });
  const out = diffieHellman({ privateKey: privateKeyOf(privateKey), publicKey: pub });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
};
