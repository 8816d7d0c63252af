#!/usr/bin/env node
/**
 * What a consumer gets from this package's tarball (run in a package directory, after its build,
 * as part of `package-check`, or given package directories): only `dist/` (the binding: its
 * loader and types; a platform package: its .node), README.md, LICENSE and package.json; no source maps;
 * declarations that name no private workspace package (they must resolve from published packages
 * alone); a manifest without development scripts or devDependencies (the root .pnpmfile.cjs
 * strips them); the same `engines` floor as the repository root.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const PRIVATE = ['@opensynaptic/internal', '@opensynaptic/config', '@opensynaptic/vectors'];
const root = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
// The package directories to check: the arguments (the binding checks itself and its platform
// packages, which have no scripts of their own), or the current one. `dir/*` is expanded here, so
// no shell has to.
const expand = (d) => (d.endsWith('/*') ? readdirSync(d.slice(0, -2)).map((n) => join(d.slice(0, -2), n)) : [d]);
const dirs = process.argv.length > 2 ? process.argv.slice(2).flatMap(expand).map((d) => resolve(d)) : [process.cwd()];
let failed = false;

for (const pkgDir of dirs) {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
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
  // What a tarball may hold besides README, LICENSE and package.json: dist/ for the TypeScript
  // packages; the generated loader and its types for the binding (it has a `napi` section); the
  // one .node named by `main` for a platform package of the binding (it has `os`).
  const own = (f) =>
    pkg.napi ? f === 'index.js' || f === 'index.d.ts' : pkg.os ? f === pkg.main && f.endsWith('.node') : f.startsWith('dist/');
  const problems = [];
  for (const f of files) {
    if (!(own(f) || f === 'README.md' || f === 'LICENSE' || f === 'package.json')) problems.push(`ships ${f} (not one of the files this kind of package publishes)`);
    if (f.endsWith('.map')) problems.push(`ships the source map ${f}`);
  }
  for (const need of ['LICENSE', 'README.md']) if (!files.includes(need)) problems.push(`does not ship ${need}`);
  for (const f of files.filter((f) => /\.d\.[cm]?ts$/.test(f))) {
    const text = readFileSync(join(pkgDir, f), 'utf8');
    // A module specifier (quoted, possibly with a subpath), not a mention in a doc comment.
    for (const name of PRIVATE) if (new RegExp(`['"]${name}(/[^'"]*)?['"]`).test(text)) problems.push(`${f} imports the unpublished ${name}`);
  }
  for (const field of ['scripts', 'devDependencies']) if (field in manifest) problems.push(`the published package.json keeps ${field}`);
  if (pkg.engines?.node !== root.engines?.node) problems.push(`engines.node is ${JSON.stringify(pkg.engines?.node)}, the repository root says ${JSON.stringify(root.engines?.node)}`);

  if (problems.length > 0) {
    for (const p of problems) console.error(`${pkg.name}: ${p}`);
    failed = true;
    continue;
  }
  // A platform package holds its .node only where it was built (here: the host's).
  const built = pkg.os ? (files.includes(pkg.main) ? ` with ${pkg.main}` : ' (its .node not built here)') : '';
  console.log(`${pkg.name}: tarball holds ${files.length} files${built}, only what it publishes; no maps; declarations self-contained; no dev scripts in the manifest`);
}
if (failed) process.exit(1);
