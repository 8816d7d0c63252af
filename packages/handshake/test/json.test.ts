import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, JsonValueError, pyFloatRepr, pyJsonDumps, utf8DecodeIgnore } from '../src/index.js';

describe('pyJsonDumps (json.dumps with ensure_ascii=False)', () => {
  it('writes floats as Python repr does', () => {
    // Pairs checked against CPython 3 json.dumps.
    const table: [number, string][] = [
      [1.5, '1.5'],
      [1e-5, '1e-05'],
      [1e16, '1e+16'],
      [1e22, '1e+22'],
      [123456789.125, '123456789.125'],
      [0.0001, '0.0001'],
      [1.2345678901234566e-7, '1.2345678901234566e-07'],
      [-0, '-0.0'],
      [2.5e-300, '2.5e-300'],
      [2 ** 53, '9007199254740992.0'],
      [1e15 + 0.5, '1000000000000000.5'],
      [Number.NaN, 'NaN'],
      [Number.POSITIVE_INFINITY, 'Infinity'],
      [Number.NEGATIVE_INFINITY, '-Infinity'],
      [0.1 + 0.2, '0.30000000000000004'],
      [5e-324, '5e-324'],
      [Number.MAX_VALUE, '1.7976931348623157e+308'],
      [1.2345678901234567e19, '1.2345678901234567e+19'],
    ];
    for (const [x, text] of table) expect(pyJsonDumps(x)).toBe(text);
    expect(pyJsonDumps(100)).toBe('100');
    expect(pyJsonDumps(-7)).toBe('-7');
    expect(pyJsonDumps(2n ** 70n)).toBe('1180591620717411303424');
    expect(pyFloatRepr(100)).toBe('100.0');
  });
  it('round-trips every float through JSON.parse', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(Object.is(JSON.parse(pyJsonDumps(x)), x)).toBe(true);
      }),
    );
  });
  it('uses Python separators and escapes', () => {
    expect(pyJsonDumps({ a: [1, 2, { b: null }], c: '\u0000\u001f"\\\n\u2028\u007f', é: true })).toBe(
      '{"a": [1, 2, {"b": null}], "c": "\\u0000\\u001f\\"\\\\\\n\u2028\u007f", "é": true}',
    );
    expect(pyJsonDumps({})).toBe('{}');
    expect(pyJsonDumps([])).toBe('[]');
    expect(pyJsonDumps({ k: {}, skipped: undefined })).toBe('{"k": {}}');
    expect(pyJsonDumps([undefined as never])).toBe('[null]');
  });
  it('keeps Map order, where an object would move integer-like keys first', () => {
    expect(pyJsonDumps({ b: 1, 2: 2 })).toBe('{"2": 2, "b": 1}');
    expect(pyJsonDumps(new Map<string, number>([['b', 1], ['2', 2]]))).toBe('{"b": 1, "2": 2}');
  });
  it('refuses what has no JSON form', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let deep: unknown = 1;
    for (let i = 0; i < 300; i++) deep = [deep];
    for (const v of [cyclic, deep, { f: () => 1 }, Symbol('x'), new Map([[1, 2]])]) {
      expect(() => pyJsonDumps(v as never)).toThrow(JsonValueError);
    }
    const shared = { x: 1 };
    expect(pyJsonDumps([shared, shared])).toBe('[{"x": 1}, {"x": 1}]');
  });
  it('canonicalJson sorts keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: 1, c: [{ z: 1, y: 2 }] } })).toBe('{"a": {"c": [{"y": 2, "z": 1}], "d": 1}, "b": 1}');
  });
});

describe('utf8DecodeIgnore (errors="ignore")', () => {
  it('drops what CPython drops', () => {
    // Pairs checked against CPython 3 bytes.decode('utf-8', 'ignore').
    const table: [string, string][] = [
      ['', ''],
      ['61', 'a'],
      ['ff', ''],
      ['6162ff6364', 'abcd'],
      ['e282', ''],
      ['e282ac', '€'],
      ['e28241', 'A'],
      ['f09f9880', '😀'],
      ['f09f98', ''],
      ['f09f9841', 'A'],
      ['eda080', ''],
      ['c0af', ''],
      ['f4908080', ''],
      ['efbfbd', '\ufffd'],
      ['efbbbf41', '\ufeffA'],
      ['e0a080', '\u0800'],
      ['e08080', ''],
      ['ed9fbf', '\ud7ff'],
      ['f08f8080', ''],
      ['c2', ''],
      ['c241', 'A'],
      ['80bf41', 'A'],
      ['fe', ''],
      ['f5808080', ''],
      ['efbfbdff41', '\ufffdA'],
    ];
    for (const [h, text] of table) expect(utf8DecodeIgnore(new Uint8Array(Buffer.from(h, 'hex'))), h).toBe(text);
  });
  it('equals the strict decode of valid input and never throws', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(utf8DecodeIgnore(new TextEncoder().encode(s))).toBe(s);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const text = utf8DecodeIgnore(b);
        expect(text.includes('\ufffd')).toBe(Buffer.from(b).includes(Buffer.from('efbfbd', 'hex')));
      }),
    );
  });
  it('handles long inputs', () => {
    const b = new Uint8Array(20000).map((_, i) => (i % 3 === 0 ? 0xff : 0x61));
    expect(utf8DecodeIgnore(b)).toBe('a'.repeat(13333));
  });
});
