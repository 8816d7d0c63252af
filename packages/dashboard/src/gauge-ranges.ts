import { optionError } from './errors.js';

/** A gauge's range. */
export interface GaugeRange {
  min: number;
  max: number;
}

/** Ranges for the gauges: by sensor id (any device) and by unit (the standard unit); a sensor's wins. */
export interface GaugeRanges {
  sensors?: Record<string, GaugeRange>;
  units?: Record<string, GaugeRange>;
}

/**
 * Units whose range needs no setting: percent, and `humidity` (the unit class the standardizer
 * stores a `%` reading under: relative humidity is its only unit).
 */
export const NATURAL_RANGES: Readonly<Record<string, GaugeRange>> = { '%': { min: 0, max: 100 }, humidity: { min: 0, max: 100 } };

const MAX_RANGES = 1024;

/** Checks the `gaugeRanges` option (`ERR_DASHBOARD_OPTION` naming e.g. `gaugeRanges.units.K.max`). */
export function gaugeRangesOf(input: unknown): { sensors: Record<string, GaugeRange>; units: Record<string, GaugeRange> } {
  const out = { sensors: {} as Record<string, GaugeRange>, units: { ...NATURAL_RANGES } as Record<string, GaugeRange> };
  if (input === undefined) return out;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw optionError('gaugeRanges', 'expected { sensors?, units? }');
  let n = 0;
  for (const [group, ranges] of Object.entries(input)) {
    if (group !== 'sensors' && group !== 'units') throw optionError(`gaugeRanges.${group}`, 'unknown (allowed: sensors, units)');
    if (typeof ranges !== 'object' || ranges === null || Array.isArray(ranges)) throw optionError(`gaugeRanges.${group}`, 'expected an object of { min, max } by name');
    for (const [name, r] of Object.entries(ranges as Record<string, unknown>)) {
      const key = `gaugeRanges.${group}.${name}`;
      if (++n > MAX_RANGES) throw optionError(key, `more than ${MAX_RANGES} ranges`);
      if (name.length === 0 || name.length > 256) throw optionError(key, 'a name of 1..256 characters');
      const { min, max } = (r ?? {}) as { min?: unknown; max?: unknown };
      if (typeof min !== 'number' || !Number.isFinite(min)) throw optionError(`${key}.min`, `${String(min)} is not a finite number`);
      if (typeof max !== 'number' || !Number.isFinite(max) || max <= min) throw optionError(`${key}.max`, `${String(max)} is not a finite number above min (${min})`);
      out[group][name] = { min, max };
    }
  }
  return out;
}
