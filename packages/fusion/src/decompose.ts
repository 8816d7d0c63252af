/**
 * Body text → template signature and values, the way the reference cuts it.
 *
 * `[aid;]{id}.{state}.{ts8}|{seg}|{seg}|...` becomes the signature `{id}.{state}.{TS}|` plus every
 * non-empty segment followed by `|`, where a sensor segment `{sid}>{meta}:{value}` is written
 * `{sid}>\x01:\x01` and contributes two values, `meta` and `value`. Segments without both `>` and
 * `:` (geohash `&`, url `#`, msg `@`, anything else) stay in the signature verbatim.
 */

/** Placeholder for a value inside a signature. */
export const VALUE_MARK = '\x01';
/** Placeholder for the timestamp token inside a signature. */
export const TS_MARK = '{TS}';

export interface Decomposed {
  sig: string;
  /** Two per sensor: `{state}.{unit}` and the Base62 value. */
  values: string[];
  /** The timestamp token (text after the header's last `.`). */
  token: string;
}

/** Why text did not decompose, for error messages. */
export type DecomposeFailure = 'no-bar' | 'no-dot' | 'sensor-colon';

/**
 * Decomposes `text`; returns the failure reason instead when the text lacks a `|` after the
 * header, a `.` before the token, or a sensor segment has its only `:` before the `>`.
 */
export function decompose(text: string): Decomposed | DecomposeFailure {
  const semi = text.indexOf(';');
  const start = semi < 0 ? 0 : semi + 1;
  const bar = text.indexOf('|', start);
  if (bar < 0) return 'no-bar';
  const dot = text.lastIndexOf('.', bar - 1);
  if (dot < start) return 'no-dot';
  let sig = `${text.slice(start, dot)}.{TS}|`;
  const values: string[] = [];
  const n = text.length;
  let pos = bar + 1;
  while (pos < n) {
    let next = text.indexOf('|', pos);
    if (next < 0) next = n;
    if (next > pos) {
      const gt = text.indexOf('>', pos);
      const colon = gt >= 0 && gt < next ? text.lastIndexOf(':', next - 1) : -1;
      if (colon > gt) {
        values.push(text.slice(gt + 1, colon), text.slice(colon + 1, next));
        sig += `${text.slice(pos, gt)}>\x01:\x01|`;
      } else if (colon >= pos) {
        // '>' and ':' both present, but no ':' after the '>': the reference cannot split it.
        return 'sensor-colon';
      } else {
        sig += `${text.slice(pos, next)}|`;
      }
    }
    pos = next + 1;
  }
  return { sig, values, token: text.slice(dot + 1, bar) };
}

/**
 * The text a DIFF/HEART frame stands for: the signature with the timestamp token and the values
 * put back. Placeholders are filled left to right, one value each; a value that itself holds a
 * placeholder character is handled as the reference does (its text is searched too).
 */
export function rebuild(sig: string, token: string, values: readonly string[]): string {
  const head = sig.includes(TS_MARK) ? sig.split(TS_MARK).join(token) : sig;
  let clean = true;
  for (let i = 0; i < values.length; i++) {
    if (values[i]!.includes(VALUE_MARK)) {
      clean = false;
      break;
    }
  }
  if (clean) {
    const parts = head.split(VALUE_MARK);
    let out = parts[0]!;
    for (let i = 1; i < parts.length; i++) out += (i - 1 < values.length ? values[i - 1]! : VALUE_MARK) + parts[i]!;
    return out;
  }
  // A value containing \x01 shifts later values into it: replace the first mark each time.
  let out = head;
  for (const v of values) {
    const at = out.indexOf(VALUE_MARK);
    if (at < 0) break;
    out = out.slice(0, at) + v + out.slice(at + 1);
  }
  return out;
}
