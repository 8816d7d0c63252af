/**
 * Authenticated mode: an extension of this project beside the reference's XOR "secure" mode,
 * modelled on OSCORE (RFC 8613): an AEAD over each frame's body with its header as associated
 * data, the sender's sequence number as partial IV, keys from HKDF-SHA-256 over a pre-shared
 * per-device secret, and a sliding replay window per sender.
 *
 * Session set-up (one round trip, fresh randomness on both sides, so a restarted device or server
 * never reuses a nonce: every session has its own key, and sequence numbers restart with it):
 *
 *   device → server  AUTH_HELLO   [0xC8][aid:4][suite:1][kid:1][client nonce:16]  (+ [ephemeral public key:32], suite 2)
 *   server → device  AUTH_WELCOME [0xC9][aid:4][suite:1][kid:1][sid:1][server nonce:16][tag:16]
 *   server → device  AUTH_REJECT  [0xCA][aid:4][reason:1]   (no key, unknown session, suite, downgrade)
 *
 *   okm  = HKDF-SHA-256(ikm = secret(kid), salt = client nonce ‖ server nonce,
 *                       info = "OpenSynaptic AUTH v1" ‖ aid:4 ‖ suite:1 ‖ kid:1 ‖ sid:1, 44 bytes)
 *   key  = okm[0..32], iv = okm[32..44]
 *   nonce(seq) = iv XOR (0:9 ‖ seq:3 BE)
 *
 * The WELCOME's tag is the ChaCha20-Poly1305 tag of an empty plaintext under (key, nonce(0)) with
 * the WELCOME's first 24 bytes and the client nonce as associated data: the device learns that
 * the server holds the secret and answered this HELLO. The server learns the same of the device
 * from its first frame that opens (the session is pending until then, so a forged HELLO cannot
 * displace a session in use).
 *
 * Suite 2 (X25519) replaces the pre-shared secret with a Diffie-Hellman: the server holds a static
 * X25519 key pair (named by `kid`), the device pins its public key and sends a fresh ephemeral
 * public key per session at the end of its HELLO (55 bytes). ikm = X25519(ephemeral, static),
 * info gains both public keys; salt, WELCOME and data frames are suite 1's. The WELCOME's tag
 * then proves the server holds the static private key (a device pinning another key, or a
 * forged ephemeral key, derives other keys and the tag fails). The device is not authenticated
 * by the handshake: the server's `x25519.accept` policy says which aids may use it.
 *
 * Authenticated data frame (AUTH_FULL / AUTH_DIFF / AUTH_HEART, twins of the plain commands):
 *
 *   [cmd:1][route_count:1][route_id:4 BE]*n[tid:1][ts:6 BE][sid:1][seq:3 BE][ciphertext][tag:16]
 *
 * The associated data is every byte before the ciphertext; the plaintext is the plain frame's
 * body. No CRCs: the tag covers every byte (a 1-sensor DIFF: 39 bytes against 22 plain). Seq 0 is
 * the WELCOME's; data frames count from 1 to 2^24 - 1, after which the device needs a new
 * session (it starts one at `rotateAtSeq`). A server keeps the previous session of a device for
 * `graceMs` after a new one opens a frame, so frames in flight across a rotation still decode.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { AUTH_HELLO, AUTH_REJECT, AUTH_WELCOME, authVariant, isAuthData, isPlainData, plainOfAuth } from '@opensynaptic/cmd';
import { crc8Unchecked, crc16Unchecked } from '@opensynaptic/crc';
import { BackgroundFlush, type Store, type StoreWrite } from '@opensynaptic/store';
import { AuthError, StoreError } from './errors.js';

export { AuthError, type AuthErrorCode } from './errors.js';

/** Suite 1: pre-shared secret, HKDF-SHA-256, ChaCha20-Poly1305 with its 16-byte tag. 1 byte. */
export const AUTH_SUITE_PSK_CHACHA20_POLY1305 = 1;
/**
 * Suite 2: X25519 between the device's ephemeral key and the server's static one (pinned by the
 * device), then suite 1's HKDF-SHA-256 and ChaCha20-Poly1305. 1 byte.
 */
export const AUTH_SUITE_X25519_CHACHA20_POLY1305 = 2;
/** Bytes of an X25519 public or private key (RFC 7748: the little-endian u-coordinate or scalar). */
export const AUTH_X25519_KEY_BYTES = 32;
/** Bytes of each side's HELLO / WELCOME nonce. */
export const AUTH_NONCE_BYTES = 16;
/** Bytes of the AEAD tag at the end of every authenticated frame and WELCOME. */
export const AUTH_TAG_BYTES = 16;
/** Bytes of `[sid:1][seq:3 BE]` after the plain header. */
export const AUTH_SEQ_FIELD_BYTES = 4;
/** Largest data sequence number of one session (24 bits). */
export const AUTH_MAX_SEQ = 0xff_ffff;
/** Seqs at or below the highest accepted one that the replay window still tells apart (older are refused). */
export const AUTH_REPLAY_WINDOW = 64;
/** Shortest and longest pre-shared secret, bytes. */
export const AUTH_MIN_SECRET_BYTES = 16;
export const AUTH_MAX_SECRET_BYTES = 64;
/** Length of each handshake packet (a suite-2 HELLO adds the device's ephemeral public key). */
export const AUTH_HELLO_BYTES = 23;
export const AUTH_HELLO_X25519_BYTES = AUTH_HELLO_BYTES + AUTH_X25519_KEY_BYTES;
export const AUTH_WELCOME_BYTES = 40;
export const AUTH_REJECT_BYTES = 6;

/** Why a server sent AUTH_REJECT (its last byte). */
export const AUTH_REJECT_REASONS = Object.freeze({
  /** No secret for this aid and kid: provision one (`os-node keys add`). */
  NO_KEY: 1,
  /** The frame's session is not known (expired, or the server lost it): start a new one. */
  UNKNOWN_SESSION: 2,
  /** The HELLO's suite is not one this server speaks (suite 2 on a server without `x25519`). */
  SUITE: 3,
  /**
   * Suite 2 from a device that has a pre-shared secret here: it must use suite 1, so whoever
   * does not hold the secret cannot open a session as that device (no downgrade).
   */
  NO_DOWNGRADE: 4,
} as const);
export type AuthRejectReason = keyof typeof AUTH_REJECT_REASONS;
const REASON_NAMES: Record<number, AuthRejectReason> = { 1: 'NO_KEY', 2: 'UNKNOWN_SESSION', 3: 'SUITE', 4: 'NO_DOWNGRADE' };
/** The name of a REJECT reason byte, or `UNKNOWN`. */
export const authRejectReasonName = (code: number): AuthRejectReason | 'UNKNOWN' => REASON_NAMES[code] ?? 'UNKNOWN';

const INFO = new TextEncoder().encode('OpenSynaptic AUTH v1');
const EMPTY = new Uint8Array(0);

// ------------------------------------------------------------------------------------ bytes

const u32 = (b: Uint8Array, p: number): number => ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
function putU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = (v >>> 16) & 0xff;
  b[p + 2] = (v >>> 8) & 0xff;
  b[p + 3] = v & 0xff;
}
/** Fresh random bytes (WebCrypto's, in Node 20 and every browser). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
function checkSecret(secret: Uint8Array): void {
  // The 32-byte X25519 shared secret of suite 2 is within these bounds and passes too.
  if (!(secret instanceof Uint8Array) || secret.length < AUTH_MIN_SECRET_BYTES || secret.length > AUTH_MAX_SECRET_BYTES) {
    throw new AuthError('ERR_AUTH_SECRET', `a pre-shared secret is ${AUTH_MIN_SECRET_BYTES}..${AUTH_MAX_SECRET_BYTES} bytes, not ${secret instanceof Uint8Array ? secret.length : typeof secret}`);
  }
}
const byte = (v: number, what: string): number => {
  if (!Number.isInteger(v) || v < 0 || v > 255) throw new AuthError('ERR_AUTH_BAD_PACKET', `${what} is a byte (0..255), not ${v}`);
  return v;
};
const aidOk = (aid: number): number => {
  if (!Number.isInteger(aid) || aid < 1 || aid > 0xffff_fffe) throw new AuthError('ERR_AUTH_BAD_PACKET', `aid ${aid} is not an assigned id (1..4294967294)`);
  return aid;
};

// -------------------------------------------------------------------------------- key schedule

/** One session's keys: what both sides derive from the secret and the two nonces. */
export interface AuthSessionKeys {
  readonly sid: number;
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
}

/**
 * The key schedule of the module comment (HKDF-SHA-256, 44 bytes: key 32, iv 12). `secret` is
 * the pre-shared secret (suite 1) or the X25519 shared secret (suite 2); `extraInfo` follows the
 * info of suite 1 (suite 2: device ephemeral public key ‖ server static public key).
 */
export function deriveAuthKeys(secret: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array, aid: number, suite: number, kid: number, sid: number, extraInfo: Uint8Array = EMPTY): AuthSessionKeys {
  checkSecret(secret);
  if (clientNonce.length !== AUTH_NONCE_BYTES || serverNonce.length !== AUTH_NONCE_BYTES) throw new AuthError('ERR_AUTH_BAD_PACKET', `nonces are ${AUTH_NONCE_BYTES} bytes`);
  const salt = new Uint8Array(2 * AUTH_NONCE_BYTES);
  salt.set(clientNonce, 0);
  salt.set(serverNonce, AUTH_NONCE_BYTES);
  const info = new Uint8Array(INFO.length + 7 + extraInfo.length);
  info.set(INFO, 0);
  putU32(info, INFO.length, aidOk(aid));
  info[INFO.length + 4] = byte(suite, 'suite');
  info[INFO.length + 5] = byte(kid, 'kid');
  info[INFO.length + 6] = byte(sid, 'sid');
  info.set(extraInfo, INFO.length + 7);
  const okm = hkdf(sha256, secret, salt, info, 44);
  return { sid, key: okm.slice(0, 32), iv: okm.slice(32, 44) };
}

/** An X25519 key pair: what `os-node keys server-keypair` makes for a server's `x25519` option. */
export interface X25519KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

function checkX25519Key(k: Uint8Array, what: string): void {
  if (!(k instanceof Uint8Array) || k.length !== AUTH_X25519_KEY_BYTES) throw new AuthError('ERR_AUTH_BAD_PACKET', `${what} is ${AUTH_X25519_KEY_BYTES} bytes, not ${k instanceof Uint8Array ? k.length : typeof k}`);
}

/** A new X25519 key pair from `privateKey` (default: 32 fresh random bytes). */
export function generateX25519KeyPair(privateKey: Uint8Array = randomBytes(AUTH_X25519_KEY_BYTES)): X25519KeyPair {
  checkX25519Key(privateKey, 'an X25519 private key');
  return { privateKey: privateKey.slice(), publicKey: x25519.getPublicKey(privateKey) };
}

/**
 * X25519(privateKey, publicKey): suite 2's ikm. Refuses an all-zero result (RFC 7748 §6.1): a
 * low-order public key gives a shared secret that anyone knows. Throws `AuthError`
 * `ERR_AUTH_LOW_ORDER` (`ERR_AUTH_BAD_PACKET` for a key that is not 32 bytes).
 */
export function x25519SharedSecret(privateKey: Uint8Array, publicKey: Uint8Array, aid: number | null = null, dh: X25519Function = x25519.getSharedSecret): Uint8Array {
  checkX25519Key(privateKey, 'an X25519 private key');
  checkX25519Key(publicKey, 'an X25519 public key');
  let shared: Uint8Array;
  try {
    shared = dh(privateKey, publicKey);
  } catch {
    // @noble/curves (and OpenSSL) refuse the all-zero result themselves; the check below covers it either way.
    shared = new Uint8Array(AUTH_X25519_KEY_BYTES);
  }
  if (!(shared instanceof Uint8Array) || shared.length !== AUTH_X25519_KEY_BYTES) throw new AuthError('ERR_AUTH_BAD_PACKET', `the X25519 function gave ${shared instanceof Uint8Array ? `${shared.length} bytes` : typeof shared}, not ${AUTH_X25519_KEY_BYTES}`, aid);
  if (sameBytes(shared, new Uint8Array(AUTH_X25519_KEY_BYTES))) throw new AuthError('ERR_AUTH_LOW_ORDER', `${aid === null ? '' : `aid ${aid}: `}X25519 gave the all-zero shared secret (a low-order public key): no session`, aid);
  return shared;
}

/**
 * X25519 (RFC 7748): the 32-byte shared secret of a private and a public key. The default is
 * @noble/curves (portable, about 1.5 ms here); a Node server can pass node:crypto's
 * (`nodeX25519` of @opensynaptic/server, about 9x faster). It may throw for a low-order key.
 */
export type X25519Function = (privateKey: Uint8Array, publicKey: Uint8Array) => Uint8Array;

/** Suite 2's addition to the HKDF info: device ephemeral public key ‖ server static public key. */
function x25519Info(ephemeralPublicKey: Uint8Array, serverPublicKey: Uint8Array): Uint8Array {
  const info = new Uint8Array(2 * AUTH_X25519_KEY_BYTES);
  info.set(ephemeralPublicKey, 0);
  info.set(serverPublicKey, AUTH_X25519_KEY_BYTES);
  return info;
}

/** The AEAD nonce of `seq` (0..2^24-1) under `iv`. */
export function authNonce(iv: Uint8Array, seq: number): Uint8Array {
  const n = iv.slice();
  n[9]! ^= (seq >>> 16) & 0xff;
  n[10]! ^= (seq >>> 8) & 0xff;
  n[11]! ^= seq & 0xff;
  return n;
}

// ------------------------------------------------------------------------------ handshake packets

export interface AuthHello {
  aid: number;
  suite: number;
  kid: number;
  clientNonce: Uint8Array;
  /** Suite 2 only: the device's ephemeral X25519 public key (32 bytes, after the nonce). */
  ephemeralPublicKey?: Uint8Array | undefined;
}
export interface AuthWelcome {
  aid: number;
  suite: number;
  kid: number;
  sid: number;
  serverNonce: Uint8Array;
  tag: Uint8Array;
}

export function buildAuthHello(h: AuthHello): Uint8Array {
  const x = h.suite === AUTH_SUITE_X25519_CHACHA20_POLY1305;
  if (x) checkX25519Key(h.ephemeralPublicKey as Uint8Array, 'the HELLO\'s ephemeral public key');
  else if (h.ephemeralPublicKey !== undefined) throw new AuthError('ERR_AUTH_BAD_PACKET', `only a suite-${AUTH_SUITE_X25519_CHACHA20_POLY1305} HELLO carries an ephemeral public key, not suite ${h.suite}`);
  const p = new Uint8Array(x ? AUTH_HELLO_X25519_BYTES : AUTH_HELLO_BYTES);
  p[0] = AUTH_HELLO;
  putU32(p, 1, aidOk(h.aid));
  p[5] = byte(h.suite, 'suite');
  p[6] = byte(h.kid, 'kid');
  if (h.clientNonce.length !== AUTH_NONCE_BYTES) throw new AuthError('ERR_AUTH_BAD_PACKET', `the client nonce is ${AUTH_NONCE_BYTES} bytes`);
  p.set(h.clientNonce, 7);
  if (x) p.set(h.ephemeralPublicKey!, AUTH_HELLO_BYTES);
  return p;
}

function exact(p: Uint8Array, cmd: number, n: number, name: string): void {
  if (!(p instanceof Uint8Array) || p[0] !== cmd) throw new AuthError('ERR_AUTH_BAD_PACKET', `${name}: not a ${name} packet`);
  if (p.length < n) throw new AuthError('ERR_AUTH_TRUNCATED', `${name}: ${p.length} bytes, needs ${n}`);
  if (p.length > n) throw new AuthError('ERR_AUTH_BAD_PACKET', `${name}: ${p.length} bytes, exactly ${n} allowed`);
}

/** Reads a HELLO: exactly 23 bytes, or exactly 55 for suite 2 (any other suite is read as 23, for a REJECT SUITE). */
export function parseAuthHello(p: Uint8Array): AuthHello {
  const x = p instanceof Uint8Array && p.length > 5 && p[5] === AUTH_SUITE_X25519_CHACHA20_POLY1305;
  exact(p, AUTH_HELLO, x ? AUTH_HELLO_X25519_BYTES : AUTH_HELLO_BYTES, x ? 'AUTH_HELLO (suite 2)' : 'AUTH_HELLO');
  const hello: AuthHello = { aid: aidOk(u32(p, 1)), suite: p[5]!, kid: p[6]!, clientNonce: p.slice(7, AUTH_HELLO_BYTES) };
  if (x) hello.ephemeralPublicKey = p.slice(AUTH_HELLO_BYTES, AUTH_HELLO_X25519_BYTES);
  return hello;
}

/** The WELCOME for `hello` under `keys` (its tag computed here). */
export function buildAuthWelcome(hello: AuthHello, keys: AuthSessionKeys, serverNonce: Uint8Array): Uint8Array {
  const p = new Uint8Array(AUTH_WELCOME_BYTES);
  p[0] = AUTH_WELCOME;
  putU32(p, 1, hello.aid);
  p[5] = hello.suite;
  p[6] = hello.kid;
  p[7] = byte(keys.sid, 'sid');
  p.set(serverNonce, 8);
  p.set(welcomeTag(p, hello.clientNonce, keys), 24);
  return p;
}

function welcomeTag(p: Uint8Array, clientNonce: Uint8Array, keys: AuthSessionKeys): Uint8Array {
  const aad = new Uint8Array(24 + AUTH_NONCE_BYTES);
  aad.set(p.subarray(0, 24), 0);
  aad.set(clientNonce, 24);
  return chacha20poly1305(keys.key, authNonce(keys.iv, 0), aad).encrypt(EMPTY);
}

export function parseAuthWelcome(p: Uint8Array): AuthWelcome {
  exact(p, AUTH_WELCOME, AUTH_WELCOME_BYTES, 'AUTH_WELCOME');
  return { aid: aidOk(u32(p, 1)), suite: p[5]!, kid: p[6]!, sid: p[7]!, serverNonce: p.slice(8, 24), tag: p.slice(24, 40) };
}

export function buildAuthReject(aid: number, reason: AuthRejectReason): Uint8Array {
  const p = new Uint8Array(AUTH_REJECT_BYTES);
  p[0] = AUTH_REJECT;
  putU32(p, 1, aid >>> 0);
  p[5] = AUTH_REJECT_REASONS[reason];
  return p;
}

export function parseAuthReject(p: Uint8Array): { aid: number; reason: AuthRejectReason | 'UNKNOWN'; code: number } {
  exact(p, AUTH_REJECT, AUTH_REJECT_BYTES, 'AUTH_REJECT');
  return { aid: u32(p, 1), reason: authRejectReasonName(p[5]!), code: p[5]! };
}

// ------------------------------------------------------------------------------ data frames

/** The header of an authenticated frame, as read before any key is looked up. */
export interface AuthFrameHeader {
  cmd: number;
  aid: number;
  sid: number;
  seq: number;
  /** Offset of the ciphertext: the associated data is `frame[0, bodyOffset)`. */
  bodyOffset: number;
}

/** Offset just past the plain header (`[cmd][n][routes][tid][ts]`), checking it fits in `len`. */
function headerEnd(frame: Uint8Array, len: number): number {
  if (len < 2) return -1;
  const end = 2 + 4 * frame[1]! + 7;
  return end <= len ? end : -1;
}

/** Reads an authenticated frame's header. Throws `AuthError` (`ERR_AUTH_TRUNCATED`, `ERR_AUTH_BAD_PACKET`). */
export function parseAuthFrame(frame: Uint8Array): AuthFrameHeader {
  if (!(frame instanceof Uint8Array) || frame.length === 0 || !isAuthData(frame[0]!)) throw new AuthError('ERR_AUTH_BAD_PACKET', 'not an authenticated data frame');
  const h = headerEnd(frame, frame.length);
  const need = (h < 0 ? 2 + 4 * (frame[1] ?? 0) + 7 : h) + AUTH_SEQ_FIELD_BYTES + AUTH_TAG_BYTES;
  if (h < 0 || frame.length < need) throw new AuthError('ERR_AUTH_TRUNCATED', `authenticated frame: ${frame.length} bytes, needs at least ${need}`);
  const n = frame[1]!;
  if (n === 0) throw new AuthError('ERR_AUTH_BAD_PACKET', 'authenticated frame without a route: no source aid');
  const aid = u32(frame, 2 + 4 * (n - 1));
  const seq = (frame[h + 1]! << 16) | (frame[h + 2]! << 8) | frame[h + 3]!;
  if (seq === 0) throw new AuthError('ERR_AUTH_BAD_PACKET', 'authenticated frame with seq 0 (the WELCOME\'s)', aid);
  return { cmd: frame[0]!, aid, sid: frame[h]!, seq, bodyOffset: h + AUTH_SEQ_FIELD_BYTES };
}

/**
 * Seals a plain data frame (DATA_FULL / DIFF / HEART, as `transmit` makes it) under `keys` with
 * `seq`: the same header with the authenticated command, `[sid][seq]`, the encrypted body and the
 * tag. The plain frame's CRCs are dropped (the tag covers every byte).
 */
export function sealAuthFrame(plain: Uint8Array, keys: AuthSessionKeys, seq: number): Uint8Array {
  const cmd = plain[0]!;
  if (!isPlainData(cmd)) throw new AuthError('ERR_AUTH_BAD_PACKET', `only plain data frames are sealed, not command 0x${cmd.toString(16)}`);
  if (!Number.isInteger(seq) || seq < 1 || seq > AUTH_MAX_SEQ) throw new AuthError('ERR_AUTH_SEQ_EXHAUSTED', `seq ${seq} is outside 1..${AUTH_MAX_SEQ}`);
  const h = headerEnd(plain, plain.length - 3);
  if (h < 0) throw new AuthError('ERR_AUTH_TRUNCATED', 'the plain frame is shorter than its header and CRCs');
  const bodyLen = plain.length - 3 - h;
  const out = new Uint8Array(h + AUTH_SEQ_FIELD_BYTES + bodyLen + AUTH_TAG_BYTES);
  out.set(plain.subarray(0, h), 0);
  out[0] = authVariant(cmd);
  out[h] = byte(keys.sid, 'sid');
  out[h + 1] = (seq >>> 16) & 0xff;
  out[h + 2] = (seq >>> 8) & 0xff;
  out[h + 3] = seq & 0xff;
  const at = h + AUTH_SEQ_FIELD_BYTES;
  const sealed = chacha20poly1305(keys.key, authNonce(keys.iv, seq), out.subarray(0, at)).encrypt(plain.subarray(h, h + bodyLen));
  out.set(sealed, at);
  return out;
}

/**
 * Opens an authenticated frame under `keys` and returns the plain frame it carries (plain
 * command, same header, body, CRC-8 and CRC-16 as the sender's `transmit` made them), or throws
 * `AuthError` `ERR_AUTH_TAG` when the tag does not verify (forged, corrupted, wrong key). The
 * replay window is the caller's (check it before, accept after).
 */
export function openAuthFrame(frame: Uint8Array, header: AuthFrameHeader, keys: AuthSessionKeys): Uint8Array {
  const at = header.bodyOffset;
  let body: Uint8Array;
  try {
    body = chacha20poly1305(keys.key, authNonce(keys.iv, header.seq), frame.subarray(0, at)).decrypt(frame.subarray(at));
  } catch {
    throw new AuthError('ERR_AUTH_TAG', `authenticated frame of aid ${header.aid} (session ${header.sid}, seq ${header.seq}) does not verify: forged, corrupted or under another key`, header.aid);
  }
  const h = at - AUTH_SEQ_FIELD_BYTES;
  const plain = new Uint8Array(h + body.length + 3);
  plain.set(frame.subarray(0, h), 0);
  plain[0] = plainOfAuth(header.cmd);
  plain.set(body, h);
  plain[h + body.length] = crc8Unchecked(body, 0, body.length);
  const c16 = crc16Unchecked(plain, 0, plain.length - 2);
  plain[plain.length - 2] = c16 >>> 8;
  plain[plain.length - 1] = c16 & 0xff;
  return plain;
}

// ------------------------------------------------------------------------------ replay window

const WINDOW_MASK = (1n << BigInt(AUTH_REPLAY_WINDOW)) - 1n;

/**
 * The sliding bitmap of DTLS and IPsec: `highest` is the largest seq accepted, bit i of `bits`
 * says whether `highest - i` was. A seq above `highest` is new; one within the window is new
 * unless its bit is set; older ones are refused (they may be replays the window forgot).
 */
export class ReplayWindow {
  highest = 0;
  bits = 0n;
  /** Seqs below `highest` still told apart: 64, or 0 (strict order: any seq not above `highest` is refused). */
  readonly size: number;

  constructor(highest = 0, bits = 0n, size: number = AUTH_REPLAY_WINDOW) {
    this.highest = highest;
    this.bits = bits & WINDOW_MASK;
    this.size = size;
  }

  /** `'new'`, `'replay'` (seen) or `'old'` (below the window). Changes nothing. */
  check(seq: number): 'new' | 'replay' | 'old' {
    if (seq > this.highest) return 'new';
    const d = this.highest - seq;
    if (d >= this.size) return d === 0 ? 'replay' : 'old';
    return ((this.bits >> BigInt(d)) & 1n) === 1n ? 'replay' : 'new';
  }

  /** Marks `seq` seen (after its tag verified). */
  accept(seq: number): void {
    if (seq > this.highest) {
      const shift = seq - this.highest;
      this.bits = shift >= AUTH_REPLAY_WINDOW ? 1n : ((this.bits << BigInt(shift)) | 1n) & WINDOW_MASK;
      this.highest = seq;
    } else {
      this.bits |= 1n << BigInt(this.highest - seq);
    }
  }
}

// ------------------------------------------------------------------------------ server side

/** A pre-shared secret of one device, as stored (`keys` kind, one record per aid). */
export interface StoredAuthKey {
  kid: number;
  /** base64url of the secret. */
  secret: string;
  addedMs: number;
}
/** One session as stored (`auth` kind, one record per aid holding its sessions). */
export interface StoredAuthSession {
  state: 'pending' | 'current' | 'previous';
  sid: number;
  kid: number;
  /** The suite the session was set up with (absent: 1, as written before suite 2). */
  suite?: number | undefined;
  key: string;
  iv: string;
  highest: number;
  /** The replay bitmap, hex. */
  bits: string;
  createdMs: number;
  lastSeenMs: number;
  /** When a newer session took over (previous sessions only). */
  retiredMs?: number | undefined;
}
/** The store kinds of the authenticated mode (beside `sessions` and `leases`). */
export interface AuthKinds {
  keys: { aid: number; keys: StoredAuthKey[] };
  auth: { aid: number; sessions: StoredAuthSession[] };
}

const b64 = (b: Uint8Array): string => {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};
const unb64 = (s: string): Uint8Array => {
  const t = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(t.length);
  for (let i = 0; i < t.length; i++) out[i] = t.charCodeAt(i);
  return out;
};
export { b64 as secretToText, unb64 as secretFromText };

/**
 * The secrets of a stored `keys` record, checked (an aid, kids 0..255, secrets of a valid size),
 * or a `StoreError` naming what is wrong: the one reading of these records, for `load` and
 * `reloadKeys` alike, so a damaged record is refused the same way at start and at a HELLO.
 */
function keysOfRecord(row: unknown, where: string): { aid: number; keys: Map<number, Uint8Array> } {
  const r = row as Partial<AuthKinds['keys']> | null;
  const shown = () => (JSON.stringify(row) ?? String(row)).slice(0, 80);
  if (r === null || typeof r !== 'object' || !Number.isInteger(r.aid) || !Array.isArray(r.keys)) throw new StoreError(where, `holds a keys record that is not one (${shown()})`);
  const keys = new Map<number, Uint8Array>();
  for (const k of r.keys as unknown[]) {
    const key = k as Partial<StoredAuthKey> | null;
    let secret: Uint8Array | undefined;
    try {
      if (key !== null && typeof key === 'object' && typeof key.secret === 'string') secret = unb64(key.secret);
    } catch {
      // not base64url: refused below
    }
    const kid = key?.kid;
    if (secret === undefined || secret.length < AUTH_MIN_SECRET_BYTES || secret.length > AUTH_MAX_SECRET_BYTES || typeof kid !== 'number' || !Number.isInteger(kid) || kid < 0 || kid > 255) {
      throw new StoreError(where, `holds a key of aid ${r.aid} that is not one (a kid 0..255 and a base64url secret of ${AUTH_MIN_SECRET_BYTES}..${AUTH_MAX_SECRET_BYTES} bytes)`);
    }
    keys.set(kid, secret);
  }
  return { aid: r.aid as number, keys };
}

interface ServerSession extends AuthSessionKeys {
  kid: number;
  suite: number;
  window: ReplayWindow;
  createdMs: number;
  lastSeenMs: number;
  retiredMs: number | undefined;
}
interface DeviceSessions {
  pending: ServerSession | null;
  current: ServerSession | null;
  previous: ServerSession | null;
}

export interface AuthServerOptions {
  /** Where secrets and sessions persist (kinds `keys` and `auth`); default none (memory). */
  store?: Store<AuthKinds> | undefined;
  /** Refuse legacy data frames (plain and XOR-secure) from every device (default false: a mixed fleet). */
  require?: boolean | undefined;
  /** How long a rotated-out session still opens frames in flight, ms (default 120000). */
  graceMs?: number | undefined;
  /** Sessions unused this long are forgotten, ms (default 86,400,000: a day). */
  expireMs?: number | undefined;
  /** Devices with sessions at once (default 1,048,576); HELLOs past it get no session (REJECT UNKNOWN_SESSION). */
  maxDevices?: number | undefined;
  /** Sessions are written at most this often, ms (default 5000). */
  saveIntervalMs?: number | undefined;
  /**
   * Frames that arrive late (below the highest seq accepted) are accepted once when within the
   * last 64 (`'window'`, default: UDP reorders, as DTLS, IPsec and OSCORE allow) or never
   * (`'strict'`: every frame must have a higher seq than the one before).
   */
  order?: 'window' | 'strict' | undefined;
  /** Server nonces (default WebCrypto's random bytes); inject for golden vectors only. */
  random?: ((n: number) => Uint8Array) | undefined;
  /** Suite 2 (X25519): the server's static key pair and which devices may use it; default none (suite 2 is answered REJECT SUITE). */
  x25519?: AuthX25519Options | undefined;
}

/**
 * The server's suite-2 policy. A device that has a pre-shared secret here never gets a suite-2
 * session (REJECT NO_DOWNGRADE), whatever `accept` says: whoever lacks its secret must not be able
 * to speak as it.
 */
export interface AuthX25519Options {
  /** The server's static X25519 private key (32 bytes; `os-node keys server-keypair` makes a pair). */
  privateKey: Uint8Array;
  /** The kid a suite-2 HELLO names this key pair by (0..255); another kid is answered REJECT NO_KEY. */
  kid: number;
  /**
   * `'known'` (default): only devices enrolled for suite 2 (`AuthServer.enrolX25519`: a record in
   * the key store without a pre-shared secret), others get REJECT NO_KEY. `'any'`: every aid may
   * open a suite-2 session: the channel is confidential and the server authenticated, but the
   * device is not (anyone may claim any aid that has no secret).
   */
  accept?: 'any' | 'known' | undefined;
  /**
   * The X25519 function for the HELLOs' shared secrets (default @noble/curves). One runs per
   * accepted suite-2 HELLO on the server's thread, so a faster one bounds what a flood of HELLOs
   * costs: a Node server passes node:crypto's (`nodeX25519` of @opensynaptic/server).
   */
  sharedSecret?: X25519Function | undefined;
}

/** What opening an authenticated frame gave: the plain frame, or the typed refusal and what to answer. */
export type AuthOpenResult =
  | { ok: true; plain: Uint8Array; aid: number; sid: number; seq: number; promoted: boolean; suite: number }
  | { ok: false; error: AuthError; response: Uint8Array | null };

/** Counters of the server side. */
export interface AuthServerCounters {
  hellos: number;
  welcomes: number;
  rejects: Record<AuthRejectReason, number>;
  opened: number;
  refused: Record<'tag' | 'replay' | 'old' | 'no-session' | 'truncated' | 'bad', number>;
  rotations: number;
  legacyRefused: number;
}

/**
 * The server half: secrets by device (kid → secret), sessions by device (pending, current,
 * previous), HELLO → WELCOME, and opening frames with the replay window. Sessions persist
 * write-behind (like the legacy sessions): after a restart a device's session resumes; one the
 * server lost is answered REJECT UNKNOWN_SESSION and the device starts a new one. The replay
 * window persists with it, so a restart between two saves (`saveIntervalMs`) can accept, once,
 * a frame the server had accepted in that gap.
 */
export class AuthServer {
  readonly require: boolean;
  readonly graceMs: number;
  readonly expireMs: number;
  readonly maxDevices: number;
  /** Replay window size of new sessions: 64, or 0 with `order: 'strict'`. */
  readonly windowSize: number;
  readonly counters: AuthServerCounters = {
    hellos: 0,
    welcomes: 0,
    rejects: { NO_KEY: 0, UNKNOWN_SESSION: 0, SUITE: 0, NO_DOWNGRADE: 0 },
    opened: 0,
    refused: { tag: 0, replay: 0, old: 0, 'no-session': 0, truncated: 0, bad: 0 },
    rotations: 0,
    legacyRefused: 0,
  };
  readonly #keys = new Map<number, Map<number, Uint8Array>>();
  readonly #sessions = new Map<number, DeviceSessions>();
  readonly #store: Store<AuthKinds> | undefined;
  readonly #background: BackgroundFlush | undefined;
  readonly #random: (n: number) => Uint8Array;
  readonly #x25519: { privateKey: Uint8Array; publicKey: Uint8Array; kid: number; accept: 'any' | 'known'; dh: X25519Function | undefined } | null;
  readonly #saveInterval: number;
  readonly #dirtyKeys = new Set<number>();
  readonly #dirtySessions = new Set<number>();
  #lastSave = Number.NEGATIVE_INFINITY;
  #opened: boolean;
  lastError: StoreError | undefined;

  constructor(options: AuthServerOptions = {}) {
    this.require = options.require === true;
    this.graceMs = options.graceMs ?? 120_000;
    this.expireMs = options.expireMs ?? 86_400_000;
    this.maxDevices = options.maxDevices ?? 1 << 20;
    if (options.order !== undefined && options.order !== 'window' && options.order !== 'strict') throw new AuthError('ERR_AUTH_BAD_PACKET', `order is window or strict, not ${String(options.order)}`);
    this.windowSize = options.order === 'strict' ? 0 : AUTH_REPLAY_WINDOW;
    this.#saveInterval = options.saveIntervalMs ?? 5000;
    this.#random = options.random ?? randomBytes;
    const x = options.x25519;
    if (x === undefined) this.#x25519 = null;
    else {
      const accept = x.accept ?? 'known';
      if (accept !== 'any' && accept !== 'known') throw new AuthError('ERR_AUTH_BAD_PACKET', `x25519.accept is any or known, not ${String(accept)}`);
      if (x.sharedSecret !== undefined && typeof x.sharedSecret !== 'function') throw new AuthError('ERR_AUTH_BAD_PACKET', `x25519.sharedSecret is a function, not ${typeof x.sharedSecret}`);
      const { privateKey, publicKey } = generateX25519KeyPair(x.privateKey);
      this.#x25519 = { privateKey, publicKey, kid: byte(x.kid, 'x25519.kid'), accept, dh: x.sharedSecret };
    }
    this.#store = options.store;
    this.#opened = this.#store === undefined;
    this.#background = this.#store && new BackgroundFlush(this.#store, (e) => this.#failed(e, 'cannot be flushed'));
  }

  get opened(): boolean {
    return this.#opened;
  }

  /** Loads the stored secrets and sessions (once). Rejects with `StoreError` for records that are not ours. */
  async load(now: number): Promise<void> {
    if (this.#opened) return;
    const store = this.#store!;
    const where = 'auth store';
    try {
      const keyIds = await store.keys('keys');
      const keyRows = await store.getMany('keys', keyIds);
      for (const row of keyRows) {
        if (row === undefined) continue;
        const { aid, keys } = keysOfRecord(row, where);
        this.#keys.set(aid, keys);
      }
      const ids = await store.keys('auth');
      const rows = await store.getMany('auth', ids);
      for (const row of rows) {
        if (row === undefined) continue;
        if (!Number.isInteger(row.aid) || !Array.isArray(row.sessions)) throw new StoreError(where, `holds an auth record that is not one (${JSON.stringify(row).slice(0, 80)})`);
        const d: DeviceSessions = { pending: null, current: null, previous: null };
        for (const s of row.sessions) {
          if (now - s.lastSeenMs >= this.expireMs) continue;
          d[s.state] = { sid: s.sid, kid: s.kid, suite: s.suite ?? AUTH_SUITE_PSK_CHACHA20_POLY1305, key: unb64(s.key), iv: unb64(s.iv), window: new ReplayWindow(s.highest, BigInt(`0x${s.bits || '0'}`), this.windowSize), createdMs: s.createdMs, lastSeenMs: s.lastSeenMs, retiredMs: s.retiredMs };
        }
        this.#sessions.set(row.aid, d);
      }
    } catch (e) {
      throw e instanceof StoreError ? e : new StoreError(where, 'cannot be read', { cause: e });
    }
    this.#opened = true;
  }

  /** Whether secrets and sessions persist (a store was given). */
  get persistent(): boolean {
    return this.#store !== undefined;
  }

  /**
   * Reads `aid`'s secrets from the store again (what another process, `os-node keys`, wrote
   * since `load`), unless this process changed them and has not saved yet. Rejects with
   * `StoreError`; resolves at once without a store.
   */
  async reloadKeys(aid: number): Promise<void> {
    const store = this.#store;
    if (store === undefined || this.#dirtyKeys.has(aid)) return;
    let row: AuthKinds['keys'] | undefined;
    try {
      row = await store.get('keys', String(aid));
    } catch (e) {
      throw this.#failed(e, 'cannot be read');
    }
    if (this.#dirtyKeys.has(aid)) return;
    if (row === undefined) {
      this.#keys.delete(aid);
      return;
    }
    // A damaged record rejects and leaves the secrets in memory as they were (the caller answers
    // from them), rather than forgetting the device's secrets.
    const read = keysOfRecord(row, 'auth store');
    if (read.aid !== aid) throw new StoreError('auth store', `holds the keys of aid ${read.aid} under aid ${aid}`);
    this.#keys.set(aid, read.keys);
  }

  /** Adds (or replaces) the secret `kid` of `aid`; other kids stay (rotation: add the next, retire the old later). */
  setKey(aid: number, kid: number, secret: Uint8Array): void {
    aidOk(aid);
    byte(kid, 'kid');
    checkSecret(secret);
    let m = this.#keys.get(aid);
    if (m === undefined) {
      m = new Map();
      this.#keys.set(aid, m);
    }
    m.set(kid, secret.slice());
    this.#dirtyKeys.add(aid);
  }

  /** Removes one secret of `aid`, or all of them (`kid` undefined) and its sessions. */
  removeKey(aid: number, kid?: number): boolean {
    const m = this.#keys.get(aid);
    if (m === undefined) return false;
    const gone = kid === undefined || m.delete(kid);
    if (kid === undefined || m.size === 0) {
      this.#keys.delete(aid);
      if (this.#sessions.delete(aid)) this.#dirtySessions.add(aid);
    }
    this.#dirtyKeys.add(aid);
    return gone;
  }

  /** The kids held for `aid`. */
  kidsOf(aid: number): number[] {
    return [...(this.#keys.get(aid)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** Whether `aid` has a pre-shared secret (and so may authenticate with suite 1, and never with suite 2). */
  hasKey(aid: number): boolean {
    return (this.#keys.get(aid)?.size ?? 0) > 0;
  }

  /**
   * Enrols `aid` for suite 2 under `x25519.accept: 'known'`: a key-store record without a secret
   * (persisted like secrets, removed by `removeKey(aid)`). A device that also has a secret still
   * gets no suite-2 session.
   */
  enrolX25519(aid: number): void {
    aidOk(aid);
    if (this.#keys.has(aid)) return;
    this.#keys.set(aid, new Map());
    this.#dirtyKeys.add(aid);
  }

  /** Whether `aid` may open a suite-2 session now (x25519 configured, its policy, no pre-shared secret). */
  acceptsX25519(aid: number): boolean {
    return this.#x25519Refusal(aid) === null;
  }

  /**
   * Why `aid` may not open a suite-2 session (with `kid`, for a HELLO naming one), or `null`: the
   * one policy check, for `acceptsX25519` and `onHello` alike. Runs before any curve math.
   */
  #x25519Refusal(aid: number, kid?: number): AuthRejectReason | null {
    const x = this.#x25519;
    if (x === null) return 'SUITE';
    if (this.hasKey(aid)) return 'NO_DOWNGRADE';
    if ((kid !== undefined && kid !== x.kid) || (x.accept === 'known' && !this.#keys.has(aid))) return 'NO_KEY';
    return null;
  }

  /** The server's static X25519 public key (what devices pin), or `null` without `x25519`. */
  get x25519PublicKey(): Uint8Array | null {
    return this.#x25519?.publicKey.slice() ?? null;
  }

  /** The suite of `aid`'s current session (1 pre-shared secret, 2 X25519), or `null` without one. */
  sessionSuite(aid: number): number | null {
    return this.#sessions.get(aid)?.current?.suite ?? null;
  }

  /** Whether `aid` has an established (current) session: it sends authenticated frames. */
  isAuthenticated(aid: number): boolean {
    return this.#sessions.get(aid)?.current != null;
  }

  get devices(): number {
    return this.#sessions.size;
  }

  /** Answers a HELLO: a WELCOME with a new pending session, or a REJECT. Throws `AuthError` for a malformed HELLO. */
  onHello(packet: Uint8Array, now: number): { response: Uint8Array; aid: number; sid: number | null } {
    this.counters.hellos++;
    const hello = parseAuthHello(packet);
    const reject = (reason: AuthRejectReason) => {
      this.counters.rejects[reason]++;
      return { response: buildAuthReject(hello.aid, reason), aid: hello.aid, sid: null };
    };
    let secret: Uint8Array | undefined;
    let extraInfo: Uint8Array = EMPTY;
    if (hello.suite === AUTH_SUITE_X25519_CHACHA20_POLY1305) {
      const refused = this.#x25519Refusal(hello.aid, hello.kid);
      if (refused !== null) return reject(refused);
      const x = this.#x25519!;
      secret = x25519SharedSecret(x.privateKey, hello.ephemeralPublicKey!, hello.aid, x.dh);
      extraInfo = x25519Info(hello.ephemeralPublicKey!, x.publicKey);
    } else if (hello.suite === AUTH_SUITE_PSK_CHACHA20_POLY1305) {
      secret = this.#keys.get(hello.aid)?.get(hello.kid);
      if (secret === undefined) return reject('NO_KEY');
    } else return reject('SUITE');
    let d = this.#sessions.get(hello.aid);
    if (d === undefined) {
      if (this.#sessions.size >= this.maxDevices) return reject('UNKNOWN_SESSION');
      d = { pending: null, current: null, previous: null };
      this.#sessions.set(hello.aid, d);
    }
    // A sid none of the device's live sessions has, so a frame always names one session.
    let sid = ((d.pending ?? d.current)?.sid ?? 0) + 1;
    for (let i = 0; i < 256; i++, sid++) {
      sid &= 0xff;
      if (sid !== d.current?.sid && sid !== d.previous?.sid && sid !== d.pending?.sid) break;
    }
    const serverNonce = this.#random(AUTH_NONCE_BYTES);
    const keys = deriveAuthKeys(secret, hello.clientNonce, serverNonce, hello.aid, hello.suite, hello.kid, sid, extraInfo);
    d.pending = { ...keys, kid: hello.kid, suite: hello.suite, window: new ReplayWindow(0, 0n, this.windowSize), createdMs: now, lastSeenMs: now, retiredMs: undefined };
    this.#changed(hello.aid, now);
    this.counters.welcomes++;
    return { response: buildAuthWelcome(hello, keys, serverNonce), aid: hello.aid, sid };
  }

  /** Opens an authenticated frame (see `AuthOpenResult`). Never throws. */
  open(frame: Uint8Array, now: number): AuthOpenResult {
    let h: AuthFrameHeader;
    try {
      h = parseAuthFrame(frame);
    } catch (e) {
      const error = e as AuthError;
      this.counters.refused[error.code === 'ERR_AUTH_TRUNCATED' ? 'truncated' : 'bad']++;
      return { ok: false, error, response: null };
    }
    const d = this.#sessions.get(h.aid);
    let s: ServerSession | null = null;
    if (d !== undefined) {
      if (d.current?.sid === h.sid) s = d.current;
      else if (d.pending?.sid === h.sid) s = d.pending;
      else if (d.previous?.sid === h.sid && d.previous.retiredMs !== undefined && now - d.previous.retiredMs < this.graceMs) s = d.previous;
    }
    if (s === null) {
      this.counters.refused['no-session']++;
      this.counters.rejects.UNKNOWN_SESSION++;
      return { ok: false, error: new AuthError('ERR_AUTH_NO_SESSION', `aid ${h.aid} has no session ${h.sid} here: it must start a new one (AUTH_REJECT UNKNOWN_SESSION sent)`, h.aid), response: buildAuthReject(h.aid, 'UNKNOWN_SESSION') };
    }
    const seen = s.window.check(h.seq);
    if (seen !== 'new') {
      this.counters.refused[seen]++;
      const why = seen === 'replay' ? 'was already accepted (a replay)' : s.window.size === 0 ? `is not above the highest accepted (${s.window.highest}; order strict)` : `is more than ${s.window.size} below the highest accepted (${s.window.highest})`;
      return { ok: false, error: new AuthError('ERR_AUTH_REPLAY', `aid ${h.aid} session ${h.sid}: seq ${h.seq} ${why}`, h.aid), response: null };
    }
    let plain: Uint8Array;
    try {
      plain = openAuthFrame(frame, h, s);
    } catch (e) {
      this.counters.refused.tag++;
      return { ok: false, error: e as AuthError, response: null };
    }
    s.window.accept(h.seq);
    s.lastSeenMs = now;
    let promoted = false;
    if (s === d!.pending) {
      // The device proved it holds the secret: the new session takes over, the old one ages out.
      if (d!.current !== null) {
        d!.current.retiredMs = now;
        d!.previous = d!.current;
        this.counters.rotations++;
      }
      d!.current = s;
      d!.pending = null;
      promoted = true;
    }
    this.counters.opened++;
    this.#changed(h.aid, now);
    return { ok: true, plain, aid: h.aid, sid: h.sid, seq: h.seq, promoted, suite: s.suite };
  }

  /** Forgets expired sessions and rotated-out ones past their grace; writes what changed. */
  sweep(now: number): void {
    for (const [aid, d] of this.#sessions) {
      let changed = false;
      if (d.previous !== null && (d.previous.retiredMs === undefined || now - d.previous.retiredMs >= this.graceMs)) {
        d.previous = null;
        changed = true;
      }
      for (const k of ['pending', 'current'] as const) {
        const s = d[k];
        if (s !== null && now - s.lastSeenMs >= this.expireMs) {
          d[k] = null;
          changed = true;
        }
      }
      if (d.pending === null && d.current === null && d.previous === null) this.#sessions.delete(aid);
      if (changed) this.#dirtySessions.add(aid);
    }
    this.#maybeSave(now);
  }

  #changed(aid: number, now: number): void {
    if (this.#store === undefined) return;
    this.#dirtySessions.add(aid);
    this.#maybeSave(now);
  }

  #maybeSave(now: number): void {
    if (this.#store === undefined || (this.#dirtySessions.size === 0 && this.#dirtyKeys.size === 0)) return;
    const since = now - this.#lastSave;
    if (since >= this.#saveInterval || since < 0) this.save(now).then(() => this.#background!.request(), () => undefined);
  }

  /** Hands every changed secret and session to the store (write-behind). Rejects with `StoreError`. */
  save(now: number): Promise<void> {
    const store = this.#store;
    if (store === undefined || (this.#dirtySessions.size === 0 && this.#dirtyKeys.size === 0)) return Promise.resolve();
    const keyAids = [...this.#dirtyKeys];
    const sessionAids = [...this.#dirtySessions];
    const batch: StoreWrite<AuthKinds>[] = [];
    for (const aid of keyAids) {
      const m = this.#keys.get(aid);
      if (m === undefined) batch.push({ op: 'delete', kind: 'keys', key: String(aid) });
      else batch.push({ op: 'put', kind: 'keys', key: String(aid), value: { aid, keys: [...m].map(([kid, secret]) => ({ kid, secret: b64(secret), addedMs: now })) } });
    }
    for (const aid of sessionAids) {
      const d = this.#sessions.get(aid);
      if (d === undefined) {
        batch.push({ op: 'delete', kind: 'auth', key: String(aid) });
        continue;
      }
      const sessions: StoredAuthSession[] = [];
      for (const state of ['pending', 'current', 'previous'] as const) {
        const s = d[state];
        if (s !== null) sessions.push({ state, sid: s.sid, kid: s.kid, suite: s.suite, key: b64(s.key), iv: b64(s.iv), highest: s.window.highest, bits: s.window.bits.toString(16), createdMs: s.createdMs, lastSeenMs: s.lastSeenMs, retiredMs: s.retiredMs });
      }
      batch.push({ op: 'put', kind: 'auth', key: String(aid), value: { aid, sessions } });
    }
    this.#dirtyKeys.clear();
    this.#dirtySessions.clear();
    this.#lastSave = now;
    let write: Promise<void>;
    try {
      write = store.write(batch);
    } catch (e) {
      write = Promise.reject(e);
    }
    return write.catch((e: unknown) => {
      for (const aid of keyAids) this.#dirtyKeys.add(aid);
      for (const aid of sessionAids) this.#dirtySessions.add(aid);
      throw this.#failed(e, 'cannot be written');
    });
  }

  /** `save`, then the store's flush. */
  async flush(now: number): Promise<void> {
    if (this.#store === undefined || !this.#opened) return;
    await this.save(now);
    try {
      await this.#store.flush();
    } catch (e) {
      throw this.#failed(e, 'cannot be flushed');
    }
  }

  #failed(e: unknown, detail: string): StoreError {
    const error = e instanceof StoreError ? e : new StoreError('auth store', detail, { cause: e });
    this.lastError = error;
    return error;
  }
}

// ------------------------------------------------------------------------------ device side

export type AuthMode = 'prefer' | 'require';

export interface AuthClientOptions {
  /** Suite 1: the device's pre-shared secret (16..64 bytes; `os-node keys add` makes one). Give it or `serverPublicKey`, not both. */
  secret?: Uint8Array | undefined;
  /**
   * Suite 2: the server's static X25519 public key (32 bytes), pinned: a WELCOME from any other
   * key does not verify. Each HELLO then carries a fresh ephemeral key.
   */
  serverPublicKey?: Uint8Array | undefined;
  /** Which of the server's secrets of this device it is, or (suite 2) which server key pair (default 0; a rotation adds kid + 1). */
  kid?: number | undefined;
  /**
   * `prefer` (default): authenticate when the server can; a legacy server (its "Unknown CMD"
   * NACK, or REJECT NO_KEY / SUITE) gets legacy frames. `require`: never send a legacy frame;
   * transmit throws `AuthError` until a session is up. `prefer` can be downgraded by whoever can
   * forge those unauthenticated answers: choose `require` where that matters.
   */
  mode?: AuthMode | undefined;
  /** A new session is asked for once seq passes this (default 2^24 - 65536), before it runs out. */
  rotateAtSeq?: number | undefined;
}

export type AuthClientState = 'none' | 'hello-sent' | 'established' | 'legacy';

/** The device half: one session with its server, HELLO / WELCOME / REJECT, sealing frames. */
export class AuthClient {
  readonly mode: AuthMode;
  readonly kid: number;
  /** 1 (pre-shared secret) or 2 (X25519 with the pinned server key). */
  readonly suite: number;
  readonly rotateAtSeq: number;
  readonly #secret: Uint8Array | null;
  readonly #serverPublicKey: Uint8Array | null;
  #state: AuthClientState = 'none';
  #session: (AuthSessionKeys & { aid: number }) | null = null;
  #seq = 0;
  /** The HELLO pending, with what its WELCOME is checked under (suite 2: the X25519 shared secret). */
  #hello: (AuthHello & { secret: Uint8Array; extraInfo: Uint8Array }) | null = null;
  /** Why the last HELLO failed (REJECT reason, legacy NACK), for the caller's error. */
  lastRefusal: string | null = null;
  /**
   * Why the last WELCOME answering the pending HELLO was ignored: `ERR_AUTH_TAG` when its tag does
   * not verify (forged, or signed by a server key other than the pinned one). Cleared by a WELCOME
   * that establishes a session.
   */
  lastWelcomeError: AuthError | null = null;

  constructor(options: AuthClientOptions) {
    if ((options.secret === undefined) === (options.serverPublicKey === undefined)) throw new AuthError('ERR_AUTH_SECRET', 'the authenticated mode needs a pre-shared secret (suite 1) or a server public key (suite 2), exactly one of them');
    if (options.secret !== undefined) {
      checkSecret(options.secret);
      this.#secret = options.secret.slice();
      this.#serverPublicKey = null;
      this.suite = AUTH_SUITE_PSK_CHACHA20_POLY1305;
    } else {
      checkX25519Key(options.serverPublicKey!, 'the server public key');
      this.#secret = null;
      this.#serverPublicKey = options.serverPublicKey!.slice();
      this.suite = AUTH_SUITE_X25519_CHACHA20_POLY1305;
    }
    this.kid = byte(options.kid ?? 0, 'kid');
    this.mode = options.mode ?? 'prefer';
    if (this.mode !== 'prefer' && this.mode !== 'require') throw new AuthError('ERR_AUTH_BAD_PACKET', `auth mode is prefer or require, not ${String(this.mode)}`);
    this.rotateAtSeq = options.rotateAtSeq ?? AUTH_MAX_SEQ - 65_536;
  }

  get state(): AuthClientState {
    return this.#state;
  }
  /** The sequence number of the last frame sealed in this session. */
  get seq(): number {
    return this.#seq;
  }
  get sid(): number | null {
    return this.#session?.sid ?? null;
  }
  /** Whether the session is past `rotateAtSeq` (a new HELLO is due). */
  get rotationDue(): boolean {
    return this.#session !== null && this.#seq >= this.rotateAtSeq;
  }

  /**
   * A HELLO for `aid` with a fresh nonce (the session in use, if any, stays until the WELCOME);
   * suite 2 with a fresh ephemeral key, whose private half lives only until the shared secret is
   * computed here. `ephemeralPrivateKey` is injectable for golden vectors only. Throws `AuthError`
   * `ERR_AUTH_LOW_ORDER` for a pinned server key of low order.
   */
  hello(aid: number, clientNonce: Uint8Array = randomBytes(AUTH_NONCE_BYTES), ephemeralPrivateKey?: Uint8Array): Uint8Array {
    aidOk(aid);
    let hello: AuthHello & { secret: Uint8Array; extraInfo: Uint8Array };
    if (this.#serverPublicKey === null) hello = { aid, suite: this.suite, kid: this.kid, clientNonce, secret: this.#secret!, extraInfo: EMPTY };
    else {
      const eph = generateX25519KeyPair(ephemeralPrivateKey);
      const secret = x25519SharedSecret(eph.privateKey, this.#serverPublicKey, aid);
      eph.privateKey.fill(0);
      hello = { aid, suite: this.suite, kid: this.kid, clientNonce, ephemeralPublicKey: eph.publicKey, secret, extraInfo: x25519Info(eph.publicKey, this.#serverPublicKey) };
    }
    const packet = buildAuthHello(hello);
    this.#hello = hello;
    // What refused or failed the last HELLO says nothing about this one.
    this.lastRefusal = null;
    this.lastWelcomeError = null;
    if (this.#state !== 'established') this.#state = 'hello-sent';
    return packet;
  }

  /**
   * Takes a WELCOME: the new session once its tag verifies (`'established'`), or `'ignored'` for
   * one this client did not ask for or that does not verify (a forgery changes nothing).
   */
  onWelcome(packet: Uint8Array): 'established' | 'ignored' {
    const hello = this.#hello;
    let w: AuthWelcome;
    try {
      w = parseAuthWelcome(packet);
    } catch {
      return 'ignored';
    }
    if (hello === null || w.aid !== hello.aid || w.suite !== hello.suite || w.kid !== hello.kid) return 'ignored';
    const keys = deriveAuthKeys(hello.secret, hello.clientNonce, w.serverNonce, w.aid, w.suite, w.kid, w.sid, hello.extraInfo);
    if (!sameBytes(welcomeTag(packet, hello.clientNonce, keys), w.tag)) {
      const key = hello.suite === AUTH_SUITE_X25519_CHACHA20_POLY1305 ? 'the pinned server public key' : 'the pre-shared secret';
      this.lastWelcomeError = new AuthError('ERR_AUTH_TAG', `aid ${w.aid}: the WELCOME's tag does not verify under ${key} (forged, or another server): ignored, no session`, w.aid);
      return 'ignored';
    }
    this.#session = { ...keys, aid: w.aid };
    this.#seq = 0;
    this.#hello = null;
    this.#state = 'established';
    this.lastRefusal = null;
    this.lastWelcomeError = null;
    return 'established';
  }

  /**
   * Takes a REJECT: UNKNOWN_SESSION drops the session it names (a new HELLO is due), NO_KEY,
   * SUITE and NO_DOWNGRADE answer a pending HELLO (`prefer`: legacy from now on). Returns what changed.
   */
  onReject(packet: Uint8Array): 'session-lost' | 'refused' | 'ignored' {
    let r: ReturnType<typeof parseAuthReject>;
    try {
      r = parseAuthReject(packet);
    } catch {
      return 'ignored';
    }
    if (r.reason === 'UNKNOWN_SESSION' && this.#session !== null && r.aid === this.#session.aid) {
      this.#session = null;
      this.#seq = 0;
      this.#state = 'none';
      return 'session-lost';
    }
    if ((r.reason === 'NO_KEY' || r.reason === 'SUITE' || r.reason === 'NO_DOWNGRADE') && this.#hello !== null && r.aid === this.#hello.aid) {
      this.lastRefusal = `the server refused the HELLO: ${r.reason}`;
      this.#hello = null;
      if (this.#state !== 'established') this.#state = this.mode === 'prefer' ? 'legacy' : 'none';
      return 'refused';
    }
    return 'ignored';
  }

  /** A legacy server answered the HELLO with its "Unknown CMD" NACK. */
  onLegacyServer(): void {
    if (this.#hello === null) return;
    this.lastRefusal = 'the server does not know AUTH_HELLO (a legacy server)';
    this.#hello = null;
    if (this.#state !== 'established') this.#state = this.mode === 'prefer' ? 'legacy' : 'none';
  }

  /** Forgets the session (e.g. a new id was assigned). */
  reset(): void {
    this.#session = null;
    this.#hello = null;
    this.#seq = 0;
    this.#state = 'none';
  }

  /**
   * Seals a plain data frame of `aid` under the session, or returns it as it is when legacy
   * frames may go (`prefer` without a session). Throws `AuthError`: `ERR_AUTH_REQUIRED`
   * (`require` without a session), `ERR_AUTH_SEQ_EXHAUSTED` (2^24 - 1 frames in one session).
   */
  seal(plain: Uint8Array, aid: number): { frame: Uint8Array; authenticated: boolean } {
    const s = this.#session;
    if (s === null || s.aid !== aid) {
      if (this.mode === 'require') throw new AuthError('ERR_AUTH_REQUIRED', `aid ${aid} has no authenticated session yet (auth mode require): authenticate() first`, aid);
      return { frame: plain, authenticated: false };
    }
    if (this.#seq >= AUTH_MAX_SEQ) throw new AuthError('ERR_AUTH_SEQ_EXHAUSTED', `session ${s.sid} of aid ${aid} used all ${AUTH_MAX_SEQ} sequence numbers: authenticate() again`, aid);
    const frame = sealAuthFrame(plain, s, this.#seq + 1);
    this.#seq++;
    return { frame, authenticated: true };
  }
}
