import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// The built package in a project that installed @opensynaptic/binding (its generated loader) but
// no platform package: what a user gets on a platform without a build, or without optional
// dependencies. A platform without a build is simulated by changing `process.arch` first.
const dir = mkdtempSync(join(tmpdir(), 'os-crc-platform-'));
const binding = join(dir, 'node_modules', '@opensynaptic', 'binding');
mkdirSync(binding, { recursive: true });
copyFileSync(new URL('../dist/index.js', import.meta.url), join(dir, 'index.js'));
for (const f of ['package.json', 'index.js']) copyFileSync(new URL(`../../binding/${f}`, import.meta.url), join(binding, f));
writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(code: string, mode: string, arch?: string): { out: string; err: string } {
  // pnpm puts its store on NODE_PATH, where the workspace's platform packages would be found.
  const { OPENSYNAPTIC_CORE: _, NODE_PATH: __, ...rest } = process.env;
  const pre = arch ? `Object.defineProperty(process, 'arch', { value: ${JSON.stringify(arch)} });` : '';
  const script = `${pre} try { ${code} } catch (e) { console.log(JSON.stringify({ code: e.code, reason: e.reason, platform: e.platform, arch: e.arch, libc: e.libc, lookedFor: e.lookedFor, message: e.message })) }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env: { ...rest, OPENSYNAPTIC_CORE: mode }, encoding: 'utf8' });
  return { out: r.stdout.trim(), err: r.stderr };
}

const linux = process.platform === 'linux';

describe('a platform without a native build', () => {
  it.skipIf(!linux)('OPENSYNAPTIC_CORE=native: a typed error naming the platform, arch, libc and the package looked for', () => {
    // The choice is made on first use, so the call (not the import) throws.
    const { out } = run("const b = await import('./index.js'); b.crc8(Uint8Array.of(1)); console.log('loaded')", 'native', 'riscv64');
    const e = JSON.parse(out);
    expect(e.code).toBe('ERR_OPENSYNAPTIC_NATIVE_UNAVAILABLE');
    expect([e.reason, e.platform, e.arch, e.lookedFor]).toEqual(['no-build', 'linux', 'riscv64', `@opensynaptic/binding-linux-riscv64-${e.libc === 'musl' ? 'musl' : 'gnu'}`]);
    expect(e.message).toMatch(/^@opensynaptic\/crc: the native backend was requested but is not available: no native build for linux riscv64 \((glibc|musl)\)/);
    expect(e.message).not.toMatch(/npm has a bug|optional dependencies \(https/);
  });

  it.skipIf(!linux)('auto: TypeScript without a word, and the facts say why', () => {
    const { out, err } = run(
      "const b = await import('./index.js'); const text = b.crc16(new TextEncoder().encode('123456789')).toString(16); const i = b.backendInfo(); console.log(JSON.stringify([i.backend, i.nativeAvailable, i.nativeUnavailable.reason, i.nativeUnavailable.lookedFor, text]))",
      'auto',
      'riscv64',
    );
    const [backend, available, reason, lookedFor, text] = JSON.parse(out);
    expect([backend, available, reason, text]).toEqual(['ts', false, 'no-build', '29b1']);
    expect(err).toBe('');
    expect(lookedFor).toMatch(/^@opensynaptic\/binding-linux-riscv64-/);
  });

  it('a platform with a build whose package is not installed says so', () => {
    const { out } = run("const b = await import('./index.js'); b.crc8(Uint8Array.of(1)); console.log('loaded')", 'native');
    const e = JSON.parse(out);
    expect(e.code).toBe('ERR_OPENSYNAPTIC_NATIVE_UNAVAILABLE');
    expect(['build-missing', 'no-build']).toContain(e.reason);
    expect([e.platform, e.arch]).toEqual([process.platform, process.arch]);
    expect(e.lookedFor).toMatch(new RegExp(`^@opensynaptic/binding-${process.platform}-${process.arch}`));
    expect(e.message).toContain(e.lookedFor);
  });
});
