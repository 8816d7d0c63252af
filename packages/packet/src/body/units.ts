/**
 * Units and states in body text: the symbol lookups in both directions, and the unit text
 * codec with its coefficient rules. Results are cached per distinct text, because a deployment
 * sends the same handful of units and states over and over.
 */
import { Base62RangeError, encode as b62Encode, decodeInt as b62DecodeInt, encodeInt as b62EncodeInt, InvalidBase62Error } from '@opensynaptic/base62';
import { BodyTextError, show } from './errors.js';
import { intText, pyFloatRepr, pyHasDigit, pyNumberPrefix, pyParseFloat, pyStrip, pyTrailingDigits } from './python-text.js';
import { STATE_SYMBOLS, SYMBOL_GROUPS } from './symbols.js';

/** Lower-case unit or attribute name → code. */
export const UNIT_CODES: ReadonlyMap<string, string> = new Map(
  SYMBOL_GROUPS.flatMap((g) => [[g.attribute, g.code] as const, ...g.units]),
);
/** Code → lower-case name; where names share a code the last one wins (`900` → `atm`). */
export const UNIT_NAMES: ReadonlyMap<string, string> = new Map([...UNIT_CODES].map(([name, code]) => [code, name]));
/** Lower-case state name → code. */
export const STATE_CODES: ReadonlyMap<string, string> = new Map(STATE_SYMBOLS);
/** Code → lower-case state name. */
export const STATE_NAMES: ReadonlyMap<string, string> = new Map(STATE_SYMBOLS.map(([name, code]) => [code, name]));

/** Unit text for a missing, empty or `"unknown"` unit. */
export const UNKNOWN_UNIT = 'Z';

/** Coefficient folds tried in order (once): the coefficient is divided and the prefix glued on. */
const FOLDS: readonly (readonly [factor: number, prefix: string])[] = [
  [1e9, 'G'],
  [1e6, 'M'],
  [1e3, 'k'],
  [10, 'da'],
];

/** Prefixes the decoder re-expands after a coefficient (`p` is 1e-9 in the reference, not 1e-12). */
const EXPANSIONS: Readonly<Record<string, number>> = { d: 0.1, k: 1e3, m: 1e-3, u: 1e-6, p: 1e-9, M: 1e6, G: 1e9 };

const CACHE_LIMIT = 4096;
/** Longer texts are not remembered: real units and states are short, and 4096 long keys would hold megabytes. */
const CACHE_KEY_LIMIT = 256;

/** A small memo: cleared when full, which keeps memory bounded under hostile input. */
class Memo<V> {
  private map = new Map<string, V>();
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): V {
    if (key.length > CACHE_KEY_LIMIT) return value;
    if (this.map.size >= CACHE_LIMIT) this.map.clear();
    this.map.set(key, value);
    return value;
  }
}

const stateEncodeMemo = new Memo<string>();
const stateDecodeMemo = new Memo<string>();
const unitEncodeMemos = new Map<number, Memo<string>>();
const unitDecodeMemo = new Memo<string>();

/**
 * A state name → its code (looked up lower-cased), or the name itself when it has none.
 * Throws when the name contains '.', '|' or '@', which would split the body wrongly.
 */
export function encodeState(state: string, field = 's'): string {
  const hit = stateEncodeMemo.get(state);
  if (hit !== undefined) return hit;
  checkSeparators(state, field, true);
  return stateEncodeMemo.set(state, STATE_CODES.get(state.toLowerCase()) ?? state);
}

/** Throws for '|' (ends a part) and '@' (starts the msg), and for '.' when `dot` is set. */
export function checkSeparators(s: string, field: string, dot: boolean): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 124 || c === 64 || (c === 46 && dot)) {
      throw new BodyTextError('ERR_BODY_SEPARATOR', field, `${show(s)} contains '${s[i]}' at ${i}, a body separator; the text could not be read back`);
    }
  }
}

/** A state code → its name upper-cased (unknown codes are upper-cased as they are). */
export function decodeState(code: string): string {
  return stateDecodeMemo.get(code) ?? stateDecodeMemo.set(code, (STATE_NAMES.get(code) ?? code).toUpperCase());
}

function unitSymbol(name: string): string {
  return UNIT_CODES.get(name.toLowerCase()) ?? name;
}

/**
 * A unit (an attribute name such as `pressure`, a raw unit such as `Pa`, or a composed unit such
 * as `length/3600time`) → its body text. `field` names the fact key in errors.
 * Throws when the unit contains '|' or '@', or has a coefficient that cannot go on the wire.
 */
export function encodeUnit(unit: string, precision: number, field = 'unit'): string {
  let memo = unitEncodeMemos.get(precision);
  if (!memo) {
    memo = new Memo();
    unitEncodeMemos.set(precision, memo);
  }
  return memo.get(unit) ?? memo.set(unit, encodeUnitUncached(unit, precision, field));
}

function encodeUnitUncached(unit: string, precision: number, field: string): string {
  checkSeparators(unit, field, false);
  if (unit === '' || unit === 'unknown') return UNKNOWN_UNIT;
  const parts = unit.split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = pyStrip(parts[i]!);
    // Every trailing digit is the power; the longest numeric prefix of the rest is a coefficient.
    const cut = part.length - pyTrailingDigits(part);
    const power = part.slice(cut);
    const base = part.slice(0, cut);
    const num = pyNumberPrefix(base);
    if (!num) {
      parts[i] = unitSymbol(base) + power;
      continue;
    }
    const len = num[0];
    let c = num[1];
    let attr = base.slice(len);
    if (!Number.isFinite(c)) {
      throw new BodyTextError('ERR_BODY_RANGE', field, `coefficient ${show(base.slice(0, len))} in unit ${show(unit)} is not a finite number`);
    }
    for (const [f, prefix] of FOLDS) {
      if (c >= f && c % f === 0) {
        c /= f;
        attr = prefix + attr;
        break;
      }
    }
    let coeff: string;
    try {
      coeff = Number.isInteger(c) && Math.abs(c) >= 1 ? b62EncodeInt(c) : b62Encode(c, precision);
    } catch (e) {
      if (e instanceof Base62RangeError) {
        throw new BodyTextError('ERR_BODY_RANGE', field, `coefficient of unit ${show(unit)} does not fit the wire's signed 64-bit integer`, { cause: e });
      }
      throw e;
    }
    parts[i] = `${coeff},${unitSymbol(attr)}${power}`;
  }
  return parts.join('/');
}

/** Body unit text → the unit as the reference receiver reports it (see QUIRKS 14, 15). */
export function decodeUnit(text: string, field = 'unit'): string {
  return unitDecodeMemo.get(text) ?? unitDecodeMemo.set(text, decodeUnitUncached(text, field));
}

function decodeUnitUncached(text: string, field: string): string {
  // Empty parts are skipped (`m/` → `m`), as by the reference receiver.
  const parts = text.includes('//') || text.startsWith('/') || text.endsWith('/') ? text.split('/').filter((p) => p !== '') : text.split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const comma = part.indexOf(',');
    if (comma < 0) {
      parts[i] = UNIT_NAMES.get(part) ?? part;
      continue;
    }
    const c = decodeCoefficient(part.slice(0, comma), text, field);
    if (c === undefined) {
      // Without a coefficient the reference keeps only what follows the LAST comma, unstripped.
      const last = part.slice(part.lastIndexOf(',') + 1);
      parts[i] = UNIT_NAMES.get(last) ?? last;
      continue;
    }
    const sym = pyStrip(part.slice(comma + 1));
    let skip = 0;
    let factor = 1;
    if (sym.startsWith('da')) {
      skip = 2;
      factor = 10;
    } else if (sym.length > 0 && Object.hasOwn(EXPANSIONS, sym[0]!)) {
      skip = 1;
      factor = EXPANSIONS[sym[0]!]!;
    }
    const rest = sym.slice(skip);
    const cut = rest.length - pyTrailingDigits(rest);
    const name = cut > 0 ? UNIT_NAMES.get(rest.slice(0, cut)) : undefined;
    const v = skip > 0 ? c * factor : c;
    if (!Number.isFinite(v)) {
      // The reference drops a coefficient it cannot print.
      const last = part.slice(part.lastIndexOf(',') + 1);
      parts[i] = UNIT_NAMES.get(last) ?? last;
      continue;
    }
    // A known code loses the prefix (`1,kA` → `1000temperature`); anything else keeps the text.
    parts[i] = (Number.isInteger(v) ? intText(v) : pyFloatRepr(v)) + (name === undefined ? sym : name + rest.slice(cut));
  }
  return parts.join('/');
}

/**
 * A coefficient text → its number, or `undefined` where the reference drops it: no digit at all,
 * or an `e` / `.` text that is no float (Base62 digits such as `6ve` fall here), or infinite.
 */
function decodeCoefficient(t: string, unit: string, field: string): number | undefined {
  if (!pyHasDigit(t)) return undefined;
  let v: number | undefined;
  if (/[.eE]/.test(t)) v = pyParseFloat(t);
  else {
    try {
      v = b62DecodeInt(t);
    } catch (e) {
      if (e instanceof InvalidBase62Error) v = pyParseFloat(t);
      else if (e instanceof Base62RangeError) {
        throw new BodyTextError('ERR_BODY_RANGE', field, `coefficient ${show(t)} in unit ${show(unit)} exceeds the signed 64-bit range`, { cause: e });
      } else throw e;
    }
  }
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}
