import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OpenSynapticStandardizer, type SensorTuple, StandardizeError, UnitLibrary } from '../src/index.js';

const lib = UnitLibrary.builtin();
const keys = lib.units().map((u) => u.key);
const prefixes = lib.prefixes().map((p) => p.symbol);

/** Unit labels near the valid ones (prefixes, powers, 1/, case, spaces, Unicode digits) and junk. */
const label = fc.oneof(
  fc.constantFrom(...keys),
  fc.tuple(fc.constantFrom('', '1/'), fc.constantFrom('', ...prefixes), fc.constantFrom(...keys), fc.constantFrom('', '2', '3', '9', '0', '٣', '²', ' ')).map((p) => p.join('')),
  fc.constantFrom(...keys).map((k) => k.toUpperCase()),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.constantFrom('', 'Unknown', 'celsius', 'hour', 'min-1', '1/', '__proto__', 'constructor', 'toString'),
);
const value = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0, 1e308, -1e308, 5e-324, 2 ** 53 + 2),
  fc.string({ maxLength: 10 }),
  fc.constantFrom('1_000', ' 2.5 ', 'inf', '-nan', '1e400', '٣', '0x10', ''),
  fc.boolean(),
  fc.bigInt(),
  fc.constant(null),
  fc.anything(),
);
const unit = fc.oneof(label, fc.array(fc.oneof(label, fc.anything()), { maxLength: 4 }), fc.anything());
const sensor = fc.oneof(
  fc.tuple(fc.oneof(fc.string(), fc.integer(), fc.anything()), fc.oneof(fc.string(), fc.constant(null), fc.anything()), value, unit),
  fc.anything(),
  fc.array(fc.anything(), { maxLength: 6 }),
);

describe('no input crashes untyped', () => {
  it('standardizeDetailed: only StandardizeError, and every sensor kept or dropped once, values finite', () => {
    const std = new OpenSynapticStandardizer({ clockMs: () => 1_700_000_000_000, cacheSize: 64 });
    fc.assert(
      fc.property(fc.oneof(fc.array(sensor, { maxLength: 8 }), fc.anything()), fc.oneof(fc.constant(undefined), fc.dictionary(fc.string(), fc.anything())), (sensors, extras) => {
        let r: ReturnType<OpenSynapticStandardizer['standardizeDetailed']>;
        try {
          r = std.standardizeDetailed('DEV', 'ONLINE', sensors as SensorTuple[], extras as never);
        } catch (e) {
          expect(e).toBeInstanceOf(StandardizeError);
          expect((e as StandardizeError).code).toMatch(/^ERR_/);
          return;
        }
        const n = (sensors as unknown[]).length;
        expect(r.sensors.length + r.dropped.length).toBe(n);
        r.sensors.forEach((s, i) => {
          expect(s.slot).toBe(i + 1);
          expect(Number.isFinite(s.value)).toBe(true);
          expect(r.fact[`s${s.slot}_v`]).toBe(s.value);
          expect(typeof r.fact[`s${s.slot}_u`]).toBe('string');
          if (s.valueType === 'int') expect(Number.isInteger(s.value) && !Object.is(s.value, -0)).toBe(true);
        });
        for (const d of r.dropped) expect(d.error).toBeInstanceOf(StandardizeError);
        expect(r.fact).not.toHaveProperty(`s${r.sensors.length + 1}_v`);
      }),
      { numRuns: 3000 },
    );
  });

  it('with invalidSensors: "throw", a call either returns every sensor or throws a StandardizeError', () => {
    const std = new OpenSynapticStandardizer({ clockMs: () => 0, invalidSensors: 'throw' });
    fc.assert(
      fc.property(fc.array(sensor, { maxLength: 5 }), (sensors) => {
        try {
          const f = std.standardize('DEV', 'ONLINE', sensors as SensorTuple[]);
          expect(f).toHaveProperty(sensors.length ? `s${sensors.length}_v` : 't');
        } catch (e) {
          expect(e).toBeInstanceOf(StandardizeError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('library.add and resolve on arbitrary data throw only typed errors', () => {
    fc.assert(
      fc.property(fc.anything(), label, (source, l) => {
        const mine = UnitLibrary.builtin();
        try {
          mine.add(source as never);
        } catch (e) {
          expect(e).toBeInstanceOf(StandardizeError);
        }
        try {
          mine.addPrefixes(source as never);
        } catch (e) {
          expect(e).toBeInstanceOf(StandardizeError);
        }
        const r = mine.tryResolve(l);
        if (!('fail' in r)) expect(Number.isFinite(r.factor) && r.factor !== 0).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
