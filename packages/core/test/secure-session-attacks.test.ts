/**
 * The attacks on secure sessions seen from the user's side: two real nodes (A, aid 42, sends;
 * B, aid 1, receives) complete the legacy handshake, then an attacker who can only send packets
 * tries to take the session over or to replay old frames. On both frame backends.
 */
import { buildSecureChannelAck, buildSecureDictReady } from '@opensynaptic/handshake';
import { encodeFrame } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { OpenSynaptic, type ReceiveResult } from '../src/index.js';

const BACKENDS = ['ts', 'native'] as const;
/** SECURE_DICT_READY for aid 42 with a timestamp of the attacker's choosing. */
const HIJACK = new Uint8Array(Buffer.from('0d0000002a0000011f71fb04cb', 'hex'));

function pair(backend: (typeof BACKENDS)[number]) {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const a = new OpenSynaptic({
    assignedId: 42,
    deviceId: 'NODE_A',
    clock,
    coreBackend: backend,
  });
  const b = new OpenSynaptic({
    assignedId: 1,
    deviceId: 'SERVER',
    clock,
    coreBackend: backend,
  });
  const tick = () => {
    now += 1000;
  };
  /** Sends one reading from A to B and feeds B's answer back to A; returns A's frame and B's outcome. */
  const send = (v: number) => {
    tick();
    const { frame } = a.transmit([['T1', 'OK', v, 'Cel']]);
    const out = b.receive(frame, '10.0.0.42:5000');
    if (out.response) a.receive(out.response, '10.0.0.1:5000');
    return { frame, out };
  };
  const first = send(20);
  expect(first.out.response).toEqual(buildSecureDictReady(42, 1_700_000_001_000));
  const second = send(21);
  expect(second.frame[0]).toBeGreaterThanOrEqual(128); // secure from here on
  expect(second.out.response).toEqual(buildSecureChannelAck(42));
  expect(b.protocol.getSession(42)?.state).toBe('SECURE');
  expect(a.protocol.getSession(42)?.state).toBe('SECURE');
  return { a, b, send };
}

function kelvin(out: ReceiveResult): number | undefined {
  if (out.type !== 'data') throw new Error(`expected data, got ${out.type}: ${out.type === 'error' ? out.error.message : ''}`);
  return out.fact.s1_v as number | undefined;
}

for (const backend of BACKENDS) {
  describe(`secure sessions under attack (${backend})`, () => {
    it('an unsolicited SECURE_DICT_READY does not take over the session', () => {
      const { a, b, send } = pair(backend);
      const keyB = b.protocol.getSession(42)?.key;
      const keyA = a.protocol.getTxKey(42);
      expect(b.receive(HIJACK, '203.0.113.9:4000')).toMatchObject({
        type: 'ignored',
        response: null,
        code: 'ERR_HANDSHAKE_UNSOLICITED',
      });
      // The sender takes it as a repeat of the real answer: its key is still the one of its own first FULL.
      a.receive(HIJACK, '203.0.113.9:4000');
      expect(a.protocol.getSession(42)?.state).toBe('SECURE');
      expect(b.protocol.getSession(42)?.key).toEqual(keyB);
      expect(a.protocol.getTxKey(42)).toEqual(keyA);
      expect(kelvin(send(22).out)).toBeCloseTo(295.15, 9);
      expect(kelvin(send(23).out)).toBeCloseTo(296.15, 9);
    });

    it('a flood of 65,536 unsolicited SECURE_DICT_READY for random aids leaves the real session and no state', () => {
      const { b, send } = pair(backend);
      const before = b.protocol.sessionCount;
      let seed = 12345;
      for (let i = 0; i < 65_536; i++) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        b.receive(buildSecureDictReady(seed, 1_700_000_000_000 + i), '203.0.113.9:4000');
      }
      expect(b.protocol.sessionCount).toBe(before);
      expect(kelvin(send(22).out)).toBeCloseTo(295.15, 9);
    });

    it('a replayed old secure frame is rejected with the default options', () => {
      const { b, send } = pair(backend);
      const old = send(22).frame;
      const latest = send(23);
      expect(kelvin(latest.out)).toBeCloseTo(296.15, 9);
      // A verbatim copy of the latest frame is a replay too.
      expect(b.receive(latest.frame, '203.0.113.9:4000')).toMatchObject({ type: 'ignored', code: 'ERR_HANDSHAKE_REPLAY' });
      const replay = b.receive(old, '203.0.113.9:4000');
      expect(replay).toMatchObject({
        type: 'ignored',
        response: null,
        code: 'ERR_HANDSHAKE_OUT_OF_ORDER',
      });
      expect(kelvin(send(24).out)).toBeCloseTo(297.15, 9);
    });

    it('is still rejected after 65,546 spoofed plain FULL frames from other aids', () => {
      const { b, send } = pair(backend);
      const old = send(22).frame;
      send(23);
      for (let aid = 1000; aid < 1000 + 65_546; aid++) {
        const body = new TextEncoder().encode(`${aid};X.1.AYvP5WgA|T1>K.A:cmwc|`);
        b.receive(
          encodeFrame({
            cmd: 63,
            routes: aid,
            tid: 1,
            timestamp: 1_700_000_100_000,
            body,
          }),
          '203.0.113.9:4000',
        );
      }
      expect(b.protocol.getSession(42)?.state).toBe('SECURE');
      expect(b.receive(old, '203.0.113.9:4000').type).toBe('ignored');
      expect(kelvin(send(24).out)).toBeCloseTo(297.15, 9);
    });
  });
}
