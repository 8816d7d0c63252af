import { FrameFieldError } from './errors.js';
import { MAX_TIMESTAMP } from './constants.js';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_CODES = Uint8Array.from(B64URL, (ch) => ch.charCodeAt(0));
const B64_VALUES = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[B64URL.charCodeAt(i)] = i;
  return t;
})();

/** Length of the timestamp token in a body: 8 base64url characters for 6 bytes. */
export const TIMESTAMP_TOKEN_LENGTH = 8;

/**
 * The body's timestamp token: the 48-bit value as 6 big-endian bytes in base64url without
 * padding, always 8 characters. Values at or above 2^48 keep their low 48 bits, as on the wire.
 */
export function encodeTimestampToken(ms: number): string {
  if (!(Number.isInteger(ms) && ms >= 0 && ms <= Number.MAX_SAFE_INTEGER)) {
    throw new FrameFieldError('timestamp', `${ms} is not a non-negative safe integer`);
  }
  const v = ms % 2 ** 48;
  // Two 24-bit halves, four characters each.
  const hi = Math.floor(v / 0x1000000);
  const lo = v - hi * 0x1000000;
  const c = B64URL_CODES;
  return String.fromCharCode(
    c[hi >>> 18]!,
    c[(hi >>> 12) & 63]!,
    c[(hi >>> 6) & 63]!,
    c[hi & 63]!,
    c[lo >>> 18]!,
    c[(lo >>> 12) & 63]!,
    c[(lo >>> 6) & 63]!,
    c[lo & 63]!,
  );
}

/**
 * Reads the 48-bit timestamp from a body token: the first 6 bytes the base64url text decodes
 * to. Fewer than 8 characters cannot hold 6 bytes; the reference then emits a malformed frame,
 * here it is an error.
 */
export function decodeTimestampToken(token: string): number {
  if (typeof token !== 'string') throw new FrameFieldError('timestamp token', 'expected a string');
  if (token.length < TIMESTAMP_TOKEN_LENGTH) {
    throw new FrameFieldError('timestamp token', `${JSON.stringify(token)} has ${token.length} characters, 8 are needed for 6 bytes`);
  }
  let v = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    const d = c < 128 ? B64_VALUES[c]! : -1;
    if (d < 0) {
      throw new FrameFieldError('timestamp token', `character ${JSON.stringify(token[i])} at ${i} is not base64url`);
    }
    if (i < TIMESTAMP_TOKEN_LENGTH) v = v * 64 + d;
  }
  return v <= MAX_TIMESTAMP ? v : v % 2 ** 48;
}
