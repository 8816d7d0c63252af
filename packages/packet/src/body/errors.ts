import { brandError } from '@opensynaptic/internal';

/**
 * Codes of body text errors.
 * - `ERR_BODY_FIELD`: a fact field handed to `compressFact` is missing or of the wrong type.
 * - `ERR_BODY_SEPARATOR`: a fact text contains a character the body uses as a separator, or one
 *   of the fusion template's marks (`\x01`, `{TS}`) where DIFF and HEART frames would not give it
 *   back, so no receiver could read it back.
 * - `ERR_BODY_RANGE`: a number that cannot go on the wire (negative or huge timestamp, value
 *   outside the signed 64-bit range after scaling, NaN, infinity).
 * - `ERR_BODY_ENCODING`: text that is not valid Unicode / UTF-8 where it must be.
 * - `ERR_BODY_SYNTAX`: body text that is not well formed.
 * - `ERR_BODY_TOO_LARGE`: body text longer than the receiver's `maxBodySize` (`BodyTooLargeError`).
 */
export type BodyErrorCode = 'ERR_BODY_FIELD' | 'ERR_BODY_SEPARATOR' | 'ERR_BODY_RANGE' | 'ERR_BODY_ENCODING' | 'ERR_BODY_SYNTAX' | 'ERR_BODY_TOO_LARGE';

/** A fact that cannot be compressed, or body text that cannot be decompressed. */
export class BodyTextError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name: string = 'BodyTextError';
  readonly code: BodyErrorCode;
  /** The fact key or body part at fault: `id`, `s`, `t`, `s2_v`, `header`, `timestamp`, `url`, `msg`... */
  readonly field: string;
  constructor(code: BodyErrorCode, field: string, detail: string, options?: { cause?: unknown }) {
    super(`${field}: ${detail}`, options);
    this.code = code;
    this.field = field;
  }
}

/**
 * Body text longer than the receiver's `maxBodySize` (UTF-8 bytes), refused before any of it is
 * read. `size` is exact up to the limit; above it, it may be a lower bound for text given as a string.
 */
export class BodyTooLargeError extends BodyTextError {
  override readonly name = 'BodyTooLargeError';
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super('ERR_BODY_TOO_LARGE', 'body', `${size} bytes, the limit (maxBodySize) is ${limit}`);
  }
}

/** Quotes text for an error message, cut to 48 characters. */
export function show(text: string): string {
  return JSON.stringify(text.length > 48 ? `${text.slice(0, 48)}…` : text);
}
