/**
 * A native call that fails (the addon throws, returns a status it should not, or writes results
 * out of range) gives a typed `NativeBackendError`, never a plain RangeError / TypeError, and
 * leaves the engine as it was: the frames after it decode, and are built, exactly as on TypeScript.
 */
import { DATA_FULL } from '@opensynaptic/cmd';
import { NativeErrorCode } from '@opensynaptic/internal';
import { encodeFrame } from '@opensynaptic/packet';
import { afterEach, describe, expect, it } from 'vitest';
import { backendInfo, NativeBackendError, OSVisualFusionEngine } from '../src/index.js';
import { type FusionBinding, fusionBackend } from '../src/native-binding.js';
import { NativeIo } from '../src/native-io.js';
const { nativeAvailable } = backendInfo();

const NOW = 1_700_000_000_000;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf8 = (s: string) => new TextEncoder().encode(s);
const bodies = (i: number) => `D42.U.AYvP5WgA|S1>OK.K:${i % 3}|S2>OK.Pa:${i % 5}|`;

/** The frames a TypeScript sender makes for `bodies(0..n)`. */
function tsFrames(n: number): Uint8Array[] {
  const tx = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
  return Array.from({ length: n }, (_, i) => tx.runEngine(bodies(i)));
}

function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    return { name: (e as Error).name, code: (e as { code?: string }).code };
  }
}

describe.skipIf(!nativeAvailable && !process.env.CI)('native failures', () => {
  const binding = (nativeAvailable ? fusionBackend('native').runEngineBatch() : null) as FusionBinding & Record<string, unknown>;
  const saved = new Map<string, unknown>();
  /** Replaces one addon function until the end of the test. */
  function patch<K extends keyof FusionBinding>(name: K, f: (orig: FusionBinding[K]) => FusionBinding[K]): void {
    if (!saved.has(name)) saved.set(name, binding[name]);
    binding[name] = f(saved.get(name) as FusionBinding[K]) as never;
  }
  function restore(): void {
    for (const [k, v] of saved) binding[k] = v;
    saved.clear();
  }
  afterEach(restore);
  const rx = (backend: 'ts' | 'native') => new OSVisualFusionEngine({ localId: 1, backend, clock: () => NOW });
  /** `n` bodies from `bodies(from)` on, back to back, and their offsets. */
  const batch = (from: number, n: number) => {
    const parts = Array.from({ length: n }, (_, i) => utf8(bodies(from + i)));
    const offsets = new Uint32Array(n + 1);
    parts.forEach((p, i) => {
      offsets[i + 1] = offsets[i]! + p.length;
    });
    const buf = new Uint8Array(offsets[n]!);
    for (let i = 0; i < n; i++) buf.set(parts[i]!, offsets[i]!);
    return [buf, offsets] as const;
  };

  it('runEngineBatch when the addon throws: NativeBackendError, later batches as on TypeScript', () => {
    const ts = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    const nat = new OSVisualFusionEngine({ localId: 42, backend: 'native', clock: () => NOW });
    const same = (from: number) => {
      const a = ts.runEngineBatch(...batch(from, 5));
      const b = nat.runEngineBatch(...batch(from, 5));
      expect(hex(b.frames)).toBe(hex(a.frames));
      expect([...b.offsets]).toEqual([...a.offsets]);
    };
    same(0);
    patch('fusionSendBatch', (orig) => (io, b, o, out, ends) => {
      orig(io, b, o, out, ends);
      throw new TypeError('boom');
    });
    expect(outcome(() => nat.runEngineBatch(...batch(5, 5)))).toEqual({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_CALL' });
    restore();
    // The batch that failed committed nothing: the next one is what a sender that never saw it makes.
    const ts2 = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    ts2.runEngineBatch(...batch(0, 5));
    const a = ts2.runEngineBatch(...batch(10, 5));
    const b = nat.runEngineBatch(...batch(10, 5));
    expect(hex(b.frames)).toBe(hex(a.frames));
  });

  it('runEngineBatch when the addon reports results out of range: NativeBackendError, registry unchanged', () => {
    const ts = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    const nat = new OSVisualFusionEngine({ localId: 42, backend: 'native', clock: () => NOW });
    expect(hex(nat.runEngineBatch(...batch(0, 3)).frames)).toBe(hex(ts.runEngineBatch(...batch(0, 3)).frames));
    const before = [...nat.registry.peek(42)!.recent!.values!];
    patch('fusionSendBatch', (orig) => (io, b, o, out, ends) => {
      const n = orig(io, b, o, out, ends);
      new Uint32Array(io.buffer, io.byteOffset, 32)[5] = 1000; // the next body, past the batch
      return n;
    });
    expect(outcome(() => nat.runEngineBatch(...batch(3, 3)))).toEqual({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_STATUS' });
    expect(nat.registry.peek(42)!.recent!.values).toEqual(before);
    restore();
    const ts2 = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    ts2.runEngineBatch(...batch(0, 3));
    expect(hex(nat.runEngineBatch(...batch(6, 5)).frames)).toBe(hex(ts2.runEngineBatch(...batch(6, 5)).frames));
  });

  it('runEngineBatch when the frame encoder refuses a body natively (a code, not a text): the TypeScript path decides', () => {
    const ts = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    const nat = new OSVisualFusionEngine({ localId: 42, backend: 'native', clock: () => NOW });
    expect(hex(nat.runEngineBatch(...batch(0, 3)).frames)).toBe(hex(ts.runEngineBatch(...batch(0, 3)).frames));
    patch('fusionSendBatch', () => () => {
      throw Object.assign(new Error('timestamp out of range'), { code: NativeErrorCode.FRAME_TIMESTAMP });
    });
    expect(hex(nat.runEngineBatch(...batch(3, 3)).frames)).toBe(hex(ts.runEngineBatch(...batch(3, 3)).frames));
    // The old tagged text with the contract's "defect" code is the addon's failure, whatever it says.
    patch('fusionSendBatch', () => () => {
      throw Object.assign(new Error('[frame:timestamp-range] timestamp out of range'), { code: NativeErrorCode.CONTRACT });
    });
    expect(outcome(() => nat.runEngineBatch(...batch(6, 3)))).toEqual({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_CALL' });
    restore();
    const ts2 = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    ts2.runEngineBatch(...batch(0, 6));
    expect(hex(nat.runEngineBatch(...batch(9, 5)).frames)).toBe(hex(ts2.runEngineBatch(...batch(9, 5)).frames));
  });

  it('decompressBatch when decodeFrames throws: NativeBackendError', () => {
    const nat = rx('native');
    const f = encodeFrame({ cmd: DATA_FULL, routes: 42, tid: 1, timestamp: NOW, body: utf8(bodies(0)) });
    patch('decodeFrames', () => () => {
      throw new RangeError('offset out of bounds');
    });
    expect(outcome(() => nat.decompressBatch(f, Uint32Array.of(0, f.length)))).toEqual({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_CALL' });
  });
});

describe('NativeIo', () => {
  it('keeps bytes and words on one buffer of whole words, for every size, up to its bound', () => {
    const io = new NativeIo(4096, 100_003);
    expect(io.max).toBe(100_004);
    for (let need = 0; need <= 100_010; need += 997) {
      const ok = io.reserve(need);
      expect(ok).toBe(need <= 100_004);
      expect(io.words.buffer).toBe(io.bytes.buffer);
      expect(io.bytes.length % 4).toBe(0);
      expect(io.words.length * 4).toBe(io.bytes.length);
      if (ok) expect(io.bytes.length).toBeGreaterThanOrEqual(need);
      expect(io.bytes.length).toBeLessThanOrEqual(100_004);
    }
    expect(io.reserve(Number.NaN)).toBe(false);
  });
});
