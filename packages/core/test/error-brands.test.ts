import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

// Every public package, as built: each entry point (and subpath) in both formats. Every error
// class one exports must carry the brand isOpenSynapticError checks, and every package's main
// entry must export the guard, so that one way of testing errors holds everywhere.
const packagesDir = new URL('../../', import.meta.url);
const requireHere = createRequire(import.meta.url);
const BRAND = Symbol.for('@opensynaptic/error');

interface Entry {
  pkg: string;
  subpath: string;
  esm: string;
  cjs: string;
}

const entries: Entry[] = [];
for (const dir of readdirSync(packagesDir).sort()) {
  const file = new URL(`${dir}/package.json`, packagesDir);
  if (!existsSync(file)) continue;
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; private?: boolean; exports?: Record<string, unknown> };
  if (pkg.private || !pkg.exports) continue;
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target !== 'object' || target === null) continue;
    const t = target as { import: { default: string }; require: { default: string } };
    entries.push({ pkg: pkg.name, subpath, esm: new URL(`${dir}/${t.import.default}`, packagesDir).href, cjs: new URL(`${dir}/${t.require.default}`, packagesDir).pathname });
  }
}

function errorClasses(mod: Record<string, unknown>): [string, { prototype: object }][] {
  return Object.entries(mod).filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error) as [string, { prototype: object }][];
}

describe('the error brand across every public package', () => {
  it('finds the packages the guard must cover', () => {
    const names = new Set(entries.map((e) => e.pkg));
    for (const n of ['base62', 'cmd', 'core', 'crc', 'fusion', 'handshake', 'packet', 'standardize', 'store']) expect(names).toContain(`@opensynaptic/${n}`);
  });

  it.each(entries.map((e) => [`${e.pkg} ${e.subpath}`, e] as const))('%s: every exported error class is branded, in ESM and CJS', async (_name, e) => {
    const esm = (await import(e.esm)) as Record<string, unknown>;
    const cjs = requireHere(e.cjs) as Record<string, unknown>;
    for (const mod of [esm, cjs]) {
      const unbranded = errorClasses(mod)
        .filter(([, c]) => (c.prototype as Record<symbol, unknown>)[BRAND] !== true)
        .map(([n]) => n);
      expect(unbranded).toEqual([]);
      if (e.subpath === '.') expect(typeof mod.isOpenSynapticError).toBe('function');
    }
  });
});
