/**
 * JSON text as the reference writes it (`json.dumps(obj, ensure_ascii=False)`), so ID_REQUEST and
 * ID_POOL_REQ packets are byte-identical: `", "` and `": "` separators, non-ASCII kept as is,
 * floats in Python's `repr` form (`1e-05`, `1e+16`, `2.5`).
 *
 * JavaScript has one number type, so safe integers are written as integers (`1`, not `1.0`);
 * other numbers as Python floats. A `Map` keeps its insertion order for keys that look like
 * integers, which a plain object would move to the front.
 */
import { JsonValueError } from './errors.js';
import { pyJsonFloat } from '@opensynaptic/packet/body';

/** What `pyJsonDumps` accepts. */
export type JsonInput =
  | null
  | boolean
  | number
  | bigint
  | string
  | readonly JsonInput[]
  | { readonly [key: string]: JsonInput | undefined }
  | ReadonlyMap<string, JsonInput>;

/** Nesting deeper than this is refused (a cycle or a hostile structure would overflow the stack). */
export const MAX_JSON_DEPTH = 256;

/**
 * A float as Python's `json.dumps` writes it (`NaN`, not `repr`'s `nan`).
 * @deprecated Use `pyJsonFloat` of `@opensynaptic/packet/body` (the same function, beside `pyFloatRepr`, the `repr` spelling).
 */
export const pyFloatRepr: (x: number) => string = pyJsonFloat;

function numberText(x: number): string {
  if (Number.isSafeInteger(x) && !Object.is(x, -0)) return String(x);
  return pyJsonFloat(x);
}

/**
 * `json.dumps(value, ensure_ascii=False)` with the default separators. Object members whose
 * value is `undefined` are skipped (as `JSON.stringify` does). Throws `JsonValueError` for
 * functions, symbols, cycles and nesting beyond `MAX_JSON_DEPTH`.
 */
export function pyJsonDumps(value: JsonInput): string {
  const parts: string[] = [];
  write(value, parts, 0, new Set());
  return parts.join('');
}

function write(v: unknown, out: string[], depth: number, seen: Set<object>): void {
  if (v === null) {
    out.push('null');
    return;
  }
  switch (typeof v) {
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      out.push(numberText(v));
      return;
    case 'bigint':
      out.push(v.toString());
      return;
    case 'string':
      // Python's escapes with ensure_ascii=False are JSON.stringify's: \" \\ \n \r \t \b \f and \u00XX.
      out.push(JSON.stringify(v));
      return;
    case 'object':
      break;
    default:
      throw new JsonValueError(`${typeof v} has no JSON form`);
  }
  if (depth >= MAX_JSON_DEPTH) throw new JsonValueError(`nesting deeper than ${MAX_JSON_DEPTH}`);
  const obj = v as object;
  if (seen.has(obj)) throw new JsonValueError('circular reference');
  seen.add(obj);
  if (Array.isArray(obj)) {
    out.push('[');
    for (let i = 0; i < obj.length; i++) {
      if (i > 0) out.push(', ');
      write(obj[i] === undefined ? null : obj[i], out, depth + 1, seen);
    }
    out.push(']');
  } else {
    const entries: Iterable<[unknown, unknown]> = obj instanceof Map ? obj.entries() : Object.entries(obj);
    out.push('{');
    let first = true;
    for (const [k, val] of entries) {
      if (val === undefined) continue;
      if (typeof k !== 'string') throw new JsonValueError(`object keys must be strings, got ${typeof k}`);
      if (!first) out.push(', ');
      first = false;
      out.push(JSON.stringify(k), ': ');
      write(val, out, depth + 1, seen);
    }
    out.push('}');
  }
  seen.delete(obj);
}

/**
 * A canonical text of a parsed JSON value: object keys sorted, so two metas that differ only in
 * member order name the same device.
 */
export function canonicalJson(value: unknown): string {
  return pyJsonDumps(sortKeys(value, 0) as JsonInput);
}

function sortKeys(v: unknown, depth: number): unknown {
  if (v === null || typeof v !== 'object' || depth > MAX_JSON_DEPTH) return v;
  if (Array.isArray(v)) return v.map((x) => sortKeys(x, depth + 1));
  const out = new Map<string, unknown>();
  for (const k of Object.keys(v).sort()) out.set(k, sortKeys((v as Record<string, unknown>)[k], depth + 1));
  return out;
}
