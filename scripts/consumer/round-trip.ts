/**
 * What a consumer of the published packages does, run by scripts/consumer-check.mjs on Node (as
 * ESM and as CommonJS) and, bundled, in a headless browser: a frame encoded and decoded, then two
 * nodes that exchange data until the session is secure. Throws on any mismatch. Synchronous, so
 * one source compiles to both module formats.
 */
import { decode as base62Decode, encode as base62Encode } from '@opensynaptic/base62';
import { DATA_DIFF_SEC, DATA_FULL, SECURE_DICT_READY } from '@opensynaptic/cmd';
import { OpenSynaptic } from '@opensynaptic/core';
import { backendInfo as crcBackendInfo, deriveSessionKey, SESSION_KEY_LENGTH } from '@opensynaptic/crc';
import { buildSecureChannelAck } from '@opensynaptic/handshake';
import { decodeFrame, encodeFrame } from '@opensynaptic/packet';
import { utf8Encode } from '@opensynaptic/packet/body';

export interface RoundTripResult {
  /** The frame of step 1, hex. */
  frameHex: string;
  /** Commands of the node's frames: plain FULL, then secure DIFF. */
  commands: number[];
  /** Reading decoded from the secure frame (Kelvin). */
  secureValue: number;
  /** Session key of aid 42 at the first frame's timestamp, hex. */
  sessionKeyHex: string;
  /** Which backend served the SHA-256 of the session key. */
  digestBackend: string;
  nativeAvailable: boolean;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`consumer round trip: ${what}`);
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

export function roundTrip(): RoundTripResult {
  // 1. One frame, encoded and decoded.
  const T0 = 1_700_000_000_000;
  const body = utf8Encode('42;T1>A:K=MK');
  if (!body) throw new Error('consumer round trip: utf8Encode refused ASCII text');
  const frame = encodeFrame({ cmd: DATA_FULL, routes: 42, tid: 7, timestamp: T0, body });
  const d = decodeFrame(frame);
  check(d.cmd === DATA_FULL && d.sourceAid === 42 && d.tid === 7 && d.timestamp === T0, 'frame header decodes to what was encoded');
  check(same(frame.subarray(d.bodyOffset, d.bodyOffset + d.bodyLength), body), 'frame body decodes to what was encoded');
  check(base62Decode(base62Encode(21.5)) === 21.5, 'base62 round trip');

  // 2. Two nodes: the device's first FULL, the receiver's SECURE_DICT_READY, then a secure DIFF.
  let now = T0;
  const clock = (): number => now;
  const device = new OpenSynaptic({ assignedId: 42, deviceId: 'NODE_A', clock });
  const server = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock });
  const first = device.transmit([['T1', 'OK', 20, 'Cel']]);
  const reply = server.receive(first.frame);
  check(reply.type === 'data', `first frame is received as data, got ${reply.type}${reply.type === 'error' ? ` (${reply.error.message})` : ''}`);
  check(reply.response?.[0] === SECURE_DICT_READY, 'the receiver answers SECURE_DICT_READY');
  device.receive(reply.response as Uint8Array);
  now += 1000;
  const second = device.transmit([['T1', 'OK', 21, 'Cel']]);
  check(second.frame[0] === DATA_DIFF_SEC, `the second frame is a secure DIFF, got command ${second.frame[0]}`);
  const out = server.receive(second.frame);
  check(out.type === 'data', `secure frame is received as data, got ${out.type}${out.type === 'error' ? ` (${out.error.message})` : ''}`);
  const value = out.type === 'data' ? (out.fact as { s1_v?: number }).s1_v : undefined;
  check(typeof value === 'number' && Math.abs(value - 294.15) < 1e-9, `secure frame decodes to 294.15 K, got ${value}`);
  check(out.response !== null && same(out.response, buildSecureChannelAck(42)), 'the receiver acknowledges the secure channel');

  // 3. The key both sides used, derived directly.
  const key = deriveSessionKey(42, decodeFrame(first.frame).timestamp);
  check(key.length === SESSION_KEY_LENGTH, 'session key length');
  return {
    frameHex: hex(frame),
    commands: [first.frame[0] as number, second.frame[0] as number],
    secureValue: value as number,
    sessionKeyHex: hex(key),
    digestBackend: crcBackendInfo().backends.digestSeed ?? 'ts',
    nativeAvailable: crcBackendInfo().nativeAvailable,
  };
}
