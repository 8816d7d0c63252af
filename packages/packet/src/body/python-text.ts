/**
 * The few Python text conventions that show in body text: `str(float)`, `f'{x:g}'`, `float()`
 * parsing, `str.strip()` and `str.isdigit()`. JavaScript's equivalents differ at the edges
 * (exponent thresholds, tie rounding, which characters count as digits or whitespace), and those
 * edges change bytes on the wire.
 */

/** Characters Python's `str.isspace()` accepts (what `strip()` and `float()` remove). */
const PY_SPACE = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';

/** `PY_SPACE` as a test on one UTF-16 unit (every such character is in the BMP). */
function isPySpace(c: number): boolean {
  if (c <= 0x20) return (c >= 9 && c <= 13) || c >= 0x1c;
  if (c < 0x85) return false;
  return (
    c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}

/**
 * Characters Python's `str.isdigit()` accepts: decimal digits of every script plus the
 * Numeric_Type=Digit characters (superscripts, circled digits...). `m²` ends in a power here.
 */
const PY_DIGIT =
  '[\\p{Nd}\\u00b2\\u00b3\\u00b9\\u1369-\\u1371\\u19da\\u2070\\u2074-\\u2079\\u2080-\\u2089\\u2460-\\u2468' +
  '\\u2474-\\u247c\\u2488-\\u2490\\u24ea\\u24f5-\\u24fd\\u24ff\\u2776-\\u277e\\u2780-\\u2788\\u278a-\\u2792' +
  '\\u{10a40}-\\u{10a43}\\u{10e60}-\\u{10e68}\\u{11052}-\\u{1105a}\\u{1f100}-\\u{1f10a}]';
const ONE_DIGIT = new RegExp(`^${PY_DIGIT}$`, 'u');
const ANY_DIGIT = new RegExp(PY_DIGIT, 'u');

/** A numeric literal as Python's `float()` reads it (ASCII digits, `_` between digits). */
const NUMBER = '[+-]?(?:\\d(?:_?\\d)*(?:\\.(?:\\d(?:_?\\d)*)?)?|\\.\\d(?:_?\\d)*)(?:[eE][+-]?\\d(?:_?\\d)*)?';
const NUMBER_PREFIX = new RegExp(`^${NUMBER}(?:${PY_SPACE})*`);
const FULL_FLOAT = new RegExp(`^(?:${NUMBER}|[+-]?(?:inf(?:inity)?|nan))$`, 'i');

/**
 * Python `s.strip()`. A scan from both ends: a `^\s+|\s+$` regex retries the tail match from
 * every space of an inner run, which is quadratic in the run's length.
 */
export function pyStrip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isPySpace(s.charCodeAt(start))) start++;
  while (end > start && isPySpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/**
 * Length (UTF-16 units) of the trailing run of characters Python's `isdigit()` accepts. A scan
 * back from the end: an unanchored `\d+$` regex restarts at every digit of an inner run.
 */
export function pyTrailingDigits(s: string): number {
  let i = s.length;
  while (i > 0) {
    const c = s.charCodeAt(i - 1);
    if (c >= 48 && c <= 57) {
      i--;
      continue;
    }
    if (c < 128) break;
    // A low surrogate: test the whole code point (the astral digits above).
    const hi = c >= 0xdc00 && c <= 0xdfff && i >= 2 ? s.charCodeAt(i - 2) : 0;
    const w = hi >= 0xd800 && hi <= 0xdbff ? 2 : 1;
    if (!ONE_DIGIT.test(s.slice(i - w, i))) break;
    i -= w;
  }
  return s.length - i;
}

/** Whether any character is a digit to Python's `isdigit()`. */
export function pyHasDigit(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) return true;
  }
  return ANY_DIGIT.test(s);
}

const ND = /\p{Nd}/u;
const NON_ASCII = /[\u0080-\u{10ffff}]/u;

/** Value of a Unicode decimal digit: they come in aligned runs of ten, 0 to 9. */
function digitValue(cp: number): number {
  let k = 0;
  while (ND.test(String.fromCodePoint(cp - k - 1))) k++;
  return k % 10;
}

/** Decimal digit value of every BMP code point (-1: not a digit), built on first use. */
let bmpDigits: Int8Array | null = null;
/** The same for astral code points, bounded, cleared when full. */
const ASTRAL_DIGITS = new Map<number, number>();

function ndValue(cp: number): number {
  if (cp <= 0xffff) {
    if (bmpDigits === null) {
      const t = new Int8Array(0x10000).fill(-1);
      for (let c = 0x80; c <= 0xffff; c++) if (ND.test(String.fromCharCode(c))) t[c] = digitValue(c);
      bmpDigits = t;
    }
    return bmpDigits[cp]!;
  }
  let v = ASTRAL_DIGITS.get(cp);
  if (v === undefined) {
    v = ND.test(String.fromCodePoint(cp)) ? digitValue(cp) : -1;
    if (ASTRAL_DIGITS.size >= 4096) ASTRAL_DIGITS.clear();
    ASTRAL_DIGITS.set(cp, v);
  }
  return v;
}

/**
 * Python's `float()` reads every Unicode decimal digit (`٣`, `３`) as its ASCII digit. Returns
 * the text with those replaced and, when `withIndex`, per UTF-16 unit of it the index in the
 * original (plus the end); `undefined` for ASCII text. Unchanged runs are copied whole.
 */
function asciiDigits(s: string, withIndex: boolean): [text: string, index: number[]] | undefined {
  if (!NON_ASCII.test(s)) return undefined;
  let out = '';
  let copied = 0; // s[copied, i) is still to be appended unchanged
  const index: number[] = [];
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    const d = cp > 127 ? ndValue(cp) : -1;
    if (d >= 0) {
      out += s.slice(copied, i) + String(d);
      copied = i + w;
      if (withIndex) index.push(i);
    } else if (withIndex) for (let j = 0; j < w; j++) index.push(i);
    i += w;
  }
  out += s.slice(copied);
  if (withIndex) index.push(s.length);
  return [out, index];
}

/**
 * Python `float(text)`, or `undefined` where Python raises. Surrounding whitespace, `_` between
 * digits, decimal digits of any script and `inf` / `infinity` / `nan` (any case, signed) are
 * accepted.
 */
export function pyParseFloat(text: string): number | undefined {
  const t = pyStrip(asciiDigits(text, false)?.[0] ?? text);
  if (!FULL_FLOAT.test(t)) return undefined;
  const c = t.charCodeAt(t.length - 1) | 0x20;
  if (c === 0x66 /* f */ || c === 0x79 /* y */) return t.charCodeAt(0) === 45 ? -Infinity : Infinity;
  if (c === 0x6e /* n */) return Number.NaN;
  return Number(t.includes('_') ? t.replaceAll('_', '') : t);
}

/**
 * The longest prefix of `text` that is a finite numeric literal to Python's `float()`, including
 * whitespace after it (which `float()` also accepts): `[length, value]`, or `undefined`.
 * `inf` / `nan` words are not taken, so an attribute such as `informatics` stays a name.
 */
export function pyNumberPrefix(text: string): [length: number, value: number] | undefined {
  const c = text.charCodeAt(0);
  // Fast path: a literal starts with a digit, a sign or a dot (or a non-ASCII digit).
  if (!((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46 || c > 127)) return undefined;
  const mapped = asciiDigits(text, true);
  const m = NUMBER_PREFIX.exec(mapped ? mapped[0] : text);
  if (!m) return undefined;
  const lit = pyStrip(m[0]);
  return [mapped ? mapped[1][m[0].length]! : m[0].length, Number(lit.includes('_') ? lit.replaceAll('_', '') : lit)];
}

/** Exact decimal text of an integral double (Python `str(int(x))`). */
export function intText(x: number): string {
  return Math.abs(x) < 1e21 ? String(x + 0) : BigInt(x).toString();
}

/** Shortest round-trip digits and decimal exponent of a finite non-zero |x|: x = 0.d1d2… × 10^(exp+1). */
function shortest(x: number): [digits: string, exp: number] {
  const s = Math.abs(x).toExponential(); // shortest round-trip digits, "d.ddde±n"
  const e = s.indexOf('e');
  const digits = s[1] === '.' ? s[0]! + s.slice(2, e) : s.slice(0, e);
  return [digits, Number(s.slice(e + 1))];
}

/**
 * Python `repr(x)` / `str(x)` of a float: shortest round-trip digits, positional from 1e-4 up
 * to 1e16 (with `.0` on integral values), otherwise `d.ddde±XX`.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [digits, exp] = shortest(x);
  if (exp < -4 || exp >= 16) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/**
 * A float as Python's `json.dumps` writes it: the `repr` digits of `pyFloatRepr`, but JSON's
 * spelling of the non-finite values (`NaN`, `Infinity`, `-Infinity` where `repr` says `nan`,
 * `inf`, `-inf`). Control packets' JSON meta needs this one; the body and units `pyFloatRepr`.
 */
export function pyJsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return pyFloatRepr(x);
}

/** Exact decimal digits (no leading zeros) and exponent of a finite non-zero |x|. */
function exactDigits(x: number): [digits: string, exp: number] {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = hi >>> 20;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased !== 0) mant |= 1n << 52n;
  const e2 = biased === 0 ? -1074 : biased - 1075;
  // |x| = mant × 2^e2, which is (mant × 5^-e2) × 10^e2 when e2 < 0.
  const all = e2 >= 0 ? (mant << BigInt(e2)).toString() : (mant * 5n ** BigInt(-e2)).toString();
  const digits = all.replace(/0+$/, '');
  const scale = Math.min(e2, 0) + all.length - digits.length;
  return [digits, scale + digits.length - 1];
}

/**
 * Python `f'{x:g}'` (precision 6 unless given): `precision` significant digits rounded half to
 * even on the exact binary value, trailing zeros removed, exponent form when the exponent is
 * below -4 or at least `precision`, with a sign and at least two exponent digits.
 * `60`, `3600`, `0.001`, `1e-06`, `3.15576e+07`, `0.0166667`.
 */
export function formatG(x: number, precision = 6): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  const p = precision === 0 ? 1 : precision;
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return `${sign}0`;
  let [digits, exp] = exactDigits(x);
  if (digits.length > p) {
    const head = digits.slice(0, p);
    const rest = digits.slice(p);
    const first = rest.charCodeAt(0) - 48;
    const up = first > 5 || (first === 5 && (rest.length > 1 || (head.charCodeAt(p - 1) - 48) % 2 === 1));
    let n = BigInt(head);
    if (up) n += 1n;
    digits = n.toString();
    if (digits.length > p) {
      digits = digits.slice(0, p);
      exp += 1;
    }
    digits = digits.replace(/0+$/, '');
  }
  if (exp < -4 || exp >= p) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}
