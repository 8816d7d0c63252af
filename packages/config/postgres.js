// A private PostgreSQL server for tests and benches: Debian's `postgresql` (installed with
// apt-get when missing), a throw-away cluster in a temporary folder on a free loopback port, run
// by a non-root user (initdb and postgres refuse root), stopped and removed by `stop()`.
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ensureDebianPackages } from './apt.js';

const PG_ROOT = '/usr/lib/postgresql';

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: options.timeoutMs ?? 120_000, ...options });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0 && !options.allowFailure) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${`${r.stdout}${r.stderr}`.trim().slice(-2000)}`);
  return r;
}

/** The newest `bin` folder of Debian's PostgreSQL packages holding `initdb`, or `undefined`. */
export function findPostgresBin() {
  if (!existsSync(PG_ROOT)) return undefined;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(PG_ROOT, versions[0], 'bin') : undefined;
}

/** Installs Debian's `postgresql` with apt-get (as root, or through `sudo -n`) when missing; returns its bin folder. */
export function installPostgres(log = () => {}) {
  ensureDebianPackages([{ program: `${PG_ROOT}/<version>/bin/initdb`, pkg: 'postgresql', present: () => findPostgresBin() !== undefined }], log);
  return /** @type {string} */ (findPostgresBin());
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The uid and gid of `name`, from /etc/passwd. */
function userIds(name) {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * `start` or `stop` (fast shutdown: connections are cut, data kept) the server of a cluster made
 * by {@link startPostgres}, from any process: for fault tests that take the database down.
 */
export function controlPostgres(dataDir, action) {
  const bin = findPostgresBin();
  if (bin === undefined) throw new Error('PostgreSQL is not installed');
  const args = action === 'start' ? ['-D', dataDir, '-l', join(dirname(dataDir), 'server.log'), '-w', '-t', '60', 'start'] : ['-D', dataDir, '-m', 'fast', '-w', 'stop'];
  const cmd = join(bin, 'pg_ctl');
  if (process.getuid?.() === 0) run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: dirname(dataDir), timeoutMs: 90_000 });
  else run(cmd, args, { cwd: dirname(dataDir), timeoutMs: 90_000 });
}

/**
 * Starts a private cluster and resolves to `{ url, port, version, dataDir, stop, stopServer,
 * startServer }` (the last two take the server down and back up on the same port, for fault tests). As root it
 * runs the server as the `postgres` system user (created by Debian's package; made with
 * `useradd` if missing); otherwise as the current user. Authentication is `trust` on
 * 127.0.0.1 only. Options: `log(msg)`, `fsync` (default true: commits are as durable as on a
 * real server).
 */
export async function startPostgres({ log = () => {}, fsync = true } = {}) {
  const bin = installPostgres(log);
  const version = run(join(bin, 'postgres'), ['--version']).stdout.trim();
  const asRoot = process.getuid?.() === 0;
  let ids;
  if (asRoot) {
    ids = userIds('postgres');
    if (ids === undefined) {
      run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
      ids = userIds('postgres');
    }
    if (ids === undefined) throw new Error('no postgres user to run the server as (initdb refuses root)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'opensynaptic-pg-'));
  const dataDir = join(dir, 'data');
  if (ids !== undefined) chownSync(dir, ids.uid, ids.gid);
  chmodSync(dir, 0o700);
  const as = (cmd, args, options) => (asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: dir, ...options }) : run(cmd, args, { cwd: dir, ...options }));
  let started = false;
  const stop = () => {
    if (started) {
      as(join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { allowFailure: true, timeoutMs: 30_000 });
      started = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    as(join(bin, 'initdb'), ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
    const port = await freePort();
    // In postgresql.conf, so a later pg_ctl start (controlPostgres) needs nothing but the folder.
    const settings = [`port = ${port}`, `unix_socket_directories = '${dir}'`, "listen_addresses = '127.0.0.1'", 'max_connections = 60'];
    if (!fsync) settings.push('fsync = off', 'synchronous_commit = off');
    appendFileSync(join(dataDir, 'postgresql.conf'), `\n# opensynaptic test server\n${settings.join('\n')}\n`);
    const startServer = () => {
      controlPostgres(dataDir, 'start');
      started = true;
    };
    const stopServer = () => {
      controlPostgres(dataDir, 'stop');
      started = false;
    };
    startServer();
    log(`${version} on 127.0.0.1:${port} (${dataDir})`);
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port, version, dataDir, stop, stopServer, startServer };
  } catch (e) {
    const serverLog = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8').slice(-1500) : '';
    stop();
    throw new Error(`${e.message}${serverLog ? `\nserver log:\n${serverLog}` : ''}`);
  }
}

/**
 * A vitest global setup's PostgreSQL: starts one (see `startPostgres`) and provides its `pgUrl`
 * and `pgDataDir` to the tests, with `pgUnavailable` empty. When it cannot start, CI fails with the
 * reason; elsewhere the tests get `pgUnavailable` (the reason, printed) and skip. Returns the
 * teardown.
 */
export async function providePostgres(project) {
  try {
    const server = await startPostgres({ log: (m) => console.log(`postgres: ${m}`) });
    project.provide('pgUrl', server.url);
    project.provide('pgDataDir', server.dataDir);
    project.provide('pgUnavailable', '');
    return () => server.stop();
  } catch (e) {
    const reason = `PostgreSQL could not be started: ${e.message}`;
    if (process.env.CI) throw new Error(reason);
    console.warn(`postgres: ${reason}\npostgres: the PostgreSQL tests are SKIPPED (CI fails instead)`);
    project.provide('pgUrl', '');
    project.provide('pgDataDir', '');
    project.provide('pgUnavailable', reason);
    return () => {};
  }
}
