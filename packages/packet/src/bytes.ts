/** Big-endian integer reads shared by every package that parses wire bytes (one copy, here). */

/** Reads a big-endian uint16 at `p`. */
export function readU16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

/** Reads a big-endian uint32 at `p` (route ids, device ids, pool entries). */
export function readU32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

/** Reads a big-endian uint48 at `p` (frame timestamps, ms). */
export function readU48(b: Uint8Array, p: number): number {
  return ((b[p]! << 8) | b[p + 1]!) * 0x100000000 + readU32(b, p + 2);
}
