import { describe, expect, it } from 'vitest';
import { FairQueue } from '../src/queue.js';

describe('FairQueue', () => {
  it('hands frames out one device at a time, each device in arrival order', () => {
    const q = new FairQueue<string>(10, 100);
    for (const [k, v] of [['a', 'a1'], ['a', 'a2'], ['a', 'a3'], ['b', 'b1'], ['c', 'c1'], ['b', 'b2']] as const) expect(q.push(k, v)).toBe(true);
    const out: string[] = [];
    for (let x = q.shift(); x !== undefined; x = q.shift()) out.push(x);
    expect(out).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3']);
    expect(q.size).toBe(0);
  });

  it('refuses a device past its perDevice share, whatever the others hold', () => {
    const q = new FairQueue<number>(3, 100);
    for (let i = 0; i < 5; i++) q.push('flood', i);
    expect(q.size).toBe(3);
    expect(q.push('quiet', 0)).toBe(true);
  });

  it('offer: past the total, a flood loses its own frames and a quiet device still gets in, never past twice the total', () => {
    const q = new FairQueue<number>(1000, 8);
    // The flood fills the queue alone.
    let taken = 0;
    for (let i = 0; i < 20; i++) if (q.offer('flood', i)) taken++;
    expect(taken).toBe(8);
    expect(q.full).toBe(true);
    // A quiet device is below its fair share (8 over 2 devices): its frames get in.
    expect(q.offer('quiet-1', 0)).toBe(true);
    expect(q.offer('quiet-1', 1)).toBe(true);
    // The flood is over its share: refused.
    expect(q.offer('flood', 99)).toBe(false);
    // Many new devices each get one frame in, up to twice the total, then nobody.
    let newcomers = 0;
    for (let d = 0; d < 100; d++) if (q.offer(`new-${d}`, 0)) newcomers++;
    expect(q.size).toBe(16);
    expect(newcomers).toBe(16 - 10);
    expect(q.offer('quiet-2', 0)).toBe(false);
    // Draining makes room again.
    while (q.size > 4) q.shift();
    expect(q.offer('flood', 100)).toBe(true);
  });
});
