import type { TemplateKinds } from '@opensynaptic/fusion';
import { buildSecureChannelAck, type SessionKinds } from '@opensynaptic/handshake';
import { decodeFrame } from '@opensynaptic/packet';
import { MemoryStore } from '@opensynaptic/store';
import { describe, expect, it } from 'vitest';
import { IdNotAssignedError, OpenSynaptic, type ReceiveResult } from '../src/index.js';

/** The fact of a `data` result (fails the test for anything else). */
function factOf(r: ReceiveResult): Record<string, unknown> {
  if (r.type !== 'data') throw new Error(`expected data, got ${r.type}${r.type === 'error' ? `: ${r.error.message}` : ''}`);
  return r.fact as unknown as Record<string, unknown>;
}

function pair() {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const a = new OpenSynaptic({ assignedId: 42, deviceId: 'NODE_A', clock });
  const b = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock });
  return { a, b, tick: (ms = 1000) => (now += ms) };
}

describe('OpenSynaptic node', () => {
  it('refuses to transmit before an id is assigned', () => {
    for (const assignedId of [undefined, 0, 4294967295, '', 'UNKNOWN', null]) {
      const n = new OpenSynaptic({ assignedId, clock: () => 1_700_000_000_000 });
      expect(() => n.transmit([['T1', 'OK', 20, 'Cel']])).toThrow(IdNotAssignedError);
    }
  });

  it('sends FULL three times, then DIFF/HEART, and the receiver decodes each to the standardized fact', () => {
    const { a, b, tick } = pair();
    const cmds: number[] = [];
    for (const v of [20, 20, 21, 21, 22]) {
      const r = a.transmit([['T1', 'OK', v, 'Cel']]);
      cmds.push(r.frame[0]!);
      const fact = factOf(b.receive(r.frame));
      expect(fact.s1_v).toBeCloseTo(v + 273.15, 9);
      expect(fact.s1_u).toBe('temperature');
      tick();
    }
    // The third FULL already carried 21: the fourth frame is HEART, the fifth a DIFF.
    expect(cmds).toEqual([63, 63, 63, 127, 170]);
  });

  it('goes secure after the receiver answers, and the receiver decodes the secure frames', () => {
    const { a, b, tick } = pair();
    const first = a.transmit([['T1', 'OK', 20, 'Cel']]);
    const reply = b.receive(first.frame);
    expect(reply.type).toBe('data');
    expect(reply.response?.[0]).toBe(13); // SECURE_DICT_READY
    a.receive(reply.response!);
    tick();
    const second = a.transmit([['T1', 'OK', 21, 'Cel']]);
    expect(second.frame[0]).toBe(171); // secure DIFF at once
    const out = b.receive(second.frame);
    expect(factOf(out).s1_v).toBeCloseTo(294.15, 9);
    expect(out.response).toEqual(buildSecureChannelAck(42));
  });

  it('replaces a timestamp before the sync threshold by the server time when it has one', () => {
    const { a } = pair();
    a.protocol.lastServerTimeMs = 1_700_000_500_000;
    const r = a.transmit([['T1', 'OK', 20, 'Cel']], { t: 5 });
    expect(decodeFrame(r.frame).timestamp).toBe(1_700_000_500_000);
    // The threshold is the reference's 1e6 s: a t below 1e9 ms is no real clock either.
    expect(decodeFrame(a.transmit([['T1', 'OK', 21, 'Cel']], { t: 999_999_999 }).frame).timestamp).toBe(1_700_000_500_000);
    expect(decodeFrame(a.transmit([['T1', 'OK', 22, 'Cel']], { t: 1_000_000_000 }).frame).timestamp).toBe(1_000_000_000);
  });

  it('sends timestamp 0 for a device without a clock, and the receiver stamps it in seconds', () => {
    const { a, b } = pair();
    const r = a.transmitNoTimestamp([['T1', 'OK', 20, 'Cel']]);
    expect(decodeFrame(r.frame).timestamp).toBe(0);
    const out = b.receive(r.frame);
    expect(factOf(out).__packet_meta__).toMatchObject({ server_stamped: true, timestamp_raw: 1_700_000_000, timestampMs: 1_700_000_000_000, receiverStamped: true });
    expect(out.type === 'data' && out.timestampMs).toBe(1_700_000_000_000);
  });

  it('gives the reading time in ms as the frame meta has it: the receiver clock to the ms, and the frame time on an rx_only node', () => {
    // A receiver clock between two seconds: timestamp_raw (seconds) would lose the 456 ms.
    const clock = () => 1_700_000_000_456;
    const a = new OpenSynaptic({ assignedId: 42, deviceId: 'NODE_A', clock });
    const b = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock });
    const stamped = b.receive(a.transmitNoTimestamp([['T1', 'OK', 20, 'Cel']]).frame);
    expect(factOf(stamped).__packet_meta__).toMatchObject({ timestamp_raw: 1_700_000_000, timestampMs: 1_700_000_000_456 });
    expect(stamped.type === 'data' && stamped.timestampMs).toBe(1_700_000_000_456);
    // rx_only reads no timestamp into the fact (timestamp_raw 0), yet the frame carries one.
    const rx = new OpenSynaptic({ assignedId: 1, deviceId: 'SINK', clock, role: 'rx_only' });
    const sent = a.transmit([['T1', 'OK', 21, 'Cel']], { t: 1_700_000_100_000 });
    const out = rx.receive(sent.frame);
    expect(factOf(out).__packet_meta__).toMatchObject({ timestamp_raw: 0, timestampMs: sent.timestampMs });
    expect(out.type === 'data' && out.timestampMs).toBe(1_700_000_100_000);
  });

  it('opens its stores before use and flushes to them (sessions and templates survive a restart)', async () => {
    const clock = () => 1_700_000_000_000;
    const store = new MemoryStore<TemplateKinds & SessionKinds>({ kinds: ['templates', 'sessions'] });
    const options = { assignedId: 1, deviceId: 'SERVER', clock, handshake: { sessionStore: store }, fusion: { registry: { store } } } as const;
    const a = new OpenSynaptic({ assignedId: 42, deviceId: 'NODE_A', clock });
    const b = new OpenSynaptic(options);
    const first = a.transmit([['T1', 'OK', 20, 'Cel']]);
    expect(b.receive(first.frame)).toMatchObject({ type: 'error', error: expect.objectContaining({ code: 'ERR_HANDSHAKE_NOT_OPEN' }) });
    await b.open();
    expect(b.receive(first.frame).type).toBe('data');
    await b.flush();
    const restarted = new OpenSynaptic(options);
    await restarted.open();
    expect(restarted.protocol.getSession(42)?.dictReady).toBe(true);
    expect(restarted.fusion.registry.peek(42)?.templates.size).toBe(1);
    await new OpenSynaptic({ clock }).open(); // nothing to load
  });
});
