import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  backendInfo,
  crc16,
  CRC16_PARAMS,
  CRC8_PARAMS,
  CrcArgumentError,
  deriveSessionKey,
  deriveSessionKeyAsync,
  getCodec,
  sessionSeed,
  xorPayload,
} from '../src/index.js';
const { nativeAvailable } = backendInfo();

const backends = nativeAvailable ? (['ts', 'native'] as const) : (['ts'] as const);
const ascii = (s: string) => new TextEncoder().encode(s);

it('has the native addon whenever CI builds it', () => {
  if (process.env.CI) expect(nativeAvailable).toBe(true);
});

for (const name of backends) {
  const c = getCodec(name);
  describe(`${name} backend`, () => {
    it('gives the catalogue check values', () => {
      expect(c.crc8(ascii('123456789'))).toBe(CRC8_PARAMS.check);
      expect(c.crc16(ascii('123456789'))).toBe(CRC16_PARAMS.check);
      expect(c.crc16(new Uint8Array(0))).toBe(0xffff);
    });

    it('checks a sub-range like the same bytes on their own', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(), fc.nat(), (data, a, b) => {
          const s = data.length ? a % (data.length + 1) : 0;
          const e = s + (data.length - s ? b % (data.length - s + 1) : 0);
          const copy = data.slice(s, e);
          expect(c.crc16(data, s, e)).toBe(c.crc16(copy));
          expect(c.crc8(data, s, e)).toBe(c.crc8(copy));
          expect(c.crc16(copy)).toBe(getCodec('ts').crc16(copy));
        }),
      );
    });

    it('batches equal single calls', () => {
      const data = ascii('123456789hello world0123');
      const offsets = Uint32Array.of(0, 9, 20, 20, data.length);
      expect(Array.from(c.crc16Batch(data, offsets))).toEqual([0x29b1, c.crc16(data, 9, 20), 0xffff, c.crc16(data, 20)]);
      expect(Array.from(c.crc8Batch(data, offsets))).toEqual([0xf4, c.crc8(data, 9, 20), 0, c.crc8(data, 20)]);
      expect(() => c.crc16Batch(data, Uint32Array.of(5, 2))).toThrow(CrcArgumentError);
      expect(() => c.crc16Batch(data, Uint32Array.of(0, 999))).toThrow(CrcArgumentError);
    });

    it('XOR is its own inverse and ignores an empty key', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer(), (p, k, off) => {
          expect(c.xorPayload(c.xorPayload(p, k, off), k, off)).toEqual(p);
        }),
      );
      const p = ascii('abc');
      expect(c.xorPayload(p, new Uint8Array(0), 9)).toEqual(p);
    });

    it('rejects ranges outside the data', () => {
      expect(() => c.crc16(new Uint8Array(4), 2, 9)).toThrow(CrcArgumentError);
      expect(() => c.crc8('abc' as unknown as Uint8Array)).toThrow(CrcArgumentError);
    });
  });
}

describe('session keys', () => {
  it('derives from (aid x ts) mod 2^64 with clamping', () => {
    expect(sessionSeed(42, 1_700_000_000_000)).toBe(71_400_000_000_000n);
    expect(sessionSeed(-5, 10)).toBe(0n);
    expect(sessionSeed(2n ** 64n + 5n, 3)).toBe(15n);
    expect(sessionSeed(null, 3)).toBe(0n);
    expect(() => sessionSeed(Number.NaN, 1)).toThrow(CrcArgumentError);
  });

  it('gives the same key synchronously and through WebCrypto', async () => {
    const sync = deriveSessionKey(42, 1_700_000_000_000);
    expect(sync).toHaveLength(32);
    expect(await deriveSessionKeyAsync(42, 1_700_000_000_000)).toEqual(sync);
    expect(Buffer.from(sync).toString('hex')).toBe('c447eb9640f3f2767db9393d60f2bd2e7af4571996ba5b52d2c86732f82d45cf');
  });

  it('rejects a non-finite offset', () => {
    expect(() => xorPayload(new Uint8Array(2), new Uint8Array(2), Number.NaN)).toThrow(CrcArgumentError);
    expect(crc16(ascii('123456789'))).toBe(0x29b1);
  });
});
