import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as base62 from '../src/index.js';
import {
  ALPHABET,
  Base62RangeError,
  Base62TypeError,
  decode,
  encode,
  InvalidBase62Error,
  roundHalfEven,
} from '../src/index.js';

it('has no backend choice: one TypeScript implementation, and no native backend to report', () => {
  expect('backendInfo' in base62).toBe(false);
  expect('getCodec' in base62).toBe(false);
});

describe('roundHalfEven', () => {
  it('rounds ties to even like Python round()', () => {
    expect(roundHalfEven(0.5)).toBe(0);
    expect(roundHalfEven(1.5)).toBe(2);
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(-2.5)).toBe(-2);
    expect(roundHalfEven(-3.5)).toBe(-4);
    expect(roundHalfEven(12344.5)).toBe(12344);
    expect(roundHalfEven(2.4999999999999996)).toBe(2);
  });
});

{
  const codec = base62;
  describe('codec', () => {
    it('encodes the documented examples', () => {
      expect(codec.encode(1.23445)).toBe(codec.encodeInt(12344));
      expect(codec.encode(1.23455)).toBe(codec.encodeInt(12346));
      expect(codec.encode(0.00015)).toBe('1'); // 1.4999999999999998 after scaling
      expect(codec.encode(0.99995)).toBe(codec.encodeInt(10000));
      expect(codec.encode(294.65)).toBe('cmwc');
      expect(codec.encodeBigInt(-(2n ** 63n))).toBe('-aZl8N0y58M8');
      expect(codec.encodeInt(-7.99)).toBe('-7');
    });

    it('round-trips every int64', () => {
      fc.assert(
        fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (n) => {
          expect(codec.decodeBigInt(codec.encodeBigInt(n))).toBe(n);
        }),
        { numRuns: 2000 },
      );
    });

    it('round-trips fixed-point values at precision 0..8', () => {
      fc.assert(
        fc.property(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 8 }), (i, p) => {
          const x = i / 10 ** p;
          expect(codec.decode(codec.encode(x, p), p)).toBe(x);
        }),
        { numRuns: 2000 },
      );
    });

    it('batch functions equal the single ones', () => {
      const values = [0, -1.5, 294.65, 1e10, 0.0025];
      const texts = codec.encodeBatch(values);
      expect(texts).toEqual(values.map((v) => codec.encode(v)));
      expect(Array.from(codec.decodeBatch(texts))).toEqual(values);
    });

    it('rejects bad text with typed errors naming the position', () => {
      const bad = ['', '-', '+5', '1.5', '12 3', '--1', 'é', 'ab$'];
      for (const t of bad) expect(() => codec.decode(t), t).toThrow(InvalidBase62Error);
      try {
        codec.decode('ab$');
      } catch (e) {
        expect((e as InvalidBase62Error).position).toBe(2);
        expect((e as Error).message).toMatch(/position 2/);
      }
      expect(() => codec.decode('zzzzzzzzzzzz')).toThrow(Base62RangeError);
      expect(() => codec.decode('1'.repeat(100_000))).toThrow(Base62RangeError);
    });

    it('refuses values the wire cannot hold instead of wrapping', () => {
      expect(() => codec.encode(1e15)).toThrow(RangeError);
      expect(() => codec.encode(Number.NaN)).toThrow(Base62RangeError);
      expect(() => codec.encodeBigInt(2n ** 63n)).toThrow(Base62RangeError);
      expect(() => codec.encode('1' as unknown as number)).toThrow(Base62TypeError);
      expect(() => codec.encode(1, 23)).toThrow(Base62RangeError);
      expect(codec.encode(9.2e14)).toBe(codec.encodeInt(9.2e18));
    });

    it('never throws anything but its own errors on random text', () => {
      const alphabet = `${ALPHABET}-+. $é\u0000`;
      fc.assert(
        fc.property(fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 16 }), (s) => {
          try {
            const v = codec.decode(s);
            expect(Number.isFinite(v)).toBe(true);
          } catch (e) {
            expect(e).toSatisfy((x: unknown) => x instanceof InvalidBase62Error || x instanceof Base62RangeError);
          }
        }),
        { numRuns: 5000 },
      );
    });
  });
}

it('default exports round-trip', () => {
  expect(decode(encode(21.5))).toBe(21.5);
});
