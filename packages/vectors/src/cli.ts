import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DIR, type FileReport, loadDeviations, readVectorFile, runFile, vectorFiles } from './index.js';
import type { BackendName } from './types.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    backend: { type: 'string', default: 'ts' },
    verbose: { type: 'boolean', short: 'v', default: false },
  },
});
const backend = values.backend as BackendName;
if (backend !== 'ts' && backend !== 'native') {
  console.error(`--backend must be ts or native, got ${values.backend}`);
  process.exit(2);
}
// `pnpm vectors` runs this from the package folder; a relative --dir means the caller's folder.
const dir = values.dir ? resolve(process.env.INIT_CWD ?? process.cwd(), values.dir) : DEFAULT_DIR;
if (!existsSync(dir)) {
  console.error(`no such vectors directory: ${dir}`);
  process.exit(2);
}
const deviations = loadDeviations(dir);

let passed = 0;
let failed = 0;
let deviated = 0;
const reports: FileReport[] = [];
console.log(`golden vectors in ${dir}, backend ${backend}`);
for (const name of vectorFiles(dir)) {
  const file = readVectorFile(join(dir, name));
  if (!file) {
    console.log(`  ${name}: not a vector file, ignored`);
    continue;
  }
  let report: FileReport;
  try {
    report = runFile(name, file, backend, deviations);
  } catch (error) {
    console.error(`  ${name}: runner error: ${(error as Error).stack}`);
    failed++;
    continue;
  }
  reports.push(report);
  if (!report.suite) {
    console.log(`  ${name}: ${file.cases.length} cases skipped: no suite for this file yet`);
    continue;
  }
  const nf = report.failed.length;
  passed += report.passed + report.partial + report.deviations;
  deviated += report.deviations;
  failed += nf;
  const notes = [
    report.partial ? `${report.partial} checked at frame level only (decoded facts need the fusion layer)` : '',
    report.deviations ? `${report.deviations} listed deviations` : '',
  ].filter(Boolean);
  console.log(`  ${name}: ${report.results.length - nf} passed, ${nf} failed${notes.length ? ` (${notes.join('; ')})` : ''}`);
  for (const r of report.failed) console.log(`    FAIL ${r.id}: ${r.detail}`);
  if (values.verbose) for (const r of report.results) if (r.status !== 'pass') console.log(`    ${r.status} ${r.id}: ${r.detail}`);
}
if (deviated) console.log(`${deviated} cases differ from the reference on purpose; see vectors/deviations.json`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
