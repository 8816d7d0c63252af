/**
 * The steady-state shortcut of `transmit` (the plan) against the full path, frame by frame: two
 * senders see the same readings, one always through the full path (`detail: true` skips the
 * plan), and every frame (or every error) must be the same. Each sender has its own receiver;
 * with its answers fed back both go secure at the same step, without them they stay plain.
 */
import { OpenSynapticStandardizer } from '@opensynaptic/standardize';
import { describe, expect, it, vi } from 'vitest';
import { OpenSynaptic, type SensorTuple } from '../src/index.js';

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}

const SHAPES: readonly (readonly [string, string, string])[][] = [
  [['T1', 'OK', 'Cel']],
  [
    ['T1', 'OK', 'Cel'],
    ['P1', 'OK', 'kPa'],
    ['H1', 'WARN', '%'],
  ],
  [
    ['S1', 'OK', 'Cel'],
    ['S2', 'OK', 'kPa'],
    ['S3', 'OK', 'm'],
    ['S4', 'OK', 's'],
    ['S5', 'OK', 'kg'],
    ['S6', 'OK', 'Hz'],
    ['S7', 'OK', '%'],
    ['S8', 'OK', 'W'],
  ],
  // An unknown unit (dropped) and a state that changes the body.
  [
    ['T1', 'OK', 'Cel'],
    ['X1', 'OK', 'nosuchunit'],
  ],
  [['T1', 'FAIL', 'Cel']],
];

function value(r: ReturnType<typeof rng>): SensorTuple[2] {
  switch (r.int(12)) {
    case 0:
      return r.int(100);
    case 1:
      return -r.next() * 1e6;
    case 2:
      return Math.round(r.next() * 1e4) / 100;
    case 3:
      return 1e15 * r.next(); // past the wire's range once scaled by 10^4 and converted
    case 4:
      return r.pick([Number.NaN, Number.POSITIVE_INFINITY, '21.5', true]);
    case 5:
      return r.next() * 1e-7;
    default:
      return 20 + r.int(3) / 10; // repeats: HEART and one-value DIFFs
  }
}

function run(seed: number, steps: number, answer: boolean) {
  const r = rng(seed);
  let now = 1_700_000_000_000;
  const clock = () => now;
  const make = (aid: number) => new OpenSynaptic({ assignedId: aid, deviceId: 'DEV', clock });
  const fast = make(42);
  const full = make(42);
  const fastRx = make(1);
  const fullRx = make(1);
  let shape = SHAPES[0]!;
  let device = 'DEV';
  let status: string | undefined;
  for (let step = 0; step < steps; step++) {
    if (r.int(20) === 0) shape = r.pick(SHAPES);
    if (r.int(40) === 0) device = r.pick(['DEV', 'DEV2']);
    if (r.int(40) === 0) status = r.pick([undefined, 'ONLINE', 'BUSY']);
    if (r.int(80) === 0) {
      const id = r.pick([42, 43, '0042']);
      fast.assignedId = id;
      full.assignedId = id;
    }
    const sensors: SensorTuple[] = shape.map(([id, state, unit]) => [id, state, value(r), unit]);
    const t = r.pick([undefined, undefined, now - 1000, 5, now + 0.5, 999_999_999]);
    const options = { deviceId: device, ...(status === undefined ? {} : { status }), ...(t === undefined ? {} : { t }) };
    const outcome = (node: OpenSynaptic, detail: boolean) => {
      try {
        const res = node.transmit(sensors, detail ? { ...options, detail: true } : options);
        return { frame: hex(res.frame), kind: res.kind, timestampMs: res.timestampMs, secure: res.secure, dropped: res.dropped.map((d) => d.error.code) };
      } catch (e) {
        return { error: (e as { code?: string }).code ?? String(e) };
      }
    };
    const a = outcome(fast, false);
    const b = outcome(full, true);
    expect(a, `seed ${seed} step ${step}`).toEqual(b);
    if ('frame' in a && 'frame' in b) {
      const bytes = (h: string) => Uint8Array.from(h.match(/../g)!, (x) => Number.parseInt(x, 16));
      const ra = fastRx.receive(bytes(a.frame));
      const rb = fullRx.receive(bytes(b.frame));
      expect(ra.type, `seed ${seed} step ${step}`).toBe(rb.type);
      if (answer && ra.response) fast.receive(ra.response);
      if (answer && rb.response) full.receive(rb.response);
    }
    now += r.pick([0, 1, 999, 1000, 60_000]);
  }
}

describe('transmit plan', () => {
  it('sends the same frames and errors as the full path over random readings, shapes, ids and times', () => {
    for (let seed = 1; seed <= 8; seed++) run(seed, 400, true);
  });

  it('the same without secure sessions (the time guard applies)', () => {
    for (let seed = 101; seed <= 108; seed++) run(seed, 400, false);
  });

  it('is used in steady state: the standardizer runs only when the shape changes', () => {
    const spy = vi.spyOn(OpenSynapticStandardizer.prototype, 'standardizeDetailed');
    try {
      const node = new OpenSynaptic({ assignedId: 42, clock: () => 1_700_000_000_000 });
      const kinds: string[] = [];
      for (let i = 0; i < 20; i++) kinds.push(node.transmit([['T1', 'OK', 20 + (i % 2), 'Cel']]).kind);
      // Three FULL frames (the handshake's confirmation), the first DIFF through the full path,
      // then the plan.
      expect(kinds.slice(0, 3)).toEqual(['FULL', 'FULL', 'FULL']);
      expect(kinds.slice(3).every((k) => k === 'DIFF' || k === 'HEART')).toBe(true);
      const calls = spy.mock.calls.length;
      expect(calls).toBeLessThan(6);
      node.transmit([['T1', 'OK', 20, 'kPa']]);
      expect(spy.mock.calls.length).toBe(calls + 1);
    } finally {
      spy.mockRestore();
    }
  });
});
