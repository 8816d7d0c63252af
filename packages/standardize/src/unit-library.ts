/**
 * The unit library: unit definitions, SI/binary prefixes and aliases, and the rules that turn a unit
 * label into a factor and offset to its standard unit. It is plain data, extended at run time with
 * `add()` / `addPrefixes()` / `addAlias()`, in this package's shape or the reference's file layout.
 */
import { pyParseFloat } from '@opensynaptic/packet/body';
import { show, UnitLibraryError, UnitRangeError, UnknownUnitError } from './errors.js';
import { codePointLength, longerThanOneCodePoint, powInt, pyStrip, splitPowerDigit } from './python-number.js';
import { PREFIX_ROWS, UNIT_ROWS } from './units-data.js';

/** One unit as it is given to `UnitLibrary.add` in this package's shape. */
export interface UnitInput {
  /** Lookup key, case-sensitive (a lower-cased label is tried second): `Pa`, `degF`, `mm[Hg]`. */
  key: string;
  /** Name of the standardized quantity, which becomes the sensor's unit text: `pressure`. */
  attribute: string;
  /** `value × factor + offset` is the value in the standard unit. Default 1; finite, not 0. */
  factor?: number;
  /** Default 0. */
  offset?: number;
  /** Whether SI / binary prefixes may precede the key (`kPa`, `KiBy`). Default true. */
  prefixable?: boolean;
  /** UCUM code, looked up after the key: `[degF]`. Default: none. */
  ucum?: string | null;
  /** Human-readable name. */
  name?: string;
}

/** A unit held by a library. */
export interface UnitDefinition {
  readonly key: string;
  readonly attribute: string;
  readonly factor: number;
  readonly offset: number;
  readonly prefixable: boolean;
  readonly ucum: string | null;
  readonly name: string;
}

/** One entry of the reference's `Units/*.json` files (fields other than these are ignored). */
export interface ReferenceUnitInfo {
  physical_attribute?: string;
  to_standard_factor?: number | string;
  to_standard_offset?: number | string;
  can_take_prefix?: unknown;
  ucum_code?: unknown;
  name?: unknown;
  [field: string]: unknown;
}

/** The reference's unit file layout: `{"__METADATA__": {...}, "units": {key: info}}`. */
export interface ReferenceUnitFile {
  units: Readonly<Record<string, ReferenceUnitInfo>>;
  [field: string]: unknown;
}

/** Units to add: this package's shape (a list, or `{units: [...]}`) or a reference unit file. */
export type UnitSource = readonly UnitInput[] | { readonly units: readonly UnitInput[] } | ReferenceUnitFile;

/** One prefix in this package's shape. */
export interface PrefixInput {
  symbol: string;
  /** Finite and positive. */
  factor: number;
  name?: string;
}

/** A prefix held by a library. */
export interface PrefixDefinition {
  readonly symbol: string;
  readonly factor: number;
  readonly name: string;
}

/** The reference's `Prefixes.json` layout. */
export interface ReferencePrefixFile {
  decimal_prefixes?: Readonly<Record<string, { f: number | string; name?: string }>>;
  binary_prefixes?: Readonly<Record<string, { f: number | string; name?: string }>>;
  [field: string]: unknown;
}

/** Prefixes to add: this package's shape (a list) or the reference's prefix file. */
export type PrefixSource = readonly PrefixInput[] | ReferencePrefixFile;

/**
 * What to do with a key (or prefix symbol) the library already holds: `error` (the default)
 * refuses the whole `add`, `keep` keeps the first definition (as the reference does across its
 * files), `replace` puts the new one in the old one's place.
 */
export type DuplicatePolicy = 'error' | 'keep' | 'replace';

export interface AddOptions {
  onDuplicate?: DuplicatePolicy;
}

/** How the text left after prefix and power were taken off matched a unit. */
export type MatchRule = 'key' | 'lower-case' | 'ucum';

/** A resolved unit label. */
export interface ResolvedUnit {
  /** The label as given. */
  readonly label: string;
  /** The physical attribute, the sensor's unit text after standardization. */
  readonly attribute: string;
  /** Factor to the standard unit with prefix, power and `1/` applied. */
  readonly factor: number;
  /** Offset to the standard unit (never powered or inverted). */
  readonly offset: number;
  /** Key of the unit definition used. */
  readonly unit: string;
  readonly via: MatchRule;
  /** The alias target the lower-cased text was mapped to, if any. */
  readonly alias: string | null;
  /** Prefix symbol taken off, if any. */
  readonly prefix: string | null;
  /** Trailing power digit (1 when none). */
  readonly power: number;
  /** Whether the label started with `1/`. */
  readonly inverse: boolean;
}

/** Why a label failed to resolve, without building an Error (the hot path caches these). */
export type ResolveFailure = { readonly fail: 'unknown'; readonly reason: 'empty' | 'not-found' | 'too-long' } | { readonly fail: 'range'; readonly factor: number };

/** The aliases of the reference (applied to the lower-cased text): `celsius` names no unit there. */
const BUILTIN_ALIASES: readonly (readonly [string, string])[] = [
  ['cel', 'Cel'],
  ['hour', 'h'],
  ['celsius', 'degree_celsius'],
];

/** Smallest positive normal double: a factor below it has lost its precision. */
const MIN_NORMAL = 2 ** -1022;

interface AtomHit {
  def: UnitDefinition;
  via: MatchRule;
  alias: string | null;
}

/**
 * Unit definitions, prefixes and aliases, and unit-label resolution:
 *
 * 1. `""` and `"Unknown"` never resolve.
 * 2. A leading `1/` inverts the factor; a trailing decimal digit is a power when the rest of the
 *    label is longer than one character (`m2`, not `2`).
 * 3. The text (trimmed) goes through the alias map by its lower-case form, then is looked up as a
 *    key, as a lower-cased key, and as a UCUM code, first definition winning.
 * 4. Failing that, the longest prefix (by length, then table order) whose rest resolves by step 3
 *    to a unit that takes prefixes.
 *
 * Powers and `1/` change the factor only; the attribute stays (`m2` is `length`).
 */
export class UnitLibrary {
  #units: UnitDefinition[] = [];
  #byKey = new Map<string, UnitDefinition>();
  #byUcum = new Map<string, UnitDefinition>();
  #prefixes: PrefixDefinition[] = [];
  #prefixOrder: PrefixDefinition[] = [];
  #aliases = new Map<string, string>();
  #version = 0;
  #readOnly = false;

  /** An empty library (no units, prefixes or aliases); `UnitLibrary.builtin()` has the standard set. */
  constructor(init?: { units?: UnitSource; prefixes?: PrefixSource; aliases?: Readonly<Record<string, string>> }) {
    if (init?.prefixes) this.addPrefixes(init.prefixes);
    if (init?.units) this.add(init.units);
    for (const [from, to] of Object.entries(init?.aliases ?? {})) this.addAlias(from, to);
  }

  /** A new, changeable library holding the built-in units, prefixes and aliases. */
  static builtin(): UnitLibrary {
    const lib = new UnitLibrary();
    lib.#units = UNIT_ROWS.map(([key, attribute, factor, offset, prefixable, ucum, name]) => ({ key, attribute, factor, offset, prefixable, ucum, name }));
    lib.#prefixes = PREFIX_ROWS.map(([symbol, factor, name]) => ({ symbol, factor, name }));
    for (const [from, to] of BUILTIN_ALIASES) lib.#aliases.set(from, to);
    lib.#reindex();
    return lib;
  }

  /** Bumped by every change; resolution caches compare it. */
  get version(): number {
    return this.#version;
  }

  get readOnly(): boolean {
    return this.#readOnly;
  }

  /** Number of units. */
  get size(): number {
    return this.#units.length;
  }

  /** Refuses every later change (`ERR_UNIT_READ_ONLY`). */
  freeze(): this {
    this.#readOnly = true;
    return this;
  }

  /** A changeable copy. */
  clone(): UnitLibrary {
    const lib = new UnitLibrary();
    lib.#units = [...this.#units];
    lib.#prefixes = [...this.#prefixes];
    lib.#aliases = new Map(this.#aliases);
    lib.#reindex();
    return lib;
  }

  /** The units, in lookup order. */
  units(): readonly UnitDefinition[] {
    return [...this.#units];
  }

  /** The prefixes, in table order. */
  prefixes(): readonly PrefixDefinition[] {
    return [...this.#prefixes];
  }

  /** The alias map (lower-case text → replacement text). */
  aliases(): ReadonlyMap<string, string> {
    return new Map(this.#aliases);
  }

  /** The unit defined under exactly this key. */
  get(key: string): UnitDefinition | undefined {
    return this.#byKey.get(key);
  }

  /**
   * Adds units, in this package's shape or as a reference `Units/*.json` object. The whole source
   * is checked first: on any error (`UnitLibraryError`) nothing is added.
   */
  add(source: UnitSource, options?: AddOptions): this {
    this.#writable();
    const policy = options?.onDuplicate ?? 'error';
    const defs = parseUnitSource(source);
    const next = [...this.#units];
    const index = new Map<string, number>();
    next.forEach((d, i) => {
      if (!index.has(d.key)) index.set(d.key, i);
    });
    for (const d of defs) {
      const at = index.get(d.key);
      if (at === undefined) {
        index.set(d.key, next.length);
        next.push(d);
      } else if (policy === 'replace') next[at] = d;
      else if (policy === 'error') throw new UnitLibraryError('ERR_UNIT_DUPLICATE', `unit ${show(d.key)} is already defined (pass onDuplicate: 'keep' or 'replace')`);
    }
    this.#units = next;
    this.#reindex();
    return this;
  }

  /** Adds prefixes, in this package's shape or as the reference's `Prefixes.json` object. */
  addPrefixes(source: PrefixSource, options?: AddOptions): this {
    this.#writable();
    const policy = options?.onDuplicate ?? 'error';
    const defs = parsePrefixSource(source);
    const next = [...this.#prefixes];
    for (const d of defs) {
      const at = next.findIndex((p) => p.symbol === d.symbol);
      if (at < 0) next.push(d);
      else if (policy === 'replace') next[at] = d;
      else if (policy === 'error') throw new UnitLibraryError('ERR_UNIT_DUPLICATE', `prefix ${show(d.symbol)} is already defined (pass onDuplicate: 'keep' or 'replace')`);
    }
    this.#prefixes = next;
    this.#reindex();
    return this;
  }

  /** Maps a text (compared lower-cased, after trimming) to another before lookup: `hour` → `h`. */
  addAlias(from: string, to: string): this {
    this.#writable();
    if (typeof from !== 'string' || typeof to !== 'string' || from === '' || to === '') {
      throw new UnitLibraryError('ERR_UNIT_LIBRARY', 'an alias maps a non-empty text to a non-empty text');
    }
    this.#aliases.set(from.toLowerCase(), to);
    this.#version++;
    return this;
  }

  /**
   * Resolves a unit label (see the class comment for the rules). Throws `UnknownUnitError` or
   * `UnitRangeError` (a factor that overflows or vanishes once powered or inverted).
   */
  resolve(label: string): ResolvedUnit {
    const r = this.tryResolve(label);
    if ('fail' in r) throw r.fail === 'range' ? new UnitRangeError(label, r.factor) : new UnknownUnitError(label, r.reason);
    return r;
  }

  /** `resolve` without exceptions: the resolved unit, or why it failed. */
  tryResolve(label: string): ResolvedUnit | ResolveFailure {
    if (label === '' || label === 'Unknown') return EMPTY;
    const inverse = label.startsWith('1/');
    let work = inverse ? label.slice(2) : label;
    let power = 1;
    if (longerThanOneCodePoint(work)) {
      const split = splitPowerDigit(work);
      if (split) [power, work] = split;
    }
    let hit = this.#atom(work);
    let prefix: PrefixDefinition | null = null;
    if (!hit) {
      for (const p of this.#prefixOrder) {
        if (!work.startsWith(p.symbol)) continue;
        const base = this.#atom(work.slice(p.symbol.length));
        if (base?.def.prefixable) {
          hit = base;
          prefix = p;
          break;
        }
      }
    }
    if (!hit) return NOT_FOUND;
    const d = hit.def;
    let factor = prefix ? d.factor * prefix.factor : d.factor;
    factor = powInt(factor, power);
    if (inverse) factor = 1 / factor;
    // The reference raises on overflow and division by zero (the sensor is dropped); a factor that
    // silently underflowed would turn every reading into the offset.
    if (!Number.isFinite(factor) || Math.abs(factor) < MIN_NORMAL) return { fail: 'range', factor };
    return { label, attribute: d.attribute, factor, offset: d.offset, unit: d.key, via: hit.via, alias: hit.alias, prefix: prefix ? prefix.symbol : null, power, inverse };
  }

  /** Trim, alias, then key / lower-cased key / UCUM code. */
  #atom(text: string): AtomHit | undefined {
    let target = pyStrip(text);
    let alias: string | null = null;
    if (this.#aliases.size > 0) {
      const a = this.#aliases.get(target.toLowerCase());
      if (a !== undefined) {
        target = a;
        alias = a;
      }
    }
    let def = this.#byKey.get(target);
    if (def) return { def, via: 'key', alias };
    def = this.#byKey.get(target.toLowerCase());
    if (def) return { def, via: 'lower-case', alias };
    def = this.#byUcum.get(target);
    if (def) return { def, via: 'ucum', alias };
    return undefined;
  }

  #writable(): void {
    if (this.#readOnly) throw new UnitLibraryError('ERR_UNIT_READ_ONLY', 'this unit library is read-only (the shared default); use UnitLibrary.builtin() or clone() for one you can extend');
  }

  #reindex(): void {
    this.#byKey = new Map();
    this.#byUcum = new Map();
    for (const d of this.#units) {
      if (!this.#byKey.has(d.key)) this.#byKey.set(d.key, d);
      if (d.ucum !== null && !this.#byUcum.has(d.ucum)) this.#byUcum.set(d.ucum, d);
    }
    // Longest first; the sort is stable, so equal lengths keep table order (da before Ki...).
    this.#prefixOrder = [...this.#prefixes].sort((a, b) => codePointLength(b.symbol) - codePointLength(a.symbol));
    this.#version++;
  }
}

const EMPTY: ResolveFailure = Object.freeze({ fail: 'unknown', reason: 'empty' });
const NOT_FOUND: ResolveFailure = Object.freeze({ fail: 'unknown', reason: 'not-found' });

let shared: UnitLibrary | undefined;

/** The built-in library, built on first use and read-only (shared by every standardizer that is not given one). */
export function defaultUnitLibrary(): UnitLibrary {
  shared ??= UnitLibrary.builtin().freeze();
  return shared;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bad(where: string, detail: string): UnitLibraryError {
  return new UnitLibraryError('ERR_UNIT_LIBRARY', `${where}: ${detail}`);
}

/** A number field of a reference file: numbers, or text Python's `float()` reads. */
function refNumber(v: unknown, fallback: number, where: string, field: string): number {
  if (v === undefined) return fallback;
  const x = typeof v === 'number' ? v : typeof v === 'string' ? pyParseFloat(v) : typeof v === 'boolean' ? Number(v) : undefined;
  if (x === undefined || !Number.isFinite(x)) throw bad(where, `${field} is not a finite number`);
  return x;
}

/** Python truthiness of a JSON value (`can_take_prefix` is tested that way). */
function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return Boolean(v);
}

function checkKey(key: unknown, where: string): string {
  if (typeof key !== 'string' || key === '') throw bad(where, 'the key must be a non-empty string');
  // Such keys can never be looked up: labels are trimmed, and "Unknown" never resolves.
  if (pyStrip(key) !== key) throw bad(where, 'the key has leading or trailing whitespace');
  if (key === 'Unknown') throw bad(where, '"Unknown" is reserved');
  return key;
}

function checkFactor(factor: number, offset: number, where: string): void {
  if (!Number.isFinite(factor) || factor === 0) throw bad(where, 'the factor must be a finite, non-zero number');
  if (!Number.isFinite(offset)) throw bad(where, 'the offset must be a finite number');
}

function parseUnitSource(source: unknown): UnitDefinition[] {
  if (Array.isArray(source)) return source.map((u, i) => parseUnitInput(u, `units[${i}]`));
  if (!isObject(source)) throw bad('unit source', 'expected a list of units, {units: [...]} or a reference unit file');
  const units = source.units;
  if (Array.isArray(units)) return units.map((u, i) => parseUnitInput(u, `units[${i}]`));
  if (!isObject(units)) throw bad('unit source', 'no "units" list or object');
  const out: UnitDefinition[] = [];
  for (const [key, info] of Object.entries(units)) {
    const where = `unit ${show(key)}`;
    checkKey(key, where);
    if (!isObject(info)) throw bad(where, 'the definition is not an object');
    const attribute = info.physical_attribute === undefined ? 'Unknown' : info.physical_attribute;
    if (typeof attribute !== 'string' || attribute === '') throw bad(where, 'physical_attribute must be a non-empty string');
    const factor = refNumber(info.to_standard_factor, 1, where, 'to_standard_factor');
    const offset = refNumber(info.to_standard_offset, 0, where, 'to_standard_offset');
    checkFactor(factor, offset, where);
    const prefixable = info.can_take_prefix === undefined ? true : truthy(info.can_take_prefix);
    out.push({ key, attribute, factor, offset, prefixable, ucum: typeof info.ucum_code === 'string' ? info.ucum_code : null, name: typeof info.name === 'string' ? info.name : '' });
  }
  return out;
}

function parseUnitInput(u: unknown, where: string): UnitDefinition {
  if (!isObject(u)) throw bad(where, 'expected {key, attribute, factor?, offset?, prefixable?, ucum?, name?}');
  const key = checkKey(u.key, where);
  const w = `unit ${show(key)}`;
  if (typeof u.attribute !== 'string' || u.attribute === '') throw bad(w, 'attribute must be a non-empty string');
  const factor = u.factor ?? 1;
  const offset = u.offset ?? 0;
  if (typeof factor !== 'number' || typeof offset !== 'number') throw bad(w, 'factor and offset must be numbers');
  checkFactor(factor, offset, w);
  if (u.prefixable !== undefined && typeof u.prefixable !== 'boolean') throw bad(w, 'prefixable must be a boolean');
  if (u.ucum !== undefined && u.ucum !== null && typeof u.ucum !== 'string') throw bad(w, 'ucum must be a string');
  if (u.name !== undefined && typeof u.name !== 'string') throw bad(w, 'name must be a string');
  return { key, attribute: u.attribute, factor, offset, prefixable: u.prefixable ?? true, ucum: (u.ucum as string | null | undefined) ?? null, name: (u.name as string | undefined) ?? '' };
}

function parsePrefix(symbol: unknown, factor: unknown, name: unknown, where: string): PrefixDefinition {
  if (typeof symbol !== 'string' || symbol === '' || pyStrip(symbol) !== symbol) throw bad(where, 'the symbol must be a non-empty string without surrounding whitespace');
  const f = typeof factor === 'number' ? factor : typeof factor === 'string' ? pyParseFloat(factor) : undefined;
  if (f === undefined || !Number.isFinite(f) || f <= 0) throw bad(where, 'the factor must be a finite, positive number');
  return { symbol, factor: f, name: typeof name === 'string' ? name : '' };
}

function parsePrefixSource(source: unknown): PrefixDefinition[] {
  if (Array.isArray(source)) {
    return source.map((p, i) => {
      if (!isObject(p)) throw bad(`prefixes[${i}]`, 'expected {symbol, factor, name?}');
      return parsePrefix(p.symbol, p.factor, p.name, `prefixes[${i}]`);
    });
  }
  if (!isObject(source)) throw bad('prefix source', 'expected a list of prefixes or a reference prefix file');
  const out: PrefixDefinition[] = [];
  let tables = 0;
  for (const table of [source.decimal_prefixes, source.binary_prefixes]) {
    if (table === undefined) continue;
    if (!isObject(table)) throw bad('prefix source', 'decimal_prefixes / binary_prefixes must be objects');
    tables++;
    for (const [symbol, info] of Object.entries(table)) {
      const where = `prefix ${show(symbol)}`;
      if (!isObject(info)) throw bad(where, 'the definition is not an object');
      const def = parsePrefix(symbol, info.f, info.name, where);
      // The reference merges the two tables into one dict: a repeated symbol keeps its first
      // position and takes the later factor.
      const at = out.findIndex((p) => p.symbol === symbol);
      if (at >= 0) out[at] = def;
      else out.push(def);
    }
  }
  if (tables === 0) throw bad('prefix source', 'no decimal_prefixes or binary_prefixes');
  return out;
}
