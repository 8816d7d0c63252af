/**
 * Registries as JSON files, one per AID, in the reference node's layout and format, so a
 * reference node and this package can share (or hand over) a registry directory.
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
import { nodeBuiltin } from '@opensynaptic/internal';
import { base64Encode } from '@opensynaptic/packet/body';
import { DeviceRegistry, MAX_TEMPLATE_ID, type RegistryStore } from './registry.js';
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

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/'));
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
 * Reads a registry file's text back, repairing what the reference repairs: a top level or
 * `templates` that is not an object counts as empty; templates that are not objects, lack a
 * non-empty string `sig` or have a key that is not a template id (digits, 0..255) are skipped;
 * keys are normalised to two or more digits ("1" → tid 1, written back as "01"); `last_vals_bin`
 * entries that are not strings, not base64, or not UTF-8 are dropped (a `last_vals_bin` that is
 * not a list counts as absent). Unknown fields are ignored (and not written back).
 *
 * The registry comes back `dirty` exactly when something was repaired, so the next save
 * rewrites the file clean. Throws a `SyntaxError` when `text` is not JSON at all.
 */
export function decodeRegistryFile(aid: number, text: string): DeviceRegistry {
  const registry = new DeviceRegistry(aid);
  const root = parseJsonOrdered(text);
  let repaired = false;
  if (!(root instanceof Map)) {
    registry.dirty = true;
    return registry;
  }
  const templates = root.get('templates');
  if (templates !== undefined && !(templates instanceof Map)) repaired = true;
  if (templates instanceof Map) {
    for (const [key, entry] of templates) {
      const tid = parseTidKey(key);
      const sig = entry instanceof Map ? entry.get('sig') : undefined;
      if (tid === undefined || !(entry instanceof Map) || typeof sig !== 'string' || sig === '') {
        repaired = true;
        continue;
      }
      if (tidKey(tid) !== key) repaired = true;
      const stored = entry.get('last_vals_bin');
      let values: string[] | null = null;
      if (Array.isArray(stored)) {
        values = [];
        for (const item of stored) {
          const value = typeof item === 'string' ? base64ToText(item) : null;
          if (value === null) repaired = true;
          else values.push(value);
        }
      } else if (stored !== undefined) {
        repaired = true;
      }
      registry.put(tid, sig, values);
    }
  }
  registry.dirty = repaired;
  return registry;
}

function parseTidKey(key: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(key)) return undefined;
  const tid = Number(key);
  return tid <= MAX_TEMPLATE_ID ? tid : undefined;
}

// ---------------------------------------------------------------------------------------------
// Base64 (standard alphabet, padded). Own code rather than Buffer/atob: the codec must run in
// browsers too, and decoding must accept exactly what the reference's decoder accepts.

/** The reader's alphabet: standard base64 (what the reference writes with `b64encode`). */
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VALUE = new Int8Array(128).fill(-1);
for (let k = 0; k < 64; k++) B64_VALUE[B64.charCodeAt(k)] = k;

/**
 * Decodes base64 the lenient way the reference's decoder does: characters outside the alphabet
 * are skipped, a complete pad ends the data, and the data must end on a quantum boundary.
 * Returns `null` where the reference raises (bad padding, non-ASCII text).
 */
export function base64Decode(s: string): Uint8Array | null {
  const out = new Uint8Array(((s.length * 3) >> 2) + 3);
  let o = 0;
  let quad = 0;
  let left = 0;
  let pads = 0;
  for (let k = 0; k < s.length; k++) {
    const ch = s.charCodeAt(k);
    if (ch > 127) return null;
    if (ch === 0x3d) {
      if (quad >= 2 && quad + ++pads >= 4) return out.subarray(0, o);
      continue;
    }
    const v = B64_VALUE[ch]!;
    if (v < 0) continue;
    pads = 0;
    if (quad === 0) {
      left = v;
      quad = 1;
    } else if (quad === 1) {
      out[o++] = (left << 2) | (v >> 4);
      left = v & 0x0f;
      quad = 2;
    } else if (quad === 2) {
      out[o++] = (left << 4) | (v >> 2);
      left = v & 0x03;
      quad = 3;
    } else {
      out[o++] = (left << 6) | v;
      quad = 0;
    }
  }
  return quad === 0 ? out.subarray(0, o) : null;
}

function base64ToText(s: string): string | null {
  const bytes = base64Decode(s);
  if (bytes === null) return null;
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
// (RFC 8259 plus NaN / Infinity / -Infinity, duplicate keys keeping the first position and the
// last value).

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

// ---------------------------------------------------------------------------------------------
// Store

interface NodeFs {
  readFileSync(path: string): Uint8Array;
  openSync(path: string, flags: string, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  rmSync(path: string, options?: { force?: boolean }): void;
  mkdirSync(path: string, options?: { recursive?: boolean }): string | undefined;
}

/** Options of {@link FileRegistryStore}. */
export interface FileRegistryStoreOptions {
  /**
   * Directory of the registries (the reference's `data/device_registry`, or its
   * `RESOURCES.registry` setting). Sub-folders are created on first save.
   */
  root: string;
  /**
   * What `load` does with a file that is not JSON (or not UTF-8):
   * - `"throw"` (default): throws `ERR_FUSION_STORE_CORRUPT` naming the file and leaves it in
   *   place, so nothing is overwritten before someone looks at it. Loads of that AID keep failing
   *   until the file is fixed or removed.
   * - `"quarantine"`: renames it to `<aid>.json.corrupt-<ms>-<n>` beside the original, reports it
   *   to `onQuarantine`, and loads the AID as unknown (the reference instead silently starts
   *   over and overwrites the file at its next sync).
   */
  onCorrupt?: 'throw' | 'quarantine' | undefined;
  /** Told about each file moved aside in `"quarantine"` mode, with the error it would have thrown. */
  onQuarantine?: ((error: RegistryStoreError, movedTo: string) => void) | undefined;
  /**
   * `true` (default): each save is flushed to the device (`fsync` of the file and of its folder)
   * before `save` returns, so it survives a power cut. `false` skips the flushes: a crash of the
   * process still never leaves a torn file, a power cut may lose the latest saves.
   */
  durable?: boolean | undefined;
}

let tmpCounter = 0;
let quarantineCounter = 0;

function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Registries as JSON files in the reference's layout and format (see the module comment). Node
 * only: it reaches `node:fs` at construction, so importing the package in a browser is fine but
 * constructing this store there throws `ERR_FUSION_STORE_UNSUPPORTED`.
 *
 * Each save writes a temporary file in the target's folder (`.<aid>.json.<pid>.<n>.tmp`), flushes
 * it, and renames it over the target: readers, including a reference node sharing the folder,
 * see the old file or the new one, never a torn one, even if the process is killed mid-write. A
 * kill can leave a temporary file behind; nothing reads those, and they can be deleted anytime.
 * The reference's `<aid>.json.lock` files are neither needed nor touched.
 */
export class FileRegistryStore implements RegistryStore {
  /** The root directory, as given. */
  readonly root: string;
  readonly #fs: NodeFs;
  readonly #quarantine: boolean;
  readonly #onQuarantine: ((error: RegistryStoreError, movedTo: string) => void) | undefined;
  readonly #durable: boolean;
  readonly #pid: number;

  constructor(options: FileRegistryStoreOptions | string) {
    const opts = typeof options === 'string' ? { root: options } : options;
    if (typeof opts.root !== 'string' || opts.root === '') {
      throw new RegistryStoreError('ERR_FUSION_STORE_OPTION', 'root must be a non-empty directory path');
    }
    const onCorrupt = opts.onCorrupt ?? 'throw';
    if (onCorrupt !== 'throw' && onCorrupt !== 'quarantine') {
      throw new RegistryStoreError('ERR_FUSION_STORE_OPTION', `onCorrupt must be "throw" or "quarantine", got ${JSON.stringify(onCorrupt)}`);
    }
    const fs = nodeBuiltin<NodeFs>('node:fs');
    if (!fs) {
      throw new RegistryStoreError('ERR_FUSION_STORE_UNSUPPORTED', 'node:fs is not available on this platform; use MemoryRegistryStore or another RegistryStore', {
        path: opts.root,
      });
    }
    this.root = opts.root;
    this.#fs = fs;
    this.#quarantine = onCorrupt === 'quarantine';
    this.#onQuarantine = opts.onQuarantine;
    this.#durable = opts.durable ?? true;
    this.#pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
  }

  /** The file of `aid` (it may not exist). Throws `ERR_FUSION_STORE_AID` for a bad AID. */
  pathOf(aid: number): string {
    return registryFilePath(this.root, aid);
  }

  /**
   * The registry of `aid`, or `null` when it has no file. Damage inside valid JSON is repaired
   * (see {@link decodeRegistryFile}) and the registry comes back `dirty`. A file that is not
   * JSON is handled as `onCorrupt` says; other read failures throw `ERR_FUSION_STORE_READ`.
   */
  load(aid: number): DeviceRegistry | null {
    const path = this.pathOf(aid);
    let bytes: Uint8Array;
    try {
      bytes = this.#fs.readFileSync(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return null;
      throw new RegistryStoreError('ERR_FUSION_STORE_READ', 'cannot be read', { aid, path, cause: e });
    }
    try {
      return decodeRegistryFile(aid, utf8Decoder.decode(bytes));
    } catch (e) {
      const error = new RegistryStoreError('ERR_FUSION_STORE_CORRUPT', 'is not a JSON registry file', { aid, path, cause: e });
      if (!this.#quarantine) throw error;
      const movedTo = `${path}.corrupt-${Date.now()}-${++quarantineCounter}`;
      try {
        this.#fs.renameSync(path, movedTo);
      } catch (renameError) {
        throw new RegistryStoreError('ERR_FUSION_STORE_CORRUPT', 'is not a JSON registry file and cannot be moved aside', {
          aid,
          path,
          cause: renameError,
        });
      }
      this.#onQuarantine?.(error, movedTo);
      return null;
    }
  }

  /** Writes `registry` atomically. Throws `ERR_FUSION_STORE_WRITE` (the old file stays intact). */
  save(registry: DeviceRegistry): void {
    const aid = registry.aid;
    const path = this.pathOf(aid);
    const dir = dirOf(path);
    const fs = this.#fs;
    const data = utf8Encoder.encode(encodeRegistryFile(registry));
    const tmp = `${dir}/.${aid}.json.${this.#pid}.${++tmpCounter}.tmp`;
    let fd = -1;
    try {
      try {
        fd = fs.openSync(tmp, 'wx', 0o600);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') throw e;
        // First save in this folder: create it, then try again.
        this.#makeDir(dir);
        fd = fs.openSync(tmp, 'wx', 0o600);
      }
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
      if (this.#durable) fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = -1;
      fs.renameSync(tmp, path);
    } catch (e) {
      if (fd >= 0) {
        try {
          fs.closeSync(fd);
        } catch {
          // The write already failed; that error is the one to report.
        }
      }
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // Best effort: a leftover temporary file is harmless.
      }
      throw new RegistryStoreError('ERR_FUSION_STORE_WRITE', 'cannot be written', { aid, path, cause: e });
    }
    if (this.#durable) this.#syncDir(dir);
  }

  /** Deletes the file of `aid` (nothing happens when there is none). */
  delete(aid: number): void {
    const path = this.pathOf(aid);
    try {
      this.#fs.rmSync(path, { force: true });
    } catch (e) {
      throw new RegistryStoreError('ERR_FUSION_STORE_DELETE', 'cannot be deleted', { aid, path, cause: e });
    }
  }

  #makeDir(dir: string): void {
    const created = this.#fs.mkdirSync(dir, { recursive: true });
    if (this.#durable && created !== undefined) {
      // New folders must be recorded in their parents too, or a power cut can lose the file
      // with its folder.
      this.#syncDir(dirOf(dir));
      this.#syncDir(this.root);
    }
  }

  #syncDir(dir: string): void {
    // Makes the rename durable. Some platforms (Windows) cannot open a folder for syncing; the
    // data is already in the file then, and a failure here does not undo the save.
    let fd = -1;
    try {
      fd = this.#fs.openSync(dir, 'r');
      this.#fs.fsyncSync(fd);
    } catch {
      // See above.
    }
    if (fd >= 0) {
      try {
        this.#fs.closeSync(fd);
      } catch {
        // Nothing was written through this descriptor; the save stands.
      }
    }
  }
}
