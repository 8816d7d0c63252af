import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The reference implementation the benchmarks compare against. */
export const REFERENCE_PACKAGE = 'opensynaptic';
export const REFERENCE_VERSION = '1.4.2';

const CHECK_IMPORT = `
import importlib.metadata, logging, sys
logging.disable(logging.CRITICAL)
import opensynaptic.core.pycore.unified_parser
v = importlib.metadata.version('${REFERENCE_PACKAGE}')
sys.exit(0 if v == '${REFERENCE_VERSION}' else 'opensynaptic ' + v + ' installed, ${REFERENCE_VERSION} needed')
`;

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

/**
 * A Python that can import the reference implementation (`opensynaptic` 1.4.2), creating the
 * virtualenv `<repo>/.cache/reference-venv` on first use. Never rejects.
 *
 * @param {{ venv?: string, basePython?: string, log?: (message: string) => void }} [options]
 * @returns {Promise<{ python: string } | { python: null, reason: string }>}
 */
export async function referencePython(options = {}) {
  const named = process.env.OPENSYNAPTIC_REFERENCE_PYTHON;
  if (named) return { python: named };
  const log = options.log ?? ((message) => process.stderr.write(`reference: ${message}\n`));
  try {
    let venv = options.venv;
    if (!venv) {
      const root = repoRoot();
      if (!root) return { python: null, reason: 'no pnpm-workspace.yaml above @opensynaptic/config to hold .cache/reference-venv' };
      venv = join(root, '.cache', 'reference-venv');
    }
    const python = process.platform === 'win32' ? join(venv, 'Scripts', 'python.exe') : join(venv, 'bin', 'python');
    if (existsSync(python) && (await run(python, ['-c', CHECK_IMPORT], 60_000)).ok) return { python };
    if (process.env.OPENSYNAPTIC_REFERENCE === 'off') {
      return { python: null, reason: `OPENSYNAPTIC_REFERENCE=off and no usable virtualenv at ${venv}` };
    }

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
    const check = await run(python, ['-c', CHECK_IMPORT], 60_000);
    if (!check.ok) return { python: null, reason: `${spec} installed but does not import: ${check.error}` };
    log(`ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return { python };
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
