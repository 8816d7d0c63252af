import { describe, expect, it } from 'vitest';
import { KeyedThrottle } from '../src/index.js';

describe('KeyedThrottle', () => {
  it('lets a key pass once per window, and again after it, or when the clock went back', () => {
    const t = new KeyedThrottle<number>(1000, 10);
    expect(t.take(7, 5000)).toBe(true);
    expect(t.take(7, 5999)).toBe(false);
    expect(t.take(8, 5999)).toBe(true);
    expect(t.take(7, 6000)).toBe(true);
    expect(t.take(7, 100)).toBe(true);
    expect(t.ready(7, 200)).toBe(false);
    t.forget(7);
    expect(t.ready(7, 200)).toBe(true);
  });

  it('stays within max keys: a flood of new keys forgets the old ones at once', () => {
    const t = new KeyedThrottle<number>(60_000, 4);
    for (let k = 0; k < 100; k++) {
      expect(t.take(k, 0)).toBe(true);
      expect(t.size).toBeLessThanOrEqual(4);
    }
    // Forgotten: key 0 passes again within its window (the price of the bound).
    expect(t.take(0, 1)).toBe(true);
    // A known key at the bound is kept.
    expect(t.take(0, 2)).toBe(false);
  });
});
