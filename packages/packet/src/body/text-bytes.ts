/** UTF-8 and base64url helpers for body text, written out so the package needs no Node `Buffer`. */

// The package's only copies of the two base64 alphabets and their reverse tables: the body
// (url, msg, the timestamp token) uses base64url, the fusion store file standard base64.

/** base64url alphabet (RFC 4648 section 5). */
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Char codes of `B64URL`, for encoders that build strings with `String.fromCharCode`. */
const B64URL_CODES = Uint8Array.from(B64URL, (ch) => ch.charCodeAt(0));
/** Standard base64 alphabet (RFC 4648 section 4). */
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function reverseTable(alphabet: string): Int8Array {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}
/** Value of each ASCII code in base64url, -1 outside the alphabet. */
export const B64URL_VALUES = reverseTable(B64URL);
/** Value of each ASCII code in standard base64, -1 outside the alphabet. */
const B64_VALUES = reverseTable(B64);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 byte length of `text` without encoding it (a lone surrogate counts 3, as U+FFFD). */
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

/** Whether `text` holds a lone surrogate (a UTF-16 unit with no UTF-8 form; Python refuses to encode it). */
export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** UTF-8 bytes of `text`, or `undefined` when it holds a lone surrogate (Python refuses to encode those). */
export function utf8Encode(text: string): Uint8Array | undefined {
  return LONE_SURROGATE.test(text) ? undefined : encoder.encode(text);
}

/**
 * UTF-8 bytes of `text`, a lone surrogate becoming U+FFFD: for text this package did not take
 * from a caller's fact (control packets' reasons and meta), where refusing would lose the packet.
 */
export function utf8EncodeLossy(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * `utf8DecodeStrict` for short texts that are kept whole (a template value, a body handed on):
 * up to 64 ASCII bytes are built directly, cheaper than a TextDecoder call. Not for text that is
 * parsed next: the string built this way is slower to scan (decompressing a 1-sensor body from
 * bytes took twice as long through it), so the body decoder uses `utf8DecodeStrict`.
 */
export function utf8DecodeShort(bytes: Uint8Array): string | undefined {
  const n = bytes.length;
  if (n <= 64) {
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) return utf8DecodeStrict(bytes);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8DecodeStrict(bytes);
}

/** Strict UTF-8 decode, or `undefined` on any invalid sequence. A BOM is kept, as Python keeps it. */
export function utf8DecodeStrict(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * UTF-8 decode that drops invalid bytes, like Python's `decode('utf-8', errors='ignore')`.
 * Dropping one byte at a time gives the same text as dropping Python's maximal invalid
 * subparts, because the bytes after a bad lead byte are continuation bytes, which are
 * themselves invalid as a start.
 */
export function utf8DecodeLossy(bytes: Uint8Array): string {
  const fast = utf8DecodeStrict(bytes);
  if (fast !== undefined) return fast;
  const out: number[] = [];
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      out.push(b);
      i++;
      continue;
    }
    let need = 0;
    let cp = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      cp = b & 0x0f;
      if (b === 0xe0) lo = 0xa0; // no overlong forms
      if (b === 0xed) hi = 0x9f; // no surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      cp = b & 0x07;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f; // nothing above U+10FFFF
    } else {
      i++; // not a lead byte
      continue;
    }
    let ok = true;
    for (let j = 1; ok && j <= need; j++) {
      const c = i + j < n ? bytes[i + j]! : -1;
      const min = j === 1 ? lo : 0x80;
      const max = j === 1 ? hi : 0xbf;
      if (c < min || c > max) ok = false;
      else cp = (cp << 6) | (c & 0x3f);
    }
    if (!ok) {
      i++;
      continue;
    }
    out.push(cp);
    i += need + 1;
  }
  let s = '';
  for (let k = 0; k < out.length; k += 4096) s += String.fromCodePoint(...out.slice(k, k + 4096));
  return s;
}

/**
 * The 8-character timestamp token of a 48-bit value `v` (0 <= v < 2^48, checked by the caller):
 * its 6 big-endian bytes in base64url. The one encoder behind the body's token and
 * `encodeTimestampToken`.
 */
export function timestampToken48(v: number): string {
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

/** base64url without padding. */
export function base64UrlEncode(bytes: Uint8Array): string {
  return encodeBase64(bytes, B64URL, false);
}

/** Standard base64 with `=` padding (RFC 4648 section 4), as Python's `base64.b64encode` writes it. */
export function base64Encode(bytes: Uint8Array): string {
  return encodeBase64(bytes, B64, true);
}

function encodeBase64(bytes: Uint8Array, alphabet: string, pad: boolean): string {
  let out = '';
  const n = bytes.length;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += alphabet[v >>> 18]! + alphabet[(v >>> 12) & 63]! + alphabet[(v >>> 6) & 63]! + alphabet[v & 63]!;
  }
  if (n - i === 1) {
    const v = bytes[i]! << 16;
    out += alphabet[v >>> 18]! + alphabet[(v >>> 12) & 63]!;
    if (pad) out += '==';
  } else if (n - i === 2) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += alphabet[v >>> 18]! + alphabet[(v >>> 12) & 63]! + alphabet[(v >>> 6) & 63]!;
    if (pad) out += '=';
  }
  return out;
}

/**
 * base64url text → bytes, or `undefined` when a character is outside the alphabet or the
 * length cannot come from whole bytes. Trailing `=` padding is accepted; unused low bits of the
 * last character are ignored, as Python ignores them.
 */
export function base64UrlDecode(text: string): Uint8Array | undefined {
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 61 /* = */) end--;
  if (end % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64URL_VALUES[c]! : -1;
    if (v < 0) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
  }
  return out;
}

/**
 * Decodes base64 the lenient way the reference's decoder does: characters outside the alphabet
 * are skipped, a complete pad ends the data, and the data must end on a quantum boundary.
 * Returns `null` where the reference raises (bad padding, non-ASCII text).
 */
export function base64Decode(s: string): Uint8Array | null {
  const out = new Uint8Array(((s.length * 3) >> 2) + 3);
  let o = 0;
  let quad = 0;
  let left = 0;
  let pads = 0;
  for (let k = 0; k < s.length; k++) {
    const ch = s.charCodeAt(k);
    if (ch > 127) return null;
    if (ch === 0x3d) {
      if (quad >= 2 && quad + ++pads >= 4) return out.subarray(0, o);
      continue;
    }
    const v = B64_VALUES[ch]!;
    if (v < 0) continue;
    pads = 0;
    if (quad === 0) {
      left = v;
      quad = 1;
    } else if (quad === 1) {
      out[o++] = (left << 2) | (v >> 4);
      left = v & 0x0f;
      quad = 2;
    } else if (quad === 2) {
      out[o++] = (left << 4) | (v >> 2);
      left = v & 0x03;
      quad = 3;
    } else {
      out[o++] = (left << 6) | v;
      quad = 0;
    }
  }
  return quad === 0 ? out.subarray(0, o) : null;
}
