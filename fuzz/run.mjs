#!/usr/bin/env node
// Runs the TypeScript fuzz targets one after another and fails on a finding.
//   node fuzz/run.mjs [--seconds 3] [--runs N] [--targets a,b] [--merge] [--slow-ms 100] [--hang-ms 10000] [--verbose]
// --merge keeps inputs that reached new coverage (up to 4 KiB each, 20 per target per run) in
// fuzz/corpus/<target>/. Findings go to fuzz/findings/ (not committed). A finding listed in
// fuzz/known.json (a defect of issue 8 being fixed elsewhere) is reported but does not fail the
// run; delete its entry once the fix has merged.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTarget, sha1 } from './engine.mjs';

const here = new URL('.', import.meta.url).pathname;
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? dflt : args[i + 1];
};
const seconds = Number(opt('seconds', '3'));
const runs = Number(opt('runs', 'Infinity'));
const slowMs = Number(opt('slow-ms', '100'));
const hangMs = Number(opt('hang-ms', '10000'));
const merge = args.includes('--merge');
const all = readdirSync(join(here, 'targets'))
  .filter((f) => f.endsWith('.mjs') && f !== 'common.mjs')
  .map((f) => f.slice(0, -4))
  .sort();
const targets = opt('targets', null)?.split(',') ?? all;
const known = existsSync(join(here, 'known.json')) ? JSON.parse(readFileSync(join(here, 'known.json'), 'utf8')).known : [];

let failed = 0;
let passed = 0;
let knownHits = 0;
const t0 = performance.now();
for (const name of targets) {
  if (!all.includes(name)) {
    console.error(`fuzz: no target ${name} (have ${all.join(', ')})`);
    process.exit(2);
  }
  const corpusDir = join(here, 'corpus', name);
  const started = performance.now();
  const r = await runTarget({
    targetPath: join(here, 'targets', `${name}.mjs`),
    corpusDir,
    findingsDir: join(here, 'findings', name),
    seconds,
    runs,
    slowMs,
    hangMs,
  });
  const secs = (performance.now() - started) / 1000;
  if (args.includes('--verbose')) console.log(`  coverage reads: ${r.takes}`);
  let kept = 0;
  if (merge) {
    for (const input of r.added.filter((a) => a.length <= 4096).slice(0, 20)) {
      writeFileSync(join(corpusDir, sha1(input)), input);
      kept++;
    }
  }
  const fresh = [];
  const knownHere = new Map();
  for (const f of r.findings) {
    const k = known.find((k) => (k.targets === undefined || k.targets.includes(name)) && (k.kind === undefined || k.kind === f.kind) && new RegExp(k.pattern).test(f.message));
    if (k) {
      knownHits++;
      const seen = knownHere.get(k) ?? { count: 0, first: f };
      seen.count++;
      knownHere.set(k, seen);
    } else fresh.push(f);
  }
  for (const [k, { count, first }] of knownHere) {
    console.log(`  known, ${typeof k.item === 'number' ? `rediscovered issue 8 item ${k.item}` : k.item} (${count} inputs, e.g. ${first.file}): ${first.message.split('\n')[0].slice(0, 160)}`);
  }
  console.log(
    `${name}: ${r.execs} executions in ${secs.toFixed(1)} s (${Math.round(r.execs / secs)}/s), ${r.features} coverage features, ` +
      `${r.added.length} new inputs${merge ? ` (${kept} kept)` : ''}, ${fresh.length} findings`,
  );
  for (const f of fresh.slice(0, 5)) console.log(`  FINDING ${f.kind} (${f.length} bytes, ${f.file}):\n    ${f.message.split('\n').slice(0, 6).join('\n    ')}`);
  if (fresh.length > 0) failed++;
  else passed++;
}
console.log(`fuzz: ${targets.length} targets in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${knownHits} known findings`);
console.log(`fuzz: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
