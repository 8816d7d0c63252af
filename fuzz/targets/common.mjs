// What the targets share: the built packages, CRC repair and input splitting.
import { crc8Unchecked, crc16Unchecked } from '../../packages/crc/dist/index.js';

export { expectTyped, concat, typedError } from '../engine.mjs';

const DATA = new Set([63, 64, 170, 171, 127, 128]);

/**
 * Recomputes both CRCs of a frame-shaped input so that mutants pass the checksums and reach the
 * body decoders: crc8 over the body (the plain body for plain commands), crc16 over the rest.
 */
export function fixFrame(b) {
  if (b.length < 12) return b;
  const c = b.slice();
  const bodyStart = 9 + 4 * c[1];
  const n = c.length;
  if (bodyStart <= n - 3 && !(c[0] === 64 || c[0] === 171 || c[0] === 128)) c[n - 3] = crc8Unchecked(c.subarray(bodyStart, n - 3));
  const crc = crc16Unchecked(c.subarray(0, n - 2));
  c[n - 2] = crc >> 8;
  c[n - 1] = crc & 255;
  return c;
}

/** Splits `[n][len u16 LE]*n[bytes...]` into n pieces (lengths clamped to what is left). */
export function splitLengths(b, maxParts = 16) {
  if (b.length === 0) return [];
  const n = b[0] % (maxParts + 1);
  if (b.length < 1 + 2 * n) return [b.subarray(1)];
  const parts = [];
  let p = 1 + 2 * n;
  for (let i = 0; i < n; i++) {
    const len = Math.min(b[1 + 2 * i] | (b[2 + 2 * i] << 8), b.length - p);
    parts.push(b.subarray(p, p + len));
    p += len;
  }
  return parts;
}

/** Joins pieces into the `splitLengths` form. */
export function joinLengths(parts) {
  const head = new Uint8Array(1 + 2 * parts.length);
  head[0] = parts.length;
  parts.forEach((p, i) => {
    head[1 + 2 * i] = p.length & 255;
    head[2 + 2 * i] = p.length >> 8;
  });
  let n = head.length;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  out.set(head);
  let o = head.length;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** CRC repair of every piece of a `splitLengths` input. */
export function fixFrames(b) {
  const parts = splitLengths(b);
  if (parts.length === 0) return b;
  return joinLengths(parts.map((p) => (p.length >= 12 && DATA.has(p[0]) ? fixFrame(p) : p)));
}

/** Splits at the first NUL byte (text before, bytes after). */
export function splitNul(b) {
  const i = b.indexOf(0);
  return i < 0 ? [b, new Uint8Array(0)] : [b.subarray(0, i), b.subarray(i + 1)];
}

export const BODY_DICT = ['|', '>', ':', '.', ';', 'AYvP5WgA', 'D.1.AYvP5WgA|', 'S1>K.1:', 'S1>OK.Cel:', '&', '#', '@', 'U', '1', 'a1', ' ', '\t', '\u00e9', '\ud83d\ude00', 'e+', 'E-', '-', 'nan', 'inf', '0x', '{TS}', '\x01', '42;'];
export const FRAME_DICT = [
  Uint8Array.of(63),
  Uint8Array.of(170),
  Uint8Array.of(127),
  Uint8Array.of(64),
  Uint8Array.of(171),
  Uint8Array.of(0, 0, 0, 42),
  Uint8Array.of(0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00),
  ...BODY_DICT.map((s) => new TextEncoder().encode(s)),
];

/** Deep equality of plain decoded values (objects, arrays, primitives, Uint8Array). */
export function same(a, b) {
  if (Object.is(a, b)) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => same(a[k], b[k]));
}

export function hex(b) {
  return Buffer.from(b).toString('hex');
}
