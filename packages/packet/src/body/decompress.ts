/**
 * Body text → fact, as the reference receiver reports it (QUIRKS 14, 15): states mapped back and
 * upper-cased, units mapped back with their coefficient quirks, `https://` put back on the url.
 * Text the reference cannot decode either (it raises an internal TypeError) gets a
 * `BodyTextError` naming the part at fault.
 */
import { Base62RangeError, decode as b62Decode, InvalidBase62Error } from '@opensynaptic/base62';
import { BodyTextError, BodyTooLargeError, show } from './errors.js';
import { DEFAULT_BODY_PRECISION, DEFAULT_MAX_BODY_SIZE, sensorKeys } from './keys.js';
import { B64URL_VALUES, base64UrlDecode, utf8DecodeLossy, utf8DecodeStrict, utf8Length } from './text-bytes.js';
import { decodeState, decodeUnit } from './units.js';

/**
 * A decompressed fact. Sensor values are numbers (the reference always reports floats there;
 * `t_raw` is an integer: JavaScript has one number type for both). `t_raw` is the 48-bit
 * timestamp of the body, normally milliseconds.
 */
export interface BodyFact {
  id: string;
  s: string;
  t_raw: number;
  geohash?: string;
  url?: string;
  msg?: string;
  [sensorText: `s${number}_${'id' | 's' | 'u'}`]: string;
  [sensorValue: `s${number}_v`]: number;
}

export interface DecompressOptions {
  /** Decimal places of sensor values. Default 4. */
  precision?: number;
  /**
   * Largest body accepted, in UTF-8 bytes (`Infinity`: no limit). Longer text is refused with
   * `BodyTooLargeError` before it is read (or, for bytes, decoded). Default 65,507
   * (`DEFAULT_MAX_BODY_SIZE`).
   */
  maxBodySize?: number;
}

/**
 * `maxBodySize` checked as an option (a positive integer or `Infinity`; `undefined` is the
 * default). Throws `BodyTextError` (`ERR_BODY_FIELD`) naming `field` otherwise.
 */
export function bodySizeLimit(value: number | undefined, field = 'maxBodySize'): number {
  if (value === undefined) return DEFAULT_MAX_BODY_SIZE;
  if (value === Number.POSITIVE_INFINITY || (Number.isSafeInteger(value) && value > 0)) return value;
  throw new BodyTextError('ERR_BODY_FIELD', field, `${String(value)} is not a positive integer (bytes) or Infinity`);
}

/**
 * Throws `BodyTooLargeError` when body text (a string, or its UTF-8 bytes) is longer than
 * `limit` UTF-8 bytes. Constant time for bytes and for strings far from the limit; otherwise it
 * counts the string's UTF-8 bytes (once).
 */
export function checkBodySize(body: string | Uint8Array, limit: number): void {
  const n = body.length;
  // UTF-8 takes 1 to 3 bytes per UTF-16 unit: count only when the limit falls in between.
  if (typeof body !== 'string' || n > limit) {
    if (n > limit) throw new BodyTooLargeError(n, limit);
    return;
  }
  if (n * 3 <= limit) return;
  const size = utf8Length(body);
  if (size > limit) throw new BodyTooLargeError(size, limit);
}

/**
 * Decodes body text (a string, or UTF-8 bytes whose invalid sequences are dropped as the
 * reference drops them). Throws `BodyTooLargeError` above `maxBodySize`, and `BodyTextError` for
 * empty or malformed text: a header that is
 * not exactly `id.state.ts8` (a device id or state containing '.'), a bad timestamp token, a
 * sensor value that is not Base62 within 64 bits, a url or msg that is not base64url of UTF-8.
 * Parts that are neither sensors nor extras are skipped, as by the reference.
 */
export function decompressBody(input: string | Uint8Array, options?: DecompressOptions): BodyFact {
  if (typeof input === 'string' || input instanceof Uint8Array) checkBodySize(input, bodySizeLimit(options?.maxBodySize));
  let text: string;
  if (typeof input === 'string') text = input;
  else if (input instanceof Uint8Array) text = utf8DecodeLossy(input);
  else throw new BodyTextError('ERR_BODY_FIELD', 'body', 'expected a string or a Uint8Array');
  const precision = options?.precision ?? DEFAULT_BODY_PRECISION;
  if (precision !== DEFAULT_BODY_PRECISION && !(Number.isInteger(precision) && precision >= 0 && precision <= 22)) {
    throw new BodyTextError('ERR_BODY_FIELD', 'precision', `${precision} is not an integer in 0..22`);
  }
  if (text.length === 0) throw new BodyTextError('ERR_BODY_SYNTAX', 'body', 'the body text is empty');

  // The msg is last and runs to the end of the text (a rebuilt DIFF/HEART text adds a '|').
  let end = text.length;
  const at = text.indexOf('|@');
  if (at >= 0) end = at + 1;

  let bar = text.indexOf('|');
  if (bar < 0) bar = end;
  const d1 = text.indexOf('.');
  const d2 = d1 < 0 || d1 > bar ? -1 : text.indexOf('.', d1 + 1);
  if (d2 < 0 || d2 > bar) {
    throw new BodyTextError('ERR_BODY_SYNTAX', 'header', `${show(text.slice(0, bar))} is not "id.state.timestamp"`);
  }
  const d3 = text.indexOf('.', d2 + 1);
  if (d3 >= 0 && d3 < bar) {
    throw new BodyTextError(
      'ERR_BODY_SYNTAX',
      'header',
      `${show(text.slice(0, bar))} has more than three '.'-separated parts (a device id or state containing '.')`,
    );
  }
  const fact = {
    id: text.slice(0, d1),
    s: decodeState(text.slice(d1 + 1, d2)),
    t_raw: decodeToken(text, d2 + 1, bar),
  } as BodyFact;
  const out = fact as unknown as Record<string, string | number>;

  let n = 0;
  let pos = bar + 1;
  while (pos < end) {
    let next = text.indexOf('|', pos);
    if (next < 0 || next > end) next = end;
    if (next > pos) {
      const c0 = text.charCodeAt(pos);
      if (c0 === 38 /* & */) fact.geohash = text.slice(pos + 1, next);
      else if (c0 === 35 /* # */) fact.url = `https://${decodeBase64Text(text.slice(pos + 1, next), 'url')}`;
      else {
        // Every search stays inside the segment [pos, next): searching the rest of the text
        // from each segment is quadratic.
        let gt = pos;
        while (gt < next && text.charCodeAt(gt) !== 62 /* > */) gt++;
        let colon = next - 1;
        while (colon > gt && text.charCodeAt(colon) !== 58 /* : */) colon--;
        if (gt < next && colon > gt) {
          const keys = sensorKeys(++n);
          out[keys[0]] = text.slice(pos, gt);
          let dot = gt + 1;
          while (dot < colon && text.charCodeAt(dot) !== 46 /* . */) dot++;
          if (dot === colon) {
            out[keys[1]] = 'U';
            out[keys[2]] = decodeUnit(text.slice(gt + 1, colon), keys[2]);
          } else {
            out[keys[1]] = decodeState(text.slice(gt + 1, dot));
            out[keys[2]] = decodeUnit(text.slice(dot + 1, colon), keys[2]);
          }
          out[keys[3]] = decodeValue(text.slice(colon + 1, next), precision, keys[3]);
        }
      }
    }
    pos = next + 1;
  }

  if (at >= 0) {
    let stop = text.length;
    while (stop > at + 2 && text.charCodeAt(stop - 1) === 124) stop--;
    fact.msg = decodeBase64Text(text.slice(at + 2, stop), 'msg');
  }
  return fact;
}

/** The 8 base64url characters in text[from, to) → the 48-bit timestamp. */
function decodeToken(text: string, from: number, to: number): number {
  if (to - from !== 8) {
    throw new BodyTextError('ERR_BODY_SYNTAX', 'timestamp', `${show(text.slice(from, to))} is not 8 base64url characters`);
  }
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    const d = c < 128 ? B64URL_VALUES[c]! : -1;
    if (d < 0) {
      throw new BodyTextError('ERR_BODY_SYNTAX', 'timestamp', `${show(text.slice(from, to))}: ${show(text[i]!)} is not base64url`);
    }
    v = v * 64 + d;
  }
  return v;
}

function decodeValue(t: string, precision: number, field: string): number {
  if (t.length === 0) throw new BodyTextError('ERR_BODY_SYNTAX', field, 'the value is empty');
  try {
    return b62Decode(t, precision);
  } catch (e) {
    if (e instanceof InvalidBase62Error) throw new BodyTextError('ERR_BODY_SYNTAX', field, `${show(t)} is not Base62`, { cause: e });
    if (e instanceof Base62RangeError) {
      throw new BodyTextError('ERR_BODY_RANGE', field, `${show(t)} exceeds the wire's signed 64-bit range`, { cause: e });
    }
    throw e;
  }
}

function decodeBase64Text(t: string, field: string): string {
  const bytes = base64UrlDecode(t);
  if (!bytes) throw new BodyTextError('ERR_BODY_SYNTAX', field, `${show(t)} is not base64url`);
  const s = utf8DecodeStrict(bytes);
  if (s === undefined) throw new BodyTextError('ERR_BODY_ENCODING', field, 'the decoded bytes are not UTF-8');
  return s;
}
