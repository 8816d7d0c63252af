import { readU16 as packetReadU16, readU32 as packetReadU32 } from '@opensynaptic/packet';
import { pyFloatRepr as reprFloat, pyJsonFloat } from '@opensynaptic/packet/body';
import { describe, expect, it } from 'vitest';
import { pyFloatRepr, pyJsonDumps, readU16, readU32 } from '../src/index.js';

// The wire helpers handshake exports are the lower packages' single copies, not its own.
describe('shared wire helpers', () => {
  it('readU16 and readU32 are the frame codec’s', () => {
    expect(readU16).toBe(packetReadU16);
    expect(readU32).toBe(packetReadU32);
    const b = Uint8Array.of(0xff, 0xfe, 0xfd, 0xfc);
    expect(readU32(b, 0)).toBe(0xfffefdfc);
    expect(readU16(b, 2)).toBe(0xfdfc);
  });

  it('pyFloatRepr (deprecated) is pyJsonFloat: JSON spelling of non-finite values, repr digits otherwise', () => {
    expect(pyFloatRepr).toBe(pyJsonFloat);
    expect([Number.NaN, Infinity, -Infinity].map(pyJsonFloat)).toEqual(['NaN', 'Infinity', '-Infinity']);
    expect([Number.NaN, Infinity, -Infinity].map(reprFloat)).toEqual(['nan', 'inf', '-inf']);
    for (const x of [0.1, -0, 1e16, 1.5e-5, 100]) expect(pyJsonFloat(x)).toBe(reprFloat(x));
    expect(pyJsonDumps({ x: Number.NaN, y: 0.5 })).toBe('{"x": NaN, "y": 0.5}');
  });
});
