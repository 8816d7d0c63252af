import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, isReferenceConfig, validateConfig } from '@opensynaptic/server/config';
import pc from 'picocolors';
import { CliError } from './errors.js';
import type { Output } from './output.js';

/** The file `config`, `serve`, `snapshot` and `transport-status` read when `--config` is not given (in the working directory). */
export const DEFAULT_CONFIG_FILE = 'os-node.json';

/** A dotted key (`server.port`, `transports.0.options.port`) as its segments. */
function segmentsOf(key: string): string[] {
  const parts = key.split('.');
  if (key === '' || parts.some((p) => p === '')) throw new CliError('ERR_CLI_USAGE', `key ${JSON.stringify(key)}: expected dotted names such as server.port or transports.0.options.port`);
  return parts;
}

function lookup(root: unknown, parts: readonly string[]): { found: boolean; value: unknown } {
  let at: unknown = root;
  for (const p of parts) {
    if (typeof at !== 'object' || at === null || !Object.hasOwn(at, p)) return { found: false, value: undefined };
    at = (at as Record<string, unknown>)[p];
  }
  return { found: true, value: at };
}

/** The keys one level below `parts` (for the message of an unknown key). */
function keysAt(root: unknown, parts: readonly string[]): string[] {
  const { found, value } = lookup(root, parts);
  return found && typeof value === 'object' && value !== null ? Object.keys(value) : [];
}

interface RawFile {
  path: string;
  exists: boolean;
  raw: Record<string, unknown>;
  indent: string;
}

function readRaw(file: string): RawFile {
  const path = resolve(file);
  if (!existsSync(path)) return { path, exists: false, raw: {}, indent: '  ' };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError('ERR_CLI_UNAVAILABLE', `${file}: cannot read (${(e as Error).message})`, { cause: e });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CliError('ERR_CLI_INPUT', `${file}: not JSON (${(e as Error).message})`, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CliError('ERR_CLI_INPUT', `${file}: a configuration is a JSON object, got ${Array.isArray(raw) ? 'an array' : typeof raw}`);
  // Written back with the file's own indentation.
  const indent = /^\{\r?\n([ \t]+)"/.exec(text)?.[1] ?? '  ';
  return { path, exists: true, raw: raw as Record<string, unknown>, indent };
}

/** Validates, turning a `ConfigError` into the CLI's bad-input error (exit 3) with the same message. */
function validated(raw: unknown, source: string) {
  try {
    return validateConfig(raw, source);
  } catch (e) {
    if (e instanceof ConfigError) throw Object.assign(new CliError('ERR_CLI_INPUT', e.message, { cause: e }), { issues: e.issues });
    throw e;
  }
}

export interface ConfigFileOption {
  config?: string;
}

/**
 * The value of a dotted key: of the validated configuration (defaults filled in; a reference
 * `Config.json` as mapped to our keys), or with `--raw` of the file as written (its own keys).
 */
export function configGet(out: Output, key: string, options: ConfigFileOption & { raw?: boolean }): void {
  const parts = segmentsOf(key);
  const file = readRaw(options.config ?? DEFAULT_CONFIG_FILE);
  if (!file.exists && options.config !== undefined) throw new CliError('ERR_CLI_UNAVAILABLE', `${options.config}: no such file`);
  const root = options.raw ? file.raw : validated(file.raw, file.path).config;
  const { found, value } = lookup(root, parts);
  if (!found) {
    const known = keysAt(root, parts.slice(0, -1));
    throw new CliError('ERR_CLI_USAGE', `key ${key}: not in the ${options.raw ? 'file' : 'configuration'}${known.length > 0 ? ` (keys here: ${known.join(', ')})` : ''}`);
  }
  const fromFile = lookup(isReferenceConfig(file.raw) && !options.raw ? null : file.raw, parts).found;
  out.result({ key, value, source: options.raw || fromFile ? 'file' : 'default', file: file.exists ? file.path : null }, () => out.raw(`${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}\n`));
}

/** A value from the command line: JSON when it parses as JSON (`9000`, `true`, `[1,2]`, `"text"`), else the text itself. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Sets a dotted key of the file (created when missing) to a value, validates the whole result,
 * and writes it back with every other key as it was; a value the schema refuses leaves the file
 * untouched and exits 3 with the message naming key, value and what is allowed.
 */
export function configSet(out: Output, key: string, valueText: string, options: ConfigFileOption): void {
  const parts = segmentsOf(key);
  const file = readRaw(options.config ?? DEFAULT_CONFIG_FILE);
  const value = parseValue(valueText);
  const next = structuredClone(file.raw);
  let at: Record<string, unknown> | unknown[] = next;
  for (const [i, p] of parts.entries()) {
    const last = i === parts.length - 1;
    if (Array.isArray(at)) {
      const index = Number(p);
      if (!Number.isInteger(index) || index < 0 || index > at.length) throw new CliError('ERR_CLI_USAGE', `key ${key}: ${p} is not an index of ${parts.slice(0, i).join('.')} (0..${at.length})`);
      if (last) at[index] = value;
      else {
        at[index] ??= /^\d+$/.test(parts[i + 1] as string) ? [] : {};
        at = at[index] as Record<string, unknown>;
      }
    } else if (last) at[p] = value;
    else {
      const child = at[p];
      if (typeof child !== 'object' || child === null) at[p] = /^\d+$/.test(parts[i + 1] as string) ? [] : {};
      at = at[p] as Record<string, unknown>;
    }
  }
  const result = validated(next, file.path);
  const tmp = `${file.path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(next, null, file.indent)}\n`);
    renameSync(tmp, file.path);
  } catch (e) {
    throw new CliError('ERR_CLI_UNAVAILABLE', `${file.path}: cannot write (${(e as Error).message})`, { cause: e });
  }
  for (const w of result.warnings) out.status(`${pc.yellow('warning')}: ${w}`);
  out.result({ key, value, file: file.path, created: !file.exists, warnings: result.warnings }, () => out.line(`${pc.green('set')} ${key} = ${JSON.stringify(value)} in ${file.path}`));
}

/** Validates a file (ours or a reference Config.json): exit 0 and its warnings, or 3 with every bad key. */
export function configValidate(out: Output, fileArg: string | undefined, options: ConfigFileOption): void {
  const name = fileArg ?? options.config ?? DEFAULT_CONFIG_FILE;
  const file = readRaw(name);
  if (!file.exists) throw new CliError('ERR_CLI_UNAVAILABLE', `${name}: no such file`);
  let result: ReturnType<typeof validateConfig>;
  try {
    result = validated(file.raw, file.path);
  } catch (e) {
    const issues = (e as { issues?: unknown }).issues;
    if (issues !== undefined) out.result({ valid: false, file: file.path, issues }, () => {});
    throw e;
  }
  out.result({ valid: true, file: file.path, format: result.format, warnings: result.warnings }, () => {
    out.line(`${pc.green('valid')} ${file.path} (${result.format === 'reference' ? 'a reference Config.json' : 'opensynaptic-js configuration'})`);
    for (const w of result.warnings) out.line(`${pc.yellow('warning')}: ${w}`);
  });
}
