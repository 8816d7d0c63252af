import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The reference implementation the benchmarks compare against. */
export const REFERENCE_PACKAGE = 'opensynaptic';
export const REFERENCE_VERSION = '1.4.2';

/**
 * What the interop tests need in the reference's virtualenv besides the reference, pinned: its UART
 * listener imports pyserial and its MQTT transporter paho-mqtt (the 1.x client API it is written
 * for), neither of which its package depends on.
 */
export const REFERENCE_EXTRAS = Object.freeze([
  { spec: 'pyserial==3.5', distribution: 'pyserial', version: '3.5', module: 'serial' },
  { spec: 'paho-mqtt==1.6.1', distribution: 'paho-mqtt', version: '1.6.1', module: 'paho.mqtt.client' },
]);

const CHECK_IMPORT = `
import importlib, importlib.metadata, json, logging, sys
logging.disable(logging.CRITICAL)
import opensynaptic.core.pycore.unified_parser
v = importlib.metadata.version('${REFERENCE_PACKAGE}')
if v != '${REFERENCE_VERSION}':
    sys.exit('opensynaptic ' + v + ' installed, ${REFERENCE_VERSION} needed')
missing = []
for extra in json.loads(sys.argv[1]):
    try:
        importlib.import_module(extra['module'])
        ok = importlib.metadata.version(extra['distribution']) == extra['version']
    except Exception:
        ok = False
    if not ok:
        missing.append(extra['spec'])
print(json.dumps(missing))
`;

/** Runs the check: `{ ok: true, missing }` (extras not there at their pinned version) or `{ ok: false, error }`. */
async function check(python) {
  const r = await run(python, ['-c', CHECK_IMPORT, JSON.stringify(REFERENCE_EXTRAS)], 60_000);
  if (!r.ok) return r;
  try {
    return { ok: true, missing: JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') };
  } catch {
    return { ok: false, error: `the import check printed ${JSON.stringify(r.stdout.slice(-200))}` };
  }
}

/**
 * Python every reference script runs first (`reference-prelude.py`): `write_config`,
 * `per_call_ns` and the reference's logging switched off.
 */
const PRELUDE = readFileSync(new URL('./reference-prelude.py', import.meta.url), 'utf8');

/** The directory holding pnpm-workspace.yaml, walking up from this module. */
function repoRoot() {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Runs a command; resolves with its output, or an error message that ends with the output's tail. */
function run(file, args, timeout) {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve({ ok: true, stdout });
      const why =
        error.code === 'ENOENT'
          ? `${file} not found`
          : error.killed
            ? `${file} ${args[0] ?? ''} timed out after ${timeout / 1000} s`
            : `${file} ${args.slice(0, 3).join(' ')} failed (exit ${error.code ?? error.signal})`;
      const tail = `${stderr}\n${stdout}`.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
      resolve({ ok: false, error: tail ? `${why}: ${tail}` : why });
    });
  });
}

/** A lock older than this is left over from a killed run: taken over. */
const STALE_LOCK_MS = 30 * 60_000;

/** Runs `fn` holding the directory lock `lock` (mkdir is atomic), waiting for another holder. */
async function withLock(lock, log, fn) {
  let told = false;
  mkdirSync(dirname(lock), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock, { recursive: false });
      break;
    } catch (e) {
      if (e?.code !== 'EEXIST') throw e;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      if (age > STALE_LOCK_MS) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!told) log(`waiting for another process installing into the reference virtualenv (${lock})`);
      told = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * A Python that can import the reference implementation (`opensynaptic` 1.4.2), creating the
 * virtualenv `<repo>/.cache/reference-venv` on first use, with `REFERENCE_EXTRAS` installed into
 * it (idempotent: each is installed only when it does not import at its pinned version). Never
 * rejects; one process installs at a time (a lock directory beside the virtualenv). `extrasMissing` maps each extra that could not be had to why (the tests that need it
 * print that); a Python named by `OPENSYNAPTIC_REFERENCE_PYTHON` is checked, never installed into.
 *
 * @param {{ venv?: string, basePython?: string, log?: (message: string) => void }} [options]
 * @returns {Promise<{ python: string, extrasMissing: Record<string, string> } | { python: null, reason: string }>}
 */
export async function referencePython(options = {}) {
  const log = options.log ?? ((message) => process.stderr.write(`reference: ${message}\n`));
  try {
    const named = process.env.OPENSYNAPTIC_REFERENCE_PYTHON;
    if (named) {
      const c = await check(named);
      if (!c.ok) return { python: null, reason: `OPENSYNAPTIC_REFERENCE_PYTHON=${named}: ${c.error}` };
      return { python: named, extrasMissing: Object.fromEntries(c.missing.map((spec) => [spec, `not installed in OPENSYNAPTIC_REFERENCE_PYTHON=${named}`])) };
    }
    let venv = options.venv;
    if (!venv) {
      const root = repoRoot();
      if (!root) return { python: null, reason: 'no pnpm-workspace.yaml above @opensynaptic/config to hold .cache/reference-venv' };
      venv = join(root, '.cache', 'reference-venv');
    }
    const python = process.platform === 'win32' ? join(venv, 'Scripts', 'python.exe') : join(venv, 'bin', 'python');
    const off = process.env.OPENSYNAPTIC_REFERENCE === 'off';
    let state = existsSync(python) ? await check(python) : { ok: false, error: 'no virtualenv' };
    if (state.ok && state.missing.length === 0) return { python, extrasMissing: {} };
    if (off) {
      if (!state.ok) return { python: null, reason: `OPENSYNAPTIC_REFERENCE=off and no usable virtualenv at ${venv}` };
      return { python, extrasMissing: Object.fromEntries(state.missing.map((spec) => [spec, `OPENSYNAPTIC_REFERENCE=off: not installed into ${venv}`])) };
    }
    // One installer at a time (test files and packages may ask at once); the others wait, then
    // find the virtualenv made.
    return await withLock(`${venv}.lock`, log, async () => {
      state = existsSync(python) ? await check(python) : { ok: false, error: 'no virtualenv' };
      if (!state.ok) {
        const started = Date.now();
        if (!existsSync(python)) {
          const base = options.basePython ?? (process.platform === 'win32' ? 'python' : 'python3');
          log(`creating a virtualenv at ${venv} (${base} -m venv)`);
          // --clear: a half-made venv from an interrupted run is replaced, not patched.
          const made = await run(base, ['-m', 'venv', '--clear', venv], 300_000);
          if (!made.ok) return { python: null, reason: made.error };
        }
        log(`installing ${REFERENCE_PACKAGE}==${REFERENCE_VERSION} into it; this takes a while, once`);
        const spec = `${REFERENCE_PACKAGE}==${REFERENCE_VERSION}`;
        const installed = await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', spec], 900_000);
        if (!installed.ok) return { python: null, reason: installed.error };
        state = await check(python);
        if (!state.ok) return { python: null, reason: `${spec} installed but does not import: ${state.error}` };
        log(`ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
      const extrasMissing = {};
      if (state.missing.length > 0) {
        log(`installing ${state.missing.join(', ')} into ${venv}`);
        const installed = await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', ...state.missing], 300_000);
        const after = await check(python);
        const still = after.ok ? after.missing : state.missing;
        for (const spec of still) extrasMissing[spec] = installed.ok ? `${spec} installed but does not import` : installed.error;
      }
      return { python, extrasMissing };
    });
  } catch (e) {
    return { python: null, reason: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Runs `python -c code ...args` and parses the last line of its standard output as JSON.
 * Throws with the command's stderr tail when it fails or the line is not JSON.
 *
 * @param {string} python
 * @param {string} code
 * @param {readonly string[]} [args]
 * @returns {any}
 */
export function runReferenceJson(python, code, args = []) {
  let stdout;
  try {
    stdout = execFileSync(python, ['-c', `${PRELUDE}\n${code}`, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = typeof e?.stderr === 'string' ? e.stderr.trim().split('\n').slice(-5).join('\n') : '';
    const status = e?.code === 'ENOENT' ? `${python} not found` : `exit ${e?.status ?? e?.signal ?? '?'}`;
    throw new Error(`reference script failed (${status})${stderr ? `:\n${stderr}` : ''}`, { cause: e });
  }
  const last = stdout.trimEnd().split('\n').pop() ?? '';
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`reference script's last output line is not JSON: ${JSON.stringify(last.slice(0, 200))}`);
  }
}

/**
 * Starts `python -c <prelude + code> ...args` as a child that runs beside the caller (a reference
 * peer the test talks to over a socket or a serial line). The script prints `READY <json>` once
 * it listens (optional) and `RESULT <json>` at the end; other output is kept for the error.
 * `result` rejects with the script's stderr tail when it exits without a RESULT line, or after
 * `timeoutMs` (default 60 s; the child is then killed). `stop()` kills it (SIGTERM). `onLine`
 * gets each line of its output as it comes (progress of a long exchange).
 *
 * @param {string} python
 * @param {string} code
 * @param {readonly string[]} [args]
 * @param {{ timeoutMs?: number, onLine?: (line: string) => void }} [options]
 */
export function spawnReference(python, code, args = [], options = {}) {
  const child = spawn(python, ['-c', `${PRELUDE}\n${code}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady = () => undefined;
  let onFail = () => undefined;
  const ready = new Promise((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  const parse = (line, tag) => {
    const text = line.slice(tag.length).trim();
    return text === '' ? null : JSON.parse(text);
  };
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  let seen = 0;
  child.stdout.on('data', (d) => {
    out += d.toString();
    const lines = out.split('\n');
    const line = lines.find((l) => l.startsWith('READY'));
    if (line !== undefined) onReady(parse(line, 'READY'));
    // Complete lines not given yet (the last piece may be half a line).
    if (options.onLine) for (; seen < lines.length - 1; seen++) options.onLine(lines[seen]);
  });
  child.stderr.on('data', (d) => {
    err = (err + d.toString()).slice(-8000);
  });
  const result = new Promise((resolve, reject) => {
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`reference script could not start (${python}): ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line !== undefined) return resolve(parse(line, 'RESULT'));
      const tail = `${err.trim().split('\n').slice(-12).join('\n')}\n${out.slice(-600)}`.trim();
      reject(new Error(`reference script ended (${signal ?? `exit ${code}`}) without a RESULT line${tail ? `:\n${tail}` : ''}`));
    });
  });
  result.catch((e) => onFail(e));
  ready.catch(() => undefined);
  return { child, ready, result, stop: () => child.exitCode === null && child.kill('SIGTERM') };
}

/**
 * Prints the reference's figures beside ours: `measure(python)` returns the reference's median ns
 * keyed by operation name (the `operation` of each row `compare` returned). When no reference
 * Python can be had, or it fails, says why and leaves our figures alone.
 */
export async function sideBySide(rows, measure) {
  const reference = await referencePython();
  if (reference.python === null) {
    console.log(`reference: ${reference.reason}; TypeScript figures only`);
    return;
  }
  let ref;
  try {
    ref = measure(reference.python);
  } catch (e) {
    console.log(`reference could not run (${e instanceof Error ? e.message.split('\n')[0] : e}); TypeScript figures only`);
    return;
  }
  console.log(`\nside by side with the reference (${REFERENCE_PACKAGE} ${REFERENCE_VERSION}, same workload, medians)`);
  console.table(
    rows.map((r) => {
      const refNs = ref[r.operation];
      const ours = Number(r['ts ns']);
      return {
        operation: r.operation,
        'reference ns': refNs === undefined ? '-' : refNs.toFixed(0),
        'ts ns': ours.toFixed(1),
        'reference/ts': refNs === undefined ? '-' : (refNs / ours).toFixed(1),
      };
    }),
  );
}
