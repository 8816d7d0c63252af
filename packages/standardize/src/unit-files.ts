/**
 * Reading unit and prefix files from disk (Node only): JSON in this package's shape or the
 * reference's `Units/*.json` / `Prefixes.json` layout, ready for `UnitLibrary.add` / `addPrefixes`.
 */
import { nodeBuiltin } from '@opensynaptic/internal';
import { show, UnitLibraryError } from './errors.js';
import type { PrefixSource, UnitSource } from './unit-library.js';

interface NodeFs {
  readFileSync(path: string, encoding: 'utf8'): string;
  readdirSync(path: string): string[];
}
interface NodePath {
  join(...parts: string[]): string;
}

function fs(path: string): NodeFs {
  const f = nodeBuiltin<NodeFs>('node:fs');
  if (!f) throw new UnitLibraryError('ERR_UNIT_FILE', `${show(path)}: node:fs is not available on this platform; pass the parsed JSON to UnitLibrary.add instead`);
  return f;
}

function readJson(path: string): unknown {
  if (typeof path !== 'string' || path === '') throw new UnitLibraryError('ERR_UNIT_FILE', 'expected a file path');
  let text: string;
  try {
    text = fs(path).readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof UnitLibraryError) throw e;
    throw new UnitLibraryError('ERR_UNIT_FILE', `${show(path)}: cannot be read (${(e as Error)?.message ?? e})`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UnitLibraryError('ERR_UNIT_FILE', `${show(path)}: not JSON (${(e as Error).message})`, { cause: e });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a unit file: a list of units, `{"units": [...]}`, or a reference unit file
 * (`{"units": {key: info}}`). Pass the result to `UnitLibrary.add`, which checks every entry.
 * Throws `UnitLibraryError` (`ERR_UNIT_FILE`) when the file cannot be read, is not JSON or has
 * neither shape.
 */
export function loadUnitFile(path: string): UnitSource {
  const data = readJson(path);
  if (Array.isArray(data) || (isObject(data) && (Array.isArray(data.units) || isObject(data.units)))) return data as UnitSource;
  throw new UnitLibraryError('ERR_UNIT_FILE', `${show(path)}: not a unit file (expected a list of units or a "units" field)`);
}

/** Reads a prefix file: a list of `{symbol, factor, name?}` or the reference's `Prefixes.json` layout. */
export function loadPrefixFile(path: string): PrefixSource {
  const data = readJson(path);
  if (Array.isArray(data) || (isObject(data) && (isObject(data.decimal_prefixes) || isObject(data.binary_prefixes)))) return data as PrefixSource;
  throw new UnitLibraryError('ERR_UNIT_FILE', `${show(path)}: not a prefix file (expected a list or decimal_prefixes / binary_prefixes)`);
}

/**
 * Reads every `*.json` unit file of a directory (such as the reference's `libraries/Units`), in
 * sorted name order: where files define the same key, the order decides which one a library
 * keeps (`add(source, { onDuplicate: 'keep' })`), so it must not depend on the file system.
 */
export function loadUnitDirectory(dir: string): UnitSource[] {
  const f = fs(dir);
  const path = nodeBuiltin<NodePath>('node:path');
  let names: string[];
  try {
    names = f.readdirSync(dir);
  } catch (e) {
    throw new UnitLibraryError('ERR_UNIT_FILE', `${show(dir)}: cannot be listed (${(e as Error)?.message ?? e})`, { cause: e });
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => loadUnitFile(path ? path.join(dir, n) : `${dir}/${n}`));
}
