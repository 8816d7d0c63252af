import { decodeInt } from '@opensynaptic/base62';
import { readU32 } from './bytes.js';
import { FrameFieldError } from './errors.js';

/**
 * A route id from the forms device ids take in configs and the reference's API: an integer,
 * a decimal digit string, a Base62 string, or 4 raw big-endian bytes.
 */
export function parseRouteId(value: number | string | Uint8Array): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (value instanceof Uint8Array) {
    if (value.length !== 4) throw new FrameFieldError('route id', `raw route ids are 4 bytes, got ${value.length}`);
    return readU32(value, 0);
  } else if (typeof value === 'string') {
    n = /^[0-9]+$/.test(value) ? Number(value) : decodeInt(value);
  } else {
    throw new FrameFieldError('route id', `expected a number, string or 4 bytes, got ${typeof value}`);
  }
  if (!(Number.isInteger(n) && n >= 0 && n <= 0xffffffff)) {
    throw new FrameFieldError('route id', `${String(value)} is not an integer in 0..4294967295`);
  }
  return n;
}
