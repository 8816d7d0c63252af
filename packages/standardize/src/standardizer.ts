/**
 * Sensor readings → a fact: every value converted to the standard unit of its physical quantity and
 * the unit named by that quantity (`21.5 kPa` → `21500 pressure`), as the reference's
 * `OpenSynapticStandardizer.standardize` builds it for the compressor.
 */
import { formatG, pyFloatRepr, pyParseFloat, sensorKeys } from '@opensynaptic/packet/body';
import {
  describe,
  InvalidSensorError,
  InvalidValueError,
  type StandardizeError,
  StandardizeInputError,
  UnitRangeError,
  UnknownUnitError,
} from './errors.js';
import { pyNumberText, pyRound } from './python-number.js';
import { defaultUnitLibrary, type ResolvedUnit, type ResolveFailure, type UnitLibrary } from './unit-library.js';

/** A reading: a number, or what Python's `float()` takes (numeric text, booleans). */
export type SensorValue = number | string | boolean | bigint | null;

/** One element of a list unit. Numbers, booleans and null are looked up as Python's `str()` writes them. */
export type UnitPart = string | number | boolean | null;

/**
 * `[id, state, value, unit]`. A list unit (`['km', 'h']`) scales the value by its first element
 * only; the others name the denominators (`length/3600time`).
 */
export type SensorTuple = readonly [id: string | number, state: string | number | null, value: SensorValue, unit: string | readonly UnitPart[]];

/**
 * Extra fact fields, copied after `id`, `s` and `t`: `t` (ms since the epoch) replaces the clock
 * reading (`null` leaves the timestamp to the compressor's clock, as in the reference; the
 * reference's `t` is seconds); `geohash`, `url` and `msg` travel
 * in the body text; other fields ride along in the fact. `undefined` fields are left out. Sensor
 * keys (`s1_v`...), `id`, `s` and `__proto__` are refused.
 */
export interface StandardizeExtras {
  /** Milliseconds since the epoch (not seconds as in the reference). */
  t?: number | null | undefined;
  geohash?: string | undefined;
  url?: string | undefined;
  msg?: string | undefined;
  [field: string]: unknown;
}

/**
 * The standardized record: `id`, `s`, `t`, the extras, then per kept sensor n (numbered from 1
 * without gaps) `s{n}_v`, `s{n}_u`, `s{n}_id` (only with the `SensorId` switch on) and `s{n}_s`.
 */
export interface StandardizedFact {
  id: string | number;
  s: string | number | null;
  /**
   * Milliseconds since the epoch: the clock truncated to whole seconds (the reference's
   * `int(time.time())`, so frames carry the same timestamps), unless given in the extras. The
   * reference's fact holds the same instant in seconds.
   */
  t: number | null;
  geohash?: string;
  url?: string;
  msg?: string;
  [sensorText: `s${number}_${'id' | 's' | 'u'}`]: string | number | null | undefined;
  [sensorValue: `s${number}_v`]: number | undefined;
  [field: string]: unknown;
}

/** A sensor that made it into the fact. */
export interface StandardizedSensor {
  /** Position in the input list. */
  readonly index: number;
  /** Its number n in the fact (`s{n}_v`). */
  readonly slot: number;
  readonly id: string | number;
  readonly state: string | number | null;
  readonly value: number;
  /** The Python type the reference gives the value: `int` when the converted value is integral. */
  readonly valueType: 'int' | 'float';
  /** The unit text (`pressure`, `length/3600time`). */
  readonly unit: string;
  /** Each unit of the label (one, or one per list element). */
  readonly units: readonly ResolvedUnit[];
}

/** A sensor left out of the fact, and why. */
export interface DroppedSensor {
  /** Position in the input list. */
  readonly index: number;
  /** The sensor as given. */
  readonly sensor: unknown;
  readonly error: StandardizeError;
}

/** `standardizeDetailed`'s result. */
export interface StandardizeReport {
  readonly fact: StandardizedFact;
  readonly sensors: readonly StandardizedSensor[];
  readonly dropped: readonly DroppedSensor[];
}

export interface StandardizerOptions {
  /** Units to resolve against. Default: the shared, read-only built-in library. */
  library?: UnitLibrary;
  /**
   * The clock, in milliseconds since the epoch (default `Date.now`); `t` is its reading truncated
   * to whole seconds, in ms. Replaces `clock` (seconds), which is refused so that a seconds clock
   * is never read as milliseconds.
   */
  clockMs?: () => number;
  /** The `SensorId` payload switch: include `s{n}_id`. Default true (the reference's shipped setting). */
  sensorId?: boolean;
  /** Decimals kept on non-integral values (the reference's `engine_settings.precision`). Default 4. */
  precision?: number;
  /**
   * What to do with a sensor that cannot be standardized: `drop` it as the reference does (the
   * default; `standardizeDetailed` reports it) or `throw` its error.
   */
  invalidSensors?: 'drop' | 'throw';
  /** Unit labels whose resolution (or failure) is remembered; the oldest is forgotten first. Default 1024; 0 turns caching off. */
  cacheSize?: number;
  /** Longest sensor list accepted; a longer one is refused as a whole (`ERR_STD_INPUT`). Default 4096. */
  maxSensors?: number;
  /** Longest unit label looked up, in UTF-16 units; longer ones are unknown units. Default 256. */
  maxUnitLength?: number;
  /** Most elements in a list unit; a longer list drops the sensor. Default 32. */
  maxUnitParts?: number;
}

/** The defaults of `StandardizerOptions`. */
export const STANDARDIZER_DEFAULTS = Object.freeze({
  sensorId: true,
  precision: 4,
  invalidSensors: 'drop' as const,
  cacheSize: 1024,
  maxSensors: 4096,
  maxUnitLength: 256,
  maxUnitParts: 32,
});

const SENSOR_KEY = /^s\d+_(?:id|s|u|v)$/;

function wholeNumberOption(v: number | undefined, fallback: number, name: string, max: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 0 || v > max) throw new StandardizeInputError(`options.${name}`, `${describe(v)} is not an integer in 0..${max}`);
  return v;
}

/**
 * A finite reading `x` in `unit`'s standard unit, as the standardizer writes it: `x × factor +
 * offset`, kept whole when integral, else rounded half-even to `precision` places as Python's
 * `round` does. Not finite when the conversion overflows (the standardizer refuses those).
 */
export function standardValue(x: number, unit: ResolvedUnit, precision: number): number {
  const raw = x * unit.factor + unit.offset;
  if (!Number.isFinite(raw)) return raw;
  return Number.isInteger(raw) ? raw + 0 : pyRound(raw, precision);
}

/**
 * The UCUM standardizer. One instance keeps its own resolution cache; the unit library may be
 * shared (the cache notices when it changes).
 *
 * ```ts
 * const std = new OpenSynapticStandardizer({ clockMs: Date.now });
 * std.standardize('DEV1', 'ONLINE', [['T1', 'OK', 21.5, 'Cel'], ['P1', 'OK', 101.3, 'kPa']]);
 * // { id: 'DEV1', s: 'ONLINE', t: 1700000000000, s1_v: 294.65, s1_u: 'temperature', s1_id: 'T1', s1_s: 'OK',
 * //   s2_v: 101300, s2_u: 'pressure', s2_id: 'P1', s2_s: 'OK' }
 * ```
 */
export class OpenSynapticStandardizer {
  readonly library: UnitLibrary;
  readonly sensorId: boolean;
  readonly precision: number;
  readonly invalidSensors: 'drop' | 'throw';
  readonly cacheSize: number;
  readonly maxSensors: number;
  readonly maxUnitLength: number;
  readonly maxUnitParts: number;
  readonly #clock: () => number;
  readonly #cache = new Map<string, ResolvedUnit | ResolveFailure>();
  #cacheVersion = -1;

  constructor(options: StandardizerOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new StandardizeInputError('options', `expected an object, got ${describe(options)}`);
    const d = STANDARDIZER_DEFAULTS;
    this.library = options.library ?? defaultUnitLibrary();
    if (typeof (this.library as { tryResolve?: unknown }).tryResolve !== 'function') throw new StandardizeInputError('options.library', 'expected a UnitLibrary');
    if ((options as { clock?: unknown }).clock !== undefined) {
      throw new StandardizeInputError('options.clock', 'was a clock in seconds and is gone; pass clockMs, a clock in milliseconds (e.g. Date.now)');
    }
    if (options.clockMs !== undefined && typeof options.clockMs !== 'function') throw new StandardizeInputError('options.clockMs', 'expected a function returning milliseconds');
    this.#clock = options.clockMs ?? Date.now;
    if (options.sensorId !== undefined && typeof options.sensorId !== 'boolean') throw new StandardizeInputError('options.sensorId', `expected a boolean, got ${describe(options.sensorId)}`);
    this.sensorId = options.sensorId ?? d.sensorId;
    this.precision = wholeNumberOption(options.precision, d.precision, 'precision', 22);
    const mode = options.invalidSensors ?? d.invalidSensors;
    if (mode !== 'drop' && mode !== 'throw') throw new StandardizeInputError('options.invalidSensors', `expected "drop" or "throw", got ${describe(mode)}`);
    this.invalidSensors = mode;
    this.cacheSize = wholeNumberOption(options.cacheSize, d.cacheSize, 'cacheSize', 2 ** 24);
    this.maxSensors = wholeNumberOption(options.maxSensors, d.maxSensors, 'maxSensors', 2 ** 24);
    this.maxUnitLength = wholeNumberOption(options.maxUnitLength, d.maxUnitLength, 'maxUnitLength', 2 ** 24);
    this.maxUnitParts = wholeNumberOption(options.maxUnitParts, d.maxUnitParts, 'maxUnitParts', 2 ** 16);
  }

  /**
   * The fact for one reading of a device. Sensors that cannot be standardized are left out (their
   * numbering stays contiguous) or, with `invalidSensors: 'throw'`, throw their error. Throws
   * `StandardizeInputError` for a call it refuses as a whole.
   */
  standardize(deviceId: string | number, status: string | number | null, sensors: readonly SensorTuple[], extras?: StandardizeExtras): StandardizedFact {
    return this.#run(deviceId, status, sensors, extras, null);
  }

  /** `standardize`, also reporting each kept sensor (with its value's int/float type) and each dropped one with its error. */
  standardizeDetailed(deviceId: string | number, status: string | number | null, sensors: readonly SensorTuple[], extras?: StandardizeExtras): StandardizeReport {
    const kept: StandardizedSensor[] = [];
    const dropped: DroppedSensor[] = [];
    const fact = this.#run(deviceId, status, sensors, extras, { sensors: kept, dropped });
    return { fact, sensors: kept, dropped };
  }

  /** Resolves one unit label through this standardizer's cache. Throws `UnknownUnitError` or `UnitRangeError`. */
  resolveUnit(label: string): ResolvedUnit {
    if (typeof label !== 'string') throw new UnknownUnitError(describe(label), 'not-text');
    this.#syncCache();
    const r = this.#resolve(label);
    if ('fail' in r) throw failureError(label, r);
    return r;
  }

  /** Forgets every cached resolution. */
  clearCache(): void {
    this.#cache.clear();
  }

  #syncCache(): void {
    if (this.#cacheVersion !== this.library.version) {
      this.#cache.clear();
      this.#cacheVersion = this.library.version;
    }
  }

  #resolve(label: string): ResolvedUnit | ResolveFailure {
    if (label.length > this.maxUnitLength) return TOO_LONG;
    const hit = this.#cache.get(label);
    if (hit !== undefined) return hit;
    const r = this.library.tryResolve(label);
    if (this.cacheSize > 0) {
      if (this.#cache.size >= this.cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(label, r);
    }
    return r;
  }

  #run(
    deviceId: unknown,
    status: unknown,
    sensorsIn: unknown,
    extras: unknown,
    report: { sensors: StandardizedSensor[]; dropped: DroppedSensor[] } | null,
  ): StandardizedFact {
    if (!((typeof deviceId === 'string' && deviceId !== '') || (typeof deviceId === 'number' && Number.isFinite(deviceId)))) {
      throw new StandardizeInputError('deviceId', `expected a non-empty string or a finite number, got ${describe(deviceId)}`);
    }
    if (!(typeof status === 'string' || (typeof status === 'number' && Number.isFinite(status)) || status === null)) {
      throw new StandardizeInputError('status', `expected a string, a finite number or null, got ${describe(status)}`);
    }
    const sensors = this.#sensorList(sensorsIn);
    const fact: StandardizedFact = { id: deviceId, s: status, t: 0 };
    const tGiven = this.#copyExtras(fact, extras);
    if (!tGiven) {
      const now = this.#clock();
      if (typeof now !== 'number' || !Number.isFinite(now)) throw new StandardizeInputError('clockMs', `returned ${describe(now)}, not a finite number of milliseconds`);
      // Whole seconds, as the reference's int(time.time()): the same instants go on the wire.
      fact.t = Math.trunc(now / 1000) * 1000 + 0;
    }
    this.#syncCache();

    const precision = this.precision;
    const withId = this.sensorId;
    let slot = 0;
    for (let index = 0; index < sensors.length; index++) {
      const sensor = sensors[index];
      if (!Array.isArray(sensor) || sensor.length !== 4) {
        this.#drop(report, index, sensor, () => new InvalidSensorError(index, `expected [id, state, value, unit], got ${describe(sensor)}`));
        continue;
      }
      const tuple = sensor as unknown[];
      const sid = tuple[0];
      const state = tuple[1];
      const rawValue = tuple[2];
      const unitRaw = tuple[3];
      if (withId && !(typeof sid === 'string' || (typeof sid === 'number' && Number.isFinite(sid)))) {
        this.#drop(report, index, sensor, () => new InvalidSensorError(index, `the id must be a string or a finite number, got ${describe(sid)}`));
        continue;
      }
      if (!(typeof state === 'string' || (typeof state === 'number' && Number.isFinite(state)) || state === null)) {
        this.#drop(report, index, sensor, () => new InvalidSensorError(index, `the state must be a string, a finite number or null, got ${describe(state)}`));
        continue;
      }

      // Units first, then the value: the reference resolves every unit before converting the value.
      let first: ResolvedUnit;
      let unitText: string;
      let units: ResolvedUnit[] | null = null;
      if (typeof unitRaw === 'string') {
        const r = this.#resolve(unitRaw);
        if ('fail' in r) {
          this.#drop(report, index, sensor, () => failureError(unitRaw, r));
          continue;
        }
        first = r;
        unitText = r.attribute;
        if (report) units = [r];
      } else if (Array.isArray(unitRaw)) {
        if (unitRaw.length === 0 || unitRaw.length > this.maxUnitParts) {
          const n = unitRaw.length;
          this.#drop(report, index, sensor, () => new InvalidSensorError(index, n === 0 ? 'the unit list is empty' : `the unit list has ${n} elements, more than maxUnitParts (${this.maxUnitParts})`));
          continue;
        }
        const laws: ResolvedUnit[] = [];
        let failed: (() => StandardizeError) | null = null;
        for (const part of unitRaw) {
          const label = partText(part);
          if (label === undefined) {
            failed ??= () => new UnknownUnitError(describe(part), 'not-text');
            continue;
          }
          const r = this.#resolve(label);
          if ('fail' in r) failed ??= () => failureError(label, r);
          else laws.push(r);
        }
        if (failed) {
          this.#drop(report, index, sensor, failed);
          continue;
        }
        first = laws[0]!;
        unitText = listUnitText(laws);
        units = laws;
      } else {
        this.#drop(report, index, sensor, () => new InvalidSensorError(index, `the unit must be a string or a list, got ${describe(unitRaw)}`));
        continue;
      }

      const x = toNumber(rawValue);
      if (x === undefined) {
        this.#drop(report, index, sensor, () => new InvalidValueError('ERR_STD_INVALID_VALUE', index, rawValue, `${describe(rawValue)} is not a number`, sid));
        continue;
      }
      if (!Number.isFinite(x)) {
        this.#drop(report, index, sensor, () => new InvalidValueError('ERR_STD_VALUE_RANGE', index, rawValue, `${describe(rawValue)} is not a finite number`, sid));
        continue;
      }
      const value = standardValue(x, first, precision);
      if (!Number.isFinite(value)) {
        this.#drop(report, index, sensor, () => new InvalidValueError('ERR_STD_VALUE_RANGE', index, rawValue, `${x} × ${first.factor} + ${first.offset} overflows`, sid));
        continue;
      }

      slot++;
      // The body codec's keys ([id, s, u, v]), written in the reference's order (v, u, id, s):
      // the fact's key order is part of its output (JSON of the fact, the vectors).
      const keys = sensorKeys(slot);
      fact[keys[3]] = value;
      fact[keys[2]] = unitText;
      if (withId) fact[keys[0]] = sid;
      fact[keys[1]] = state;
      report?.sensors.push({
        index,
        slot,
        id: sid as string | number,
        state: state as string | number | null,
        value,
        // The reference's type of the converted value, before rounding.
        valueType: Number.isInteger(x * first.factor + first.offset) ? 'int' : 'float',
        unit: unitText,
        units: units ?? [first],
      });
    }
    return fact;
  }

  #drop(report: { dropped: DroppedSensor[] } | null, index: number, sensor: unknown, error: () => StandardizeError): void {
    if (this.invalidSensors === 'throw') throw error();
    report?.dropped.push({ index, sensor, error: error() });
  }

  #sensorList(sensors: unknown): readonly unknown[] {
    if (Array.isArray(sensors)) {
      if (sensors.length > this.maxSensors) throw new StandardizeInputError('sensors', `${sensors.length} sensors, more than maxSensors (${this.maxSensors})`);
      return sensors;
    }
    // Other iterables (a Set, a generator) are read up to the limit; text is not a sensor list.
    if (typeof sensors === 'object' && sensors !== null && typeof (sensors as Iterable<unknown>)[Symbol.iterator] === 'function') {
      const out: unknown[] = [];
      for (const s of sensors as Iterable<unknown>) {
        if (out.length === this.maxSensors) throw new StandardizeInputError('sensors', `more than maxSensors (${this.maxSensors}) sensors`);
        out.push(s);
      }
      return out;
    }
    throw new StandardizeInputError('sensors', `expected a list of [id, state, value, unit], got ${describe(sensors)}`);
  }

  /** Copies the extras into the fact; true when they give `t`. */
  #copyExtras(fact: StandardizedFact, extras: unknown): boolean {
    if (extras === undefined || extras === null) return false;
    if (typeof extras !== 'object' || Array.isArray(extras)) throw new StandardizeInputError('extras', `expected an object, got ${describe(extras)}`);
    let tGiven = false;
    for (const [key, v] of Object.entries(extras)) {
      if (v === undefined) continue;
      if (key === 'id' || key === 's') throw new StandardizeInputError(`extras.${key}`, `pass it as the ${key === 'id' ? 'deviceId' : 'status'} argument`);
      if (key === '__proto__' || SENSOR_KEY.test(key)) throw new StandardizeInputError(`extras.${key}`, 'this key is reserved for sensors');
      if (key === 't') {
        if (v !== null && !(typeof v === 'number' && Number.isFinite(v))) throw new StandardizeInputError('extras.t', `expected a finite number or null, got ${describe(v)}`);
        tGiven = true;
      }
      fact[key] = v;
    }
    return tGiven;
  }
}

const TOO_LONG: ResolveFailure = Object.freeze({ fail: 'unknown', reason: 'too-long' });

function failureError(label: string, r: ResolveFailure): StandardizeError {
  return r.fail === 'range' ? new UnitRangeError(label, r.factor) : new UnknownUnitError(label, r.reason);
}

/** A list element as the reference looks it up (`str(u)`); `undefined` for anything else. */
function partText(part: unknown): string | undefined {
  if (typeof part === 'string') return part;
  if (typeof part === 'number') return pyNumberText(part, pyFloatRepr);
  if (typeof part === 'boolean') return part ? 'True' : 'False';
  if (part === null) return 'None';
  return undefined;
}

/** A value as Python's `float()` takes it (NaN and infinities included); `undefined` where it raises. */
function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return pyParseFloat(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/**
 * The unit text of a list unit: the first unit's attribute, with a count when later units share it
 * (their factors are dropped), then `/{factor:g}{attribute}` for each other unit (factor omitted
 * when exactly 1, power not shown).
 */
function listUnitText(laws: readonly ResolvedUnit[]): string {
  const head = laws[0]!.attribute;
  let count = 1;
  let den = '';
  for (let i = 1; i < laws.length; i++) {
    const l = laws[i]!;
    if (l.attribute === head) count++;
    else den += `/${l.factor !== 1 ? formatG(l.factor) : ''}${l.attribute}`;
  }
  return count > 1 ? `${head}${count}${den}` : `${head}${den}`;
}
