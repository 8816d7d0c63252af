import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compressFact } from '@opensynaptic/packet/body';
import { OpenSynapticStandardizer, type SensorTuple, type StandardizeExtras } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const VECTORS = join(here, '../../../vectors/standardize.json');

export interface StdCase {
  id: string;
  input: {
    device_id: string;
    status: string;
    sensors: unknown[];
    clock?: number;
    kwargs?: Record<string, unknown>;
    'payload_switches.SensorId'?: boolean;
  };
  expected: { fact: Record<string, unknown>; types: Record<string, string>; compressed?: string };
}

export function loadCases(path = VECTORS): StdCase[] {
  return (JSON.parse(readFileSync(path, 'utf8')) as { cases: StdCase[] }).cases;
}

function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b));
  return a === b;
}

/** Replays one case on a fresh standardizer; returns the differences (empty when it matches). */
export function replayCase(c: StdCase): string[] {
  const problems: string[] = [];
  const clock = c.input.clock ?? 1700000000;
  const std = new OpenSynapticStandardizer({ clock: () => clock, sensorId: c.input['payload_switches.SensorId'] ?? true });
  let report: ReturnType<OpenSynapticStandardizer['standardizeDetailed']>;
  try {
    report = std.standardizeDetailed(c.input.device_id, c.input.status, c.input.sensors as SensorTuple[], c.input.kwargs as StandardizeExtras | undefined);
  } catch (e) {
    return [`threw ${(e as Error).name}: ${(e as Error).message}`];
  }
  const got = report.fact as Record<string, unknown>;
  const want = c.expected.fact;
  const gotKeys = Object.keys(got);
  const wantKeys = Object.keys(want);
  if (gotKeys.join(',') !== wantKeys.join(',')) problems.push(`keys ${gotKeys.join(',')}; expected ${wantKeys.join(',')}`);
  for (const k of wantKeys) if (!same(got[k], want[k])) problems.push(`${k}: got ${JSON.stringify(got[k])}, expected ${JSON.stringify(want[k])}`);
  const valueTypes = new Map(report.sensors.map((s) => [`s${s.slot}_v`, s.valueType]));
  for (const [k, type] of Object.entries(c.expected.types)) {
    const v = got[k];
    const ok =
      type === 'str' ? typeof v === 'string' : type === 'int' ? Number.isInteger(v) && (valueTypes.get(k) ?? 'int') === 'int' : type === 'float' ? typeof v === 'number' && valueTypes.get(k) === 'float' : false;
    if (!ok) problems.push(`${k}: expected a Python ${type}, got ${JSON.stringify(v)} (${valueTypes.get(k) ?? typeof v})`);
  }
  // Every sensor is either kept or reported dropped, once.
  const accounted = [...report.sensors.map((s) => s.index), ...report.dropped.map((d) => d.index)].sort((a, b) => a - b);
  if (accounted.join(',') !== c.input.sensors.map((_, i) => i).join(',')) problems.push(`sensors kept + dropped ${accounted.join(',')}`);
  if (c.expected.compressed !== undefined) {
    try {
      const text = compressFact(report.fact, { now: () => clock });
      if (text !== c.expected.compressed) problems.push(`compressed ${JSON.stringify(text)}, expected ${JSON.stringify(c.expected.compressed)}`);
    } catch (e) {
      problems.push(`compress threw ${(e as Error).message}`);
    }
  }
  return problems;
}
