import { DATA_DIFF_SEC, DATA_HEART } from '@opensynaptic/cmd';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameLog, type InspectedFrame, inspectFrame, KeptFrame, type LiveSensor } from '../src/index.js';
import { readMask } from '../src/decoded.js';

const frameOf = (cmd: number, over: Partial<InspectedFrame> = {}): InspectedFrame => ({ receivedAtMs: 0, via: 'udp', peer: 'p', length: 0, hex: '', cmd, command: null, strategy: 'DIFF', secure: false, tid: 1, timestamp: 0, crc8: 0, crc16: 0, check: 'ok', body: null, decoded: null, ...over });
const sensors = [
  { id: 'T1', state: 'OK', value: 300, unit: 'K' },
  { id: 'H1', state: 'OK', value: 40, unit: '%' },
];
const template = { templates: new Map([[1, { sig: 'D.1.\u0002|T1>\u0001:\u0001|H1>\u0001:\u0001|', values: ['A', '1', 'B', '2'] }]]) };

describe('FrameDecoder', () => {
  it('compares a secure DIFF (its mask is not readable) with the previous reading', () => {
    const dec = new FrameDecoder(() => template);
    const f = frameOf(DATA_DIFF_SEC, { secure: true, check: 'ok (secure: body not shown)' });
    dec.frame('udp', 7, new Uint8Array(20), f);
    const previous = new Map<string, LiveSensor>([
      ['T1', { id: 'T1', state: 'OK', value: 299, unit: 'K', timestampMs: 0 }],
      ['H1', { id: 'H1', state: 'OK', value: 40, unit: '%', timestampMs: 0 }],
    ]);
    dec.reading({ aid: 7, via: 'udp', sensors }, previous);
    expect(f.decoded).toMatchObject({ changedBy: 'previous', changed: ['T1'], template: { tid: 1, values: 4, text: 'D.1.•|T1>•:•|H1>•:•|' } });
  });

  it('attaches a reading only to the frame of its transport and aid', () => {
    const dec = new FrameDecoder(() => template);
    const a = frameOf(DATA_HEART, { strategy: 'HEART' });
    const b = frameOf(DATA_HEART, { strategy: 'HEART' });
    dec.frame('udp', 1, new Uint8Array(20), a);
    dec.frame('mqtt', 2, new Uint8Array(20), b);
    dec.reading({ aid: 2, via: 'mqtt', sensors }, undefined);
    expect(a.decoded).toBeNull();
    expect(b.decoded).toMatchObject({ changedBy: 'heart', changed: [] });
    // Another aid on udp (the frame there failed to decode): nothing attached, and the wait ends.
    dec.reading({ aid: 3, via: 'udp', sensors }, undefined);
    dec.reading({ aid: 1, via: 'udp', sensors }, undefined);
    expect(a.decoded).toBeNull();
  });

  it('reads a DIFF mask and refuses one cut short', () => {
    // One route, tid, 6-byte timestamp, then the mask (values 0 and 3 of 4), then CRCs.
    const frame = Uint8Array.from([170, 1, 0, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0b1001, 1, 0x41, 1, 0x42, 0, 0, 0]);
    expect([...(readMask(frame, 4)?.marked ?? [])]).toEqual([0, 3]);
    expect(readMask(frame.subarray(0, 15), 4 * 8 * 8)).toBeNull();
  });
});

describe('FrameLog: frames kept as bytes, inspected when asked', () => {
  it('keeps a copy of the bytes and gives what inspectFrame gives, decoded fields included, only on get()', () => {
    const log = new FrameLog(2, 10);
    const bytes = Uint8Array.from([170, 1, 0, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0, 0b1001, 1, 0x41, 1, 0x42, 0, 0, 0]);
    const meta = { receivedAtMs: 5, via: 'udp', peer: 'p' };
    const kept = log.add(7, bytes, meta)!;
    expect(kept).toBeInstanceOf(KeptFrame);
    bytes[0] = 0; // the receive buffer is reused: the kept frame is not
    const dec = new FrameDecoder(() => template);
    dec.frame('udp', 7, kept.bytes, kept);
    dec.reading({ aid: 7, via: 'udp', sensors }, undefined);
    const [got] = log.get(7);
    const expected = inspectFrame(Uint8Array.from([170, ...bytes.subarray(1)]), meta);
    expect({ ...got, decoded: null }).toEqual({ ...expected, decoded: null });
    expect(got!.decoded).toMatchObject({ template: { tid: 1, values: 4 } });
    // Bounded per device: the oldest goes.
    log.add(7, bytes, meta);
    log.add(7, bytes, meta);
    expect(log.get(7)).toHaveLength(2);
  });
});
