import { Wire } from '@opensynaptic/internal';
import { FrameFieldError } from './errors.js';
import { B64URL_VALUES, timestampToken48 } from './body/text-bytes.js';
import { MAX_TIMESTAMP } from './constants.js';


/** Length of the timestamp token in a body: 8 base64url characters for 6 bytes. */
export const TIMESTAMP_TOKEN_LENGTH = Wire.TIMESTAMP_TOKEN_LENGTH;

/**
 * The body's timestamp token: the 48-bit value as 6 big-endian bytes in base64url without
 * padding, always 8 characters. Values at or above 2^48 keep their low 48 bits, as on the wire.
 */
export function encodeTimestampToken(ms: number): string {
  if (!(Number.isInteger(ms) && ms >= 0 && ms <= Number.MAX_SAFE_INTEGER)) {
    throw new FrameFieldError('timestamp', `${ms} is not a non-negative safe integer`);
  }
  return timestampToken48(ms % 2 ** 48);
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
    const d = c < 128 ? B64URL_VALUES[c]! : -1;
    if (d < 0) {
      throw new FrameFieldError('timestamp token', `character ${JSON.stringify(token[i])} at ${i} is not base64url`);
    }
    if (i < TIMESTAMP_TOKEN_LENGTH) v = v * 64 + d;
  }
  return v <= MAX_TIMESTAMP ? v : v % 2 ** 48;
}
