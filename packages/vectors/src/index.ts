import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { authSuite } from './suites/auth.js';
import { base62Suite } from './suites/base62.js';
import { cmdSuite } from './suites/cmd.js';
import { compressSuite } from './suites/compress.js';
import { crcSuite } from './suites/crc.js';
import { fusionSuite } from './suites/fusion.js';
import { handshakeSuite } from './suites/handshake.js';
import { packetSuite } from './suites/packet.js';
import { pipelineSuite } from './suites/pipeline.js';
import { securitySuite } from './suites/security.js';
import { standardizeSuite } from './suites/standardize.js';
import type { BackendName, CaseResult, Suite, VectorFile } from './types.js';

export type { BackendName, CaseResult, Suite, VectorCase, VectorFile } from './types.js';

/** Every suite this runner knows. */
export const SUITES: readonly Suite[] = [cmdSuite, base62Suite, crcSuite, securitySuite, packetSuite, compressSuite, fusionSuite, standardizeSuite, handshakeSuite, pipelineSuite, authSuite];

/** The repository's `vectors/` directory. */
export const DEFAULT_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../vectors');

/** A listed deviation: a case we knowingly do not match, and why. */
export interface Deviation {
  file: string;
  ids: string[];
  reference: string;
  ours: string;
  why: string;
}

/** Reads `deviations.json` of a vectors directory (falls back to the repository's list). */
export function loadDeviations(dir: string): Map<string, Deviation> {
  const own = join(dir, 'deviations.json');
  const path = existsSync(own) ? own : join(DEFAULT_DIR, 'deviations.json');
  const map = new Map<string, Deviation>();
  if (!existsSync(path)) return map;
  const list = (JSON.parse(readFileSync(path, 'utf8')) as { deviations: Deviation[] }).deviations;
  for (const d of list) for (const id of d.ids) map.set(`${d.file}#${id}`, d);
  return map;
}

/**
 * Which suite a file belongs to: by name (`base62.json`, `base62-extra.json`,
 * `base62.local.json`), else by the shape of its cases.
 */
export function suiteFor(name: string, file: VectorFile): Suite | undefined {
  const stem = basename(name, '.json');
  return SUITES.find((s) => stem === s.kind || stem.startsWith(`${s.kind}-`) || stem.startsWith(`${s.kind}.`)) ?? SUITES.find((s) => s.sniff(file));
}

/** Kind of a file for matching deviations: the suite kind plus `.json` (the reference's name). */
export function deviationFileName(suite: Suite): string {
  return `${suite.kind}.json`;
}

export interface FileReport {
  name: string;
  suite: string | null;
  results: CaseResult[];
  /** Results after applying deviations. */
  passed: number;
  partial: number;
  deviations: number;
  failed: CaseResult[];
}

/** Loads one vector file; `null` when it is not a vector file. */
export function readVectorFile(path: string): VectorFile | null {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
  return data && typeof data === 'object' && Array.isArray((data as VectorFile).cases) ? (data as VectorFile) : null;
}

/** Runs one file against a backend, folding in the deviations list. */
export function runFile(name: string, file: VectorFile, backend: BackendName, deviations: Map<string, Deviation>): FileReport {
  const suite = suiteFor(name, file);
  if (!suite) return { name, suite: null, results: [], passed: 0, partial: 0, deviations: 0, failed: [] };
  const results = suite.run(file, backend);
  const report: FileReport = { name, suite: suite.kind, results, passed: 0, partial: 0, deviations: 0, failed: [] };
  for (const r of results) {
    const listed = deviations.get(`${deviationFileName(suite)}#${r.id}`) ?? deviations.get(`${name}#${r.id}`);
    if (r.status === 'fail') {
      if (listed) report.deviations++;
      else report.failed.push(r);
    } else if (listed) {
      // A listed case that now matches means the list is stale: fail so it gets removed.
      report.failed.push({ id: r.id, status: 'fail', detail: 'listed in deviations.json but now matches the reference; remove it from the list' });
    } else if (r.status === 'partial') report.partial++;
    else report.passed++;
  }
  return report;
}

/** Every `*.json` vector file of a directory (sorted), except the deviations list. */
export function vectorFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'deviations.json')
    .sort();
}
