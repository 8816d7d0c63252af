import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPrefixFile, loadUnitDirectory, UnitLibrary } from '../src/index.js';
import { PREFIX_ROWS, UNIT_ROWS } from '../src/units-data.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The shared reference data sits beside the repository: `<repo>/../shared/reference-data`. */
const REFERENCE_DATA = join(here, '../../../../shared/reference-data');

interface RefUnit {
  name?: string;
  ucum_code?: string;
  physical_attribute?: string;
  to_standard_factor?: number;
  to_standard_offset?: number;
  can_take_prefix?: boolean;
}

function skipWithoutReference(ctx: { skip: () => void }): boolean {
  if (existsSync(join(REFERENCE_DATA, 'Units')) && existsSync(join(REFERENCE_DATA, 'Prefixes.json'))) return false;
  console.log(`skipped: ${REFERENCE_DATA} is not there (the shared reference data sits beside the repository, at ../shared)`);
  ctx.skip();
  return true;
}

describe('the generated unit library', () => {
  it('holds the same units as reference-data/Units/*.json, first definition of a key winning in sorted file order', (ctx) => {
    if (skipWithoutReference(ctx)) return;
    const files = readdirSync(join(REFERENCE_DATA, 'Units'))
      .filter((f) => f.endsWith('.json'))
      .sort();
    const expected: unknown[][] = [];
    const seen = new Set<string>();
    for (const f of files) {
      const units = (JSON.parse(readFileSync(join(REFERENCE_DATA, 'Units', f), 'utf8')) as { units: Record<string, RefUnit> }).units;
      for (const [key, u] of Object.entries(units)) {
        if (seen.has(key)) continue;
        seen.add(key);
        expected.push([key, u.physical_attribute, u.to_standard_factor ?? 1, u.to_standard_offset ?? 0, u.can_take_prefix ?? true, u.ucum_code ?? null, u.name ?? '']);
      }
    }
    expect(UNIT_ROWS.map((r) => [...r])).toEqual(expected);
  });

  it('keeps the Pressure_Derived "Pa", not the one of pressure.json (the order the vectors assume)', () => {
    expect(UNIT_ROWS.filter((r) => r[0] === 'Pa')).toEqual([['Pa', 'pressure', 1, 0, true, 'Pa', 'pascal']]);
  });

  it('holds the same prefixes as reference-data/Prefixes.json, decimal then binary', (ctx) => {
    if (skipWithoutReference(ctx)) return;
    const ref = JSON.parse(readFileSync(join(REFERENCE_DATA, 'Prefixes.json'), 'utf8')) as Record<string, Record<string, { f: number; name: string }>>;
    const expected = [
      ...Object.entries(ref.decimal_prefixes!).map(([s, p]) => [s, p.f, p.name, 'decimal']),
      ...Object.entries(ref.binary_prefixes!).map(([s, p]) => [s, p.f, p.name, 'binary']),
    ];
    expect(PREFIX_ROWS.map((r) => [...r])).toEqual(expected);
  });

  it('resolves like a library loaded from the reference files themselves', (ctx) => {
    if (skipWithoutReference(ctx)) return;
    const fromFiles = new UnitLibrary({ aliases: { cel: 'Cel', hour: 'h', celsius: 'degree_celsius' } });
    fromFiles.addPrefixes(loadPrefixFile(join(REFERENCE_DATA, 'Prefixes.json')));
    for (const source of loadUnitDirectory(join(REFERENCE_DATA, 'Units'))) fromFiles.add(source, { onDuplicate: 'keep' });
    const builtin = UnitLibrary.builtin();
    expect(fromFiles.units()).toEqual(builtin.units());
    expect(fromFiles.prefixes()).toEqual(builtin.prefixes());
    const labels = builtin.units().flatMap((u) => [u.key, u.ucum ?? '', `k${u.key}`, `${u.key}2`, `1/${u.key}`, `Ki${u.key}`, u.key.toUpperCase()]);
    for (const label of labels) expect(fromFiles.tryResolve(label), label).toEqual(builtin.tryResolve(label));
  });
});
