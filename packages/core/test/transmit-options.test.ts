import { decodeFrame } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { OpenSynaptic } from '../src/index.js';

// transmit reuses one extras object when the options hold only deviceId, status and t: nothing
// of one call may reach the next, and other fields still reach the fact.
describe('transmit options', () => {
  const node = () => new OpenSynaptic({ assignedId: 42, deviceId: 'NODE_A', clock: () => 1_700_000_000_000 });
  const text = (frame: Uint8Array) => new TextDecoder().decode(decodeFrame(frame).body);
  // The body carries msg as base64 text.
  const b64 = (s: string) => btoa(s).replace(/=+$/, '');

  it('takes t from the call that gives it and the clock otherwise, call after call', () => {
    const a = node();
    const s = [['T1', 'OK', 21.5, 'Cel']] as const;
    expect(decodeFrame(a.transmitNoTimestamp([...s]).frame).timestamp).toBe(0);
    expect(decodeFrame(a.transmit([...s], { t: 1_700_000_123_456 }).frame).timestamp).toBe(1_700_000_123_456);
    expect(decodeFrame(a.transmit([...s]).frame).timestamp).toBe(1_700_000_000_000);
    expect(decodeFrame(a.transmit([...s], { deviceId: 'NODE_B', t: undefined }).frame).timestamp).toBe(1_700_000_000_000);
    expect(decodeFrame(node().transmit([...s], { t: 5 }).frame).timestamp).toBe(1_700_000_000_000);
  });

  it('passes other fields to the fact, and only to the call that gives them', () => {
    const a = node();
    const s = [['T1', 'OK', 21.5, 'Cel']] as const;
    const withMsg = a.transmit([...s], { msg: 'hello', status: 'OFFLINE' });
    expect(text(withMsg.frame)).toContain(b64('hello'));
    expect(a.fusion.hasTemplate(42)).toBe(true);
    const b = node();
    expect(text(b.transmit([...s], { status: 'OFFLINE' }).frame)).not.toContain(b64('hello'));
    const inherited = Object.create({ msg: 'inherited' }) as { t?: number };
    expect(text(node().transmit([...s], inherited).frame)).not.toContain(b64('inherited'));
  });
});
