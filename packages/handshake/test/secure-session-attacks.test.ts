import { deriveSessionKey } from '@opensynaptic/crc';
import { encodeFrame } from '@opensynaptic/packet';
import { MemoryStore } from '@opensynaptic/store';
import { describe, expect, it } from 'vitest';
import {
  buildSecureChannelAck,
  buildSecureDictReady,
  type DataParseResult,
  type DispatchOutcome,
  frameLevelParser,
  type HandshakeManagerOptions,
  OSHandshakeManager,
  type SessionKinds,
} from '../src/index.js';

const T0 = 1_700_000_000;
const body = new TextEncoder().encode('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|');
/** The probe's packet: SECURE_DICT_READY for aid 42 with a timestamp of its own choosing. */
const HIJACK = new Uint8Array(Buffer.from('0d0000002a0000011f71fb04cb', 'hex'));

function frame(aid: number, ts: number, key?: Uint8Array, cmd = key ? 64 : 63) {
  return encodeFrame({ cmd, routes: aid, tid: 1, timestamp: ts, body, key });
}

function receiver(options: HandshakeManagerOptions = {}) {
  let t = T0;
  const m = new OSHandshakeManager({
    clockMs: () => t * 1000,
    parser: frameLevelParser(),
    ...options,
  });
  return { m, advance: (s: number) => (t += s) };
}

/** Runs the receiver side of a legitimate handshake for `aid`: plain FULL at `ts`, then one secure frame. */
function establish(m: OSHandshakeManager, aid: number, ts = T0 * 1000): Uint8Array {
  const first = m.classifyAndDispatch(frame(aid, ts));
  expect(first.response).toEqual(buildSecureDictReady(aid, ts));
  const key = deriveSessionKey(aid, ts);
  const secure = m.classifyAndDispatch(frame(aid, ts + 1000, key));
  expect(secure.response).toEqual(buildSecureChannelAck(aid));
  expect(m.getSession(aid)?.state).toBe('SECURE');
  return key;
}

function decodedOk(out: DispatchOutcome): boolean {
  const r = out.result as DataParseResult;
  return out.type === 'DATA' && r.error === undefined && r.__packet_meta__?.crc8_ok === true;
}

describe('unsolicited SECURE_DICT_READY', () => {
  it('does not replace the key of an established session', () => {
    const { m } = receiver();
    const key = establish(m, 42);
    const out = m.classifyAndDispatch(HIJACK, 'evil:1');
    expect(out).toMatchObject({
      type: 'IGNORED',
      cmd: 13,
      response: null,
      result: { code: 'ERR_HANDSHAKE_UNSOLICITED' },
    });
    expect(m.getSession(42)?.key).toEqual(key);
    expect(m.getSession(42)?.state).toBe('SECURE');
    expect(decodedOk(m.classifyAndDispatch(frame(42, T0 * 1000 + 2000, key)))).toBe(true);
  });

  it('creates no state for an aid it has never seen', () => {
    const { m } = receiver();
    for (const p of [buildSecureDictReady(7, T0 * 1000), buildSecureDictReady(8, 5), new Uint8Array([13, 0, 0, 0, 9])]) {
      expect(m.classifyAndDispatch(p).type).toBe('IGNORED');
    }
    expect(m.sessionCount).toBe(0);
    expect(m.getSession(7)).toBeNull();
    expect(m.getTxKey(7)).toBeNull();
  });

  it('still completes a sender handshake: the pending key of its own plaintext FULL wins', () => {
    const { m } = receiver();
    m.noteLocalPlaintextSent(42, T0 * 1000);
    const out = m.classifyAndDispatch(buildSecureDictReady(42, T0 * 1000));
    expect(out).toMatchObject({
      type: 'CTRL',
      result: { status: 'DICT_READY' },
    });
    expect(m.getTxKey(42)).toEqual(deriveSessionKey(42, T0 * 1000));
    // A later forged one cannot move the sender to another key either.
    m.classifyAndDispatch(HIJACK);
    expect(m.getTxKey(42)).toEqual(deriveSessionKey(42, T0 * 1000));
  });

  it('survives a flood of 65,536 for random aids: established sessions stay, no state grows', () => {
    const { m } = receiver();
    const keys = new Map<number, Uint8Array>();
    for (let aid = 1; aid <= 50; aid++) keys.set(aid, establish(m, aid));
    let seed = 0x9e3779b9;
    const rnd = () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed;
    };
    for (let i = 0; i < 65_536; i++) m.classifyAndDispatch(buildSecureDictReady(rnd(), T0 * 1000 + (rnd() & 0xffff)));
    expect(m.sessionCount).toBe(50);
    for (const [aid, key] of keys) {
      expect(m.getSession(aid)?.key).toEqual(key);
      expect(decodedOk(m.classifyAndDispatch(frame(aid, T0 * 1000 + 5000, key)))).toBe(true);
    }
  });

  it('plain floods fill only the pending budget and never evict established sessions', () => {
    const { m } = receiver({ maxPendingSessions: 64 });
    const key = establish(m, 42);
    for (let aid = 1000; aid < 1000 + 5000; aid++) m.classifyAndDispatch(frame(aid, T0 * 1000));
    expect(m.pendingSessionCount).toBe(64);
    expect(m.sessionCount).toBe(65);
    expect(decodedOk(m.classifyAndDispatch(frame(42, T0 * 1000 + 2000, key)))).toBe(true);
  });
});

describe('replayed secure frames', () => {
  it('are rejected with the default options', () => {
    const { m } = receiver();
    const key = establish(m, 42);
    const old = frame(42, T0 * 1000 + 2000, key);
    expect(decodedOk(m.classifyAndDispatch(old))).toBe(true);
    expect(decodedOk(m.classifyAndDispatch(frame(42, T0 * 1000 + 3000, key)))).toBe(true);
    const again = m.classifyAndDispatch(old);
    expect(again).toMatchObject({
      type: 'IGNORED',
      cmd: 64,
      response: null,
      result: { code: 'ERR_HANDSHAKE_OUT_OF_ORDER' },
    });
  });

  it('are rejected by default even when they repeat the latest timestamp, while another frame with it is kept', () => {
    const { m } = receiver();
    const key = establish(m, 42);
    const latest = frame(42, T0 * 1000 + 2000, key);
    expect(decodedOk(m.classifyAndDispatch(latest))).toBe(true);
    expect(m.classifyAndDispatch(latest)).toMatchObject({ type: 'IGNORED', result: { code: 'ERR_HANDSHAKE_REPLAY' } });
    // A sender faster than whole seconds: another frame with the same timestamp is new data.
    const other = encodeFrame({ cmd: 127 + 1, routes: 42, tid: 1, timestamp: T0 * 1000 + 2000, body: new Uint8Array(0), key });
    expect(decodedOk(m.classifyAndDispatch(other))).toBe(true);
    expect(m.classifyAndDispatch(other).type).toBe('IGNORED');
  });

  it('strict also rejects a frame with the last timestamp again', () => {
    const { m } = receiver({ secureAntiReplay: 'strict' });
    const key = establish(m, 42);
    const f = frame(42, T0 * 1000 + 2000, key);
    expect(decodedOk(m.classifyAndDispatch(f))).toBe(true);
    expect(m.classifyAndDispatch(f)).toMatchObject({
      type: 'IGNORED',
      result: { code: 'ERR_HANDSHAKE_REPLAY' },
    });
  });

  it('off accepts them, as the reference does', () => {
    const { m } = receiver({ secureAntiReplay: 'off' });
    const key = establish(m, 42);
    const old = frame(42, T0 * 1000 + 2000, key);
    m.classifyAndDispatch(old);
    m.classifyAndDispatch(frame(42, T0 * 1000 + 3000, key));
    expect(decodedOk(m.classifyAndDispatch(old))).toBe(true);
  });

  for (const antiReplay of [undefined, 'reject-old', 'strict'] as const) {
    it(`stay rejected after 65,546 spoofed plain FULL frames from other aids (antiReplay ${antiReplay ?? 'default'})`, () => {
      const { m } = receiver(antiReplay ? { antiReplay } : {});
      const key = establish(m, 42);
      const old = frame(42, T0 * 1000 + 2000, key);
      m.classifyAndDispatch(old);
      m.classifyAndDispatch(frame(42, T0 * 1000 + 3000, key));
      for (let aid = 100; aid < 100 + 65_546; aid++) m.classifyAndDispatch(frame(aid, T0 * 1000 + 9000));
      const again = m.classifyAndDispatch(old);
      expect(again.type).toBe('IGNORED');
      expect(m.getSession(42)?.key).toEqual(key);
    });
  }

  it('keep their watermark across a restart from the session store', async () => {
    const sessionStore = new MemoryStore<SessionKinds>({ kinds: ['sessions'] });
    const { m } = receiver({ sessionStore });
    await m.open();
    const key = establish(m, 42);
    const old = frame(42, T0 * 1000 + 2000, key);
    m.classifyAndDispatch(old);
    m.classifyAndDispatch(frame(42, T0 * 1000 + 3000, key));
    await m.flush();
    const restarted = receiver({ sessionStore }).m;
    await restarted.open();
    expect(restarted.getSession(42)?.state).toBe('SECURE');
    expect(restarted.classifyAndDispatch(old).type).toBe('IGNORED');
    expect(decodedOk(restarted.classifyAndDispatch(frame(42, T0 * 1000 + 4000, key)))).toBe(true);
  });
});
