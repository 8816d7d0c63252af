// A small coverage-guided fuzzer for the TypeScript decoders. Coverage is V8's precise block
// coverage read through node:inspector after every input (exact call counts per block, bucketed
// as AFL does), so an input that reaches a new block or a new loop depth joins the corpus. Each
// target runs in a worker thread: the parent terminates a worker that stops making progress and
// reports the input it was on as a hang.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import { join } from 'node:path';
import { parentPort, Worker, workerData } from 'node:worker_threads';

/** Bytes shared with the parent: [0] executions, [1] length of the current input, then the input. */
const SHARED_HEADER = 8;

/** What a target may throw: an Error of the package's own kind, with an `ERR_` code. */
export function typedError(e) {
  return e instanceof Error && typeof e.code === 'string' && e.code.startsWith('ERR_') && e.constructor !== Error;
}

/** Throws unless `e` is one of the package's typed errors (a finding otherwise). */
export function expectTyped(e, what) {
  if (!typedError(e)) {
    const err = new Error(`${what} threw an untyped ${e?.constructor?.name ?? typeof e}: ${e?.message ?? String(e)}`);
    err.cause = e;
    throw err;
  }
}

export function sha1(b) {
  return createHash('sha1').update(b).digest('hex');
}

function bucket(n) {
  if (n <= 3) return n;
  if (n <= 7) return 4;
  if (n <= 15) return 5;
  if (n <= 31) return 6;
  if (n <= 127) return 7;
  return 8;
}

// ------------------------------------------------------------------------------------- mutation

const INTERESTING = [0, 1, 0x3f, 0x40, 0x7f, 0x80, 0xaa, 0xab, 0xff, 0x7e, 0x20, 0x0d, 0x0e, 0x10];

function rnd(n) {
  return Math.floor(Math.random() * n);
}

function mutateOnce(b, dict, other, maxLen) {
  const op = rnd(11);
  const pos = b.length === 0 ? 0 : rnd(b.length);
  switch (op) {
    case 0: {
      if (b.length === 0) return Uint8Array.of(rnd(256));
      const c = b.slice();
      c[pos] ^= 1 << rnd(8);
      return c;
    }
    case 1: {
      if (b.length === 0) return Uint8Array.of(INTERESTING[rnd(INTERESTING.length)]);
      const c = b.slice();
      c[pos] = rnd(2) ? INTERESTING[rnd(INTERESTING.length)] : rnd(256);
      return c;
    }
    case 2: {
      // delete a run
      const n = 1 + rnd(Math.min(16, Math.max(1, b.length - pos)));
      return concat(b.subarray(0, pos), b.subarray(pos + n));
    }
    case 3: {
      // insert random bytes
      const ins = new Uint8Array(1 + rnd(8));
      for (let i = 0; i < ins.length; i++) ins[i] = rnd(256);
      return concat(b.subarray(0, pos), ins, b.subarray(pos));
    }
    case 4:
    case 5: {
      // insert a dictionary token
      const t = dict[rnd(dict.length)];
      return concat(b.subarray(0, pos), t, b.subarray(pos));
    }
    case 6: {
      // overwrite with a dictionary token
      const t = dict[rnd(dict.length)];
      const c = b.slice();
      c.set(t.subarray(0, Math.max(0, c.length - pos)), pos);
      return c;
    }
    case 7: {
      // repeat a chunk many times (long runs of one pattern reach the slow paths)
      if (b.length === 0) return b;
      const n = 1 + rnd(Math.min(8, b.length - pos));
      const chunk = b.subarray(pos, pos + n);
      const times = 1 << rnd(11);
      const parts = [b.subarray(0, pos)];
      for (let i = 0; i < times && parts.length * n < maxLen; i++) parts.push(chunk);
      parts.push(b.subarray(pos));
      return concat(...parts);
    }
    case 8: {
      // splice with another corpus entry
      if (other.length === 0) return b;
      const o = other;
      const at = rnd(o.length + 1);
      return concat(b.subarray(0, pos), o.subarray(at));
    }
    case 9: {
      // copy a chunk of itself elsewhere
      if (b.length < 2) return b;
      const from = rnd(b.length);
      const n = 1 + rnd(Math.min(32, b.length - from));
      return concat(b.subarray(0, pos), b.subarray(from, from + n), b.subarray(pos));
    }
    default: {
      // arithmetic on a byte
      if (b.length === 0) return b;
      const c = b.slice();
      c[pos] = (c[pos] + (rnd(2) ? 1 : -1) * (1 + rnd(16))) & 255;
      return c;
    }
  }
}

export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ------------------------------------------------------------------------------------- worker

/** The worker side (fuzz/worker.mjs runs it). */
export async function workerMain() {
  const { targetPath, corpusDir, findingsDir, seconds, runs, slowMs, shared } = workerData;
  const view = new Int32Array(shared, 0, 2);
  const bytes = new Uint8Array(shared, SHARED_HEADER);
  const target = (await import(targetPath)).default;
  if (target.setup) await target.setup();
  const maxLen = target.maxLen ?? 4096;
  const dict = (target.dict ?? []).map((t) => (typeof t === 'string' ? new TextEncoder().encode(t) : t));
  if (dict.length === 0) dict.push(Uint8Array.of(0));

  const session = new inspector.Session();
  session.connect();
  let takes = 0;
  const post = (method, params) => {
    if (method === 'Profiler.takePreciseCoverage') takes++;
    let out;
    let err;
    session.post(method, params, (e, r) => {
      err = e;
      out = r;
    });
    if (err) throw err;
    return out;
  };
  post('Profiler.enable');
  post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  const scriptOk = new Map();
  const covered = new Set();
  const ofInterest = (url) => {
    let ok = scriptOk.get(url);
    if (ok === undefined) {
      ok = url.includes('/packages/') && !url.includes('/node_modules/.pnpm/');
      scriptOk.set(url, ok);
    }
    return ok;
  };
  // Features: a block reached (`blocks`), and a block reached a number of times, bucketed as
  // AFL does (`covered`), so that a new loop depth counts too. A block is named by its start
  // offset only: V8 merges neighbouring ranges of equal count, so end offsets vary from run to run.
  const blocks = new Set();
  /** Number of features not seen before, recorded. */
  const newFeatures = () => {
    const r = post('Profiler.takePreciseCoverage').result;
    let fresh = 0;
    for (const s of r) {
      if (!ofInterest(s.url)) continue;
      for (const f of s.functions) {
        for (const range of f.ranges) {
          if (range.count === 0) continue;
          const b = `${s.scriptId}:${range.startOffset}`;
          blocks.add(b);
          const k = `${b}:${bucket(range.count)}`;
          if (!covered.has(k)) {
            covered.add(k);
            fresh++;
          }
        }
      }
    }
    return fresh;
  };
  /**
   * Whether a batch reached a block never reached before (counts add up over a batch, so only
   * blocks count). Its blocks are recorded too: a start offset that only shows in sums is new once.
   */
  const newBlocks = () => {
    const r = post('Profiler.takePreciseCoverage').result;
    let fresh = false;
    for (const s of r) {
      if (!ofInterest(s.url)) continue;
      for (const f of s.functions) {
        for (const range of f.ranges) {
          if (range.count === 0) continue;
          const b = `${s.scriptId}:${range.startOffset}`;
          if (!blocks.has(b)) {
            blocks.add(b);
            fresh = true;
          }
        }
      }
    }
    return fresh;
  };

  const findings = [];
  const seen = new Set();
  const record = (kind, input, message) => {
    const id = sha1(input);
    if (seen.has(id)) return;
    seen.add(id);
    // Known defects can match thousands of mutants: keep the first 50 inputs, count the rest.
    let file = '';
    if (findings.length < 50) {
      mkdirSync(findingsDir, { recursive: true });
      file = join(findingsDir, `${kind}-${id}`);
      writeFileSync(file, input);
    }
    const finding = { kind, file, message: String(message).slice(0, 500), length: input.length };
    findings.push(finding);
    // Sent at once, so that it survives a later hang that ends the worker.
    parentPort.postMessage({ type: 'finding', finding });
  };

  let execs = 0;
  const exec = (input) => {
    view[1] = input.length;
    bytes.set(input.subarray(0, bytes.length));
    Atomics.add(view, 0, 1);
    execs++;
    const t0 = performance.now();
    try {
      target.fuzz(input);
    } catch (e) {
      record('crash', input, e?.stack ?? e);
      return -1;
    }
    return performance.now() - t0;
  };
  const timed = (input) => {
    let ms = exec(input);
    // Only an input that is slow every time counts (JIT warm-up and GC pauses are not findings).
    for (let i = 0; i < 2 && ms > slowMs; i++) ms = Math.min(ms, exec(input));
    if (ms > slowMs) record('slow', input, `${ms.toFixed(1)} ms for ${input.length} bytes (budget ${slowMs} ms)`);
    return ms;
  };

  const corpus = [];
  mkdirSync(corpusDir, { recursive: true });
  for (const name of readdirSync(corpusDir).sort()) {
    const input = new Uint8Array(readFileSync(join(corpusDir, name)));
    timed(input);
    // Every seed stays: they are the regression inputs.
    newFeatures();
    corpus.push(input);
  }
  if (corpus.length === 0) corpus.push(new Uint8Array(0));
  const seedCount = corpus.length;
  const added = [];
  const deadline = performance.now() + seconds * 1000;
  // Coverage is read once per batch of inputs (reading it costs V8 far more than most inputs);
  // only a batch that reached something new is run again input by input to find which ones did.
  // Batches grow while they find nothing and shrink again when they do.
  let size = 4;
  const batch = [];
  while (execs < runs && performance.now() < deadline) {
    batch.length = 0;
    for (let b = 0; b < size; b++) {
      let input = corpus[rnd(corpus.length)];
      const stack = 1 + rnd(4);
      for (let i = 0; i < stack; i++) input = mutateOnce(input, dict, corpus[rnd(corpus.length)], maxLen);
      if (input.length > maxLen) input = input.subarray(0, maxLen);
      if (target.fixup && rnd(4) !== 0) input = target.fixup(input);
      if (timed(input) >= 0) batch.push(input);
    }
    if (!newBlocks()) {
      size = Math.min(size * 2, 128);
      continue;
    }
    for (const input of batch) {
      exec(input);
      if (newFeatures() > 0) {
        corpus.push(input);
        added.push(input);
        size = 4;
      }
    }
    await new Promise((r) => setImmediate(r));
  }
  parentPort.postMessage({ type: 'done', execs, seeds: seedCount, added, features: covered.size, takes });
}

// ------------------------------------------------------------------------------------- parent

/**
 * Runs one target in a worker. Resolves with { execs, features, findings, added }; a worker that
 * makes no progress for `hangMs` is terminated and its current input reported as a hang.
 */
export function runTarget({ targetPath, corpusDir, findingsDir, seconds, runs = Number.POSITIVE_INFINITY, slowMs, hangMs, maxInput = 1 << 20 }) {
  const shared = new SharedArrayBuffer(SHARED_HEADER + maxInput);
  const view = new Int32Array(shared, 0, 2);
  const w = new Worker(new URL('./worker.mjs', import.meta.url), {
    workerData: { targetPath, corpusDir, findingsDir, seconds, runs, slowMs, shared },
    resourceLimits: { maxOldGenerationSizeMb: 1024 },
  });
  const findings = [];
  return new Promise((resolve) => {
    let last = -1;
    let still = 0;
    let done = false;
    const timer = setInterval(() => {
      const n = Atomics.load(view, 0);
      if (n !== last) {
        last = n;
        still = 0;
        return;
      }
      still += 250;
      if (still < hangMs || done) return;
      done = true;
      clearInterval(timer);
      const len = Math.min(Atomics.load(view, 1), maxInput);
      const input = new Uint8Array(shared, SHARED_HEADER, len).slice();
      mkdirSync(findingsDir, { recursive: true });
      const file = join(findingsDir, `hang-${sha1(input)}`);
      writeFileSync(file, input);
      w.terminate();
      findings.push({ kind: 'hang', file, message: `no progress for ${hangMs} ms`, length: len });
      resolve({ execs: n, features: 0, added: [], findings });
    }, 250);
    w.on('message', (m) => {
      if (m.type === 'finding') {
        findings.push(m.finding);
        return;
      }
      done = true;
      clearInterval(timer);
      resolve({ ...m, findings });
      w.terminate();
    });
    w.on('error', (e) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      findings.push({ kind: 'worker-error', file: '', message: e?.stack ?? String(e), length: 0 });
      resolve({ execs: Atomics.load(view, 0), features: 0, added: [], findings });
    });
    w.on('exit', (code) => {
      if (done) return;
      done = true;
      clearInterval(timer);
      findings.push({ kind: 'worker-exit', file: '', message: `worker exited with code ${code} (out of memory?)`, length: 0 });
      resolve({ execs: Atomics.load(view, 0), features: 0, added: [], findings });
    });
  });
}

