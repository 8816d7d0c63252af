/**
 * The reference node's registry files: one JSON file per AID, in its layout and format, so a
 * reference node and this package can share (or hand over) a registry directory. The store
 * itself is the one file store of `@opensynaptic/store` with the layout of `template-store.ts`.
 *
 * Layout: the AID zero-padded to 10 digits names two folder levels, the file keeps the plain
 * AID: aid 42 → `<root>/00/00/42.json`, aid 4294967295 → `<root>/42/94/4294967295.json`.
 *
 * Format (what the reference's `write_json(..., indent=4)` produces, byte for byte):
 *
 *     {
 *         "aid": "42",
 *         "templates": {
 *             "01": {
 *                 "sig": "DEV1.1.{TS}|T1>\u0001:\u0001|",
 *                 "last_vals_bin": [
 *                     "Sy5BMDE=",
 *                     "VFZL"
 *                 ]
 *             }
 *         }
 *     }
 *
 * Template ids are at least two digits; values are standard (not URL-safe) base64 of their UTF-8
 * bytes; a template whose values are unknown has no `last_vals_bin`.
 */
import { base64Decode, base64Encode } from '@opensynaptic/packet/body';
import { DeviceRegistry, MAX_TEMPLATE_ID } from './registry.js';
import { checkAid, RegistryStoreError } from './store-errors.js';

// ---------------------------------------------------------------------------------------------
// Path

/** Where a registry file lives under `root` (no file-system access; `aid` is checked). */
export function registryFilePath(root: string, aid: number): string {
  checkAid(aid);
  const z = String(aid).padStart(10, '0');
  return `${withSeparator(root)}${z.slice(0, 2)}/${z.slice(2, 4)}/${aid}.json`;
}

function withSeparator(root: string): string {
  const last = root[root.length - 1];
  return last === '/' || last === '\\' ? root : `${root}/`;
}


// ---------------------------------------------------------------------------------------------
// Encoding

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Template id as the reference writes it: at least two digits. */
function tidKey(tid: number): string {
  return tid < 10 && tid >= 0 ? `0${tid}` : String(tid);
}

/**
 * The file text of `registry`, identical to what the reference writes for the same templates
 * (same key order, 4-space indentation, non-ASCII kept as is, no trailing newline).
 */
export function encodeRegistryFile(registry: DeviceRegistry): string {
  // Written by hand rather than with JSON.stringify on an object: JavaScript objects enumerate
  // keys such as "100" before "01", and the reference keeps templates in insertion order.
  const out: string[] = ['{\n    "aid": ', JSON.stringify(String(registry.aid)), ',\n    "templates": '];
  if (registry.templates.size === 0) {
    out.push('{}');
  } else {
    let sep = '{\n        ';
    for (const [tid, t] of registry.templates) {
      out.push(sep, JSON.stringify(tidKey(tid)), ': {\n            "sig": ', JSON.stringify(t.sig));
      sep = ',\n        ';
      const values = t.values;
      if (values !== null) {
        out.push(',\n            "last_vals_bin": ');
        if (values.length === 0) {
          out.push('[]');
        } else {
          let vsep = '[\n                ';
          for (const v of values) {
            out.push(vsep, '"', base64Encode(utf8Encoder.encode(v)), '"');
            vsep = ',\n                ';
          }
          out.push('\n            ]');
        }
      }
      out.push('\n        }');
    }
    out.push('\n    }');
  }
  out.push('\n}');
  return out.join('');
}

/**
 * Reads a registry file's text back, strictly: the top level must be an object with exactly
 * `aid` (the string form of `aid`) and `templates`; `templates` an object whose keys are
 * template ids as written (two or more digits, 0..255, no other spelling) and whose entries are
 * objects with a non-empty string `sig` and optionally `last_vals_bin`, a list of canonical
 * standard base64 strings of UTF-8 text. Anything else (a wrong shape, a renamed or unknown key,
 * a value that is not base64, a duplicated key) throws `ERR_FUSION_STORE_CORRUPT` naming the
 * field, like a file that is not JSON (a `SyntaxError` cause then). The reference repairs such
 * files silently, which loses what they held at its next save; see the README.
 */
export function decodeRegistryFile(aid: number, text: string): DeviceRegistry {
  let root: unknown;
  try {
    root = parseJsonOrdered(text);
  } catch (e) {
    throw new RegistryStoreError('ERR_FUSION_STORE_CORRUPT', 'is not JSON', { aid, cause: e });
  }
  const bad = (field: string, detail: string): never => {
    throw new RegistryStoreError('ERR_FUSION_STORE_CORRUPT', `${field}: ${detail}`, { aid });
  };
  if (!(root instanceof Map)) return bad('(top level)', `expected an object, got ${jsonKind(root)}`);
  for (const key of root.keys()) if (key !== 'aid' && key !== 'templates') bad(JSON.stringify(key), 'unknown field');
  const aidField = root.get('aid');
  if (aidField !== String(aid)) bad('aid', `expected ${JSON.stringify(String(aid))}, got ${describeJson(aidField)}`);
  const templates = root.get('templates');
  if (!(templates instanceof Map)) return bad('templates', `expected an object, got ${jsonKind(templates)}`);
  const registry = new DeviceRegistry(aid);
  for (const [key, entry] of templates) {
    const where = `templates.${JSON.stringify(key)}`;
    const tid = parseTidKey(key);
    if (tid === undefined || tidKey(tid) !== key) bad(where, 'not a template id (two or more digits, 0..255)');
    if (!(entry instanceof Map)) return bad(where, `expected an object, got ${jsonKind(entry)}`);
    for (const field of entry.keys()) if (field !== 'sig' && field !== 'last_vals_bin') bad(`${where}.${JSON.stringify(field)}`, 'unknown field');
    const sig = entry.get('sig');
    if (typeof sig !== 'string' || sig === '') bad(`${where}.sig`, `expected a non-empty string, got ${describeJson(sig)}`);
    const stored = entry.get('last_vals_bin');
    let values: string[] | null = null;
    if (stored !== undefined) {
      if (!Array.isArray(stored)) return bad(`${where}.last_vals_bin`, `expected a list, got ${jsonKind(stored)}`);
      values = [];
      for (let k = 0; k < stored.length; k++) {
        const item: unknown = stored[k];
        const value = typeof item === 'string' ? canonicalBase64ToText(item) : null;
        if (value === null) bad(`${where}.last_vals_bin[${k}]`, `${describeJson(item)} is not canonical base64 of UTF-8 text`);
        values.push(value as string);
      }
    }
    registry.put(tid as number, sig as string, values);
  }
  registry.dirty = false;
  return registry;
}

function jsonKind(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (v instanceof Map) return 'an object';
  if (Array.isArray(v)) return 'a list';
  return `a ${typeof v}`;
}

function describeJson(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return jsonKind(v);
}

function parseTidKey(key: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(key)) return undefined;
  const tid = Number(key);
  return tid <= MAX_TEMPLATE_ID ? tid : undefined;
}

// Base64: `base64Encode` and the reference-lenient `base64Decode` are the body codec's (one copy).
export { base64Decode };

/**
 * Text of a stored value, or `null` unless `s` is exactly what `base64Encode` writes for some
 * UTF-8 text: the lenient decoder skips junk (`"*"` would read as `""`), so the bytes decoded are
 * encoded again and must give `s` back.
 */
function canonicalBase64ToText(s: string): string | null {
  const bytes = base64Decode(s);
  if (bytes === null || base64Encode(bytes) !== s) return null;
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    // Values are body text; bytes that are not UTF-8 cannot be one.
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON with key order. JSON.parse cannot be used for the templates object: JavaScript enumerates
// integer-like keys ("10".."255") before the others, losing the order the file (and the
// reference's dictionary) keeps, which decides which template a duplicated signature maps to.
// Objects come back as Maps; otherwise this accepts what the reference's reader accepts
// (RFC 8259 plus NaN / Infinity / -Infinity), except duplicate keys.

const MAX_DEPTH = 512;
// Every alternative starts with a different character, so matching is linear.
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON forbids raw control characters in strings; this is the check.
const STRING_RE = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERALS: ReadonlyArray<readonly [string, unknown]> = [
  ['true', true],
  ['false', false],
  ['null', null],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
];

function parseJsonOrdered(text: string): unknown {
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };
  const skipWhitespace = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      i++;
    }
  };
  const string = (): string => {
    STRING_RE.lastIndex = i;
    const m = STRING_RE.exec(text);
    if (m === null) return fail('invalid string');
    i += m[0].length;
    return JSON.parse(m[0]) as string;
  };
  const value = (depth: number): unknown => {
    skipWhitespace();
    if (i >= n) return fail('unexpected end of input');
    const c = text.charCodeAt(i);
    if (c === 0x22) return string();
    if (c === 0x7b || c === 0x5b) {
      if (depth >= MAX_DEPTH) return fail('nesting too deep');
      i++;
      skipWhitespace();
      const close = c === 0x7b ? 0x7d : 0x5d;
      const obj = c === 0x7b ? new Map<string, unknown>() : null;
      const arr: unknown[] = [];
      if (text.charCodeAt(i) === close) {
        i++;
        return obj ?? arr;
      }
      for (;;) {
        if (obj !== null) {
          skipWhitespace();
          if (text.charCodeAt(i) !== 0x22) return fail('expected a property name');
          const key = string();
          // The reference keeps the last of duplicated keys; a file written by either side never
          // has any, so one that does was edited or damaged.
          if (obj.has(key)) return fail(`duplicate key ${JSON.stringify(key)}`);
          skipWhitespace();
          if (text.charCodeAt(i) !== 0x3a) return fail("expected ':'");
          i++;
          obj.set(key, value(depth + 1));
        } else {
          arr.push(value(depth + 1));
        }
        skipWhitespace();
        const d = text.charCodeAt(i);
        if (d === close) {
          i++;
          return obj ?? arr;
        }
        if (d !== 0x2c) return fail(obj !== null ? "expected ',' or '}'" : "expected ',' or ']'");
        i++;
      }
    }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(text);
    if (m !== null) {
      i += m[0].length;
      return Number(m[0]);
    }
    for (const [word, v] of LITERALS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail('unexpected character');
  };
  const result = value(0);
  skipWhitespace();
  if (i !== n) fail('unexpected data after the JSON value');
  return result;
}
