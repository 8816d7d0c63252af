import { until } from '@opensynaptic/config/until';
import { describe, expect, it } from 'vitest';
import { deviceDeltas, isStoreError, type LostEvent, MemoryReadingsBackend, MemoryReadingsSink, mergePacked, packedDeviceDeltas, packReadings, type ReadingsBatch, type StoreError, unpackReadings } from '../src/index.js';
import { abstractReadingsSinkSuite, sampleFrame } from '../src/testing.js';

abstractReadingsSinkSuite({ describe, it }, {
  name: 'MemoryReadingsSink',
  newLocation: () => 'memory',
  open: async (_location, options) => new MemoryReadingsSink(options),
  persistent: false,
});

/** The memory backend taking its readings packed: the whole contract through the packed path. */
class PackedMemoryBackend extends MemoryReadingsBackend {
  readonly packed = true;
  batches: ReadingsBatch[] = [];
  override async commit(batch: ReadingsBatch): Promise<void> {
    this.batches.push(batch);
    expect(batch.frames).toHaveLength(0);
    const frames = unpackReadings(batch.packed!);
    // The core's device rows from the numbers are the ones the frames give.
    expect(batch.devices).toEqual(deviceDeltas(frames));
    return super.commit({ ...batch, frames });
  }
}

abstractReadingsSinkSuite({ describe, it }, {
  name: 'MemoryReadingsSink, packed',
  newLocation: () => 'memory',
  open: async (_location, options) => new MemoryReadingsSink(options, new PackedMemoryBackend()),
  persistent: false,
});

describe('packed readings', () => {
  it('pack, merge and unpack give back the frames as written, texts shared', () => {
    const a = [sampleFrame(1, 1, { sensors: 3 }), { ...sampleFrame(2, 5, { sensors: 0 }), strategy: 'HEART' as const, templates: 4 }];
    const b = [{ ...sampleFrame(1, 7, { sensors: 2 }), strategy: 'DIFF' as const }];
    const merged = mergePacked([packReadings(a, 3), packReadings(b, 2)]);
    expect(unpackReadings(merged)).toEqual([...a, ...b]);
    expect(merged.rows.length).toBe(5 * 8);
    expect(new Set(merged.texts).size).toBe(merged.texts.length);
    expect(packedDeviceDeltas(merged)).toEqual(deviceDeltas([...a, ...b]));
  });

  it('a packing backend gets every write packed in one batch, and onLost the frames themselves', async () => {
    const backend = new PackedMemoryBackend();
    const lost: LostEvent[] = [];
    const sink = new MemoryReadingsSink({ batchSize: 100, maxAttempts: 1, onLost: (e) => lost.push(e) }, backend);
    const frames = [sampleFrame(1, 1, { sensors: 2 }), sampleFrame(2, 1, { sensors: 1 })];
    await sink.write(frames.slice(0, 1));
    await sink.write(frames.slice(1));
    await sink.flush();
    expect(backend.batches).toHaveLength(1);
    expect(backend.readings).toHaveLength(3);
    backend.failNext = 1;
    const gone = [sampleFrame(3, 9, { sensors: 2 })];
    await sink.write(gone);
    await expect(sink.flush()).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE'));
    expect(lost.map((e) => e.lostFrames)).toEqual([gone]);
    await sink.close();
  });
});

describe('BufferedReadingsSink: failed commits', () => {
  it('retries a failed batch, rejecting the flush that waited for it, and stores it once', async () => {
    const errors: [StoreError, number][] = [];
    const sink = new MemoryReadingsSink({ retryMinMs: 1, retryMaxMs: 2, onError: (e, attempt) => errors.push([e, attempt]) });
    sink.backend.failNext = 2;
    await sink.write([sampleFrame(1, 1), sampleFrame(1, 2)]);
    await expect(sink.flush()).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE'));
    // The batch is retried in the background; a later flush resolves once it lands.
    for (let i = 0; i < 50 && (await sink.status()).committed < 4; i++) await new Promise((r) => setTimeout(r, 5));
    await sink.flush();
    const st = await sink.status();
    expect([st.committed, st.lost, st.failedAttempts, st.stored.readings, st.batches]).toEqual([4, 0, 2, 4, 1]);
    expect(st.lastError?.code).toBe('ERR_STORE_WRITE');
    expect(errors.map(([, a]) => a)).toEqual([1, 2]);
    await sink.close();
  });

  it('counts a batch lost after maxAttempts and tells onLost the frames', async () => {
    const lost: LostEvent[] = [];
    const sink = new MemoryReadingsSink({ maxAttempts: 2, retryMinMs: 1, onLost: (e) => lost.push(e) });
    sink.backend.failNext = 2;
    const frames = [sampleFrame(1, 1, { sensors: 3 })];
    await sink.write(frames);
    await expect(sink.flush()).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE'));
    for (let i = 0; i < 50 && lost.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(lost.map((e) => [e.readings, e.frames, e.throughSeq, e.lostFrames[0]])).toEqual([[3, 1, 1, frames[0]]]);
    await sink.write([sampleFrame(1, 2)]);
    await sink.flush();
    const st = await sink.status();
    expect([st.accepted, st.committed, st.lost, st.buffered, st.stored.readings]).toEqual([5, 2, 3, 0, 2]);
    await sink.close();
  });

  it('close gives up after closeTimeoutMs, counts what is left lost and says so', async () => {
    const lost: LostEvent[] = [];
    const sink = new MemoryReadingsSink({ retryMinMs: 5, retryMaxMs: 5, closeTimeoutMs: 30, onLost: (e) => lost.push(e) });
    sink.backend.failNext = 1_000_000;
    await sink.write([sampleFrame(1, 1, { sensors: 2 })]);
    await sink.write([sampleFrame(2, 1, { sensors: 2 })]);
    await expect(sink.close()).rejects.toSatisfy((e) => isStoreError(e, 'ERR_STORE_WRITE') && /4 readings/.test((e as Error).message));
    expect(lost.reduce((n, e) => n + e.readings, 0)).toBe(4);
    expect(sink.backend.readings.length).toBe(0);
  });

  it('commits a partial batch after flushIntervalMs without a flush', async () => {
    const sink = new MemoryReadingsSink({ flushIntervalMs: 1, batchSize: 1000 });
    await sink.write([sampleFrame(1, 1)]);
    for (let i = 0; i < 100 && sink.backend.readings.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
    expect(sink.backend.readings.length).toBe(2);
    await sink.close();
  });

  it('rejects options outside their range', () => {
    for (const o of [{ maxBuffered: 0 }, { batchSize: 1.5 }, { flushIntervalMs: -1 }, { maxAttempts: 0 }, { closeTimeoutMs: Number.NaN }]) {
      expect(() => new MemoryReadingsSink(o)).toThrow(expect.objectContaining({ code: 'ERR_STORE_OPTION' }));
    }
    expect(() => new MemoryReadingsSink({ maxAttempts: Number.POSITIVE_INFINITY })).not.toThrow();
  });
});

describe('BufferedReadingsSink: concurrency', () => {
  /** A memory backend whose commits wait until the test lets each one finish, in any order. */
  class HeldBackend extends MemoryReadingsBackend {
    held: { batch: ReadingsBatch; release: () => void }[] = [];
    override commit(batch: ReadingsBatch): Promise<void> {
      return new Promise((resolve) => {
        this.held.push({ batch, release: () => resolve(super.commit(batch)) });
      });
    }
  }

  it('commits up to `concurrency` batches at once and settles them in order when they land out of order', async () => {
    const backend = new HeldBackend();
    const commits: number[] = [];
    const sink = new MemoryReadingsSink({ batchSize: 2, concurrency: 3, onCommit: (e) => commits.push(e.throughSeq) }, backend);
    for (let i = 0; i < 8; i++) await sink.write([sampleFrame(1, i, { sensors: 1 })]);
    await until(() => backend.held.length === 3, 'three commits held', 1000, 2);
    expect(backend.held.length).toBe(3); // the fourth waits for a free slot
    // The third lands first, then the second: nothing settles before the first.
    backend.held[2]!.release();
    backend.held[1]!.release();
    await new Promise((r) => setTimeout(r, 10));
    expect(commits).toEqual([]);
    expect((await sink.status()).committed).toBe(0);
    const flushed = sink.flush();
    backend.held[0]!.release();
    await until(() => backend.held.length === 4, 'four commits held', 1000, 2);
    backend.held[3]!.release();
    await flushed;
    expect(commits).toEqual([2, 4, 6, 8]);
    const st = await sink.status();
    expect([st.committed, st.batches, st.buffered, st.stored.readings]).toEqual([8, 4, 0, 8]);
    await sink.close();
  });

  it('checks the option (ERR_STORE_OPTION)', () => {
    expect(() => new MemoryReadingsSink({ concurrency: 0 })).toThrow(/concurrency/);
  });
});

describe('BufferedReadingsSink: committed(seq)', () => {
  it('resolves true once the frame is committed, false when its batch was counted lost, never rejects', async () => {
    const sink = new MemoryReadingsSink({ maxAttempts: 1, retryMinMs: 1, flushIntervalMs: 1000 });
    const a = await sink.write([sampleFrame(1, 1)]);
    let settled: boolean | undefined;
    const pending = sink.committed(a).then((ok) => {
      settled = ok;
      return ok;
    });
    // Asking commits nothing early: still buffered.
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBeUndefined();
    await sink.flush();
    expect(await pending).toBe(true);
    expect(await sink.committed(a)).toBe(true);
    sink.backend.failNext = 1;
    const b = await sink.write([sampleFrame(1, 2)]);
    const lost = sink.committed(b);
    await sink.flush().catch(() => undefined);
    expect(await lost).toBe(false);
    expect(await sink.committed(b)).toBe(false);
    const c = await sink.write([sampleFrame(1, 3)]);
    const later = sink.committed(c);
    await sink.close();
    expect(await later).toBe(true);
    expect(await sink.committed(c + 5)).toBe(false);
  });
});
