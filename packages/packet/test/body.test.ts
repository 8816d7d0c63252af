import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '@opensynaptic/config/kill-loop';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BodyTextError,
  compressFact,
  decodeUnit,
  decompressBody,
  encodeUnit,
  type FactInput,
  formatG,
  pyFloatRepr,
  pyParseFloat,
  STATE_SYMBOLS,
  SYMBOL_GROUPS,
  UNIT_CODES,
  UNIT_NAMES,
} from '../src/body/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const REFERENCE_SYMBOLS = join(here, '../../../../shared/reference-data/OS_Symbols.json');
// vectors/compress.json (and compress-extra.json) are replayed by the vector runner, not here.
/** The clock of the reference vectors, for the round-trip properties below. */
const VECTOR_CLOCK = 1700000000.0;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (e instanceof BodyTextError) return e.code;
    throw e;
  }
}

describe('symbol table', () => {
  it('holds the same facts as the reference OS_Symbols.json', (ctx) => {
    if (!existsSync(REFERENCE_SYMBOLS)) {
      console.log(`skipped: ${REFERENCE_SYMBOLS} is not there (the shared reference data sits beside the repository)`);
      ctx.skip();
      return;
    }
    const ref = JSON.parse(readFileSync(REFERENCE_SYMBOLS, 'utf8')) as { units: Record<string, string>; states: Record<string, string> };
    const ours = SYMBOL_GROUPS.flatMap((g) => [[g.attribute, g.code], ...g.units]);
    // Same names, same codes, same order (the order decides which name a shared code decodes to).
    expect(ours).toEqual(Object.entries(ref.units));
    expect(STATE_SYMBOLS.map((e) => [...e])).toEqual(Object.entries(ref.states));
    const reverse = new Map(Object.entries(ref.units).map(([k, v]) => [v, k]));
    expect(new Map(UNIT_NAMES)).toEqual(reverse);
  });

  it('decodes code 900 as atm and keeps attribute codes one character long', () => {
    expect(UNIT_CODES.get('pa')).toBe('900');
    expect(UNIT_NAMES.get('900')).toBe('atm');
    for (const g of SYMBOL_GROUPS) {
      expect(g.code).toHaveLength(1);
      for (const [, code] of g.units) expect(code.startsWith(g.code)).toBe(true);
    }
  });
});

describe('units (reference behaviour beyond the vectors)', () => {
  // Observed on the reference 1.4.2 receiver.
  const decoded: [string, string][] = [
    ['1,dx', '0.1dx'],
    ['1,px', '1e-09px'],
    ['1,ux', '1e-06ux'],
    ['1,Gx', '1000000000Gx'],
    ['1,Mix', '1000000Mix'],
    ['1,cx', '1cx'],
    ['1,B00', '1time00'],
    ['1,D0A', '1mv.rt'],
    ['1,D00', '1operations00'],
    ['1,kA', '1000temperature'],
    ['1,kAx', '1000kAx'],
    ['1,daA', '10temperature'],
    ['1,da9', '10da9'],
    ['1,A12', '1temperature12'],
    ['1,A²', '1temperature²'],
    ['1,deg/s', '0.1deg/s'],
    ['1,2,3', '12,3'],
    ['1,', '1'],
    [',600', 'm'],
    [',', ''],
    ['a,B00', 's'],
    ['a,kA', 'kA'],
    ['10,x', '62x'],
    ['1.0,x', '1x'],
    ['1e20,x', '100000000000000000000x'],
    ['-0,x', '0x'],
    ['1.5e-7,m600', '1.5e-10m600'],
    ['1e16,x', '10000000000000000x'],
    ['1e-5,x', '1e-05x'],
    ['ZZZZZZZZZZZ,x', 'x'],
    ['1e999,x', 'x'],
    ['1_0.5,x', '10.5x'],
    [' 1.5 ,x', '1.5x'],
    ['1-2,x', 'x'],
    ['1_0,x', '10x'],
    ['+5,x', '5x'],
    ['1.5E2,x', '150x'],
    ['1e-400,x', '0x'],
    ['-1.5,kA', '-1500temperature'],
    ['1e5,px', '0.0001px'],
    ['3,dx', '0.30000000000000004dx'],
    ['7,px', '7.000000000000001e-09px'],
    ['0.7,dx', '0.06999999999999999dx'],
    ['1e308,kx', 'kx'],
    ['1.5e300,x', `${BigInt(1.5e300)}x`],
    ['m//s', 'm/s'],
    ['/', ''],
    ['600//B00', 'm/s'],
    ['/m', 'm'],
    ['a,/b', '/b'],
    ['1,/2,', '1/2'],
    [' /600', ' /m'],
    ['/,/', ''],
    ['1, a', '1a'],
    ['1, kA', '1000temperature'],
    ['1,k A', '1000k A'],
    ['1,A,', '1A,'],
    ['a, A', ' A'],
    ['a,x,A', 'temperature'],
    [',1,2', 'electromagnetism'],
    ['1,,A', '1,A'],
    ['٣,x', '3x'],
    ['𝟏𝟎,x', '10x'],
    ['1,A٣', '1temperature٣'],
  ];
  it.each(decoded)('decodes %j as %j', (text, unit) => {
    expect(decodeUnit(text)).toBe(unit);
  });

  // Observed on the reference 1.4.2 sender.
  const encoded: [string, string][] = [
    ['m2 ', '6002'],
    ['m 2', 'm 2'],
    [' 2m', '2,600'],
    ['1000 m', '1,km'],
    ['\u00a0m', '600'],
    ['1000\u00a0m', '1,km'],
    ['m²', '600²'],
    ['1/s2', '1/B002'],
    ['1/1000s', '1/1,ks'],
    ['2/3', '2/3'],
    ['1e3', '1,e3'],
    ['.5', '.5'],
    ['1_000_000Pa', '1,MPa'],
    ['1__0m', '1,__0m'],
    ['1.e-1m', 'g8,600'],
    ['5.e1m', '5,dam'],
    ['0x10m', '0,x10m'],
    ['1,5m', '1,,5m'],
    ['10D00', '1,daD00'],
    ['3.5e9Pa', 'Us,MPa'],
    ['1e19m', 'aUKYOA,Gm'],
    ['1e15x', '4c92,Gx'],
    ['-0m', '0,600'],
    ['1.00005m', '2Bj,600'],
    ['999999999999.5m', 'JNBBGsfyw,600'],
    ['-0.5m', '-1iE,600'],
    ['1.5.5m', '3TW,.5m'],
    ['1e3e3m', '1,ke3m'],
    ['1em', '1,em'],
    ['a//b', '100//b'],
    ['/', '/'],
    [' ', ''],
    ['UNKNOWN', 'UNKNOWN'],
    ['unknown/s', 'unknown/B00'],
    ['٣m', '3,600'],
    ['m٣', '600٣'],
    ['１０００m', '1,km'],
    ['𝟏𝟎m', '1,dam'],
    ['٣.٥e٢m', 'z,dam'],
  ];
  it.each(encoded)('encodes %j as %j', (unit, text) => {
    expect(encodeUnit(unit, 4)).toBe(text);
  });

  it('takes inf / nan words as names, not coefficients (the reference raises)', () => {
    expect(encodeUnit('informatics', 4)).toBe('5');
    expect(encodeUnit('nanometer', 4)).toBe('nanometer');
    expect(codeOf(() => encodeUnit('1e400m', 4))).toBe('ERR_BODY_RANGE');
    expect(codeOf(() => encodeUnit('1e30m', 4))).toBe('ERR_BODY_RANGE');
  });
});

describe('compressFact edge cases', () => {
  const base = { id: 'D', s: '1', t: 1_700_000_000_000, s1_id: 'T', s1_s: 'K', s1_u: 'A', s1_v: 1 };
  const c = (over: Record<string, unknown>, options = {}) => compressFact({ ...base, ...over } as FactInput, options);

  it('matches the reference for missing and odd fields', () => {
    expect(c({ s1_s: undefined })).toBe('D.1.AYvP5WgA|T>U.100:2Bi|');
    expect(c({ s1_u: undefined })).toBe('D.1.AYvP5WgA|T>K.Z:2Bi|');
    expect(c({ s1_v: undefined })).toBe('D.1.AYvP5WgA|T>K.100:0|');
    expect(c({ s1_id: null })).toBe('D.1.AYvP5WgA|');
    expect(c({ t: 1.7e12 + 0.7 })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|');
    expect(c({ t: 99_999_999_999_900.9 })).toBe('D.1.WvMQej-c|T>K.100:2Bi|');
    expect(c({ t: -0.0001 })).toBe('D.1.AAAAAAAA|T>K.100:2Bi|');
    expect(c({ geohash: '' })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|&|');
    expect(c({ geohash: 5 })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|&5|');
    expect(c({ url: '' })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|#|');
    expect(c({ url: 'https://' })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|#|');
    expect(c({ url: 'HTTPS://x' })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|#SFRUUFM6Ly94|');
    expect(c({ msg: '' })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|@');
    expect(c({ s1_v: ' 1_0.5 ' })).toBe('D.1.AYvP5WgA|T>K.100:rjy|');
    expect(c({ s1_s: 5 })).toBe('D.1.AYvP5WgA|T>5.100:2Bi|');
    expect(c({ s2_id: 'X' })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|X>U.Z:0|');
    expect(c({ s3_id: 'X', s3_v: 2 })).toBe('D.1.AYvP5WgA|T>K.100:2Bi|');
  });

  it('keeps a url that contains https:// further on (the reference drops every occurrence)', () => {
    const text = c({ url: 'https://a/https://b' });
    expect(decompressBody(text).url).toBe('https://a/https://b');
  });

  it('honours the SensorId switch and the precision', () => {
    expect(c({}, { sensorId: false })).toBe('D.1.AYvP5WgA|');
    expect(c({ s1_v: 1.25 }, { precision: 2 })).toBe('D.1.AYvP5WgA|T>K.100:21|');
    expect(decompressBody('D.1.AYvP5WgA|T>K.100:21|', { precision: 2 }).s1_v).toBe(1.25);
    expect(codeOf(() => c({}, { precision: 1.5 }))).toBe('ERR_BODY_FIELD');
  });

  it('takes t in ms whatever its size (no guessing of seconds below 1e11, as the reference does)', () => {
    // 5 ms and 1.7e9 ms (1970-01-20): the reference would send 5000 ms and 1.7e12 ms.
    expect(decompressBody(c({ t: 5 })).t_raw).toBe(5);
    expect(decompressBody(c({ t: 1_700_000_000 })).t_raw).toBe(1_700_000_000);
    expect(decompressBody(c({ t: 99_999_999_999 })).t_raw).toBe(99_999_999_999);
  });

  it('refuses the old now option (a clock in seconds) instead of reading it as ms', () => {
    let err: unknown;
    try {
      c({ t: undefined }, { now: () => 1700000000 } as never);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_BODY_FIELD', field: 'options.now' });
  });

  it('uses the clock in ms (nowMs, default Date.now) when t is missing', () => {
    expect(c({ t: undefined }, { nowMs: () => 1_700_000_000_250 })).toBe('D.1.AYvP5Wj6|T>K.100:2Bi|');
    expect(c({ t: null }, { nowMs: () => 1_700_000_000_250.9 })).toBe('D.1.AYvP5Wj6|T>K.100:2Bi|');
    const before = Date.now();
    const stamped = decompressBody(c({ t: undefined })).t_raw;
    expect(stamped).toBeGreaterThanOrEqual(before);
    expect(stamped).toBeLessThanOrEqual(Date.now());
  });

  it('throws typed errors instead of sending unreadable text', () => {
    expect(codeOf(() => c({ id: undefined }))).toBe('ERR_BODY_FIELD');
    expect(codeOf(() => c({ id: {} }))).toBe('ERR_BODY_FIELD');
    expect(codeOf(() => c({ t: '1700000000' }))).toBe('ERR_BODY_FIELD');
    expect(codeOf(() => c({ t: true }))).toBe('ERR_BODY_FIELD');
    expect(codeOf(() => c({ t: Number.NaN }))).toBe('ERR_BODY_RANGE');
    expect(codeOf(() => c({ t: -1 }))).toBe('ERR_BODY_RANGE');
    expect(codeOf(() => c({ t: 2 ** 64 }))).toBe('ERR_BODY_RANGE');
    expect(codeOf(() => c({ s1_v: Number.NaN }))).toBe('ERR_BODY_RANGE');
    expect(codeOf(() => c({ s1_v: 'inf' }))).toBe('ERR_BODY_RANGE');
    expect(codeOf(() => c({ s1_v: 'abc' }))).toBe('ERR_BODY_FIELD');
    expect(codeOf(() => c({ s1_v: 1e15 }))).toBe('ERR_BODY_RANGE');
    for (const [key, value] of [
      ['id', 'a|b'],
      ['id', 'a.b'],
      ['id', 'a@b'],
      ['s', 'a.b'],
      ['s1_id', 'a>b'],
      ['s1_id', 'a|b'],
      ['s1_id', '&x'],
      ['s1_id', '#x'],
      ['s1_s', 'a.b'],
      ['s1_u', 'a|b'],
      ['s1_u', 'a@b'],
      ['geohash', 'a|b'],
    ]) {
      expect(codeOf(() => c({ [key!]: value })), `${key}=${value}`).toBe('ERR_BODY_SEPARATOR');
    }
    expect(codeOf(() => c({ msg: '\ud800' }))).toBe('ERR_BODY_ENCODING');
    expect(codeOf(() => c({ msg: 5 }))).toBe('ERR_BODY_FIELD');
    expect(codeOf(() => compressFact(null as unknown as FactInput))).toBe('ERR_BODY_FIELD');
  });
});

describe('decompressBody edge cases', () => {
  const H = 'D.1.AYvP5WgA|';
  it('matches the reference on odd but readable text', () => {
    expect(decompressBody('D.1.AAAAAAAA')).toEqual({ id: 'D', s: 'ONLINE', t_raw: 0 });
    expect(decompressBody('D..AAAAAAAA|')).toEqual({ id: 'D', s: '', t_raw: 0 });
    expect(decompressBody('.1.AAAAAAAA|')).toEqual({ id: '', s: 'ONLINE', t_raw: 0 });
    expect(decompressBody('D.1.AAAAAAAA||T1>K.A:1')).toMatchObject({ s1_id: 'T1', s1_v: 0.0001 });
    expect(decompressBody(`${H}T1>K.A:1:2|`)).toMatchObject({ s1_u: 'A:1', s1_v: 0.0002 });
    expect(decompressBody(`${H}T>>K.A:1|`)).toMatchObject({ s1_id: 'T', s1_s: '>K', s1_u: 'temperature' });
    expect(decompressBody(`${H}T1>K.A:1|T1>K.A:2|`)).toMatchObject({ s1_v: 0.0001, s2_id: 'T1', s2_v: 0.0002 });
    expect(decompressBody(`${H}&|`)).toMatchObject({ geohash: '' });
    expect(decompressBody(`${H}#|`)).toMatchObject({ url: 'https://' });
    expect(decompressBody(`${H}@aGk|`)).toMatchObject({ msg: 'hi' });
    expect(decompressBody(`${H}@aGk|||`)).toMatchObject({ msg: 'hi' });
    expect(decompressBody(`${H}@aGk=`)).toMatchObject({ msg: 'hi' });
    expect(decompressBody(`${H}@aG`)).toMatchObject({ msg: 'h' });
    expect(decompressBody(`${H}#aGk=|`)).toMatchObject({ url: 'https://hi' });
    expect(decompressBody(`${H}#4pyT|`)).toMatchObject({ url: 'https://✓' });
    expect(decompressBody(`${H}&T1>K.A:1|`)).toEqual({ id: 'D', s: 'ONLINE', t_raw: 1700000000000, geohash: 'T1>K.A:1' });
    expect(decompressBody(`${H}>K.A:1|`)).toMatchObject({ s1_id: '', s1_s: 'OK' });
    expect(decompressBody(`${H}T1>.:1|`)).toMatchObject({ s1_s: '', s1_u: '' });
    expect(decompressBody(`${H}T1>K.A.B:1|`)).toMatchObject({ s1_u: 'A.B' });
    expect(decompressBody(`${H}T1>K:1|`)).toMatchObject({ s1_s: 'U', s1_u: 'K' });
    expect(decompressBody(`${H}T1:1>K.A|`)).toEqual({ id: 'D', s: 'ONLINE', t_raw: 1700000000000 });
    expect(decompressBody(`${H}T1>K.A:-0|`).s1_v).toBe(0);
    expect(Object.is(decompressBody(`${H}T1>K.A:-0|`).s1_v, -0)).toBe(false);
  });

  it('reads a sensor id containing @ as a sensor (the reference takes everything after the first @ as msg)', () => {
    expect(decompressBody(`${H}T@1>K.A:1|`)).toMatchObject({ s1_id: 'T@1', s1_v: 0.0001 });
  });

  it('drops invalid UTF-8 from byte input, as the reference does', () => {
    const bytes = new TextEncoder().encode(`${H}T1>K.A:cmwc|`);
    const withJunk = new Uint8Array([...bytes.slice(0, 14), 0xff, 0xc3, 0xe2, 0x82, ...bytes.slice(14)]);
    expect(decompressBody(withJunk)).toEqual(decompressBody(bytes));
  });

  it('throws typed errors on text the reference cannot decode either', () => {
    for (const [text, code, field] of [
      ['', 'ERR_BODY_SYNTAX', 'body'],
      ['garbage', 'ERR_BODY_SYNTAX', 'header'],
      ['A.B|', 'ERR_BODY_SYNTAX', 'header'],
      ['D.1|T1>K.A:1|', 'ERR_BODY_SYNTAX', 'header'],
      ['dev.1.1.AYvP5WgA|', 'ERR_BODY_SYNTAX', 'header'],
      ['D.1.!!!!|', 'ERR_BODY_SYNTAX', 'timestamp'],
      ['D.1.AAAA|', 'ERR_BODY_SYNTAX', 'timestamp'],
      ['D.1.AAAAAAAAA|', 'ERR_BODY_SYNTAX', 'timestamp'],
      [`${H}T1>K.A:!!|`, 'ERR_BODY_SYNTAX', 's1_v'],
      [`${H}T1>K.A:-|`, 'ERR_BODY_SYNTAX', 's1_v'],
      [`${H}T1>K.A:1 |`, 'ERR_BODY_SYNTAX', 's1_v'],
      [`${H}T1>K.A:|`, 'ERR_BODY_SYNTAX', 's1_v'],
      [`${H}X>K.A:1|T1>K.A:ZZZZZZZZZZZZ|`, 'ERR_BODY_RANGE', 's2_v'],
      [`${H}#T1>K.A:1|`, 'ERR_BODY_SYNTAX', 'url'],
      [`${H}@!!`, 'ERR_BODY_SYNTAX', 'msg'],
      [`${H}@_w`, 'ERR_BODY_ENCODING', 'msg'],
      [`${H}#_w|`, 'ERR_BODY_ENCODING', 'url'],
    ] as const) {
      let err: unknown;
      try {
        decompressBody(text);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(BodyTextError);
      expect((err as BodyTextError).code, text).toBe(code);
      expect((err as BodyTextError).field, text).toBe(field);
      expect((err as BodyTextError).message, text).toContain(field);
    }
    expect(codeOf(() => decompressBody(42 as unknown as string))).toBe('ERR_BODY_FIELD');
  });
});

describe('Python number text', () => {
  it('pyFloatRepr matches repr(float)', () => {
    const cases: [number, string][] = [
      [0, '0.0'],
      [-0, '-0.0'],
      [1, '1.0'],
      [0.001, '0.001'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [1e-6, '1e-06'],
      [1.5e-10, '1.5e-10'],
      [123456.789, '123456.789'],
      [1e15, '1000000000000000.0'],
      [1234567890123456, '1234567890123456.0'],
      [1e16, '1e+16'],
      [1.2345e20, '1.2345e+20'],
      [1e22, '1e+22'],
      [-844674407370955.1, '-844674407370955.1'],
      [0.30000000000000004, '0.30000000000000004'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [Number.NaN, 'nan'],
      [Infinity, 'inf'],
      [-Infinity, '-inf'],
    ];
    for (const [x, s] of cases) expect(pyFloatRepr(x), String(x)).toBe(s);
  });

  it("formatG matches f'{x:g}'", () => {
    const cases: [number, string][] = [
      [60, '60'],
      [3600, '3600'],
      [0.001, '0.001'],
      [1e-6, '1e-06'],
      [31557600, '3.15576e+07'],
      [1 / 60, '0.0166667'],
      [1.66054e-24, '1.66054e-24'],
      [100000, '100000'],
      [1000000, '1e+06'],
      [123456.5, '123456'], // exact tie: half to even
      [123457.5, '123458'],
      [1000.125, '1000.12'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [999999.5, '1e+06'],
      [-2.5, '-2.5'],
      [0, '0'],
      [-0, '-0'],
      [Number.NaN, 'nan'],
      [-Infinity, '-inf'],
    ];
    for (const [x, s] of cases) expect(formatG(x), String(x)).toBe(s);
  });

  it('pyParseFloat accepts what float() accepts', () => {
    expect(pyParseFloat(' 1_0.5 ')).toBe(10.5);
    expect(pyParseFloat('1e3')).toBe(1000);
    expect(pyParseFloat('.5')).toBe(0.5);
    expect(pyParseFloat('5.')).toBe(5);
    expect(pyParseFloat('-Infinity')).toBe(-Infinity);
    expect(pyParseFloat('nan')).toBeNaN();
    expect(pyParseFloat('1__0')).toBeUndefined();
    expect(pyParseFloat('_1')).toBeUndefined();
    expect(pyParseFloat('0x10')).toBeUndefined();
    expect(pyParseFloat('')).toBeUndefined();
  });
});

describe('round trip', () => {
  const safeText = (min: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9_-]{${min},12}$`));
  // Units that come back unchanged: symbol-table names whose code decodes to the same name.
  const stableUnits = [...UNIT_CODES].filter(([name, code]) => UNIT_NAMES.get(code) === name && !name.includes('/')).map(([n]) => n);
  const states = ['online', 'offline', 'ok', 'unknown', 'error', 'WARN', 'U', 'fault'];
  const sensor = fc.record({
    id: safeText(1),
    s: fc.constantFrom(...states),
    u: fc.constantFrom(...stableUnits),
    k: fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
  });
  const fact = fc.record({
    id: safeText(0),
    s: fc.constantFrom(...states),
    t: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
    sensors: fc.array(sensor, { maxLength: 8 }),
    geohash: fc.option(fc.stringMatching(/^[0-9b-hjkmnp-z]{0,12}$/), { nil: undefined }),
    url: fc.option(fc.webUrl().map((u) => u.replace(/^http:/, 'https:')), { nil: undefined }),
    msg: fc.option(fc.string({ unit: 'grapheme', maxLength: 40 }), { nil: undefined }),
  });

  it('decompressBody(compressFact(f)) gives f back', () => {
    fc.assert(
      fc.property(fact, (f) => {
        const input: Record<string, unknown> = { id: f.id, s: f.s, t: f.t };
        const want: Record<string, unknown> = { id: f.id, s: f.s.toUpperCase(), t_raw: f.t };
        f.sensors.forEach((x, i) => {
          Object.assign(input, { [`s${i + 1}_id`]: x.id, [`s${i + 1}_s`]: x.s, [`s${i + 1}_u`]: x.u, [`s${i + 1}_v`]: x.k / 1e4 });
          Object.assign(want, { [`s${i + 1}_id`]: x.id, [`s${i + 1}_s`]: x.s.toUpperCase(), [`s${i + 1}_u`]: x.u, [`s${i + 1}_v`]: x.k / 1e4 });
        });
        for (const key of ['geohash', 'url', 'msg'] as const) {
          if (f[key] !== undefined) input[key] = want[key] = f[key];
        }
        const text = compressFact(input as unknown as FactInput);
        expect(decompressBody(text)).toEqual(want);
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary facts either compress to decodable text or throw BodyTextError', () => {
    const anyText = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('.', '|', '>', ':', '@', '&x', '#', '1000length', '1e400m', 'unknown', ''));
    const anyValue = fc.oneof(fc.double(), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null), fc.integer());
    const junk = fc.record({
      id: fc.oneof(anyText, fc.integer(), fc.double()),
      s: fc.option(anyText, { nil: undefined }),
      t: fc.option(fc.oneof(fc.double(), fc.integer()), { nil: undefined }),
      s1_id: fc.option(anyText, { nil: undefined }),
      s1_s: fc.option(anyText, { nil: undefined }),
      s1_u: fc.option(anyText, { nil: undefined }),
      s1_v: anyValue,
      s2_id: fc.option(anyText, { nil: undefined }),
      s2_u: fc.option(anyText, { nil: undefined }),
      s2_v: anyValue,
      geohash: fc.option(anyText, { nil: undefined }),
      url: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
      msg: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(junk, (f) => {
        let text: string;
        try {
          text = compressFact(f as unknown as FactInput, { nowMs: () => VECTOR_CLOCK * 1000 });
        } catch (e) {
          expect(e).toBeInstanceOf(BodyTextError);
          return;
        }
        const back = decompressBody(text);
        expect(back.id).toBe(typeof f.id === 'string' ? f.id : back.id);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('fuzz', () => {
  it('100,000 random strings and byte strings give a fact or a BodyTextError, nothing else', () => {
    const rnd = seededRandom(0x2545f491);
    const pieces = ['.', '|', '>', ':', ',', '/', '&', '#', '@', '=', '-', '_', 'e', 'E', 'da', 'k', 'm', 'A', 'B00', '900', 'AYvP5WgA', 'D.1.AYvP5WgA|', 'T1>K.A:', 'é', '\ud800', '²', ' ', '0', '9', 'Z'];
    let facts = 0;
    for (let i = 0; i < 100_000; i++) {
      let s = rnd() < 0.5 ? 'D.1.AYvP5WgA|' : '';
      const len = Math.floor(rnd() * 24);
      for (let j = 0; j < len; j++) s += rnd() < 0.7 ? pieces[Math.floor(rnd() * pieces.length)]! : String.fromCharCode(Math.floor(rnd() * 0x3000));
      const input: string | Uint8Array = i % 4 === 3 ? Uint8Array.from({ length: len * 2 }, () => Math.floor(rnd() * 256)) : s;
      try {
        const fact = decompressBody(input);
        expect(typeof fact.id).toBe('string');
        expect(Number.isInteger(fact.t_raw)).toBe(true);
        facts++;
      } catch (e) {
        if (!(e instanceof BodyTextError)) throw new Error(`${JSON.stringify(s)} threw ${String(e)}`);
      }
    }
    expect(facts).toBeGreaterThan(1000);
  });
});
