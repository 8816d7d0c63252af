import { describe, expect, it } from 'vitest';
import {
  InvalidSensorError,
  InvalidValueError,
  OpenSynapticStandardizer,
  type SensorTuple,
  StandardizeError,
  StandardizeInputError,
  UnitLibrary,
  UnitRangeError,
  UnknownUnitError,
} from '../src/index.js';

const std = new OpenSynapticStandardizer({ clockMs: () => 1_700_000_000_000 });
const strict = new OpenSynapticStandardizer({ clockMs: () => 1_700_000_000_000, invalidSensors: 'throw' });
const sensors = (list: unknown[]) => list as SensorTuple[];

describe('dropped sensors, reported with typed errors', () => {
  const input = sensors([
    ['A', 'OK', 1, 'Cel'], // kept
    ['B', 'OK', 2, 'lux'], // unknown unit
    ['C', 'OK', 'abc', 'Pa'], // not a number
    ['D', 'OK', 1], // not a 4-tuple
    ['E', 'OK', 1, ['m', 'foo']], // unknown list element
    ['F', 'OK', 1, []], // empty unit list
    ['G', 'OK', Number.NaN, 'Pa'], // NaN
    ['H', 'OK', 1e308, 'kPa'], // overflows once converted
    ['I', 'OK', 1, 'Qbar9'], // factor overflows
    ['J', 'OK', 1, 5], // unit of the wrong type
    [{ id: 1 }, 'OK', 1, 'Pa'], // id of the wrong type
    ['L', { s: 1 }, 1, 'Pa'], // state of the wrong type
    'ABCD', // a string is no sensor
    ['N', 'OK', '12.5', 'Pa'], // kept: numeric text
  ]);

  it('keeps the good ones with contiguous numbers and says why each other one was dropped', () => {
    const r = std.standardizeDetailed('DEV', 'ONLINE', input);
    expect(r.sensors.map((s) => [s.index, s.slot, s.id])).toEqual([
      [0, 1, 'A'],
      [13, 2, 'N'],
    ]);
    expect(r.fact).toMatchObject({ s1_id: 'A', s2_id: 'N', s2_v: 12.5 });
    expect(r.fact).not.toHaveProperty('s3_v');
    const why = r.dropped.map((d) => [d.index, d.error.name, d.error.code]);
    expect(why).toEqual([
      [1, 'UnknownUnitError', 'ERR_STD_UNKNOWN_UNIT'],
      [2, 'InvalidValueError', 'ERR_STD_INVALID_VALUE'],
      [3, 'InvalidSensorError', 'ERR_STD_INVALID_SENSOR'],
      [4, 'UnknownUnitError', 'ERR_STD_UNKNOWN_UNIT'],
      [5, 'InvalidSensorError', 'ERR_STD_INVALID_SENSOR'],
      [6, 'InvalidValueError', 'ERR_STD_VALUE_RANGE'],
      [7, 'InvalidValueError', 'ERR_STD_VALUE_RANGE'],
      [8, 'UnitRangeError', 'ERR_STD_UNIT_RANGE'],
      [9, 'InvalidSensorError', 'ERR_STD_INVALID_SENSOR'],
      [10, 'InvalidSensorError', 'ERR_STD_INVALID_SENSOR'],
      [11, 'InvalidSensorError', 'ERR_STD_INVALID_SENSOR'],
      [12, 'InvalidSensorError', 'ERR_STD_INVALID_SENSOR'],
    ]);
    const unknown = r.dropped[0]!.error as UnknownUnitError;
    expect(unknown).toBeInstanceOf(UnknownUnitError);
    expect(unknown.unit).toBe('lux');
    expect(unknown.message).toContain('"lux"');
    expect((r.dropped[3]!.error as UnknownUnitError).unit).toBe('foo');
    expect((r.dropped[1]!.error as InvalidValueError).value).toBe('abc');
    expect(r.dropped[1]!.sensor).toBe(input[2]);
    for (const d of r.dropped) expect(d.error).toBeInstanceOf(StandardizeError);
  });

  it('gives the same fact from standardize and standardizeDetailed', () => {
    expect(std.standardize('DEV', 'ONLINE', input)).toEqual(std.standardizeDetailed('DEV', 'ONLINE', input).fact);
  });

  it('throws the first problem instead with invalidSensors: "throw"', () => {
    expect(() => strict.standardize('DEV', 'ONLINE', input)).toThrow(UnknownUnitError);
    expect(() => strict.standardize('DEV', 'ONLINE', sensors([['C', 'OK', null, 'Pa']]))).toThrow(InvalidValueError);
    expect(() => strict.standardize('DEV', 'ONLINE', sensors([['C', 'OK', 1]]))).toThrow(InvalidSensorError);
    expect(() => strict.standardize('DEV', 'ONLINE', sensors([['C', 'OK', 1, '1/qg9']]))).not.toThrow();
    expect(() => strict.standardize('DEV', 'ONLINE', sensors([['C', 'OK', 1, 'Qbar9']]))).toThrow(UnitRangeError);
    expect(strict.standardize('DEV', 'ONLINE', sensors([['C', 'OK', 1, 'Pa']]))).toMatchObject({ s1_v: 1 });
  });

  it('refuses a factor that vanishes (the reference would turn every reading into the offset)', () => {
    const lib = UnitLibrary.builtin().add([{ key: 'tiny', attribute: 'x', factor: 1e-40 }]);
    expect(() => lib.resolve('tiny9')).toThrow(expect.objectContaining({ code: 'ERR_STD_UNIT_RANGE', factor: 0 }));
    expect(() => lib.resolve('1/tiny9')).toThrow(UnitRangeError);
  });

  it('treats a too long label or list as unknown / invalid', () => {
    const s = new OpenSynapticStandardizer({ clockMs: () => 0, maxUnitLength: 8, maxUnitParts: 2 });
    const r = s.standardizeDetailed('D', 'ON', sensors([['A', 'OK', 1, 'k       m'], ['B', 'OK', 1, ['m', 's', 's']], ['C', 'OK', 1, 'k  m']]));
    expect(r.dropped.map((d) => d.error.message)).toEqual(['unknown unit "k       m" (too-long)', 'sensor 1: the unit list has 3 elements, more than maxUnitParts (2)']);
    expect(r.fact).toMatchObject({ s1_v: 1000, s1_id: 'C' });
    expect(() => s.resolveUnit('123456789')).toThrow(expect.objectContaining({ reason: 'too-long' }));
  });

  it('does not check ids when the SensorId switch is off (they are not sent)', () => {
    const off = new OpenSynapticStandardizer({ clockMs: () => 0, sensorId: false });
    expect(off.standardize('D', 'ON', sensors([[null, 'OK', 1, 'Pa']]))).toEqual({ id: 'D', s: 'ON', t: 0, s1_v: 1, s1_u: 'pressure', s1_s: 'OK' });
  });
});

describe('calls refused as a whole: StandardizeInputError (ERR_STD_INPUT), in every mode', () => {
  const cases: [string, () => unknown, string][] = [
    ['sensors not a list', () => std.standardize('D', 'ON', 5 as never), 'sensors'],
    ['sensors as text', () => std.standardize('D', 'ON', 'ABCD' as never), 'sensors'],
    ['sensors null', () => std.standardize('D', 'ON', null as never), 'sensors'],
    ['too many sensors', () => new OpenSynapticStandardizer({ maxSensors: 2 }).standardize('D', 'ON', sensors([1, 2, 3])), 'sensors'],
    [
      'an endless generator',
      () =>
        new OpenSynapticStandardizer({ maxSensors: 10 }).standardize(
          'D',
          'ON',
          (function* () {
            for (;;) yield ['S', 'OK', 1, 'm'];
          })() as never,
        ),
      'sensors',
    ],
    ['empty device id', () => std.standardize('', 'ON', []), 'deviceId'],
    ['device id object', () => std.standardize({} as never, 'ON', []), 'deviceId'],
    ['device id NaN', () => std.standardize(Number.NaN, 'ON', []), 'deviceId'],
    ['status object', () => std.standardize('D', [] as never, []), 'status'],
    ['extras not an object', () => std.standardize('D', 'ON', [], 5 as never), 'extras'],
    ['extras id', () => std.standardize('D', 'ON', [], { id: 'X' }), 'extras.id'],
    ['extras sensor key', () => std.standardize('D', 'ON', [], { s1_v: 3 }), 'extras.s1_v'],
    ['extras __proto__', () => std.standardize('D', 'ON', [], JSON.parse('{"__proto__": {"polluted": 1}}')), 'extras.__proto__'],
    ['extras t text', () => std.standardize('D', 'ON', [], { t: '5' as never }), 'extras.t'],
    ['extras t infinite', () => std.standardize('D', 'ON', [], { t: Number.POSITIVE_INFINITY }), 'extras.t'],
    ['clock NaN', () => new OpenSynapticStandardizer({ clockMs: () => Number.NaN }).standardize('D', 'ON', []), 'clockMs'],
    ['clock not a number', () => new OpenSynapticStandardizer({ clockMs: (() => '1') as never }).standardize('D', 'ON', []), 'clockMs'],
    ['clockMs not a function', () => new OpenSynapticStandardizer({ clockMs: 5 as never }), 'options.clockMs'],
    // The old option was a clock in seconds: refused, never read as milliseconds.
    ['the old clock option (seconds)', () => new OpenSynapticStandardizer({ clock: () => 1700000000 } as never), 'options.clock'],
    ['bad option', () => new OpenSynapticStandardizer({ invalidSensors: 'ignore' as never }), 'options.invalidSensors'],
    ['bad cache size', () => new OpenSynapticStandardizer({ cacheSize: -1 }), 'options.cacheSize'],
    ['SensorId switch as text', () => new OpenSynapticStandardizer({ sensorId: 'false' as never }), 'options.sensorId'],
  ];
  for (const [name, run, field] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        run();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StandardizeInputError);
      expect(err).toMatchObject({ code: 'ERR_STD_INPUT', field });
    });
  }
});

describe('the fact around the sensors', () => {
  it('t is the clock in ms truncated to whole seconds, unless the extras give it (ms, kept as given)', () => {
    const s = new OpenSynapticStandardizer({ clockMs: () => 1_700_000_123_900 });
    expect(s.standardize('D', 'ON', []).t).toBe(1_700_000_123_000);
    expect(s.standardize('D', 'ON', [], { t: 1_700_000_123_456 }).t).toBe(1_700_000_123_456);
    // null leaves the timestamp to the compressor's clock, as the reference's t=None does.
    expect(s.standardize('D', 'ON', [], { t: null }).t).toBeNull();
    expect(new OpenSynapticStandardizer({ clockMs: () => -500 }).standardize('D', 'ON', []).t).toBe(0);
    expect(Object.is(new OpenSynapticStandardizer({ clockMs: () => -500 }).standardize('D', 'ON', []).t, -0)).toBe(false);
  });

  it('the default clock is Date.now, in ms', () => {
    const before = Math.trunc(Date.now() / 1000) * 1000;
    const t = new OpenSynapticStandardizer().standardize('D', 'ON', []).t as number;
    expect(t % 1000).toBe(0);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });

  it('puts the extras after id, s and t and before the sensors; undefined extras are left out', () => {
    const f = std.standardize('D', 'ON', [['S', 'OK', 1, 'Pa']], { geohash: 'wx4g', msg: 'hi', url: undefined, custom: { a: 1 } });
    expect(Object.keys(f)).toEqual(['id', 's', 't', 'geohash', 'msg', 'custom', 's1_v', 's1_u', 's1_id', 's1_s']);
    expect(Object.getPrototypeOf(f)).toBe(Object.prototype);
  });

  it('keeps numeric ids and states as numbers, and a null state', () => {
    expect(std.standardize(42, null, [[7, null, 1, 'Pa']])).toEqual({ id: 42, s: null, t: 1_700_000_000_000, s1_v: 1, s1_u: 'pressure', s1_id: 7, s1_s: null });
  });
});
