import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseTriple } from '@napi-rs/cli';

const root = new URL('../', import.meta.url);
const read = (path) => JSON.parse(readFileSync(new URL(path, root), 'utf8'));
const binding = read('package.json');
// napi's own reading of each target, the one its loader and `pre-publish` use.
const targets = binding.napi.targets.map(parseTriple);

// What npm reads from the files list, without writing a tarball.
function packedFiles(dir) {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: new URL(dir, root), encoding: 'utf8', shell: process.platform === 'win32' });
  return JSON.parse(out)[0].files.map((f) => f.path).sort();
}

test('every napi target has its platform package, matching os/cpu/libc, at the binding version', () => {
  for (const t of targets) {
    const pkg = read(`npm/${t.platformArchABI}/package.json`);
    const node = `${binding.napi.binaryName}.${t.platformArchABI}.node`;
    assert.equal(pkg.name, `${binding.name}-${t.platformArchABI}`);
    assert.equal(pkg.version, binding.version, pkg.name);
    assert.deepEqual(pkg.os, [t.platform], pkg.name);
    assert.deepEqual(pkg.cpu, [t.arch], pkg.name);
    const libc = t.platform === 'linux' ? [t.abi === 'musl' ? 'musl' : 'glibc'] : undefined;
    assert.deepEqual(pkg.libc, libc, pkg.name);
    assert.equal(pkg.main, node);
    assert.deepEqual(pkg.files, [node]);
    assert.deepEqual(pkg.engines, binding.engines, pkg.name);
    assert.equal(pkg.license, binding.license, pkg.name);
  }
  const dirs = readdirSync(new URL('npm/', root)).sort();
  assert.deepEqual(dirs, targets.map((t) => t.platformArchABI).sort(), 'npm/ holds exactly the targets');
});

test('the platform packages are the optional dependencies of the binding, at its exact version', () => {
  const expected = Object.fromEntries(targets.map((t) => [`${binding.name}-${t.platformArchABI}`, binding.version]));
  assert.deepEqual(binding.optionalDependencies, expected);
  assert.equal(binding.dependencies, undefined);
});

test('the binding tarball carries the loader and the types, never a .node', () => {
  const files = packedFiles('./');
  assert.deepEqual(files, ['LICENSE', 'README.md', 'index.d.ts', 'index.js', 'package.json']);
  assert.ok(!files.some((f) => f.endsWith('.node')));
});

test('a platform package carries its .node and nothing else of the build', { skip: !existsSync(new URL('npm/linux-x64-gnu/opensynaptic.linux-x64-gnu.node', root)) }, () => {
  assert.deepEqual(packedFiles('npm/linux-x64-gnu/'), ['LICENSE', 'README.md', 'opensynaptic.linux-x64-gnu.node', 'package.json']);
});
