import { describe, expect, it } from 'vitest';
import { OpenSynapticStandardizer, type ResolvedUnit, type SensorTuple, UnitLibrary, UnknownUnitError } from '../src/index.js';

const lib = UnitLibrary.builtin();
const resolve = (label: string) => lib.resolve(label);
const std = new OpenSynapticStandardizer({ clockMs: () => 1_700_000_000_000 });
/** `[value, unit text]` of one sensor, or `null` when it is dropped. */
function one(value: unknown, unit: unknown): [unknown, unknown] | null {
  const f = std.standardize('D', 'ON', [['S', 'OK', value, unit] as unknown as SensorTuple]);
  return 's1_v' in f ? [f.s1_v, f.s1_u] : null;
}
function pick(r: ResolvedUnit) {
  const { attribute, factor, offset, unit, via, alias, prefix, power, inverse } = r;
  return { attribute, factor, offset, unit, via, alias, prefix, power, inverse };
}

describe('unit resolution, rule by rule', () => {
  it('1. exact key', () => {
    expect(pick(resolve('Pa'))).toEqual({ attribute: 'pressure', factor: 1, offset: 0, unit: 'Pa', via: 'key', alias: null, prefix: null, power: 1, inverse: false });
    expect(pick(resolve('Cel'))).toMatchObject({ factor: 1, offset: 273.15, via: 'key' });
    // An exact key wins over a prefix reading: cd is the candela, not a centi-day.
    expect(pick(resolve('cd'))).toMatchObject({ attribute: 'luminous intensity', unit: 'cd', prefix: null });
  });

  it('2. lower-cased key: T is the metric ton, M the meter, S the second, ANG the angstrom', () => {
    expect(pick(resolve('T'))).toMatchObject({ unit: 't', attribute: 'mass', factor: 1000, via: 'lower-case' });
    expect(pick(resolve('M'))).toMatchObject({ unit: 'm', via: 'lower-case' });
    expect(pick(resolve('S'))).toMatchObject({ unit: 's', via: 'lower-case' });
    expect(pick(resolve('ANG'))).toMatchObject({ unit: 'ang', factor: 1e-10, via: 'lower-case' });
    // Keys themselves are not lower-cased: "pa" is no unit, "HZ" neither (and H is no prefix).
    expect(() => resolve('pa')).toThrow(UnknownUnitError);
    expect(() => resolve('HZ')).toThrow(UnknownUnitError);
  });

  it('3. alias map on the lower-cased text (hour, cel), with the reference\'s broken celsius alias', () => {
    expect(pick(resolve('hour'))).toMatchObject({ unit: 'h', factor: 3600, alias: 'h', via: 'key' });
    expect(pick(resolve('HOUR'))).toMatchObject({ unit: 'h', alias: 'h' });
    expect(pick(resolve('CEL'))).toMatchObject({ unit: 'Cel', alias: 'Cel', offset: 273.15 });
    expect(() => resolve('celsius')).toThrow(UnknownUnitError);
    expect(() => resolve('Celsius')).toThrow(UnknownUnitError);
  });

  it('4. UCUM code', () => {
    expect(pick(resolve('[degF]'))).toMatchObject({ unit: 'degF', via: 'ucum' });
    expect(pick(resolve('year'))).toMatchObject({ unit: 'ann', factor: 31557600, via: 'ucum' });
    expect(pick(resolve('cal_IT'))).toMatchObject({ unit: 'cal', factor: 4.1868, via: 'ucum' });
    expect(pick(resolve('{particles}'))).toMatchObject({ unit: 'count', via: 'ucum' });
    // The UCUM code of rpm is "min-1", but its trailing 1 is taken as a power first: dropped.
    expect(() => resolve('min-1')).toThrow(UnknownUnitError);
  });

  it('5. longest prefix (by length, then table order) on a base unit that takes prefixes', () => {
    expect(pick(resolve('kPa'))).toMatchObject({ prefix: 'k', factor: 1000, unit: 'Pa' });
    expect(pick(resolve('dam'))).toMatchObject({ prefix: 'da', factor: 10, unit: 'm' });
    expect(pick(resolve('dacd'))).toMatchObject({ prefix: 'da', factor: 10, unit: 'cd' });
    expect(pick(resolve('KiBy'))).toMatchObject({ prefix: 'Ki', factor: 8192, unit: 'By' });
    expect(pick(resolve('PA'))).toMatchObject({ prefix: 'P', factor: 1e15, unit: 'A', attribute: 'electric current' });
    expect(pick(resolve('Mcal_IT'))).toMatchObject({ prefix: 'M', unit: 'cal', via: 'ucum' });
    expect(pick(resolve('um'))).toMatchObject({ prefix: 'u', factor: 1e-6 });
    // The factor is the base factor times the prefix factor, in that order.
    expect(resolve('mg').factor).toBe(0.001 * 0.001);
    expect(resolve('ccd').factor).toBe(0.01);
    // Longer symbols are tried first whatever their table position; equal lengths keep table order.
    const custom = new UnitLibrary({
      prefixes: [{ symbol: 'x', factor: 2 }, { symbol: 'y', factor: 5 }, { symbol: 'xy', factor: 3 }, { symbol: 'yx', factor: 7 }],
      units: [{ key: 'ym', attribute: 'a' }, { key: 'm', attribute: 'b' }, { key: 'xm', attribute: 'c' }],
    });
    expect(pick(custom.resolve('xym'))).toMatchObject({ prefix: 'xy', factor: 3, unit: 'm' });
    expect(pick(custom.resolve('yxm'))).toMatchObject({ prefix: 'yx', factor: 7, unit: 'm' });
    expect(pick(custom.resolve('yxym'))).toMatchObject({ prefix: 'yx', factor: 7, unit: 'ym' });
    // Bases that refuse prefixes, aliases that land on one, and prefixes with no base.
    for (const label of ['kmin', 'kh', 'khour', 'kcel', 'kmm[Hg]', 'Ki', 'Mi', 'da', 'kilo', 'kiBy', 'KIBY']) {
      expect(() => resolve(label), label).toThrow(UnknownUnitError);
    }
  });

  it('a trailing digit is a power only when the rest is longer than one character; the attribute keeps no power', () => {
    expect(pick(resolve('m2'))).toMatchObject({ attribute: 'length', factor: 1, power: 2 });
    expect(pick(resolve('cm2'))).toMatchObject({ factor: 0.0001, power: 2 });
    expect(pick(resolve('km2'))).toMatchObject({ factor: 1e6, power: 2 });
    expect(pick(resolve('m0'))).toMatchObject({ factor: 1, power: 0 });
    expect(pick(resolve('HOUR2'))).toMatchObject({ factor: 3600 * 3600, power: 2 });
    expect(pick(resolve('MiBy2'))).toMatchObject({ factor: (8 * 1048576) ** 2 });
    // "2" alone is a one-character label, not a power; "m٣" ends in an Arabic-Indic three.
    expect(() => resolve('2')).toThrow(UnknownUnitError);
    expect(pick(resolve('m٣'))).toMatchObject({ unit: 'm', power: 3 });
    expect(pick(resolve('m𝟐'))).toMatchObject({ unit: 'm', power: 2 });
    // Superscripts pass Python's isdigit() but not int(): the label stays as it is, unknown.
    expect(() => resolve('m²')).toThrow(UnknownUnitError);
    expect(() => resolve('𝟐')).toThrow(UnknownUnitError);
    // Only one digit is a power.
    expect(() => resolve('m22')).toThrow(UnknownUnitError);
  });

  it('a leading 1/ inverts the factor and keeps the attribute; the offset is neither powered nor inverted', () => {
    expect(pick(resolve('1/s'))).toMatchObject({ attribute: 'time', factor: 1, inverse: true });
    expect(resolve('1/min').factor).toBe(1 / 60);
    expect(resolve('1/h').factor).toBe(1 / 3600);
    expect(pick(resolve('1/m2'))).toMatchObject({ factor: 1, power: 2, inverse: true });
    expect(pick(resolve('1/Cel'))).toMatchObject({ factor: 1, offset: 273.15 });
    for (const label of ['1/', '1/2', '1/1/s']) expect(() => resolve(label), label).toThrow(UnknownUnitError);
  });

  it('trims the text before the lookups, but not before the prefix search', () => {
    expect(pick(resolve(' Pa '))).toMatchObject({ unit: 'Pa' });
    expect(pick(resolve('k  m'))).toMatchObject({ unit: 'm', prefix: 'k' });
    expect(() => resolve(' kPa ')).toThrow(UnknownUnitError);
  });

  it('"" and "Unknown" never resolve; units the reference drops stay dropped', () => {
    expect(() => resolve('')).toThrow(expect.objectContaining({ code: 'ERR_STD_UNKNOWN_UNIT', reason: 'empty' }));
    expect(() => resolve('Unknown')).toThrow(expect.objectContaining({ reason: 'empty' }));
    for (const label of ['km/h', 'm/s', 'kWh', 'lux', 'lx', 'foo']) {
      expect(() => resolve(label), label).toThrow(expect.objectContaining({ unit: label, reason: 'not-found' }));
    }
  });
});

describe('values and unit texts in the fact (observed on the reference 1.4.2)', () => {
  it('converts with the first unit: value × factor + offset', () => {
    expect(one(21.5, 'kPa')).toEqual([21500, 'pressure']);
    expect(one(0.5, 'Cel')).toEqual([273.65, 'temperature']);
    expect(one(2, '[degF]')).toEqual([256.4833, 'temperature']);
    expect(one(2, 'cm٣')).toEqual([0, 'length']);
    expect(one(2, 'MiBy2')).toEqual([140737488355328, 'data']);
    expect(one('1_000', 'Pa')).toEqual([1000, 'pressure']);
    expect(one('٣.٥', 'Pa')).toEqual([3.5, 'pressure']);
    expect(one(true, 'Pa')).toEqual([1, 'pressure']);
  });

  it('list units: first scales, same attribute counts, others are /{factor:g}{attribute}', () => {
    expect(one(36, ['km', 'h'])).toEqual([36000, 'length/3600time']);
    expect(one(3, ['m', 'cm', 's'])).toEqual([3, 'length2/time']);
    expect(one(1000, ['kg', 'm3'])).toEqual([1000, 'mass/length']);
    expect(one(1, ['m', 'year'])).toEqual([1, 'length/3.15576e+07time']);
    expect(one(1, ['m', 'us'])).toEqual([1, 'length/1e-06time']);
    expect(one(2, ['m', 'rpm'])).toEqual([2, 'length/0.0166667frequency']);
    expect(one(2, ['g', 'count'])).toEqual([0.002, 'mass/1.66054e-24amount of substance']);
    expect(one(2, ['m', 'h', 'Cel'])).toEqual([2, 'length/3600time/temperature']);
    expect(one(2, ['m', '1/s'])).toEqual([2, 'length/time']);
    expect(one(2, ['Pa'])).toEqual([2, 'pressure']);
    // Any unknown element, a non-text element that names no unit, or an empty list drops the sensor.
    expect(one(1, ['m', 'foo'])).toBeNull();
    expect(one(1, ['m', 2])).toBeNull();
    expect(one(1, [])).toBeNull();
  });

  it('looks list elements that are not text up by their Python str()', () => {
    const custom = UnitLibrary.builtin().add([
      { key: 'None', attribute: 'nothing' },
      { key: 'True', attribute: 'truth' },
      { key: 'nan', attribute: 'not a number' },
      { key: '2.', attribute: 'two', factor: 2 },
    ]);
    const s = new OpenSynapticStandardizer({ library: custom, clockMs: () => 0 });
    const f = s.standardize('D', 'ON', [['S', 'OK', 1, ['m', null, true, Number.NaN, 2.5]]]);
    // str(2.5) is "2.5": a trailing 5 is a power, so it reads as the unit "2." to the fifth.
    expect(f.s1_u).toBe('length/nothing/truth/not a number/32two');
  });
});

describe('the README examples', () => {
  it('standardizes the quick-start readings', () => {
    const s = new OpenSynapticStandardizer({ clockMs: () => 1_700_000_000_000 });
    expect(
      s.standardize('DEV1', 'ONLINE', [
        ['T1', 'OK', 21.5, 'Cel'],
        ['P1', 'OK', 101.325, 'kPa'],
        ['V1', 'OK', 36, ['km', 'h']],
        ['X1', 'OK', 1, 'lux'],
      ]),
    ).toEqual({
      id: 'DEV1',
      s: 'ONLINE',
      t: 1_700_000_000_000,
      s1_v: 294.65,
      s1_u: 'temperature',
      s1_id: 'T1',
      s1_s: 'OK',
      s2_v: 101325,
      s2_u: 'pressure',
      s2_id: 'P1',
      s2_s: 'OK',
      s3_v: 36000,
      s3_u: 'length/3600time',
      s3_id: 'V1',
      s3_s: 'OK',
    });
  });

  it('extends the library as shown', () => {
    const units = UnitLibrary.builtin()
      .add([{ key: 'lx', attribute: 'illuminance', ucum: 'lux' }])
      .add({ units: { kn: { physical_attribute: 'speed', to_standard_factor: 0.5144444444444445, can_take_prefix: false } } });
    units.addPrefixes([{ symbol: 'Pi', factor: 2 ** 50 }]);
    units.addAlias('kelvins', 'K');
    const s = new OpenSynapticStandardizer({ library: units, clockMs: () => 0 });
    expect(s.standardize('D', 'ON', [['L1', 'OK', 1.5, 'klx']])).toMatchObject({ s1_v: 1500, s1_u: 'illuminance' });
    expect(units.resolve(' Kelvins ')).toMatchObject({ unit: 'K', alias: 'K' });
    expect(units.resolve('PiBy').factor).toBe(2 ** 53);
    expect(() => units.resolve('kkn')).toThrow(UnknownUnitError);
  });
});
