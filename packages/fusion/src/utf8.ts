import { utf8DecodeStrict } from '@opensynaptic/packet/body';

/**
 * Text of UTF-8 bytes, or `undefined` when they are not valid UTF-8. Short ASCII (the usual
 * value or body) is built directly: cheaper than a TextDecoder call.
 */
export function decodeUtf8(b: Uint8Array): string | undefined {
  const n = b.length;
  if (n <= 64) {
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = b[i]!;
      if (c >= 0x80) return utf8DecodeStrict(b);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8DecodeStrict(b);
}
