import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OpenSynapticStandardizer } from '../src/index.js';
import { powInt, pyRound } from '../src/python-number.js';

/** Python's round(x, d) computed the slow, obviously exact way: on the exact binary value, in BigInt. */
function referenceRound(x: number, d: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const biased = view.getUint32(0) >>> 20;
  let mant = (BigInt(view.getUint32(0) & 0xfffff) << 32n) | BigInt(view.getUint32(4));
  if (biased !== 0) mant |= 1n << 52n;
  const e2 = biased === 0 ? -1074 : biased - 1075;
  // |x| × 10^d = num / den exactly.
  let num = mant * 10n ** BigInt(d);
  let den = 1n;
  if (e2 >= 0) num <<= BigInt(e2);
  else den <<= BigInt(-e2);
  let q = num / den;
  const r2 = (num % den) * 2n;
  if (r2 > den || (r2 === den && q % 2n === 1n)) q += 1n;
  const v = Number(`${q}e-${d}`);
  return x < 0 ? -v : v;
}

const std = new OpenSynapticStandardizer({ clockMs: () => 0 });
const value = (x: number, unit = 'Pa') => std.standardizeDetailed('D', 'ON', [['S', 'OK', x, unit]]).sensors[0]!;

describe('Python round(x, 4)', () => {
  it('rounds the exact binary value: 1.00005 is stored above the tie', () => {
    expect(pyRound(1.00005, 4)).toBe(1.0001);
    expect(pyRound(2.675, 2)).toBe(2.67); // stored below 2.675
    expect(pyRound(1.23456789, 4)).toBe(1.2346);
  });

  it('breaks exact binary ties to even, where toFixed goes away from zero', () => {
    expect(pyRound(0.03125, 4)).toBe(0.0312);
    expect((0.03125).toFixed(4)).toBe('0.0313');
    expect(pyRound(0.09375, 4)).toBe(0.0938);
    expect(pyRound(0.15625, 4)).toBe(0.1562);
    expect(pyRound(0.21875, 4)).toBe(0.2188);
    expect(pyRound(-0.03125, 4)).toBe(-0.0312);
    expect(pyRound(100.03125, 4)).toBe(100.0312);
    expect(pyRound(2.5, 0)).toBe(2);
    expect(pyRound(3.5, 0)).toBe(4);
  });

  it('keeps the sign of a zero result, as Python floats do', () => {
    expect(Object.is(pyRound(-0.00001, 4), -0)).toBe(true);
    expect(Object.is(pyRound(-0.5, 0), -0)).toBe(true);
    expect(Object.is(pyRound(0.00001, 4), 0)).toBe(true);
  });

  it('matches the exact rounding for any double and 0..12 digits', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }), fc.integer({ min: 0, max: 12 }), (x, d) => {
        fc.pre(!Number.isInteger(x));
        expect(Object.is(pyRound(x, d), referenceRound(x, d))).toBe(true);
      }),
      { numRuns: 20000 },
    );
  });

  it('matches the exact rounding on decimal near-ties and binary ties', () => {
    fc.assert(
      fc.property(fc.integer({ min: -10_000_000, max: 10_000_000 }), fc.integer({ min: 1, max: 12 }), (k, shift) => {
        for (const x of [(k + 0.5) / 1e4, k / 2 ** shift, (k + 0.5) / 1e4 + 1e-13]) {
          if (!Number.isInteger(x)) expect(Object.is(pyRound(x, 4), referenceRound(x, 4)), String(x)).toBe(true);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe('int or float, as the reference types the value', () => {
  it('is int when the converted value is integral, else float rounded to the precision', () => {
    expect(value(5)).toMatchObject({ value: 5, valueType: 'int' });
    expect(value(5.0)).toMatchObject({ value: 5, valueType: 'int' });
    expect(value(0.1, 'kPa')).toMatchObject({ value: 100, valueType: 'int' });
    expect(value(1e20)).toMatchObject({ value: 1e20, valueType: 'int' });
    expect(value(20, 'Cel')).toMatchObject({ value: 293.15, valueType: 'float' });
    // A float that rounds to a whole number stays a float (the reference's 0.0).
    expect(value(1e-9)).toMatchObject({ value: 0, valueType: 'float' });
    expect(value(21.5, 'um')).toMatchObject({ value: 0, valueType: 'float' });
  });

  it('turns -0 into 0 when integral (Python int(-0.0) is 0), keeps -0.0 for a float', () => {
    expect(Object.is(value(-0).value, 0)).toBe(true);
    expect(Object.is(value(-0.00001).value, -0)).toBe(true);
  });

  it('honours the precision option', () => {
    const s = new OpenSynapticStandardizer({ clockMs: () => 0, precision: 2 });
    expect(s.standardize('D', 'ON', [['S', 'OK', 0.125, 'Pa']]).s1_v).toBe(0.12);
    expect(() => new OpenSynapticStandardizer({ precision: 23 })).toThrow(expect.objectContaining({ code: 'ERR_STD_INPUT' }));
  });
});

describe('integer powers of factors', () => {
  /** x^n rounded once, from the exact BigInt product. */
  function exactPow(x: number, n: number): number {
    const s = Math.abs(x).toString(2).replace('.', '');
    const point = Math.abs(x).toString(2).indexOf('.');
    const fracBits = point < 0 ? 0 : s.length - point;
    const m = BigInt(`0b${s}`) ** BigInt(n);
    const v = fracBits === 0 ? Number(m) : Number(m) / 2 ** (fracBits * n);
    return x < 0 && n % 2 === 1 ? -v : v;
  }

  it('is correctly rounded (Math.pow is not, for several percent of inputs)', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e6, noNaN: true }), fc.integer({ min: 0, max: 9 }), (x, n) => {
        const expected = n === 0 ? 1 : exactPow(x, n);
        fc.pre(Number.isFinite(expected) && expected > 2 ** -1000 && expected < 2 ** 1000);
        expect(powInt(x, n)).toBe(expected);
      }),
      { numRuns: 20000 },
    );
  });

  it('handles signs, zero and overflow', () => {
    expect(powInt(-2, 3)).toBe(-8);
    expect(powInt(-2, 2)).toBe(4);
    expect(powInt(0.1, 0)).toBe(1);
    expect(powInt(1e35, 9)).toBe(Infinity);
    expect(powInt(0.01, 2)).toBe(0.0001);
  });
});
