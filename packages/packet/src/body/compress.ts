/**
 * Fact → body text:
 *
 * ```
 * {id}.{state}.{ts8}|{sid}>{sstate}.{unit}:{value}|...[&{geohash}|][#{b64url(url without https://)}|][@{b64url(msg)}]
 * ```
 *
 * Byte-identical to the reference for every fact it handles without error; where it would put
 * text on the wire that no receiver can read back, a `BodyTextError` is thrown instead.
 */
import { Base62RangeError, encode as b62Encode } from '@opensynaptic/base62';
import { BodyTextError, show } from './errors.js';
import { intText, pyFloatRepr, pyParseFloat } from './python-text.js';
import { base64UrlEncode, timestampToken48, utf8Encode } from './text-bytes.js';
import { DEFAULT_BODY_PRECISION, sensorKeys } from './keys.js';
import { checkSeparators, encodeState, encodeUnit, UNKNOWN_UNIT } from './units.js';

/** Text fields of a fact: a string, or a number written as Python's `str()` writes it. */
export type FactText = string | number;

/**
 * The flat record the standardizer produces. Sensors are numbered from 1 without gaps: the first
 * missing `s{i}_id` ends the list (later sensors are ignored, as by the reference).
 * `null` counts as missing everywhere.
 */
export interface FactInput {
  id: FactText;
  /** Device state; missing means `"U"`. */
  s?: FactText | null;
  /**
   * Timestamp in milliseconds since the epoch (fractions truncated). Missing means the clock.
   * The reference's compressor guesses (below 1e11 it multiplies by 1000); this one does not.
   */
  t?: number | null;
  geohash?: FactText | null;
  /** Sent without a leading `https://`, which the receiver puts back. */
  url?: string | null;
  msg?: string | null;
  [sensorText: `s${number}_${'id' | 's' | 'u'}`]: FactText | null | undefined;
  /** Numbers; also booleans, numeric strings (Python `float()` syntax) and `null` (sent as 0) as the reference takes them. */
  [sensorValue: `s${number}_v`]: number | string | boolean | null | undefined;
}

export interface CompressOptions {
  /** Decimal places of sensor values (and of non-integral unit coefficients). Default 4. */
  precision?: number;
  /**
   * Clock for a fact without `t`, in milliseconds since the epoch (fractions truncated). Default
   * `Date.now`. Replaces `now`, which took seconds and is refused (`ERR_BODY_FIELD`).
   */
  nowMs?: () => number;
  /**
   * The `SensorId` payload switch. When false no sensor is sent at all: the reference's
   * standardizer then leaves out `s{i}_id`, and its compressor stops at the first missing id.
   * Default true.
   */
  sensorId?: boolean;
}

const TWO_48 = 2 ** 48;
const TWO_64 = 2 ** 64;

/**
 * The body text of a fact. Throws `BodyTextError` for a missing `id`, wrong types, a negative or
 * non-finite `t`, a value or unit coefficient outside the wire's signed 64-bit range (the
 * reference wraps those silently), or a text containing a separator that would break the body.
 * Takes any record (a standardized fact with extras, say): every field is checked as it is read.
 */
export function compressFact(fact: FactInput | Readonly<Record<string, unknown>>, options?: CompressOptions): string {
  if (typeof fact !== 'object' || fact === null) throw new BodyTextError('ERR_BODY_FIELD', 'fact', 'expected an object');
  const precision = options?.precision ?? DEFAULT_BODY_PRECISION;
  if ((options as { now?: unknown } | undefined)?.now !== undefined) {
    throw new BodyTextError('ERR_BODY_FIELD', 'options.now', 'was a clock in seconds and is gone; pass nowMs, a clock in milliseconds (e.g. Date.now)');
  }
  if (precision !== DEFAULT_BODY_PRECISION && !(Number.isInteger(precision) && precision >= 0 && precision <= 22)) {
    throw new BodyTextError('ERR_BODY_FIELD', 'precision', `${precision} is not an integer in 0..22`);
  }
  const f = fact as unknown as Record<string, unknown>;

  const idRaw = f.id;
  if (idRaw === undefined || idRaw === null) throw new BodyTextError('ERR_BODY_FIELD', 'id', 'the device id is missing');
  const id = text(idRaw, 'id');
  checkSeparators(id, 'id', true);
  checkTemplateMarks(id, 'id', true);
  const sRaw = f.s;
  const state = encodeState(sRaw === undefined || sRaw === null ? 'U' : text(sRaw, 's'), 's');
  checkTemplateMarks(state, 's', true);
  let tRaw = f.t;
  if (tRaw === undefined || tRaw === null) tRaw = options?.nowMs ? options.nowMs() : Date.now();
  let out = `${id}.${state}.${timestampToken(tRaw)}|`;

  if (options?.sensorId !== false) {
    for (let i = 1; ; i++) {
      const keys = sensorKeys(i);
      const sidRaw = f[keys[0]];
      if (sidRaw === undefined || sidRaw === null) break;
      const sid = text(sidRaw, keys[0]);
      checkSensorId(sid, keys[0]);
      checkTemplateMarks(sid, keys[0], true);
      const ssRaw = f[keys[1]];
      const ss = encodeState(ssRaw === undefined || ssRaw === null ? 'U' : text(ssRaw, keys[1]), keys[1]);
      checkTemplateMarks(ss, keys[1], true, false);
      const uRaw = f[keys[2]];
      const unit = uRaw === undefined || uRaw === null ? UNKNOWN_UNIT : encodeUnit(text(uRaw, keys[2]), precision, keys[2]);
      checkTemplateMarks(unit, keys[2], true, false);
      out += `${sid}>${ss}.${unit}:${encodeValue(f[keys[3]], precision, keys[3])}|`;
    }
  }

  const geohash = f.geohash;
  if (geohash !== undefined && geohash !== null) {
    const g = text(geohash, 'geohash');
    checkSeparators(g, 'geohash', false);
    // A \x01 in the geohash reads back: it is the template's last mark and no value fills it.
    checkTemplateMarks(g, 'geohash', false, true);
    checkGeohashSplit(g);
    out += `&${g}|`;
  }
  const url = f.url;
  if (url !== undefined && url !== null) {
    if (typeof url !== 'string') throw new BodyTextError('ERR_BODY_FIELD', 'url', `expected a string, got ${typeof url}`);
    // Only a leading https:// is dropped: the reference removes it everywhere in the url, which
    // then comes back changed ("https://a/https://b" → "https://a/b").
    out += `#${base64(url.startsWith('https://') ? url.slice(8) : url, 'url')}|`;
  }
  const msg = f.msg;
  if (msg !== undefined && msg !== null) {
    if (typeof msg !== 'string') throw new BodyTextError('ERR_BODY_FIELD', 'msg', `expected a string, got ${typeof msg}`);
    out += `@${base64(msg, 'msg')}`;
  }
  return out;
}

/**
 * The fusion receiver rebuilds DIFF and HEART frames from a template: the FULL body with each
 * value replaced by `\x01` and the timestamp token by `{TS}`, then those filled in again. A `\x01`
 * in the header or a sensor segment (or in a value) takes a value meant for a later mark, and a
 * `{TS}` in the header, a sensor id or the geohash is replaced by the token, so the FULL frame
 * decodes and every later DIFF and HEART fails or comes back changed. Throws for those, naming
 * the field: `\x01` when `mark`, `{TS}` when `tsMark`.
 */
function checkTemplateMarks(s: string, field: string, mark: boolean, tsMark = mark): void {
  if (mark) {
    const at = s.indexOf('\x01');
    if (at >= 0) {
      throw new BodyTextError(
        'ERR_BODY_SEPARATOR',
        field,
        `${show(s)} contains \\x01 at ${at}, the fusion template's value mark; DIFF and HEART frames could not be rebuilt from it`,
      );
    }
  }
  if (tsMark) {
    const at = s.indexOf('{TS}');
    if (at >= 0) {
      throw new BodyTextError(
        'ERR_BODY_SEPARATOR',
        field,
        `${show(s)} contains "{TS}" at ${at}, the fusion template's timestamp mark; DIFF and HEART frames would read it back as the timestamp token`,
      );
    }
  }
}

/**
 * The fusion sender and receiver cut a segment holding '>' and ':' as a sensor, at its first '>'
 * and last ':'. A geohash whose ':'s all come before its first '>' cannot be cut: the sender
 * refuses the body and a receiver learns no template from it, so no DIFF or HEART follows.
 */
function checkGeohashSplit(g: string): void {
  const gt = g.indexOf('>');
  if (gt < 0) return;
  const colon = g.lastIndexOf(':');
  if (colon >= 0 && colon < gt) {
    throw new BodyTextError(
      'ERR_BODY_SEPARATOR',
      'geohash',
      `${show(g)} has its last ':' (at ${colon}) before a '>' (at ${gt}); the fusion template could not cut the segment`,
    );
  }
  // Cut as a sensor, everything before the last ':' stays in the template, where a \x01 takes
  // the value meant for the template's next mark (">\x01:" comes back as ">:\x01").
  const mark = colon < 0 ? -1 : g.indexOf('\x01');
  if (mark >= 0 && mark < colon) {
    throw new BodyTextError(
      'ERR_BODY_SEPARATOR',
      'geohash',
      `${show(g)} contains \\x01 at ${mark}, before its last ':' (at ${colon}): the fusion template cuts it as a sensor, and DIFF and HEART frames would put a value in the mark's place`,
    );
  }
}

/** A sensor id ends at '>'; a leading '&' or '#' would make the part read as a geohash or url. */
function checkSensorId(sid: string, field: string): void {
  const c0 = sid.charCodeAt(0);
  if (c0 === 38 || c0 === 35) {
    throw new BodyTextError('ERR_BODY_SEPARATOR', field, `${show(sid)} starts with '${sid[0]}', which marks a geohash or url part`);
  }
  for (let i = 0; i < sid.length; i++) {
    const c = sid.charCodeAt(i);
    if (c === 124 || c === 64 || c === 62) {
      throw new BodyTextError('ERR_BODY_SEPARATOR', field, `${show(sid)} contains '${sid[i]}' at ${i}, a body separator; the text could not be read back`);
    }
  }
}

function text(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) ? intText(v) : pyFloatRepr(v);
  if (typeof v === 'bigint') return v.toString();
  throw new BodyTextError('ERR_BODY_FIELD', field, `expected a string or a number, got ${typeof v}`);
}

/**
 * A sensor value as the body carries it: Base62 of the value × 10^precision. Takes what a fact's
 * `s{i}_v` may hold; throws `BodyTextError` (naming `field`) for text that is not a number, a
 * non-finite value, or one outside the wire's signed 64-bit range.
 */
export function encodeValue(v: unknown, precision: number, field: string): string {
  let x: number;
  if (typeof v === 'number') x = v;
  else if (v === undefined || v === null) return '0'; // the reference sends a missing value as 0
  else if (typeof v === 'boolean') x = v ? 1 : 0;
  else if (typeof v === 'string') {
    const parsed = pyParseFloat(v);
    if (parsed === undefined) throw new BodyTextError('ERR_BODY_FIELD', field, `${show(v)} is not a number`);
    x = parsed;
  } else if (typeof v === 'bigint') x = Number(v);
  else throw new BodyTextError('ERR_BODY_FIELD', field, `expected a number, got ${typeof v}`);
  if (!Number.isFinite(x)) throw new BodyTextError('ERR_BODY_RANGE', field, `${x} is not a finite number`);
  try {
    return b62Encode(x, precision);
  } catch (e) {
    if (e instanceof Base62RangeError) {
      throw new BodyTextError('ERR_BODY_RANGE', field, `${x} × 10^${precision} is outside the wire's signed 64-bit range`, { cause: e });
    }
    throw e;
  }
}

let lastMs = Number.NaN;
let lastToken = '';

/** A fact's `t` (ms) → the 8-character token of its low 48 bits. */
export function timestampToken(t: unknown): string {
  if (typeof t !== 'number') throw new BodyTextError('ERR_BODY_FIELD', 't', `expected a number, got ${typeof t}`);
  if (!Number.isFinite(t)) throw new BodyTextError('ERR_BODY_RANGE', 't', `${t} is not a finite number`);
  const ms = Math.trunc(t);
  if (ms === lastMs) return lastToken;
  if (ms < 0) throw new BodyTextError('ERR_BODY_RANGE', 't', `${t} is negative`);
  if (ms >= TWO_64) throw new BodyTextError('ERR_BODY_RANGE', 't', `${t} ms does not fit 64 bits`);
  const token = timestampToken48(ms % TWO_48);
  lastMs = ms;
  lastToken = token;
  return token;
}

function base64(s: string, field: string): string {
  const bytes = utf8Encode(s);
  if (!bytes) throw new BodyTextError('ERR_BODY_ENCODING', field, 'contains a lone surrogate, which has no UTF-8 form');
  return base64UrlEncode(bytes);
}
