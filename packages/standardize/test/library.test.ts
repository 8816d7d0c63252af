import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultUnitLibrary, loadPrefixFile, loadUnitDirectory, loadUnitFile, OpenSynapticStandardizer, UnitLibrary, UnitLibraryError } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'os-units-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('extending the unit library without a code change', () => {
  it('resolves a unit added in this package\'s shape, with prefixes, powers and its UCUM code', () => {
    const lib = UnitLibrary.builtin().add([{ key: 'lx', attribute: 'illuminance', ucum: 'lux' }]);
    const std = new OpenSynapticStandardizer({ library: lib, clockMs: () => 1_700_000_000_000 });
    const f = std.standardize('D', 'ON', [
      ['L1', 'OK', 120, 'lx'],
      ['L2', 'OK', 1.5, 'klx'],
      ['L3', 'OK', 2, 'lux'],
    ]);
    expect(f).toMatchObject({ s1_v: 120, s1_u: 'illuminance', s2_v: 1500, s2_u: 'illuminance', s3_v: 2, s3_u: 'illuminance' });
  });

  it('accepts the reference\'s Units/*.json layout (missing fields take the reference defaults)', () => {
    const lib = UnitLibrary.builtin().add({
      __METADATA__: { class_name: 'Speed' },
      units: {
        'km/h': { physical_attribute: 'speed', to_standard_factor: 0.2777777777777778, can_take_prefix: false, ucum_code: 'km/h' },
        kn: { physical_attribute: 'speed', to_standard_factor: '0.5144444444444445', to_standard_offset: 0 },
        bare: {},
      },
    });
    expect(lib.resolve('km/h')).toMatchObject({ attribute: 'speed', factor: 0.2777777777777778 });
    expect(lib.get('kn')).toMatchObject({ factor: 0.5144444444444445, offset: 0, prefixable: true, ucum: null });
    // No physical_attribute: the reference names it "Unknown".
    expect(lib.get('bare')).toMatchObject({ attribute: 'Unknown', factor: 1, offset: 0, prefixable: true });
    const f = new OpenSynapticStandardizer({ library: lib, clockMs: () => 0 }).standardize('D', 'ON', [['V', 'OK', 36, 'km/h']]);
    expect(f).toMatchObject({ s1_v: 10, s1_u: 'speed' });
  });

  it('adds prefixes and aliases, in either shape', () => {
    const lib = UnitLibrary.builtin();
    expect(() => lib.resolve('PiBy')).toThrow();
    lib.addPrefixes({ binary_prefixes: { Pi: { name: 'pebi', f: 1125899906842624 } } });
    expect(lib.resolve('PiBy').factor).toBe(8 * 1125899906842624);
    lib.addPrefixes([{ symbol: 'xx', factor: 3 }]);
    expect(lib.resolve('xxm')).toMatchObject({ prefix: 'xx', factor: 3 });
    lib.addAlias('Celsius', 'Cel');
    expect(lib.resolve('celsius')).toMatchObject({ unit: 'Cel', alias: 'Cel' });
  });

  it('refuses a duplicate key unless told to keep or replace it, and adds nothing on error', () => {
    const lib = UnitLibrary.builtin();
    const size = lib.size;
    expect(() => lib.add([{ key: 'new1', attribute: 'x' }, { key: 'Pa', attribute: 'other' }])).toThrow(expect.objectContaining({ code: 'ERR_UNIT_DUPLICATE' }));
    expect(lib.size).toBe(size);
    expect(lib.get('new1')).toBeUndefined();
    lib.add([{ key: 'Pa', attribute: 'other' }], { onDuplicate: 'keep' });
    expect(lib.resolve('Pa').attribute).toBe('pressure');
    lib.add([{ key: 'Pa', attribute: 'other', factor: 2 }], { onDuplicate: 'replace' });
    expect(lib.resolve('kPa')).toMatchObject({ attribute: 'other', factor: 2000 });
    expect(lib.units().findIndex((u) => u.key === 'Pa')).toBe(UnitLibrary.builtin().units().findIndex((u) => u.key === 'Pa'));
  });

  it('refuses definitions it could never use, with UnitLibraryError', () => {
    const lib = UnitLibrary.builtin();
    const bad: unknown[] = [
      [{ key: '', attribute: 'x' }],
      [{ key: ' pad', attribute: 'x' }],
      [{ key: 'Unknown', attribute: 'x' }],
      [{ key: 'z1', attribute: '' }],
      [{ key: 'z1', attribute: 'x', factor: 0 }],
      [{ key: 'z1', attribute: 'x', factor: Number.NaN }],
      [{ key: 'z1', attribute: 'x', offset: Number.POSITIVE_INFINITY }],
      [{ key: 'z1', attribute: 'x', factor: '2' }],
      [{ key: 'z1', attribute: 'x', prefixable: 'yes' }],
      ['m'],
      { units: { z1: { physical_attribute: 'x', to_standard_factor: 'abc' } } },
      { units: { z1: 'not an object' } },
      { units: 5 },
      null,
      'Units/x.json',
    ];
    for (const source of bad) {
      expect(() => lib.add(source as never), JSON.stringify(source)).toThrow(UnitLibraryError);
    }
    for (const source of [[{ symbol: 'q', factor: -1 }], [{ symbol: '', factor: 2 }], { decimal: {} }, { binary_prefixes: { Qi: { f: 'x' } } }]) {
      expect(() => lib.addPrefixes(source as never), JSON.stringify(source)).toThrow(UnitLibraryError);
    }
  });

  it('treats can_take_prefix with Python truthiness', () => {
    const lib = new UnitLibrary({ prefixes: [{ symbol: 'k', factor: 1000 }] }).add({
      units: { a: { physical_attribute: 'x', can_take_prefix: 0 }, b: { physical_attribute: 'x', can_take_prefix: 'false' }, c: { physical_attribute: 'x', can_take_prefix: null } },
    });
    expect(() => lib.resolve('ka')).toThrow();
    expect(lib.resolve('kb').factor).toBe(1000);
    expect(() => lib.resolve('kc')).toThrow();
  });

  it('keeps the shared default read-only; builtin() and clone() give libraries to extend', () => {
    const shared = defaultUnitLibrary();
    expect(shared).toBe(defaultUnitLibrary());
    expect(shared.readOnly).toBe(true);
    expect(() => shared.add([{ key: 'zz', attribute: 'x' }])).toThrow(expect.objectContaining({ code: 'ERR_UNIT_READ_ONLY' }));
    expect(() => shared.addAlias('a', 'b')).toThrow(expect.objectContaining({ code: 'ERR_UNIT_READ_ONLY' }));
    const copy = shared.clone().add([{ key: 'zz', attribute: 'x' }]);
    expect(copy.get('zz')).toBeDefined();
    expect(shared.get('zz')).toBeUndefined();
    expect(new OpenSynapticStandardizer().library).toBe(shared);
  });

  it('an empty library resolves nothing', () => {
    const empty = new UnitLibrary();
    expect(empty.size).toBe(0);
    expect(() => empty.resolve('m')).toThrow(expect.objectContaining({ code: 'ERR_STD_UNKNOWN_UNIT' }));
  });
});

describe('the resolution cache', () => {
  it('notices a library change, so a unit added later resolves', () => {
    const lib = UnitLibrary.builtin();
    const std = new OpenSynapticStandardizer({ library: lib, clockMs: () => 0 });
    expect(std.standardize('D', 'ON', [['S', 'OK', 1, 'lux']])).not.toHaveProperty('s1_v');
    lib.add([{ key: 'lux', attribute: 'illuminance' }]);
    expect(std.standardize('D', 'ON', [['S', 'OK', 1, 'lux']])).toMatchObject({ s1_v: 1, s1_u: 'illuminance' });
  });

  it('holds at most cacheSize labels, forgetting the oldest first', () => {
    let calls = 0;
    const lib = UnitLibrary.builtin();
    const original = lib.tryResolve.bind(lib);
    lib.tryResolve = (label: string) => {
      calls++;
      return original(label);
    };
    const std = new OpenSynapticStandardizer({ library: lib, cacheSize: 2, clockMs: () => 0 });
    const run = (u: string) => std.standardize('D', 'ON', [['S', 'OK', 1, u]]);
    run('m');
    run('s');
    run('m');
    expect(calls).toBe(2);
    run('kg'); // evicts m
    run('s');
    expect(calls).toBe(3);
    run('m');
    expect(calls).toBe(4);
    const off = new OpenSynapticStandardizer({ library: lib, cacheSize: 0, clockMs: () => 0 });
    off.standardize('D', 'ON', [['S', 'OK', 1, 'm']]);
    off.standardize('D', 'ON', [['S', 'OK', 1, 'm']]);
    expect(calls).toBe(6);
    expect(new OpenSynapticStandardizer().cacheSize).toBe(1024);
  });
});

describe('unit files (Node)', () => {
  it('loads a unit file in either shape, a prefix file, and a directory in sorted order', () => {
    const units = join(dir, 'b-speed.json');
    writeFileSync(units, JSON.stringify({ units: { kn: { physical_attribute: 'speed', to_standard_factor: 0.5144444444444445 } } }));
    writeFileSync(join(dir, 'a-own.json'), JSON.stringify([{ key: 'kn', attribute: 'knots first' }, { key: 'furlong', attribute: 'length', factor: 201.168 }]));
    writeFileSync(join(dir, 'notes.txt'), 'not json');
    const prefixes = join(dir, 'prefixes.jsonc');
    writeFileSync(prefixes, JSON.stringify({ decimal_prefixes: { k: { f: 1000 } } }));

    const lib = new UnitLibrary();
    lib.addPrefixes(loadPrefixFile(prefixes));
    for (const s of loadUnitDirectory(dir)) lib.add(s, { onDuplicate: 'keep' });
    // a-own.json sorts first, so its "kn" is the one kept.
    expect(lib.resolve('kn').attribute).toBe('knots first');
    expect(lib.resolve('kfurlong').factor).toBe(201168);
    expect(lib.resolve('furlong2').factor).toBe(201.168 * 201.168);
    expect(loadUnitFile(units)).toHaveProperty('units.kn');
  });

  it('reports unreadable, non-JSON and wrongly shaped files as ERR_UNIT_FILE', () => {
    const notJson = join(dir, 'bad.json');
    writeFileSync(notJson, '{ units: ');
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, '{"unit": {}}');
    for (const p of [join(dir, 'missing.json'), notJson, wrong, '']) {
      expect(() => loadUnitFile(p), p).toThrow(expect.objectContaining({ code: 'ERR_UNIT_FILE' }));
    }
    expect(() => loadPrefixFile(wrong)).toThrow(expect.objectContaining({ code: 'ERR_UNIT_FILE' }));
    expect(() => loadUnitDirectory(join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'ERR_UNIT_FILE' }));
  });
});
