/**
 * The Python number and text conventions the standardizer's output depends on: `round(x, n)`,
 * `str.strip()`, `str.isdigit()` / `int()` on one character, `len()` in code points and `str()` of
 * a number. JavaScript's nearest equivalents differ at the edges, and those edges change values.
 */

/** Characters Python's `str.isspace()` accepts (what `strip()` removes). */
const PY_SPACE = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');
const EDGE_SPACE = new RegExp(`^${PY_SPACE}|${PY_SPACE}$`);

/** Python `s.strip()`. */
export function pyStrip(s: string): string {
  return EDGE_SPACE.test(s) ? s.replace(STRIP, '') : s;
}

/** Whether `s` is longer than one code point (Python `len(s) > 1`). */
export function longerThanOneCodePoint(s: string): boolean {
  if (s.length <= 1) return false;
  if (s.length > 2) return true;
  const hi = s.charCodeAt(0);
  const lo = s.charCodeAt(1);
  return !(hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff);
}

const ND = /^\p{Nd}$/u;

/**
 * A trailing power digit: `[power, text without it]`, or `undefined`. Python's `int()` reads any
 * Unicode decimal digit (`m٣` is m cubed), while characters that `isdigit()` accepts but `int()`
 * rejects (superscripts: `m²`) leave the label unchanged in the reference, as a non-digit does.
 */
export function splitPowerDigit(s: string): [power: number, rest: string] | undefined {
  const last = s.charCodeAt(s.length - 1);
  if (last >= 48 && last <= 57) return [last - 48, s.slice(0, -1)];
  if (last < 128) return undefined;
  const cp = s.codePointAt(last >= 0xdc00 && last <= 0xdfff && s.length >= 2 ? s.length - 2 : s.length - 1)!;
  const ch = String.fromCodePoint(cp);
  if (!ND.test(ch)) return undefined;
  // Unicode decimal digits come in runs of ten, zero first.
  let k = 0;
  while (ND.test(String.fromCodePoint(cp - k - 1))) k++;
  return [k % 10, s.slice(0, s.length - ch.length)];
}

/** Length of a symbol in code points (Python `len`). */
export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Python `str()` of a number: integral values as integers, others as `repr(float)`. */
export function pyNumberText(x: number, floatRepr: (x: number) => string): string {
  if (Number.isInteger(x)) return Math.abs(x) < 1e21 ? String(x + 0) : BigInt(x).toString();
  return floatRepr(x);
}

/** 10^d, exact for d ≤ 22. */
const POW10 = Array.from({ length: 23 }, (_, d) => 10 ** d);

/**
 * Python `round(x, digits)` for a finite, non-integral `x` and `digits` in 0..22: the decimal
 * nearest to the exact binary value, half to even only on exact binary ties (0.03125 → 0.0312,
 * while 1.00005, stored a little above, gives 1.0001). `toFixed` picks the nearest too, but breaks
 * ties away from zero.
 */
export function pyRound(x: number, digits: number): number {
  const p = POW10[digits]!;
  const y = x * p;
  // Fast path: the product is off by at most half an ULP, so unless its fraction is that close to
  // one half, the nearest integer is the same for the exact product. n / 10^d is then one correctly
  // rounded division of exact operands, the same double Python parses from the decimal text.
  if (Math.abs(y) < 2 ** 52) {
    const fl = Math.floor(y);
    const frac = y - fl;
    if (Math.abs(frac - 0.5) > Math.abs(y) * 2 ** -51 + 2 ** -60) {
      const n = frac < 0.5 ? fl : fl + 1;
      const r = n / p;
      return r === 0 && x < 0 ? -0 : r;
    }
  }
  return roundExactly(x, digits);
}

/** `pyRound` on the exact binary value, for products near a half or beyond 2^52. */
function roundExactly(x: number, digits: number): number {
  // A tie means x × 10^d = n + ½ exactly; x is dyadic, so that needs x × 2^(d+1) to be an odd integer.
  const twice = x * 2 ** (digits + 1);
  if (Number.isInteger(twice) && twice % 2 !== 0) {
    // x × 10^d = twice × 5^d / 2: take the even neighbour of that half-integer.
    const t = BigInt(twice) * 5n ** BigInt(digits);
    let n = (t - 1n) / 2n;
    if (n % 2n !== 0n) n += 1n;
    const r = Number(`${n}e-${digits}`);
    return r === 0 && x < 0 ? -0 : r;
  }
  return Number(x.toFixed(digits));
}

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);
const MANTISSA = (1n << 52n) - 1n;

/**
 * `x ** n` for a whole `n` from 0 to 9, correctly rounded (exact product, one rounding). The
 * reference's C `pow()` is within about half an ULP and so differs in the last bit for roughly one
 * power in a thousand; `Math.pow` is further off (several percent of cases).
 */
export function powInt(x: number, n: number): number {
  if (n === 0) return 1;
  if (n === 1 || !Number.isFinite(x) || x === 0) return n === 1 ? x : x ** n;
  if (n === 2) return x * x;
  F64[0] = Math.abs(x);
  const bits = U64[0]!;
  const biased = Number(bits >> 52n);
  let mant = bits & MANTISSA;
  let exp: number;
  if (biased === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  // |x|^n = mant^n × 2^(exp·n); mant^n has at most 477 bits, so Number() rounds it exactly once.
  let v = Number(mant ** BigInt(n));
  let e = exp * n;
  // Scale by powers of two in steps that stay exact (only a subnormal result rounds again).
  while (e > 1000) {
    v *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    v *= 2 ** -1000;
    e += 1000;
  }
  v *= 2 ** e;
  return x < 0 && n % 2 === 1 ? -v : v;
}
