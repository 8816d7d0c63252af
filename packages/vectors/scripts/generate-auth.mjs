// Golden vectors of the authenticated mode (this project's extension; no reference has it):
// vectors/auth.json. The expected bytes are computed here with Node's own crypto (OpenSSL's
// HKDF, ChaCha20-Poly1305 and, for suite 2, X25519), not with the implementation under test
// (@noble/ciphers, @noble/hashes and @noble/curves inside @opensynaptic/handshake), so the two
// must agree byte for byte. The plain
// frames sealed are made by an OpenSynaptic node (their legacy layout is the reference's,
// checked by the other vector files). Run after the build:
// `node packages/vectors/scripts/generate-auth.mjs` (writes vectors/auth.json).
import { createCipheriv, createPrivateKey, createPublicKey, diffieHellman, hkdfSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { OpenSynaptic } from '@opensynaptic/core';

const hex = (b) => Buffer.from(b).toString('hex');
const bytes = (seed, n) => Uint8Array.from({ length: n }, (_, i) => (seed * 131 + i * 29 + ((i * i) % 7)) & 0xff);
const u32 = (v) => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const INFO = Buffer.from('OpenSynaptic AUTH v1');

function derive(secret, cn, sn, aid, suite, kid, sid, extraInfo = Buffer.alloc(0)) {
  const okm = Buffer.from(hkdfSync('sha256', secret, Buffer.concat([cn, sn]), Buffer.concat([INFO, Buffer.from([...u32(aid), suite, kid, sid]), extraInfo]), 44));
  return { key: okm.subarray(0, 32), iv: okm.subarray(32, 44) };
}
function nonce(iv, seq) {
  const n = Buffer.from(iv);
  n[9] ^= (seq >>> 16) & 0xff;
  n[10] ^= (seq >>> 8) & 0xff;
  n[11] ^= seq & 0xff;
  return n;
}
function aead(key, n, aad, plain) {
  const c = createCipheriv('chacha20-poly1305', key, n, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: plain.length });
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([ct, c.getAuthTag()]);
}

// X25519 keys as OpenSSL takes them: the raw 32 bytes behind the fixed DER prefixes of RFC 8410.
const x25519Private = (raw) => createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), raw]), format: 'der', type: 'pkcs8' });
const x25519Public = (raw) => createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), raw]), format: 'der', type: 'spki' });
const rawPublic = (priv) => createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(12);

const cases = [];
const streams = [
  // A server's first session with a device is sid 1.
  { id: 'stream-1-sensor', aid: 4242, secretLen: 32, kid: 0, sid: 1, sensors: 1, values: [21.5, 21.5, 21.5, 22.25, 22.25, 23, 23, 19.75] },
  { id: 'stream-3-sensors-kid-7', aid: 0xfffffffe, secretLen: 16, kid: 7, sid: 1, sensors: 3, values: [1, 1, 1, 2, 2, 3] },
  { id: 'stream-64-byte-secret', aid: 1, secretLen: 64, kid: 255, sid: 1, sensors: 2, values: [-40, -40, -40, -39.5, 0, 0, 100] },
  // Suite 2: the server's static key pair (kid), the device's ephemeral one; no secret.
  { id: 'stream-x25519', suite: 2, aid: 4243, kid: 0, sid: 1, sensors: 1, values: [21.5, 21.5, 22, 22, 18.25] },
  { id: 'stream-x25519-kid-9-3-sensors', suite: 2, aid: 0xfffffffe, kid: 9, sid: 1, sensors: 3, values: [5, 5, 6, 7] },
];
for (const [si, s] of streams.entries()) {
  const suite = s.suite ?? 1;
  const cn = Buffer.from(bytes(si + 11, 16));
  const sn = Buffer.from(bytes(si + 21, 16));
  let secret;
  let extraInfo = Buffer.alloc(0);
  let helloTail = Buffer.alloc(0);
  const x = {};
  if (suite === 2) {
    const serverPriv = Buffer.from(bytes(si + 31, 32));
    const ephPriv = Buffer.from(bytes(si + 41, 32));
    const serverPub = rawPublic(x25519Private(serverPriv));
    const ephPub = rawPublic(x25519Private(ephPriv));
    secret = diffieHellman({ privateKey: x25519Private(ephPriv), publicKey: x25519Public(serverPub) });
    // Both halves agree (the server's view), as X25519 promises.
    if (!secret.equals(diffieHellman({ privateKey: x25519Private(serverPriv), publicKey: x25519Public(ephPub) }))) throw new Error('X25519 sides disagree');
    extraInfo = Buffer.concat([ephPub, serverPub]);
    helloTail = ephPub;
    Object.assign(x, { serverPrivateKey: hex(serverPriv), serverPublicKey: hex(serverPub), ephemeralPrivateKey: hex(ephPriv), ephemeralPublicKey: hex(ephPub) });
  } else secret = Buffer.from(bytes(si + 1, s.secretLen));
  const { key, iv } = derive(secret, cn, sn, s.aid, suite, s.kid, s.sid, extraInfo);
  const hello = Buffer.concat([Buffer.from([0xc8, ...u32(s.aid), suite, s.kid, ...cn]), helloTail]);
  const head = Buffer.from([0xc9, ...u32(s.aid), suite, s.kid, s.sid, ...sn]);
  const welcome = Buffer.concat([head, aead(key, nonce(iv, 0), Buffer.concat([head, cn]), Buffer.alloc(0))]);
  const node = new OpenSynaptic({ assignedId: s.aid, deviceId: `VEC${si}`, clock: () => 1_700_000_000_000 });
  const frames = [];
  for (const [k, v] of s.values.entries()) {
    const sensors = Array.from({ length: s.sensors }, (_, j) => [`S${j}`, 'OK', v + j, 'Cel']);
    const plain = Buffer.from(node.transmit(sensors, { t: 1_700_000_000_000 + k * 1000 }).frame);
    const seq = k + 1;
    const h = 2 + 4 * plain[1] + 7;
    const aad = Buffer.concat([plain.subarray(0, h), Buffer.from([s.sid, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff])]);
    aad[0] = { 0x3f: 0xc1, 0xaa: 0xc2, 0x7f: 0xc3 }[plain[0]];
    const sealed = Buffer.concat([aad, aead(key, nonce(iv, seq), aad, plain.subarray(h, plain.length - 3))]);
    frames.push({ seq, plain: hex(plain), sealed: hex(sealed), values: sensors.map((x) => x[2]) });
  }
  cases.push({
    id: s.id,
    input: { kind: 'stream', aid: s.aid, suite, kid: s.kid, sid: s.sid, ...(suite === 2 ? x : { secret: hex(secret) }), clientNonce: hex(cn), serverNonce: hex(sn), plain: frames.map((f) => f.plain) },
    expected: { ...(suite === 2 ? { shared: hex(secret) } : {}), key: hex(key), iv: hex(iv), hello: hex(hello), welcome: hex(welcome), sealed: frames.map((f) => f.sealed), values: frames.map((f) => f.values) },
  });
}

// Refusals, after the first stream: a replay of its last frame, and damaged copies of the next
// frame of its session (sealed, never delivered; it then still opens).
cases.push({
  id: 'refusals',
  input: { kind: 'refusals', stream: 'stream-1-sensor' },
  expected: {
    // [what is done to the last frame, the error code]
    cases: [
      ['replay', 'ERR_AUTH_REPLAY'],
      ['flip-first-body-bit', 'ERR_AUTH_TAG'],
      ['flip-last-tag-bit', 'ERR_AUTH_TAG'],
      ['flip-header-ts-bit', 'ERR_AUTH_TAG'],
      ['flip-seq-bit', 'ERR_AUTH_TAG'],
      ['other-sid', 'ERR_AUTH_NO_SESSION'],
      ['truncate-1', 'ERR_AUTH_TAG'],
      ['truncate-to-header', 'ERR_AUTH_TRUNCATED'],
      ['seq-zero', 'ERR_AUTH_BAD_PACKET'],
    ],
  },
});
cases.push({ id: 'reject-no-key', input: { kind: 'reject', aid: 4242, reason: 'NO_KEY' }, expected: { packet: hex([0xca, ...u32(4242), 1]) } });
cases.push({ id: 'reject-unknown-session', input: { kind: 'reject', aid: 7, reason: 'UNKNOWN_SESSION' }, expected: { packet: hex([0xca, ...u32(7), 2]) } });
cases.push({ id: 'reject-suite', input: { kind: 'reject', aid: 0xfffffffe, reason: 'SUITE' }, expected: { packet: hex([0xca, ...u32(0xfffffffe), 3]) } });
cases.push({ id: 'reject-no-downgrade', input: { kind: 'reject', aid: 4242, reason: 'NO_DOWNGRADE' }, expected: { packet: hex([0xca, ...u32(4242), 4]) } });

// Suite-2 HELLOs a server must refuse, against the server of 'stream-x25519' ('any' policy):
// [hex of the HELLO, the error code thrown or the REJECT reason answered]. The low-order
// ephemeral keys (0 and 1, of order 1 and 4) give OpenSSL's all-zero result, which it refuses too.
const xs = cases.find((c) => c.id === 'stream-x25519').input;
const xhello = (aid, kid, eph, extra = []) => hex([0xc8, ...u32(aid), 2, kid, ...Buffer.from(xs.clientNonce, 'hex'), ...eph, ...extra]);
for (const low of [Buffer.alloc(32), Buffer.from([1, ...Buffer.alloc(31)])]) {
  let refused = false;
  try {
    diffieHellman({ privateKey: x25519Private(Buffer.from(xs.serverPrivateKey, 'hex')), publicKey: x25519Public(low) });
  } catch {
    refused = true;
  }
  if (!refused) throw new Error('OpenSSL took a low-order X25519 key');
}
const eph = Buffer.from(xs.ephemeralPublicKey, 'hex');
cases.push({
  id: 'x25519-hello-refusals',
  input: { kind: 'x25519-hello', stream: 'stream-x25519' },
  expected: {
    cases: [
      [xhello(xs.aid, xs.kid, Buffer.alloc(32)), 'ERR_AUTH_LOW_ORDER'],
      [xhello(xs.aid, xs.kid, [1, ...Buffer.alloc(31)]), 'ERR_AUTH_LOW_ORDER'],
      [xhello(xs.aid, xs.kid, eph.subarray(0, 31)), 'ERR_AUTH_TRUNCATED'],
      [xhello(xs.aid, xs.kid, eph, [0]), 'ERR_AUTH_BAD_PACKET'],
      [xhello(xs.aid, xs.kid + 1, eph), 'REJECT NO_KEY'],
      // An aid with a pre-shared secret at this server (4242, the first stream's).
      [xhello(4242, xs.kid, eph), 'REJECT NO_DOWNGRADE'],
    ],
  },
});

const out = new URL('../../../vectors/auth.json', import.meta.url);
writeFileSync(
  out,
  `${JSON.stringify({ source: 'opensynaptic-js authenticated mode (extension), expected bytes from node:crypto (OpenSSL)', generatedBy: 'packages/vectors/scripts/generate-auth.mjs', cases }, null, 1)}\n`,
);
console.log(`wrote ${cases.length} cases to ${out.pathname}`);
