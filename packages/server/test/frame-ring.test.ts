import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { FrameRing, MIN_RING_BYTES } from '../src/frame-ring.js';
import { isOpenSynapticError } from '../src/index.js';

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

interface Got {
  frame: number[];
  peerId: number;
  receivedAt: number;
  transport: number;
}

function drainAll(ring: FrameRing, max = 1_000_000): Got[] {
  const out: Got[] = [];
  ring.drain((frame, peerId, receivedAt, transport) => out.push({ frame: [...frame], peerId, receivedAt, transport }), max);
  return out;
}

describe('FrameRing', () => {
  it('hands records of every size back in order, with their peer, time and transport, across many wrap-arounds', () => {
    const ring = FrameRing.create(MIN_RING_BYTES);
    let sent = 0;
    let got = 0;
    // Sizes 1..maxFrameBytes in a pattern prime to the capacity: records end at every offset, so
    // the wrap marker and the exact-fit case both happen.
    for (let round = 0; round < 2000; round++) {
      const n = 1 + ((round * 37) % ring.maxFrameBytes);
      if (!ring.push(bytes(n, round), round * 7, 1_700_000_000_000 + round + 0.5, round % 3)) {
        const out = drainAll(ring);
        for (const r of out) {
          const k = got++;
          const m = 1 + ((k * 37) % ring.maxFrameBytes);
          expect(r.frame).toEqual([...bytes(m, k)]);
          expect(r.peerId).toBe(k * 7);
          expect(r.receivedAt).toBe(1_700_000_000_000 + k + 0.5);
          expect(r.transport).toBe(k % 3);
        }
        expect(ring.used).toBe(0);
        expect(ring.push(bytes(n, round), round * 7, 1_700_000_000_000 + round + 0.5, round % 3)).toBe(true);
      }
      sent++;
    }
    got += drainAll(ring).length;
    expect(got).toBe(sent);
    expect(ring.records()).toBe(0);
  });

  it('refuses a record when full, takes it again once the consumer freed room, and never overwrites unread records', () => {
    const ring = FrameRing.create(MIN_RING_BYTES);
    let n = 0;
    while (ring.push(bytes(100, n), n, 0, 0)) n++;
    // 1024 bytes / 120-byte records (20 of header, 100 of frame) = 8.
    expect(n).toBe(8);
    expect(ring.records()).toBe(8);
    // 64 bytes are left: a 50-byte frame's record (72) does not fit, nor is it wrapped over unread records.
    expect(ring.push(bytes(50, 0), 0, 0, 0)).toBe(false);
    const first = drainAll(ring, 2);
    expect(first.map((r) => r.peerId)).toEqual([0, 1]);
    expect(ring.push(bytes(100, 8), 8, 0, 0)).toBe(true);
    // The record after the wrap lands at offset 0, where the two freed records were; the six unread ones are intact.
    const rest = drainAll(ring);
    expect(rest.map((r) => r.peerId)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    for (const r of rest) expect(r.frame).toEqual([...bytes(100, r.peerId)]);
  });

  it('refuses bad sizes and bad fields with typed errors', () => {
    expect(() => FrameRing.create(1000)).toThrow(/power of two/);
    expect(() => FrameRing.create(512)).toThrow(/power of two/);
    expect(() => FrameRing.create(2 ** 31)).toThrow(/power of two/);
    try {
      FrameRing.create(3000);
      expect.unreachable();
    } catch (e) {
      expect(isOpenSynapticError(e, 'ERR_SERVER_OPTION')).toBe(true);
    }
    const ring = FrameRing.create(MIN_RING_BYTES);
    expect(ring.maxFrameBytes).toBe(256 - 20);
    for (const frame of [new Uint8Array(0), new Uint8Array(ring.maxFrameBytes + 1)]) {
      try {
        ring.push(frame, 0, 0, 0);
        expect.unreachable();
      } catch (e) {
        expect(isOpenSynapticError(e, 'ERR_SERVER_PACKET_SIZE')).toBe(true);
      }
    }
    expect(() => ring.push(bytes(4, 0), -1, 0, 0)).toThrow(/uint32/);
    expect(() => ring.push(bytes(4, 0), 0, 0, 1.5)).toThrow(/uint32/);
    expect(ring.push(new Uint8Array(ring.maxFrameBytes), 0, 0, 0)).toBe(true);
    expect(ring.used).toBe(256);
    expect(() => FrameRing.attach(new ArrayBuffer(2048) as unknown as SharedArrayBuffer)).toThrow(/not a FrameRing/);
  });

  it('frees the record a visitor threw on, and the ones before it', () => {
    const ring = FrameRing.create(MIN_RING_BYTES);
    for (let i = 0; i < 4; i++) ring.push(bytes(8, i), i, 0, 0);
    expect(() =>
      ring.drain((_f, peerId) => {
        if (peerId === 1) throw new Error('bad');
      }),
    ).toThrow('bad');
    expect(drainAll(ring).map((r) => r.peerId)).toEqual([2, 3]);
  });

  it('crosses to another thread: a consumer worker sleeping in readable() wakes for each push and sees every record', async () => {
    const ring = FrameRing.create(1 << 16);
    // The consumer's side written as plain JS over the same layout would test nothing of this
    // class: the worker loads the built module instead.
    const worker = new Worker(
      `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(async ({ FrameRing }) => {
        const ring = FrameRing.attach(workerData.buffer);
        let sum = 0, count = 0;
        while (count < workerData.total) {
          ring.drain((f, peerId) => { sum += f[0] + peerId; count++; });
          if (count < workerData.total) await ring.readable(1000);
        }
        parentPort.postMessage({ sum, count });
      });
      `,
      { eval: true, workerData: { buffer: ring.buffer, total: 20_000, url: new URL('../dist/workers.js', import.meta.url).href } },
    );
    const done = new Promise<{ sum: number; count: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the consumer exited (${code}) before it saw every record`)));
    });
    let expected = 0;
    for (let i = 0; i < 20_000; ) {
      if (ring.push(Uint8Array.of(i & 0xff, 1, 2), i, 0, 0)) {
        expected += (i & 0xff) + i;
        i++;
      } else await ring.writable(1000);
      // Now and then let the consumer catch up completely, so it goes to sleep and must be woken.
      if (i % 5000 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    const out = await done;
    await worker.terminate();
    expect(out).toEqual({ sum: expected, count: 20_000 });
  });
});
