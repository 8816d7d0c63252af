import type { Base62Codec } from './codec.js';
import { Base62RangeError, Base62TypeError, InvalidBase62Error } from './errors.js';

/** The 62 digits in value order: `0-9`, `a-z`, `A-Z`. */
export const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Decimal places used for sensor values unless told otherwise (the reference's default). */
export const DEFAULT_PRECISION = 4;

/** Largest precision accepted: 10^22 is the last power of ten that is an exact double. */
export const MAX_PRECISION = 22;

const TWO_63 = 2 ** 63; // exact as a double
const SAFE = 9007199254740992; // 2^53
const DIGITS = Array.from(ALPHABET);
// Character code → digit value, -1 for anything else (only ASCII is indexed).
const VALUES = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 62; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();
const POW10 = Array.from({ length: MAX_PRECISION + 1 }, (_, i) => 10 ** i);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function checkPrecision(precision: number): number {
  if (!Number.isInteger(precision) || precision < 0 || precision > MAX_PRECISION) {
    throw new Base62RangeError('precision', `${precision} is not an integer in 0..${MAX_PRECISION}`);
  }
  return POW10[precision]!;
}

/** Digits of a non-negative integer below 2^53. */
function digitsOfSafe(n: number): string {
  if (n < 62) return DIGITS[n]!;
  let out = '';
  while (n > 0) {
    const q = Math.floor(n / 62);
    out = DIGITS[n - q * 62]! + out;
    n = q;
  }
  return out;
}

function digitsOfBig(n: bigint): string {
  let out = '';
  while (n > 0n) {
    out = DIGITS[Number(n % 62n)]! + out;
    n /= 62n;
  }
  return out || '0';
}

/** Encodes an integral double in [-2^63, 2^63). */
function encodeIntegral(n: number): string {
  if (n === 0) return '0';
  const neg = n < 0;
  const mag = neg ? -n : n;
  const digits = mag <= SAFE ? digitsOfSafe(mag) : digitsOfBig(BigInt(mag));
  return neg ? `-${digits}` : digits;
}

function checkNumber(value: unknown, what: string): number {
  if (typeof value !== 'number') throw new Base62TypeError('a number', value);
  if (!Number.isFinite(value)) throw new Base62RangeError(what, `${value} is not a finite number`);
  return value;
}

function checkInt64(n: number, what: string, original: number): number {
  if (n >= TWO_63 || n < -TWO_63) {
    throw new Base62RangeError(what, `${original} gives ${n}, outside the signed 64-bit range of the wire`);
  }
  return n;
}

/** Python's `round()`: to nearest, ties to even, on the binary value. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +∞
  // `r - x` is exact here, so an exact tie shows as 0.5; move odd results down to even.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Result of parsing text: a number when the magnitude stays below 2^53 (exact), otherwise a
 * bigint. Returning either avoids bigint work on the common short values.
 */
function parse(text: string): number | bigint {
  if (typeof text !== 'string') throw new Base62TypeError('a string', text);
  const len = text.length;
  let i = 0;
  let neg = false;
  if (len > 0 && text.charCodeAt(0) === 45 /* - */) {
    neg = true;
    i = 1;
  }
  if (i >= len) throw new InvalidBase62Error(text, -1);
  if (len - i <= 8) {
    let acc = 0;
    for (; i < len; i++) {
      const c = text.charCodeAt(i);
      const v = c < 128 ? VALUES[c]! : -1;
      if (v < 0) throw new InvalidBase62Error(text, i);
      acc = acc * 62 + v;
    }
    return neg ? -acc : acc;
  }
  // Long text: validate every character first so the error names the right one, then
  // accumulate in bigint, stopping as soon as the magnitude leaves int64.
  for (let j = i; j < len; j++) {
    const c = text.charCodeAt(j);
    if (c >= 128 || VALUES[c]! < 0) throw new InvalidBase62Error(text, j);
  }
  const limit = neg ? -INT64_MIN : INT64_MAX;
  let mag = 0n;
  for (; i < len; i++) {
    mag = mag * 62n + BigInt(VALUES[text.charCodeAt(i)]!);
    if (mag > limit) {
      throw new Base62RangeError(
        'decoded value',
        `${JSON.stringify(text.length > 24 ? `${text.slice(0, 24)}…` : text)} exceeds the signed 64-bit range of the wire`,
      );
    }
  }
  const signed = neg ? -mag : mag;
  return signed >= -BigInt(SAFE) && signed <= BigInt(SAFE) ? Number(signed) : signed;
}

function fixedFromBig(i: bigint, precision: number): number {
  // The exact decimal text of i / 10^p parses to the correctly rounded double, like Python's
  // int / int true division.
  const neg = i < 0n;
  const digits = (neg ? -i : i).toString().padStart(precision + 1, '0');
  const cut = digits.length - precision;
  const q = Number(`${neg ? '-' : ''}${digits.slice(0, cut)}.${digits.slice(cut) || '0'}`);
  return precision > 8 ? roundTo8(q) : q;
}

function roundTo8(x: number): number {
  // No exact binary tie exists at 8 decimals, so toFixed's tie rule never matters.
  return Math.abs(x) < 1e21 ? Number(x.toFixed(8)) : x;
}

function decodeFixed(text: string, precision: number): number {
  const scale = checkPrecision(precision);
  const v = parse(text);
  if (typeof v === 'bigint') return fixedFromBig(v, precision);
  // Both operands are exact doubles, so IEEE division is the correctly rounded quotient; for
  // p <= 8 rounding that to 8 decimals gives it back unchanged.
  const q = v / scale;
  return (precision > 8 ? roundTo8(q) : q) + 0; // + 0 turns -0 into 0
}

function encodeFixed(value: number, precision: number): string {
  const scale = checkPrecision(precision);
  const x = checkNumber(value, 'value');
  const scaled = roundHalfEven(x * scale);
  return encodeIntegral(checkInt64(scaled, 'scaled value', x));
}

/** The pure TypeScript codec. */
export const tsCodec: Base62Codec = {
  backend: 'ts',
  encodeBigInt(value) {
    if (typeof value !== 'bigint') throw new Base62TypeError('a bigint', value);
    if (value < INT64_MIN || value > INT64_MAX) {
      throw new Base62RangeError('value', `${value} is outside the signed 64-bit range`);
    }
    if (value === 0n) return '0';
    return value < 0n ? `-${digitsOfBig(-value)}` : digitsOfBig(value);
  },
  decodeBigInt(text) {
    const v = parse(text);
    return typeof v === 'bigint' ? v : BigInt(v);
  },
  encodeInt(value) {
    const x = checkNumber(value, 'value');
    return encodeIntegral(checkInt64(Math.trunc(x), 'value', x));
  },
  decodeInt(text) {
    const v = parse(text);
    return typeof v === 'bigint' ? Number(v) : v + 0;
  },
  encode(value, precision = DEFAULT_PRECISION) {
    return encodeFixed(value, precision);
  },
  decode(text, precision = DEFAULT_PRECISION) {
    return decodeFixed(text, precision);
  },
  encodeBatch(values, precision = DEFAULT_PRECISION) {
    const out = new Array<string>(values.length);
    for (let i = 0; i < values.length; i++) out[i] = encodeFixed(values[i]!, precision);
    return out;
  },
  decodeBatch(texts, precision = DEFAULT_PRECISION) {
    const out = new Float64Array(texts.length);
    for (let i = 0; i < texts.length; i++) out[i] = decodeFixed(texts[i]!, precision);
    return out;
  },
};
