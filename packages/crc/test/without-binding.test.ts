import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// The built package alone in an empty folder: no node_modules, so no addon to find.
const dir = mkdtempSync(join(tmpdir(), 'os-crc-'));
copyFileSync(new URL('../dist/index.js', import.meta.url), join(dir, 'index.js'));
copyFileSync(new URL('../dist/index.cjs', import.meta.url), join(dir, 'index.cjs'));
writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(code: string, env: Record<string, string> = {}): string {
  // pnpm puts its store on NODE_PATH, where the addon would be found; a user install has neither.
  const { OPENSYNAPTIC_CORE: _, NODE_PATH: __, ...rest } = process.env;
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], {
    cwd: dir,
    env: { ...rest, ...env },
    encoding: 'utf8',
  }).trim();
}

describe('without @opensynaptic/binding installed', () => {
  it('works in pure TypeScript (ESM and CJS builds)', () => {
    const esm = run("const b = await import('./index.js'); const i = b.backendInfo(); console.log(i.backend, i.nativeAvailable, b.crc16(new TextEncoder().encode('123456789')).toString(16))");
    // The CRC-16/CCITT-FALSE and CRC-8/SMBUS check values of the catalogue ("123456789").
    expect(esm).toBe('ts false 29b1');
    const cjs = run("import { createRequire } from 'node:module'; const b = createRequire(import.meta.url)('./index.cjs'); console.log(b.crc8(new TextEncoder().encode('123456789')).toString(16), b.backendInfo().backend)");
    expect(cjs).toBe('f4 ts');
  });

  it('works with no `process` global, as in a browser', () => {
    const out = run(
      "const log = console.log; delete globalThis.process; const b = await import('./index.js'); log(typeof process, b.backendInfo().backend, b.backendInfo().nativeAvailable, b.xorPayload(b.xorPayload(Uint8Array.of(1, 2, 3), Uint8Array.of(9), 5), Uint8Array.of(9), 5).join())",
    );
    expect(out).toBe('undefined ts false 1,2,3');
  });

  it('refuses OPENSYNAPTIC_CORE=native on first use with a typed error that says how to fix it', () => {
    const out = run(
      "const b = await import('./index.js'); try { b.crc8(Uint8Array.of(1)); console.log('checked') } catch (e) { console.log(b.isOpenSynapticError(e, 'ERR_OPENSYNAPTIC_NATIVE_UNAVAILABLE'), /OPENSYNAPTIC_CORE=ts/.test(e.message)) }",
      { OPENSYNAPTIC_CORE: 'native' },
    );
    expect(out).toBe('true true');
  });
});
