import { ID_REQUEST } from '@opensynaptic/cmd';
import { OpenSynaptic } from '@opensynaptic/core';
import { describe, expect, it } from 'vitest';
import { decodeFrame } from '@opensynaptic/packet';
import { framePartition, MAX_PARTITIONS, mixAid, partitionOf } from '../src/partition.js';
import { frameTimestamp } from '../src/services.js';

// The same mix written with BigInt arithmetic: a second derivation of the contract, not a copy.
const M = (1n << 32n) - 1n;
function mixBig(aid: number): number {
  let x = BigInt(aid) & M;
  x ^= x >> 16n;
  x = (x * 0x7feb352dn) & M;
  x ^= x >> 15n;
  x = (x * 0x846ca68bn) & M;
  x ^= x >> 16n;
  return Number(x);
}

describe('device-to-partition routing', () => {
  it('is the fixed lowbias32 mix, mod the partition count', () => {
    // Computed outside JavaScript (Python integers): the values every release must keep.
    expect([0, 1, 2, 3, 1000, 4294967295].map(mixAid)).toEqual([0, 1753845952, 3507691905, 1408362973, 1407151442, 1734902346]);
    expect([0, 1, 2, 3, 1000, 4294967295].map((a) => partitionOf(a, 16))).toEqual([0, 0, 1, 13, 2, 10]);
    for (let i = 0; i < 20_000; i++) {
      const aid = i < 10_000 ? i : Math.floor(Math.random() * 2 ** 32);
      expect(mixAid(aid)).toBe(mixBig(aid));
    }
  });

  it('spreads sequential and strided aids evenly', () => {
    for (const partitions of [3, 16, 64]) {
      for (const stride of [1, 2, 64, 1024]) {
        const counts = new Array<number>(partitions).fill(0);
        const n = 64_000;
        for (let i = 0; i < n; i++) counts[partitionOf(1 + i * stride, partitions)]!++;
        const mean = n / partitions;
        // Within 10 % of the mean (a binomial's spread at these counts is about 1-4 %).
        expect(Math.max(...counts) / mean).toBeLessThan(1.1);
        expect(Math.min(...counts) / mean).toBeGreaterThan(0.9);
      }
    }
  });

  it('routes a data frame by its source aid, control frames not at all', () => {
    const node = new OpenSynaptic({ assignedId: 1000, deviceId: 'P' });
    const full = node.transmit([['T1', 'OK', 1, 'Cel']]).frame;
    expect(framePartition(full, 16)).toBe(partitionOf(1000, 16));
    const diff = node.transmit([['T1', 'OK', 2, 'Cel']]).frame;
    expect(framePartition(diff, 16)).toBe(framePartition(full, 16));
    expect(framePartition(new Uint8Array([ID_REQUEST, 0, 1, 2]), 16)).toBeUndefined();
    expect(framePartition(new Uint8Array(0), 16)).toBeUndefined();
    expect(framePartition(full.subarray(0, 3), 16)).toBeUndefined();
  });

  it('refuses a bad partition count or aid with a RangeError that says what it wanted', () => {
    for (const bad of [0, -1, 1.5, MAX_PARTITIONS + 1, Number.NaN]) {
      expect(() => partitionOf(1, bad)).toThrow(/partitions must be an integer from 1 to 65536/);
      expect(() => framePartition(new Uint8Array(8), bad)).toThrow(RangeError);
    }
    for (const bad of [-1, 2 ** 32, 0.5, Number.NaN]) expect(() => partitionOf(bad, 4)).toThrow(/aid must be an integer/);
    expect(partitionOf(5, 1)).toBe(0);
  });

  it('reads the device timestamp of a data frame from its plain header (the decoder agrees); control and short frames have none', () => {
    // The node writes whole seconds, as the reference does.
    for (const ms of [1000, 1_764_806_400_000, 281_474_976_710_000]) {
      const node = new OpenSynaptic({ assignedId: 0x01020304, deviceId: 'T', clock: () => ms + 999 });
      const full = node.transmit([['T1', 'OK', 1, 'Cel']]).frame;
      const diff = node.transmit([['T1', 'OK', 2, 'Cel']]).frame;
      for (const f of [full, diff]) {
        expect(frameTimestamp(f)).toBe(ms);
        expect(frameTimestamp(f)).toBe(decodeFrame(f).timestamp);
      }
      expect(frameTimestamp(full.subarray(0, 12))).toBeUndefined();
    }
    expect(frameTimestamp(new Uint8Array([ID_REQUEST, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))).toBeUndefined();
    expect(frameTimestamp(new Uint8Array())).toBeUndefined();
  });
});
