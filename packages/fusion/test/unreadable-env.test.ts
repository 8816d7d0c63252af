import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { encode } from '@opensynaptic/base62';
import { describe, expect, it } from 'vitest';

// The built packages, as a consumer imports them (a child process, so the globals can be broken).
const dist = (pkg: string, ext: 'js' | 'cjs') => fileURLToPath(new URL(`../../${pkg}/dist/index.${ext}`, import.meta.url));

/**
 * Imports base62, packet and fusion (ESM or CJS build) after `setup` has broken the environment,
 * then uses each; prints how many times `process.env` was read before and after the first use.
 */
function run(setup: string, format: 'esm' | 'cjs'): string {
  const load =
    format === 'esm'
      ? `const base62 = await import(${JSON.stringify(dist('base62', 'js'))});
         const packet = await import(${JSON.stringify(dist('packet', 'js'))});
         const fusion = await import(${JSON.stringify(dist('fusion', 'js'))});`
      : `const { createRequire } = await import('node:module');
         const req = createRequire(import.meta.url);
         const base62 = req(${JSON.stringify(dist('base62', 'cjs'))});
         const packet = req(${JSON.stringify(dist('packet', 'cjs'))});
         const fusion = req(${JSON.stringify(dist('fusion', 'cjs'))});`;
  const code = `
    const log = console.log;
    globalThis.reads = 0;
    ${setup}
    ${load}
    const atImport = globalThis.reads;
    const text = base62.encode(21.5);
    const frame = packet.encodeFrame({ cmd: 63, routes: 7, tid: 1, timestamp: 1, body: Uint8Array.of(65) });
    const decoded = packet.decodeFrame(frame);
    const rx = new fusion.OSVisualFusionEngine({ localId: 1 });
    const info = [packet.backendInfo(), fusion.backendInfo()].map((i) => i.backendMode).join(',');
    log(atImport, globalThis.reads > 0 ? 'read' : 'not read', text, decoded.sourceAid, typeof rx.decompress, info);
  `;
  const { OPENSYNAPTIC_CORE: _, ...env } = process.env;
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8' }).trim();
}

// What Deno does without --allow-env: reading the variable throws (`NotCapable`). Only our
// variable is made to throw, so that Node's own module loader can still read its settings.
const throwingEnv = `
  const real = process.env;
  Object.defineProperty(process, 'env', {
    configurable: true,
    value: new Proxy(real, {
      get(target, key) {
        if (key !== 'OPENSYNAPTIC_CORE') return target[key];
        globalThis.reads++;
        throw new Error('NotCapable: Requires env access to "OPENSYNAPTIC_CORE"');
      },
    }),
  });`;

describe('an environment that cannot be read', () => {
  for (const format of ['esm', 'cjs'] as const) {
    it(`is read on first use, not at import, and counts as auto (${format})`, () => {
      expect(run(throwingEnv, format)).toBe(`0 read ${encode(21.5)} 7 function auto,auto`);
    });
  }

  it('no `process` at all (a browser) counts as auto', () => {
    // The fusion build itself only looks for `process` through globalThis, so deleting it is enough.
    const out = run('delete globalThis.process;', 'esm');
    expect(out).toBe(`0 not read ${encode(21.5)} 7 function auto,auto`);
  });
});
