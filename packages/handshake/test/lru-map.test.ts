import { describe, expect, it } from 'vitest';
import { LruMap } from '../src/sessions.js';

const keys = (m: LruMap<number, string>) => [...m.entries()].map(([k]) => k);

describe('LruMap', () => {
  it('evicts the least recently used entry, whether the access was get or set', () => {
    const m = new LruMap<number, string>(3);
    m.set(1, 'a');
    m.set(2, 'b');
    m.set(3, 'c');
    expect(m.get(1)).toBe('a');
    m.set(4, 'd');
    expect(keys(m)).toEqual([3, 1, 4]);
    m.set(3, 'C');
    m.set(5, 'e');
    expect(keys(m)).toEqual([4, 3, 5]);
    expect(m.peek(3)).toBe('C');
  });
  it('keeps the order when the newest entry is accessed again', () => {
    const m = new LruMap<number, string>(2);
    m.set(1, 'a');
    m.set(2, 'b');
    for (let i = 0; i < 3; i++) {
      expect(m.get(2)).toBe('b');
      m.set(2, 'b');
    }
    m.set(3, 'c');
    expect(keys(m)).toEqual([2, 3]);
  });
  it('moves an entry that was newest before a delete, clear or eviction', () => {
    const m = new LruMap<number, string>(2);
    m.set(1, 'a');
    m.set(2, 'b');
    m.delete(2);
    m.set(3, 'c');
    m.set(2, 'b');
    expect(keys(m)).toEqual([3, 2]);
    m.clear();
    m.set(7, 'x');
    m.set(8, 'y');
    m.get(7);
    m.set(9, 'z');
    expect(keys(m)).toEqual([7, 9]);
    const one = new LruMap<number, string>(0);
    one.set(1, 'a');
    expect(one.size).toBe(0);
    one.set(1, 'a');
    expect(one.size).toBe(0);
  });
  it('peek does not refresh', () => {
    const m = new LruMap<number, string>(2);
    m.set(1, 'a');
    m.set(2, 'b');
    m.peek(1);
    m.set(3, 'c');
    expect(keys(m)).toEqual([2, 3]);
  });
});
