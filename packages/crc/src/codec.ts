/** One implementation of the checksum and session helpers (TypeScript or native). */
export interface CrcCodec {
  readonly backend: 'ts' | 'native';
  /** CRC-8/SMBUS of `data[start..end)`. */
  crc8(data: Uint8Array, start?: number, end?: number): number;
  /** CRC-16/CCITT-FALSE of `data[start..end)`. */
  crc16(data: Uint8Array, start?: number, end?: number): number;
  /** CRC-8 of each `data[offsets[i]..offsets[i+1])`; `offsets` holds n+1 boundaries. */
  crc8Batch(data: Uint8Array, offsets: Uint32Array): Uint8Array;
  /** CRC-16 of each `data[offsets[i]..offsets[i+1])`. */
  crc16Batch(data: Uint8Array, offsets: Uint32Array): Uint16Array;
  /** `out[i] = payload[i] ^ key[(i + off) % key.length] ^ off` with `off = offset & 31`; a new array. */
  xorPayload(payload: Uint8Array, key: Uint8Array, offset: number): Uint8Array;
  /** SHA-256 of the decimal text of a seed already reduced to 0..2^64-1. */
  digestSeed(seed: bigint): Uint8Array;
}
