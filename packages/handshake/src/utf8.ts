/**
 * UTF-8 helpers. The reference decodes NACK reasons and JSON meta with `errors="ignore"`: every
 * invalid sequence is dropped without a replacement character, and a byte-order mark is kept.
 */

import { utf8DecodeLossy } from '@opensynaptic/packet/body';

const encoder = new TextEncoder();

/** UTF-8 bytes of a string (lone surrogates become U+FFFD). */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** UTF-8 byte length of a string without encoding it. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Decodes `bytes[start..end)`, dropping invalid sequences (Python `errors="ignore"`). */
export function utf8DecodeIgnore(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return start >= end ? '' : utf8DecodeLossy(bytes.subarray(start, end));
}
