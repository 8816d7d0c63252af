#!/usr/bin/env node
/**
 * What a consumer gets from this package's tarball (run in a package directory, after its build,
 * as part of `package-check`): only `dist/`, README.md, LICENSE and package.json; no source maps;
 * declarations that name no private workspace package (they must resolve from published packages
 * alone); a manifest without development scripts or devDependencies (the root .pnpmfile.cjs
 * strips them); the same `engines` floor as the repository root.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const PRIVATE = ['@opensynaptic/internal', '@opensynaptic/config', '@opensynaptic/vectors'];
const pkgDir = process.cwd();
const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
const root = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
const out = mkdtempSync(join(tmpdir(), 'os-pack-check-'));
let files;
let manifest;
try {
  const packed = JSON.parse(execFileSync('pnpm', ['pack', '--json', '--pack-destination', out], { cwd: pkgDir, encoding: 'utf8' }));
  files = packed.files.map((f) => f.path);
  manifest = JSON.parse(execFileSync('tar', ['-xzOf', resolve(out, packed.filename), 'package/package.json'], { encoding: 'utf8' }));
} finally {
  rmSync(out, { recursive: true, force: true });
}
const problems = [];

for (const f of files) {
  if (!(f.startsWith('dist/') || f === 'README.md' || f === 'LICENSE' || f === 'package.json')) problems.push(`ships ${f} (only dist/, README.md, LICENSE, package.json belong in the tarball)`);
  if (f.endsWith('.map')) problems.push(`ships the source map ${f}`);
}
for (const need of ['LICENSE', 'README.md']) if (!files.includes(need)) problems.push(`does not ship ${need}`);
for (const f of files.filter((f) => /\.d\.[cm]?ts$/.test(f))) {
  const text = readFileSync(join(pkgDir, f), 'utf8');
  for (const name of PRIVATE) if (text.includes(name)) problems.push(`${f} refers to the unpublished ${name}`);
}
for (const field of ['scripts', 'devDependencies']) if (field in manifest) problems.push(`the published package.json keeps ${field}`);
if (pkg.engines?.node !== root.engines?.node) problems.push(`engines.node is ${JSON.stringify(pkg.engines?.node)}, the repository root says ${JSON.stringify(root.engines?.node)}`);

if (problems.length > 0) {
  for (const p of problems) console.error(`${pkg.name}: ${p}`);
  process.exit(1);
}
console.log(`${pkg.name}: tarball holds ${files.length} files, all dist/README/LICENSE/package.json; no maps; declarations self-contained; no dev scripts in the manifest`);
