import { FrameFieldError, FrameTooLargeError } from './errors.js';

/**
 * A size limit option: a positive integer (bytes) or `Infinity` (no limit); `undefined` gives
 * `fallback`. Throws `FrameFieldError` naming `field` for anything else.
 */
export function sizeLimit(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Number.POSITIVE_INFINITY || (Number.isSafeInteger(value) && value > 0)) return value;
  throw new FrameFieldError(field, `${String(value)} is not a positive integer (bytes) or Infinity`);
}

/**
 * Throws `FrameTooLargeError` when `frame` is longer than `limit`: the one check a receiver makes
 * on arrival, before anything reads the frame.
 */
export function checkFrameSize(frame: Uint8Array, limit: number): void {
  if (frame.length > limit) throw new FrameTooLargeError(frame.length, limit);
}
