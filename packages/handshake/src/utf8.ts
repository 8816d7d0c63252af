/**
 * UTF-8 helpers. The reference decodes NACK reasons and JSON meta with `errors="ignore"`: every
 * invalid sequence is dropped without a replacement character, and a byte-order mark is kept.
 */

import { utf8DecodeLossy, utf8EncodeLossy, utf8Length } from '@opensynaptic/packet/body';

/** UTF-8 bytes of a string (lone surrogates become U+FFFD): the body codec's encoder. */
export { utf8EncodeLossy as utf8Encode };

/** UTF-8 byte length of a string without encoding it (one helper, the body codec's). */
export { utf8Length };

/** Decodes `bytes[start..end)`, dropping invalid sequences (Python `errors="ignore"`). */
export function utf8DecodeIgnore(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return start >= end ? '' : utf8DecodeLossy(bytes.subarray(start, end));
}
