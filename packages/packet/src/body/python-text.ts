/**
 * The few Python text conventions that show in body text: `str(float)`, `f'{x:g}'`, `float()`
 * parsing, `str.strip()` and `str.isdigit()`. JavaScript's equivalents differ at the edges
 * (exponent thresholds, tie rounding, which characters count as digits or whitespace), and those
 * edges change bytes on the wire.
 */

/** Characters Python's `str.isspace()` accepts (what `strip()` and `float()` remove). */
const PY_SPACE = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');
const HAS_SPACE = new RegExp(PY_SPACE);

/**
 * Characters Python's `str.isdigit()` accepts: decimal digits of every script plus the
 * Numeric_Type=Digit characters (superscripts, circled digits...). `m²` ends in a power here.
 */
const PY_DIGIT =
  '[\\p{Nd}\\u00b2\\u00b3\\u00b9\\u1369-\\u1371\\u19da\\u2070\\u2074-\\u2079\\u2080-\\u2089\\u2460-\\u2468' +
  '\\u2474-\\u247c\\u2488-\\u2490\\u24ea\\u24f5-\\u24fd\\u24ff\\u2776-\\u277e\\u2780-\\u2788\\u278a-\\u2792' +
  '\\u{10a40}-\\u{10a43}\\u{10e60}-\\u{10e68}\\u{11052}-\\u{1105a}\\u{1f100}-\\u{1f10a}]';
const TRAILING_DIGITS = new RegExp(`${PY_DIGIT}+$`, 'u');
const ANY_DIGIT = new RegExp(PY_DIGIT, 'u');

/** A numeric literal as Python's `float()` reads it (ASCII digits, `_` between digits). */
const NUMBER = '[+-]?(?:\\d(?:_?\\d)*(?:\\.(?:\\d(?:_?\\d)*)?)?|\\.\\d(?:_?\\d)*)(?:[eE][+-]?\\d(?:_?\\d)*)?';
const NUMBER_PREFIX = new RegExp(`^${NUMBER}(?:${PY_SPACE})*`);
const FULL_FLOAT = new RegExp(`^(?:${NUMBER}|[+-]?(?:inf(?:inity)?|nan))$`, 'i');

/** Python `s.strip()`. */
export function pyStrip(s: string): string {
  return HAS_SPACE.test(s) ? s.replace(STRIP, '') : s;
}

/** Length of the trailing run of characters Python's `isdigit()` accepts. */
export function pyTrailingDigits(s: string): number {
  const last = s.charCodeAt(s.length - 1);
  if (!(last >= 48 && last <= 57) && last < 128) return 0; // fast path: ASCII non-digit
  const m = TRAILING_DIGITS.exec(s);
  return m ? m[0].length : 0;
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

/**
 * Python's `float()` reads every Unicode decimal digit (`٣`, `３`) as its ASCII digit. Returns
 * the text with those replaced and, per UTF-16 unit of it, the index in the original (plus the
 * end), or `undefined` for ASCII text.
 */
function asciiDigits(s: string): [text: string, index: number[]] | undefined {
  if (!NON_ASCII.test(s)) return undefined;
  let out = '';
  const index: number[] = [];
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    const rep = cp > 127 && ND.test(ch) ? String(digitValue(cp)) : ch;
    for (let j = 0; j < rep.length; j++) index.push(i);
    out += rep;
    i += ch.length;
  }
  index.push(s.length);
  return [out, index];
}

/**
 * Python `float(text)`, or `undefined` where Python raises. Surrounding whitespace, `_` between
 * digits, decimal digits of any script and `inf` / `infinity` / `nan` (any case, signed) are
 * accepted.
 */
export function pyParseFloat(text: string): number | undefined {
  const t = pyStrip(asciiDigits(text)?.[0] ?? text);
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
  const mapped = asciiDigits(text);
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
