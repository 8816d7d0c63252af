#!/usr/bin/env node
/**
 * The consumer check (run by `npm test` after the build): the packages as a new user meets them.
 *
 * 1. packs every public package (`pnpm pack`, as publishing would) and installs the tarballs with
 *    plain `npm install` into a scratch project in the system's temp directory, outside the
 *    workspace, checking that every package came from its tarball;
 * 2. typechecks a consumer (skipLibCheck off, strict) that imports every public entry and subpath
 *    export, as ESM and as CommonJS under `node16`, and under `bundler` resolution, with the
 *    workspace's TypeScript;
 * 3. runs the consumer (scripts/consumer/round-trip.ts: a frame encoded and decoded, two nodes
 *    going secure through transmit → receive) as ESM (backend auto, ts and native) and as
 *    CommonJS, and compares their results; runs the SQLite store and readings sink (its native
 *    driver, better-sqlite3, is compiled by the install where no prebuilt binary downloads);
 * 4. bundles it for the browser with esbuild (`platform: 'browser'`), fails if anything in the
 *    bundle needs a Node built-in, and runs it in headless Chromium (Debian's `chromium`, installed
 *    with apt-get when /usr/bin/chromium is missing; never a downloaded browser), driven through
 *    playwright-core, comparing its result with Node's.
 *
 * Usage: node scripts/consumer-check.mjs [--keep] (keeps the scratch directory and prints it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDebianPackages } from '../packages/config/apt.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCES = join(ROOT, 'scripts', 'consumer');
const CHROMIUM = '/usr/bin/chromium';
const KEEP = process.argv.includes('--keep');
const started = Date.now();

class CheckError extends Error {}
const fail = (msg) => {
  throw new CheckError(msg);
};
const log = (msg) => console.log(`consumer-check: ${msg}`);
const rel = (p) => relative(ROOT, p) || '.';

async function step(name, fn) {
  const t = Date.now();
  log(`${name} ...`);
  const out = await fn();
  log(`${name}: ok (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  return out;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) fail(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !opts.allowFailure) {
    fail(`${cmd} ${args.join(' ')} (in ${opts.cwd ?? process.cwd()}) exited with ${r.status}\n${r.stdout}${r.stderr}`);
  }
  return r;
}

/** Public packages of the workspace: name, dir, and the subpaths of their `exports` (`.` when none). */
function publicPackages() {
  const dir = join(ROOT, 'packages');
  const out = [];
  for (const d of readdirSync(dir).sort()) {
    const file = join(dir, d, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    if (pkg.private) continue;
    const subpaths = pkg.exports ? Object.keys(pkg.exports).filter((k) => !k.endsWith('.json')) : ['.'];
    out.push({ name: pkg.name, dir: join(dir, d), subpaths, files: pkg.files ?? [] });
  }
  if (out.length === 0) fail('no public package found under packages/');
  // The addon's platform packages: a user's install fetches the one for its platform, so the
  // check installs the one built here (the others have no .node on this machine).
  const npmDir = join(dir, 'binding', 'npm');
  const built = existsSync(npmDir) ? readdirSync(npmDir).sort().filter((d) => readdirSync(join(npmDir, d)).some((f) => f.endsWith('.node'))) : [];
  if (built.length === 0) fail('no platform package of @opensynaptic/binding has a .node file: run `pnpm --filter @opensynaptic/binding build` first');
  for (const d of built) {
    const pkg = JSON.parse(readFileSync(join(npmDir, d, 'package.json'), 'utf8'));
    out.push({ name: pkg.name, dir: join(npmDir, d), subpaths: [], files: pkg.files ?? [] });
  }
  return out;
}

const specifier = (name, sub) => (sub === '.' ? name : `${name}/${sub.slice(2)}`);

// ---------------------------------------------------------------------------------------------

function pack(pkgs, scratch) {
  const dest = join(scratch, 'tarballs');
  mkdirSync(dest);
  for (const p of pkgs) {
    // A package published without its build would install and fail later, less clearly.
    if (p.files.includes('dist') && !existsSync(join(p.dir, 'dist'))) fail(`${p.name} has no dist/: run \`pnpm build\` first`);
    run('pnpm', ['pack', '--pack-destination', dest], { cwd: p.dir });
  }
  const tarballs = readdirSync(dest).filter((f) => f.endsWith('.tgz')).map((f) => join(dest, f));
  if (tarballs.length !== pkgs.length) fail(`packed ${tarballs.length} tarballs for ${pkgs.length} public packages`);
  log(`  packed ${pkgs.map((p) => p.name).join(', ')}`);
  return tarballs;
}

function install(pkgs, tarballs, project) {
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'opensynaptic-consumer', version: '0.0.0', private: true }, null, 2)}\n`);
  // --prefer-offline: our tarballs need nothing else today; a third-party dependency would come
  // from the npm cache first, from the registry otherwise.
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...tarballs], { cwd: project });
  for (const p of pkgs) {
    const at = join(project, 'node_modules', ...p.name.split('/'));
    if (!existsSync(at)) fail(`${p.name} is not installed in the scratch project`);
    if (lstatSync(at).isSymbolicLink()) fail(`${p.name} is a link (into the workspace?), not installed from its tarball`);
  }
  log(`  installed ${tarballs.length} tarballs into ${project}`);
}

// ---------------------------------------------------------------------------------------------

const TS_OPTIONS = { target: 'es2022', lib: ['es2022', 'dom'], strict: true, skipLibCheck: false, noEmit: true, types: [] };

function writeSources(pkgs, project) {
  const imports = pkgs.flatMap((p) => p.subpaths.map((s) => specifier(p.name, s)));
  const lines = imports.map((s, i) => `import * as m${i} from '${s}';`);
  const importsTs = `// Every public entry and subpath export (generated by scripts/consumer-check.mjs).\n${lines.join('\n')}\nexport const modules: object[] = [${imports.map((_, i) => `m${i}`).join(', ')}];\n`;
  const src = {
    'imports.ts': importsTs,
    'round-trip.ts': readFileSync(join(SOURCES, 'round-trip.ts'), 'utf8'),
    'types.ts': readFileSync(join(SOURCES, 'types.ts'), 'utf8'),
    'browser.ts': readFileSync(join(SOURCES, 'browser.ts'), 'utf8'),
  };
  for (const [name, text] of Object.entries(src)) writeFileSync(join(project, name), text);
  // node16: the same files as ESM (.mts) and as CommonJS (.cts), so both `exports` conditions
  // and both declaration files (.d.ts, .d.cts) are checked.
  for (const [dir, ext] of [['esm', '.mts'], ['cjs', '.cts']]) {
    mkdirSync(join(project, dir));
    for (const name of ['imports.ts', 'round-trip.ts', 'types.ts']) writeFileSync(join(project, dir, name.replace(/\.ts$/, ext)), src[name]);
  }
  return imports;
}

function tsconfig(project, name, options, files) {
  const file = join(project, `tsconfig.${name}.json`);
  writeFileSync(file, `${JSON.stringify({ compilerOptions: { ...TS_OPTIONS, ...options }, files }, null, 2)}\n`);
  return file;
}

function typecheck(project, imports) {
  // types.ts asserts that no export is `any` (what unresolvable declaration imports turn into).
  const configs = [
    ['node16', { module: 'node16', moduleResolution: 'node16' }, ['imports', 'round-trip', 'types'].flatMap((n) => [`esm/${n}.mts`, `cjs/${n}.cts`])],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }, ['imports.ts', 'round-trip.ts', 'browser.ts', 'types.ts']],
  ];
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const version = run(process.execPath, [tsc, '--version']).stdout.trim();
  const unexpected = [];
  for (const [name, options, files] of configs) {
    const r = run(process.execPath, [tsc, '-p', tsconfig(project, name, options, files), '--pretty', 'false'], { cwd: project, allowFailure: true });
    const errors = `${r.stdout}${r.stderr}`.split('\n').filter((l) => / error TS\d+:/.test(l));
    if (r.status !== 0 && errors.length === 0) unexpected.push(`${name}: tsc exited with ${r.status}\n${r.stdout}${r.stderr}`);
    unexpected.push(...errors.map((l) => `${name}: ${l}`));
    log(`  ${version}, ${name}: ${files.length} files, ${imports.length} entry points, ${errors.length} errors`);
  }
  if (unexpected.length) fail(`the consumer does not typecheck:\n${unexpected.join('\n')}`);
}

// ---------------------------------------------------------------------------------------------

async function compileNode(project) {
  const esbuild = await import('esbuild');
  for (const [format, out] of [['esm', 'esm/round-trip.mjs'], ['cjs', 'cjs/round-trip.cjs']]) {
    // Transpile only: the imports stay bare, for Node to resolve from node_modules.
    await esbuild.build({ entryPoints: [join(project, 'round-trip.ts')], outfile: join(project, out), format, platform: 'node', target: 'node20', bundle: false, logLevel: 'error' });
  }
  const names = ['base62', 'cmd', 'core', 'crc', 'fusion', 'handshake', 'packet', 'server', 'standardize', 'store', 'transport'].map((n) => `@opensynaptic/${n}`);
  writeFileSync(join(project, 'esm', 'run.mjs'), [
    "import { roundTrip } from './round-trip.mjs';",
    `const resolved = ${JSON.stringify(names)}.map((n) => new URL(import.meta.resolve(n)).pathname);`,
    'console.log(JSON.stringify({ resolved, ...roundTrip() }));',
    '',
  ].join('\n'));
  writeFileSync(join(project, 'cjs', 'run.cjs'), [
    "const { roundTrip } = require('./round-trip.cjs');",
    `const resolved = ${JSON.stringify(names)}.map((n) => require.resolve(n));`,
    'console.log(JSON.stringify({ resolved, ...roundTrip() }));',
    '',
  ].join('\n'));
}

function runNode(project, file, backendEnv, oldNode = false) {
  const env = { ...process.env };
  delete env.OPENSYNAPTIC_CORE;
  if (backendEnv) env.OPENSYNAPTIC_CORE = backendEnv;
  const label = `${file} (OPENSYNAPTIC_CORE=${backendEnv ?? 'unset'}${oldNode ? ', no process.getBuiltinModule as on Node 20.0-20.15' : ''})`;
  // Node before 20.16 has no process.getBuiltinModule, the packages' only way to Node built-ins.
  const pre = oldNode ? ['--import', 'data:text/javascript,delete process.getBuiltinModule'] : [];
  const r = run(process.execPath, [...pre, join(project, file)], { cwd: project, env, allowFailure: true });
  if (r.status !== 0) fail(`${label} failed:\n${r.stdout}${r.stderr}`);
  const res = JSON.parse(r.stdout.trim().split('\n').pop());
  const ext = file.endsWith('.cjs') ? '.cjs' : '.js';
  for (const f of res.resolved) {
    if (!f.startsWith(join(project, 'node_modules') + sep)) fail(`${label}: resolved ${f}, outside the scratch project's node_modules`);
    if (!f.endsWith(ext)) fail(`${label}: resolved ${f}, expected the ${ext} build`);
  }
  log(`  ${label}: commands ${res.commands.join(', ')}, secure reading ${res.secureValue} K, SHA-256 by ${res.digestBackend}`);
  return res;
}

function agree(label, a, b) {
  for (const k of ['frameHex', 'commands', 'secureValue', 'sessionKeyHex']) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) fail(`${label}: ${k} differs: ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`);
  }
}

function nodeRuns(project) {
  const auto = runNode(project, 'esm/run.mjs');
  const ts = runNode(project, 'esm/run.mjs', 'ts');
  const native = runNode(project, 'esm/run.mjs', 'native');
  const cjs = runNode(project, 'cjs/run.cjs');
  const old = runNode(project, 'esm/run.mjs', undefined, true);
  if (old.nativeAvailable || old.digestBackend !== 'ts') fail('without process.getBuiltinModule the addon still loaded');
  if (ts.digestBackend !== 'ts') fail(`OPENSYNAPTIC_CORE=ts: the session key was hashed by ${ts.digestBackend}`);
  if (!native.nativeAvailable || native.digestBackend !== 'native') fail('OPENSYNAPTIC_CORE=native: the installed addon did not serve the session key');
  agree('ESM ts vs ESM auto', ts, auto);
  agree('ESM native vs ESM auto', native, auto);
  agree('CJS vs ESM', cjs, auto);
  agree('ESM without Node built-ins vs ESM auto', old, auto);
  return auto;
}

/**
 * The database packages from their tarballs: the SQLite sink and store (better-sqlite3 built or
 * fetched by the install) write, flush and read back a reading in a file, as ESM and as CommonJS.
 * PostgreSQL needs a server: its package is typechecked and imported above, run by its own tests.
 */
function storageRuns(project) {
  const body = (m) => `
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'consumer-sqlite-'));
try {
  const file = path.join(dir, 'os.db');
  const sink = await ${m}.openSqliteReadingsSink({ path: file });
  await sink.write([{ aid: 7, deviceId: 'dev-7', strategy: 'FULL', timestampMs: 1, receivedAtMs: 2, sensors: [{ id: 't1', state: 'U', value: 294.15, unit: 'K' }] }]);
  await sink.close();
  const again = await ${m}.openSqliteReadingsSink({ path: file, readonly: true });
  const [r] = await again.query({ aid: 7 });
  await again.close();
  const store = await ${m}.openSqliteStore({ path: file });
  await store.write([{ op: 'put', kind: 'leases', key: 'dev-7', value: { id: 7 } }]);
  await store.close();
  console.log(JSON.stringify({ value: r?.value, durability: sink.durability }));
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
`;
  writeFileSync(join(project, 'esm', 'storage.mjs'), `import fs from 'node:fs'; import os from 'node:os'; import path from 'node:path';\nimport * as sqlite from '@opensynaptic/store-sqlite';\n${body('sqlite')}`);
  writeFileSync(join(project, 'cjs', 'storage.cjs'), `const fs = require('node:fs'); const os = require('node:os'); const path = require('node:path');\nconst sqlite = require('@opensynaptic/store-sqlite');\n(async () => {${body('sqlite')}})().catch((e) => { console.error(e); process.exit(1); });\n`);
  for (const file of ['esm/storage.mjs', 'cjs/storage.cjs']) {
    const r = run(process.execPath, [join(project, file)], { cwd: project, allowFailure: true });
    if (r.status !== 0) fail(`${file} failed:\n${r.stdout}${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop());
    if (res.value !== 294.15 || res.durability !== 'power') fail(`${file}: read back ${JSON.stringify(res)}`);
    log(`  ${file}: a reading stored in SQLite and read back (durability ${res.durability}); a lease stored`);
  }
}

// ---------------------------------------------------------------------------------------------

async function bundleForBrowser(project) {
  const esbuild = await import('esbuild');
  const web = join(project, 'web');
  mkdirSync(web);
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [join(project, 'browser.ts')],
      outfile: join(web, 'bundle.js'),
      absWorkingDir: project,
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      metafile: true,
      logLevel: 'silent',
    });
  } catch (e) {
    fail(`esbuild (platform browser) could not bundle the node layer:\n${(e.errors ?? []).map((x) => `${x.location?.file ?? ''}: ${x.text}`).join('\n') || e.message}`);
  }
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const inputs = Object.keys(result.metafile.inputs);
  const nodeImports = [];
  for (const [file, input] of Object.entries(result.metafile.inputs)) {
    for (const imp of input.imports) if (imp.external || builtins.has(imp.path) || imp.path.startsWith('node:')) nodeImports.push(`${file} imports ${imp.path}`);
  }
  if (nodeImports.length) fail(`the browser bundle needs Node built-ins:\n${nodeImports.join('\n')}`);
  const outside = inputs.filter((f) => !resolve(project, f).startsWith(project + sep));
  if (outside.length) fail(`the browser bundle took files from outside the scratch project: ${outside.join(', ')}`);
  const code = readFileSync(join(web, 'bundle.js'), 'utf8');
  // esbuild leaves a __require shim when it meets a require() it cannot bundle.
  if (/__require\(/.test(code)) fail('the browser bundle keeps a require() call');
  const pkgs = [...new Set(inputs.map((f) => /node_modules\/(@opensynaptic\/[^/]+)/.exec(f)?.[1]).filter(Boolean))].sort();
  if (pkgs.includes('@opensynaptic/binding')) fail('the browser bundle includes @opensynaptic/binding');
  writeFileSync(join(web, 'index.html'), '<!doctype html><meta charset="utf-8"><title>consumer check</title><link rel="icon" href="data:,"><script src="bundle.js"></script>\n');
  log(`  bundle.js: ${(code.length / 1024).toFixed(0)} KiB from ${inputs.length} files of ${pkgs.join(', ')}; no Node built-in, no require()`);
  return web;
}

function ensureChromium() {
  try {
    ensureDebianPackages([{ program: CHROMIUM, pkg: 'chromium' }], (m) => log(`  ${m}`));
  } catch (e) {
    fail(e.message);
  }
}

async function runInBrowser(web, expected) {
  ensureChromium();
  const { chromium } = await import('playwright-core');
  const server = createServer((req, res) => {
    const name = { '/': 'index.html', '/index.html': 'index.html', '/bundle.js': 'bundle.js' }[req.url ?? ''];
    if (!name) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': name.endsWith('.js') ? 'text/javascript' : 'text/html' }).end(readFileSync(join(web, name)));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${server.address().port}/index.html`;
  const profile = mkdtempSync(join(tmpdir(), 'opensynaptic-chromium-'));
  let context;
  try {
    // playwright-core drives the browser over the DevTools protocol; it never downloads one here.
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const { product: version } = await (await context.newCDPSession(page)).send('Browser.getVersion');
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
    const res = await page.evaluate(() => globalThis.consumerResult);
    if (!res) fail(`the page at ${url} left no result${problems.length ? `:\n${problems.join('\n')}` : ''}`);
    if (!res.ok) fail(`the round trip failed in ${version}:\n${res.error}`);
    if (problems.length) fail(`the page reported:\n${problems.join('\n')}`);
    if (res.hasProcess) fail('the page has a `process` global: not a plain browser environment');
    if (res.nativeAvailable || res.digestBackend !== 'ts') fail(`in the browser the session key was hashed by ${res.digestBackend}`);
    agree('browser vs Node', res, expected);
    log(`  ${version}: commands ${res.commands.join(', ')}, secure reading ${res.secureValue} K, session key as on Node`);
  } finally {
    await context?.close().catch(() => {});
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const pkgs = publicPackages();
  const scratch = mkdtempSync(join(tmpdir(), 'opensynaptic-consumer-'));
  if (resolve(scratch).startsWith(ROOT + sep)) fail(`the temp directory ${scratch} is inside the workspace`);
  const project = join(scratch, 'project');
  let ok = false;
  try {
    const tarballs = await step('pack every public package', () => pack(pkgs, scratch));
    await step('install the tarballs into a scratch project', () => install(pkgs, tarballs, project));
    const imports = writeSources(pkgs, project);
    await step('typecheck the consumer (strict, skipLibCheck off; node16 ESM and CJS, bundler)', () => typecheck(project, imports));
    await compileNode(project);
    const expected = await step('run the consumer on Node as ESM and as CommonJS', () => nodeRuns(project));
    await step('run the SQLite store and sink from their tarballs (ESM and CommonJS)', () => storageRuns(project));
    const web = await step('bundle the node layer for the browser (esbuild, platform browser)', () => bundleForBrowser(project));
    await step('run the bundle in headless Chromium', () => runInBrowser(web, expected));
    ok = true;
    log(`passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    if (KEEP || !ok) log(`scratch project kept at ${project}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`consumer-check: FAILED: ${e instanceof CheckError ? e.message : (e?.stack ?? e)}`);
  process.exit(1);
});
