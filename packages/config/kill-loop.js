// Test helpers for crash tests: run TypeScript sources in a child Node process and SIGKILL it at
// random moments, so a store's promise ("what was acknowledged survives a kill -9") is tested
// against a real kill, not a simulated one.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

function repoRootFrom(start) {
  let dir = start;
  for (;;) {
    try {
      readFileSync(join(dir, 'pnpm-workspace.yaml'));
      return dir;
    } catch {
      const parent = dirname(dir);
      if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${start}`);
      dir = parent;
    }
  }
}

/**
 * Transpiles `entries` (TypeScript files of the repository) and the relative modules they import
 * to plain ES modules in `outDir` (Node 20 does not run TypeScript). `@opensynaptic/internal` is
 * compiled from source too (it is bundled, never published); other `@opensynaptic/<pkg>[/<entry>]`
 * imports load that package's built `dist` (tests run after the build), other packages the file
 * the source would load (resolved from the source's folder). Returns the URL of each
 * compiled entry, in order.
 */
export function compileForChild(entries, outDir) {
  mkdirSync(outDir, { recursive: true });
  const root = repoRootFrom(dirname(resolve(entries[0])));
  const outName = (src) => `${relative(root, src).replace(/\.ts$/, '').replace(/[\\/]/g, '__')}.mjs`;
  const queue = entries.map((e) => resolve(e));
  const done = new Set();
  while (queue.length > 0) {
    const src = queue.pop();
    if (done.has(src)) continue;
    done.add(src);
    const js = ts.transpileModule(readFileSync(src, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const out = js.replace(/(from|import)\s*(['"])([^'"]+)\2/g, (match, kw, _q, spec) => {
      let dep;
      if (spec.startsWith('./') || spec.startsWith('../')) dep = resolve(dirname(src), spec.replace(/\.js$/, '.ts'));
      else if (spec === '@opensynaptic/internal') dep = join(root, 'packages/internal/src/index.ts');
      else {
        const m = /^@opensynaptic\/([\w-]+)(?:\/([\w-]+))?$/.exec(spec);
        if (m === null) {
          // node: builtins as they are; another package as the source file would resolve it
          // (the compiled copy lives in a temporary folder with no node_modules of its own). The
          // pattern also meets text inside string literals: what is not a package name, or does
          // not resolve, is left as it is.
          if (spec.startsWith('node:') || !/^(@[\w.-]+\/)?[\w.-]+(\/[\w.-]+)*$/.test(spec)) return match;
          try {
            return `${kw} '${pathToFileURL(createRequire(src).resolve(spec)).href}'`;
          } catch {
            return match;
          }
        }
        return `${kw} '${pathToFileURL(join(root, 'packages', m[1], 'dist', `${m[2] ?? 'index'}.js`)).href}'`;
      }
      queue.push(dep);
      return `${kw} './${outName(dep)}'`;
    });
    writeFileSync(join(outDir, outName(src)), out);
  }
  return entries.map((e) => pathToFileURL(join(outDir, outName(resolve(e)))).href);
}

/** A small deterministic generator, so a failing run can be repeated from its seed. */
export function seededRandom(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/**
 * Starts `node script ...args(round)` `rounds` times; each time waits for the child's first line
 * `ready`, lets it run a random `minMs..maxMs`, SIGKILLs it, and calls `check(round, lines)` with
 * every complete stdout line the child printed before it died (a line cut by the kill is
 * dropped: what it would have acknowledged never left). Rejects when a child exits on its own.
 */
export async function killLoop({ script, args = () => [], rounds, minMs = 20, maxMs = 400, seed = 1, check }) {
  const random = seededRandom(seed);
  for (let round = 0; round < rounds; round++) {
    const child = spawn(process.execPath, [script, ...args(round)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let buffered = '';
    const lines = [];
    let ready;
    const isReady = new Promise((r) => {
      ready = r;
    });
    child.stderr.on('data', (d) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop();
      for (const line of parts) {
        if (line === 'ready') ready();
        else lines.push(line);
      }
    });
    const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
    const early = exited.then(({ code, signal }) => {
      throw new Error(`child exited (${code ?? signal}) before it was killed: ${stderr.slice(-2000)}`);
    });
    await Promise.race([isReady, early]);
    await Promise.race([new Promise((r) => setTimeout(r, minMs + random() * (maxMs - minMs))), early]);
    child.kill('SIGKILL');
    const { signal } = await exited;
    early.catch(() => {});
    if (signal !== 'SIGKILL') throw new Error(`child ended by ${signal} instead of SIGKILL: ${stderr.slice(-2000)}`);
    // Output the child wrote before the kill may still be in the pipe.
    await new Promise((r) => (child.stdout.readableEnded ? r() : child.stdout.once('close', r)));
    await check(round, lines);
  }
}
