import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentNativeTarget, explainLoadFailure, loadBindingWith, loadNative, NativeUnavailableError, napiPlatformName, type NativeTarget, selectBackend } from '../src/index.js';

// A project that installed @opensynaptic/binding (its generated loader and manifest) and, per
// case, some or none of its platform packages.
const bindingDir = new URL('../../binding/', import.meta.url);
const scratch = mkdtempSync(join(tmpdir(), 'os-native-loader-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// pnpm's command shims put its store on NODE_PATH, where every workspace package is found; a user
// install has no such path, so the scratch projects are resolved without it.
const nodePath = process.env.NODE_PATH;
const initPaths = (): void => (Module as unknown as { _initPaths(): void })._initPaths();
beforeAll(() => {
  delete process.env.NODE_PATH;
  initPaths();
});
afterAll(() => {
  if (nodePath !== undefined) process.env.NODE_PATH = nodePath;
  initPaths();
});

function project(name: string, withBinding = true): (id: string) => unknown {
  const dir = join(scratch, name);
  const pkg = join(dir, 'node_modules', '@opensynaptic', 'binding');
  mkdirSync(pkg, { recursive: true });
  if (withBinding) {
    for (const f of ['package.json', 'index.js']) copyFileSync(new URL(f, bindingDir), join(pkg, f));
  }
  return createRequire(join(dir, 'main.js'));
}

function platformPackage(req: (id: string) => unknown, target: NativeTarget, node: string | null): void {
  const dir = join((req as NodeJS.Require).resolve('@opensynaptic/binding/package.json'), '..', '..', `binding-${target.name}`);
  mkdirSync(dir, { recursive: true });
  const main = `opensynaptic.${target.name}.node`;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `@opensynaptic/binding-${target.name}`, version: '0.1.0', main }));
  if (node !== null) writeFileSync(join(dir, main), node);
}

const here = currentNativeTarget();

describe('napi platform names', () => {
  it('follows napi-rs for each platform', () => {
    expect(napiPlatformName('linux', 'x64', 'glibc')).toBe('linux-x64-gnu');
    expect(napiPlatformName('linux', 'arm64', 'musl')).toBe('linux-arm64-musl');
    expect(napiPlatformName('linux', 'arm', 'glibc')).toBe('linux-arm-gnueabihf');
    expect(napiPlatformName('darwin', 'arm64', null)).toBe('darwin-arm64');
    expect(napiPlatformName('win32', 'x64', null)).toBe('win32-x64-msvc');
    expect(napiPlatformName('freebsd', 'x64', null)).toBe('freebsd-x64');
  });
  it('reads this machine', () => {
    expect(here.platform).toBe(process.platform);
    expect(here.arch).toBe(process.arch);
    expect(here.libc === null).toBe(process.platform !== 'linux');
  });
});

describe('why the native backend is not available', () => {
  it('the binding is not installed', () => {
    const load = loadBindingWith(project('none', false) as never);
    expect(load.binding).toBeNull();
    expect(load.unavailable?.reason).toBe('binding-missing');
  });

  it('a platform with no build names the platform and the package looked for', () => {
    const riscv: NativeTarget = { platform: 'linux', arch: 'riscv64', libc: 'glibc', name: 'linux-riscv64-gnu' };
    const req = project('riscv');
    const u = explainLoadFailure(req as never, new Error('loader failed'), riscv);
    expect(u.reason).toBe('no-build');
    expect(u.lookedFor).toBe('@opensynaptic/binding-linux-riscv64-gnu');
    expect(u.target).toEqual(riscv);
    expect(u.message).toMatch(/^no native build for linux riscv64 \(glibc\): @opensynaptic\/binding@0\.1\.0 has no @opensynaptic\/binding-linux-riscv64-gnu \(builds exist for linux-x64-gnu, /);
    const e = new NativeUnavailableError('@opensynaptic/x', u);
    expect([e.code, e.reason, e.platform, e.arch, e.libc, e.lookedFor]).toEqual([
      'ERR_OPENSYNAPTIC_NATIVE_UNAVAILABLE', 'no-build', 'linux', 'riscv64', 'glibc', '@opensynaptic/binding-linux-riscv64-gnu',
    ]);
    expect(e.message).not.toMatch(/npm has a bug/);
    expect(e.message).toMatch(/OPENSYNAPTIC_CORE=ts or auto/);
  });

  it('a build exists but its package is not installed (real loader, this machine)', () => {
    const load = loadBindingWith(project('omitted') as never);
    expect(load.binding).toBeNull();
    const u = load.unavailable!;
    if (u.reason === 'no-build') return; // a machine we publish no build for: the case above
    expect(u.reason).toBe('build-missing');
    expect(u.lookedFor).toBe(`@opensynaptic/binding-${here.name}`);
    expect(u.message).toContain(`${here.platform} ${here.arch}`);
    expect(u.message).toMatch(/is not installed/);
  });

  it('the platform package is there without its .node, or with one that does not load', () => {
    const missing = project('no-node');
    platformPackage(missing, here, null);
    const a = explainLoadFailure(missing as never, new Error('x'), here);
    expect(a.reason).toBe('build-missing');
    expect(a.message).toMatch(/installed without its \.node file/);

    const broken = project('broken');
    platformPackage(broken, here, 'not a shared object');
    const b = explainLoadFailure(broken as never, new Error('x'), here);
    expect(b.reason).toBe('load-failed');
    expect(b.message).toMatch(new RegExp(`^@opensynaptic/binding-${here.name}, the native build for .*, did not load: `));
    expect(b.cause).toBeInstanceOf(Error);
  });

  it.skipIf(!existsSync(new URL(`npm/${here.name}/opensynaptic.${here.name}.node`, bindingDir)))('loads the build where its platform package is installed', () => {
    const req = project('installed');
    const dir = join((req as NodeJS.Require).resolve('@opensynaptic/binding/package.json'), '..', '..', `binding-${here.name}`);
    symlinkSync(new URL(`npm/${here.name}/`, bindingDir), dir);
    const load = loadBindingWith(req as never);
    expect(load.unavailable).toBeNull();
    expect(typeof (load.binding as { crc16?: unknown }).crc16).toBe('function');
  });
});

describe('selectBackend facts', () => {
  it('OPENSYNAPTIC_CORE=ts reports native as disabled', () => {
    const sel = selectBackend('pkg', 'ts-impl', () => 'native-impl', 'ts');
    expect(sel.unavailable?.reason).toBe('disabled');
  });
  // Collected with NODE_PATH still set, where the workspace's binding is found once built.
  it.skipIf(!loadNative().binding)('a binding without the functions a package needs is incomplete', () => {
    const sel = selectBackend('pkg', 'ts-impl', () => null, 'auto');
    expect(sel.unavailable?.reason).toBe('incomplete');
    expect(() => selectBackend('pkg', 'ts-impl', () => null, 'native')).toThrow(expect.objectContaining({ reason: 'incomplete' }));
  });
});
