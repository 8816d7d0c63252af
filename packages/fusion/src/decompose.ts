/**
 * Body text → template signature and values, the way the reference cuts it.
 *
 * `[aid;]{id}.{state}.{ts8}|{seg}|{seg}|...` becomes the signature `{id}.{state}.{TS}|` plus every
 * non-empty segment followed by `|`, where a sensor segment `{sid}>{meta}:{value}` is written
 * `{sid}>\x01:\x01` and contributes two values, `meta` and `value`. Segments without both `>` and
 * `:` (geohash `&`, url `#`, msg `@`, anything else) stay in the signature verbatim.
 */
import { Wire, WireText } from '@opensynaptic/internal';

/** Placeholder for a value inside a signature (`Wire.VALUE_MARK`, shared with the native addon). */
export const VALUE_MARK: string = String.fromCharCode(Wire.VALUE_MARK);
/** Placeholder for the timestamp token inside a signature. */
export const TS_MARK = WireText.TS_MARK;

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
      const gt = firstIn(text, 62 /* > */, pos, next);
      const colon = gt < 0 ? -1 : lastIn(text, 58 /* : */, pos, next);
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

// Searches bounded to one segment [from, to): searching the rest of the text from each segment
// (`indexOf`, `lastIndexOf`) makes a text of many segments quadratic.

/** Index of the first `c` in text[from, to), or -1. */
function firstIn(text: string, c: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (text.charCodeAt(i) === c) return i;
  return -1;
}

/** `text.slice(from, to)`, or `old` itself when it holds exactly that text. */
function same(text: string, from: number, to: number, old: string | undefined): string {
  return old !== undefined && old.length === to - from && text.startsWith(old, from) ? old : text.slice(from, to);
}

/** Index of the last `c` in text[from, to), or -1. */
function lastIn(text: string, c: number, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) if (text.charCodeAt(i) === c) return i;
  return -1;
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
  // A value containing \x01 shifts later values into it: each value replaces the first mark left
  // in the text, which may be one inside the value put in just before. Nothing before that mark
  // holds one any more, so the text is kept as a stack of pieces still to scan (the newest value
  // on top) and every character is scanned once, instead of searching and re-slicing the whole
  // text per value.
  let done = '';
  const pieces: string[] = [head];
  const offsets: number[] = [0];
  for (const v of values) {
    let found = false;
    while (pieces.length > 0) {
      const top = pieces.length - 1;
      const piece = pieces[top]!;
      const from = offsets[top]!;
      const at = piece.indexOf(VALUE_MARK, from);
      if (at < 0) {
        done += from === 0 ? piece : piece.slice(from);
        pieces.pop();
        offsets.pop();
        continue;
      }
      done += piece.slice(from, at);
      offsets[top] = at + 1;
      pieces.push(v);
      offsets.push(0);
      found = true;
      break;
    }
    if (!found) break;
  }
  for (let i = pieces.length - 1; i >= 0; i--) done += pieces[i]!.slice(offsets[i]!);
  return done;
}

/** A signature cut into what text must repeat to have it: the header and each segment. */
export interface SigShape {
  readonly head: string;
  /** Sensor segments by tag (`{tag}>…:…`), other segments by their whole text. */
  readonly segs: readonly { readonly tag: string; readonly sensor: boolean }[];
}

/** The shape of a signature built by `decompose`. */
export function sigShape(sig: string): SigShape | null {
  const at = sig.indexOf('.{TS}|');
  if (at < 0) return null;
  const rest = sig.slice(at + 6).split('|');
  rest.pop(); // every segment is followed by '|'
  return {
    head: sig.slice(0, at),
    segs: rest.map((s) => (s.endsWith('>\x01:\x01') ? { tag: s.slice(0, -4), sensor: true } : { tag: s, sensor: false })),
  };
}

/**
 * Why DIFF and HEART frames could not give back the text a new signature `sig` came from, or
 * `null` when they can. The receiver fills the value marks in order and replaces every `{TS}`:
 * a `\x01` in the header or a segment before the last value mark takes a value meant for a later
 * one, and a `{TS}` outside the timestamp comes back as the token. (A `\x01` after the last value
 * mark, in a geohash say, stays as it is.)
 */
export function templateFault(sig: string): string | null {
  const shape = sigShape(sig);
  if (shape === null) return null;
  if (shape.head.includes(TS_MARK) || shape.segs.some((s) => s.tag.includes(TS_MARK))) {
    return `the body text holds "${TS_MARK}" outside its timestamp; DIFF and HEART frames would give the token back in its place`;
  }
  let last = -1;
  shape.segs.forEach((s, i) => {
    if (s.sensor) last = i;
  });
  if (last < 0) return null;
  if (shape.head.includes(VALUE_MARK) || shape.segs.some((s, i) => i <= last && s.tag.includes(VALUE_MARK))) {
    return 'the body text holds \\x01 (the template value mark) before a sensor value; DIFF and HEART frames would put values in its place';
  }
  return null;
}

/**
 * `decompose(text)` for text known to have `shape`'s signature: the values and token, without
 * building the signature. `null` when the text does not have exactly that shape (the caller then
 * decomposes it in full). A value equal to the same place of `prev` (the template's last values)
 * comes back as that string, not a new slice: a steady-state sender then allocates only for the
 * values that changed.
 */
export function matchShape(text: string, shape: SigShape, prev?: readonly string[] | null): { values: string[]; token: string } | null {
  const semi = text.indexOf(';');
  const start = semi < 0 ? 0 : semi + 1;
  const head = shape.head;
  if (!text.startsWith(head, start)) return null;
  const dot = start + head.length;
  if (text.charCodeAt(dot) !== 46 /* . */) return null;
  const bar = text.indexOf('|', dot + 1);
  if (bar < 0) return null;
  // The token runs from the header's last '.', so it may hold none.
  const inner = text.indexOf('.', dot + 1);
  if (inner >= 0 && inner < bar) return null;
  const n = text.length;
  const values: string[] = [];
  let pos = bar + 1;
  for (const seg of shape.segs) {
    while (pos < n && text.charCodeAt(pos) === 124) pos++; // empty segments are skipped
    if (pos >= n) return null;
    let next = text.indexOf('|', pos);
    if (next < 0) next = n;
    const tag = seg.tag;
    if (seg.sensor) {
      const gt = pos + tag.length;
      if (gt >= next || text.charCodeAt(gt) !== 62 /* > */ || !text.startsWith(tag, pos)) return null;
      const colon = lastIn(text, 58 /* : */, gt + 1, next);
      if (colon < 0) return null;
      const i = values.length;
      values.push(same(text, gt + 1, colon, prev?.[i]), same(text, colon + 1, next, prev?.[i + 1]));
    } else if (next - pos !== tag.length || !text.startsWith(tag, pos)) return null;
    pos = next + 1;
  }
  for (; pos < n; pos++) if (text.charCodeAt(pos) !== 124) return null;
  return { values, token: text.slice(dot + 1, bar) };
}
