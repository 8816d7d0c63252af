import { OpenSynapticStandardizer, type SensorTuple, type StandardizeExtras } from '@opensynaptic/standardize';
import { compressFact } from '@opensynaptic/packet/body';
import type { Suite } from '../types.js';
import { Checker, referenceTime, same } from '../util.js';

/** The clock the reference recorded these cases with, unless a case gives its own. */
const VECTOR_CLOCK = 1_700_000_000;

interface StdInput {
  device_id: string;
  status: string;
  sensors: SensorTuple[];
  clock?: number;
  kwargs?: StandardizeExtras;
  'payload_switches.SensorId'?: boolean;
}

interface StdExpected {
  fact: Record<string, unknown>;
  /** Python type per key: `str`, `int`, `float`. */
  types: Record<string, string>;
  /** Body text of the fact (the `SensorId`-off cases). */
  compressed?: string;
}

/**
 * standardize.json: sensors → fact on a fresh standardizer with the case's clock and `SensorId`
 * switch. Checks every key (and their order), the Python int/float type of each value, that the
 * dropped sensors are exactly the ones reported dropped, and the compressed text where recorded.
 * The standardizer has one implementation for both backends.
 */
export const standardizeSuite: Suite = {
  kind: 'standardize',
  sniff: (f) => f.cases.some((c) => 'device_id' in c.input && 'sensors' in c.input && 'fact' in c.expected),
  run(file) {
    return file.cases.map((c) => {
      const i = c.input as unknown as StdInput;
      const e = c.expected as unknown as StdExpected;
      const k = new Checker();
      const clockMs = referenceTime.clockMs(i.clock ?? VECTOR_CLOCK);
      const std = new OpenSynapticStandardizer({ clockMs: () => clockMs, sensorId: i['payload_switches.SensorId'] ?? true });
      // The reference's t (extras and fact) is seconds, ours ms.
      const kwargs = i.kwargs && 't' in i.kwargs ? { ...i.kwargs, t: referenceTime.tMs(i.kwargs.t) } : i.kwargs;
      const wantFact = 't' in e.fact ? { ...e.fact, t: referenceTime.tMs(e.fact.t as number | null) } : e.fact;
      let report: ReturnType<OpenSynapticStandardizer['standardizeDetailed']>;
      try {
        report = std.standardizeDetailed(i.device_id, i.status, i.sensors, kwargs);
      } catch (x) {
        k.fail(`standardize threw ${(x as Error).name}: ${(x as Error).message}`);
        return k.result(c.id);
      }
      const fact = report.fact as Record<string, unknown>;
      const got = Object.keys(fact).join(',');
      const want = Object.keys(wantFact).join(',');
      if (got !== want) k.fail(`keys ${got}; expected ${want}`);
      for (const key of Object.keys(wantFact)) {
        if (!same(fact[key], wantFact[key])) k.fail(`${key}: got ${JSON.stringify(fact[key])}, expected ${JSON.stringify(wantFact[key])}`);
      }
      const valueTypes = new Map(report.sensors.map((s) => [`s${s.slot}_v`, s.valueType]));
      for (const [key, type] of Object.entries(e.types)) {
        const v = fact[key];
        const vt = valueTypes.get(key);
        const ok = type === 'str' ? typeof v === 'string' : type === 'int' ? Number.isInteger(v) && (vt === undefined || vt === 'int') : type === 'float' ? vt === 'float' : false;
        if (!ok) k.fail(`${key}: expected a Python ${type}, got ${JSON.stringify(v)}${vt ? ` (${vt})` : ''}`);
      }
      const kept = report.sensors.length;
      const expectedKept = Object.keys(e.fact).filter((key) => /^s\d+_v$/.test(key)).length;
      if (kept !== expectedKept || kept + report.dropped.length !== i.sensors.length) {
        k.fail(`${kept} sensors kept and ${report.dropped.length} dropped; expected ${expectedKept} kept of ${i.sensors.length}`);
      }
      if (e.compressed !== undefined) k.eq('compress', () => compressFact(report.fact, { nowMs: () => clockMs }), e.compressed);
      return k.result(c.id);
    });
  },
};
