/** Lowercase hex of bytes (session keys in snapshots, `raw_hex` of unparsed packets), as Python's `bytes.hex()`. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}
