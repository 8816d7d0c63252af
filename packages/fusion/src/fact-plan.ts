/**
 * Decoding DIFF / HEART frames without re-parsing text.
 *
 * The reference rebuilds the body text from the template and decodes it again. The fact that
 * comes out only changes where a value changed, so a template gets a plan the first time it is
 * rebuilt: the static fields (id, state, sensor ids, extras) read once from a probe decode, and
 * for each value its decoded form, cached until the value changes. The plan is used only when
 * the result is provably the same as decoding the rebuilt text: the probe must show every
 * sensor segment in order, and a value holding a character that would change how the text splits
 * (`|`, `:`, `\x01`) or that does not decode sends the frame down the text path, which also
 * produces the exact error.
 */
import { decode as b62Decode } from '@opensynaptic/base62';
import { type BodyFact, decodeState, decodeUnit, decompressBody, type SensorKeys, sensorKeys } from '@opensynaptic/packet/body';
import { rebuild, VALUE_MARK } from './decompose.js';

type Op = { kind: 'sensor'; n: number; keys: SensorKeys; tag: string } | { kind: 'static'; key: string; value: string };

/** How to build a template's fact without text: static fields, and each value's decoded form. */
export interface FactPlan {
  readonly id: string;
  readonly s: string;
  readonly ops: readonly Op[];
  /** Last raw value seen per value index, and what it decoded to. */
  readonly raw: (string | undefined)[];
  readonly state: string[];
  readonly unit: string[];
  readonly value: number[];
  /**
   * The last fact built, kept up to date field by field and copied for each frame: a copy of an
   * object with a stable shape is one allocation and a block copy, where building 4 keys per
   * sensor by name takes a keyed store each.
   */
  base: Record<string, string | number> | null;
}

const SENSOR_ID = /^s(\d+)_id$/;

/** The plan of a signature with `count` values, or `null` when the template must go through text. */
export function planFor(sig: string, count: number, precision: number): FactPlan | null {
  const marks = sig.split(VALUE_MARK).length - 1;
  if (count % 2 !== 0 || marks !== count) return null;
  const probeValues: string[] = [];
  for (let i = 0; i < count; i += 2) probeValues.push('Z', '0');
  let probe: BodyFact;
  try {
    probe = decompressBody(rebuild(sig, 'AAAAAAAA', probeValues), { precision });
  } catch {
    return null;
  }
  const p = probe as unknown as Record<string, unknown>;
  const ops: Op[] = [];
  // Sensor tags in order, to compare with the signature without searching `ops` per sensor.
  const sensorTags: string[] = [];
  let sensors = 0;
  for (const key of Object.keys(p)) {
    if (key === 'id' || key === 's' || key === 't_raw') continue;
    const m = SENSOR_ID.exec(key);
    if (m) {
      const n = Number(m[1]);
      // Sensors must come out numbered 1, 2, ... in segment order, one per value pair.
      if (n !== ++sensors) return null;
      ops.push({ kind: 'sensor', n, keys: sensorKeys(n), tag: p[key] as string });
      sensorTags.push(p[key] as string);
    } else if (key === 'geohash' || key === 'url' || key === 'msg') {
      ops.push({ kind: 'static', key, value: p[key] as string });
    } else if (!/^s\d+_[suv]$/.test(key)) return null;
  }
  if (sensors * 2 !== count) return null;
  // The tags must be exactly the signature's sensor segments, in order.
  const tags = sig.split('|').filter((seg) => seg.endsWith('>\x01:\x01'));
  if (tags.length !== sensors) return null;
  for (let i = 0; i < sensors; i++) if (`${sensorTags[i]}>\x01:\x01` !== tags[i]) return null;
  return {
    id: probe.id,
    s: probe.s,
    ops,
    raw: new Array<string | undefined>(count).fill(undefined),
    state: new Array<string>(sensors).fill(''),
    unit: new Array<string>(sensors).fill(''),
    value: new Array<number>(sensors).fill(0),
    base: null,
  };
}

/**
 * The fact for `values` through the fast path, or `null` when it does not apply (the caller then
 * rebuilds the text and decodes it, which yields the same fact or the exact error).
 */
export function fastFact(f: FactPlan, tRaw: number, values: readonly string[], precision: number, meta: unknown): BodyFact | null {
  if (values.length !== f.raw.length) return null;
  const raw = f.raw;
  const base = f.base;
  for (let i = 0; i < values.length; i += 2) {
    const meta = values[i]!;
    const val = values[i + 1]!;
    const k = i >> 1;
    if (raw[i] !== meta) {
      if (!cleanMeta(meta)) return null;
      const keys = sensorKeys(k + 1);
      try {
        const dot = meta.indexOf('.');
        if (dot < 0) {
          f.state[k] = 'U';
          f.unit[k] = decodeUnit(meta, keys[2]);
        } else {
          f.state[k] = decodeState(meta.slice(0, dot));
          f.unit[k] = decodeUnit(meta.slice(dot + 1), keys[2]);
        }
      } catch {
        raw[i] = undefined;
        return null;
      }
      raw[i] = meta;
      if (base !== null) {
        base[keys[1]] = f.state[k]!;
        base[keys[2]] = f.unit[k]!;
      }
    }
    if (raw[i + 1] !== val) {
      if (val.length === 0 || !cleanValue(val)) return null;
      try {
        f.value[k] = b62Decode(val, precision);
      } catch {
        raw[i + 1] = undefined;
        return null;
      }
      raw[i + 1] = val;
      if (base !== null) base[sensorKeys(k + 1)[3]] = f.value[k]!;
    }
  }
  const out = { ...(base ?? buildBase(f)) };
  out.t_raw = tRaw;
  out.__packet_meta__ = meta as string;
  return out as unknown as BodyFact;
}

/**
 * The fact of the plan's current fields, in the order the text path gives them, `__packet_meta__`
 * last (kept as `f.base`). Made by `JSON.parse`, which gives an object of any size fast
 * properties: adding a dozen keys or more by computed name turns an object into a dictionary,
 * which copies slowly; stores to keys it already has keep it fast.
 */
function buildBase(f: FactPlan): Record<string, string | number> {
  const names = ['id', 's', 't_raw'];
  for (const op of f.ops) {
    if (op.kind === 'sensor') names.push(...op.keys);
    else names.push(op.key);
  }
  names.push('__packet_meta__');
  const out = JSON.parse(`{${names.map((k) => `${JSON.stringify(k)}:null`).join(',')}}`) as Record<string, string | number>;
  out.id = f.id;
  out.s = f.s;
  for (const op of f.ops) {
    if (op.kind === 'sensor') {
      const k = op.n - 1;
      const keys = op.keys;
      out[keys[0]] = op.tag;
      out[keys[1]] = f.state[k]!;
      out[keys[2]] = f.unit[k]!;
      out[keys[3]] = f.value[k]!;
    } else out[op.key] = op.value;
  }
  f.base = out;
  return out;
}

function cleanMeta(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 124 /* | */ || c === 1) return false;
  }
  return true;
}

function cleanValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 124 /* | */ || c === 58 /* : */ || c === 1) return false;
  }
  return true;
}
