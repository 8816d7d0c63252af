/**
 * UTF-8 helpers. The reference decodes NACK reasons and JSON meta with `errors="ignore"`: every
 * invalid sequence is dropped without a replacement character, and a byte-order mark is kept.
 */

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF as a character, like Python's 'utf-8' codec.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

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
  if (start >= end) return '';
  const view = bytes.subarray(start, end);
  const text = decoder.decode(view);
  // Without U+FFFD in the output nothing was replaced; with it, decode again to tell a genuine
  // U+FFFD (EF BF BD) from a replaced error.
  if (text.indexOf('\ufffd') < 0) return text;
  return decodeSlow(view);
}

function decodeSlow(b: Uint8Array): string {
  const out: number[] = [];
  let chunks = '';
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      out.push(c);
      i++;
    } else {
      let need: number;
      let cp: number;
      let lo = 0x80;
      let hi = 0xbf;
      if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        cp = c & 0x1f;
      } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        cp = c & 0x0f;
        if (c === 0xe0) lo = 0xa0;
        else if (c === 0xed) hi = 0x9f;
      } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        cp = c & 0x07;
        if (c === 0xf0) lo = 0x90;
        else if (c === 0xf4) hi = 0x8f;
      } else {
        i++;
        continue;
      }
      // A maximal subpart of an ill-formed sequence is dropped as a whole; the byte that broke it
      // starts the next attempt.
      let j = i + 1;
      let ok = true;
      for (let k = 0; k < need; k++, j++) {
        const d = b[j];
        if (d === undefined || d < lo || d > hi) {
          ok = false;
          break;
        }
        cp = (cp << 6) | (d & 0x3f);
        lo = 0x80;
        hi = 0xbf;
      }
      i = j;
      if (ok) out.push(cp);
    }
    if (out.length >= 4096) {
      chunks += String.fromCodePoint(...out);
      out.length = 0;
    }
  }
  return chunks + String.fromCodePoint(...out);
}
