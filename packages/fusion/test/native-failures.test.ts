/**
 * A native call that fails (the addon throws, returns a status it should not, or writes results
 * out of range) gives a typed `NativeBackendError`, never a plain RangeError / TypeError, and
 * leaves the engine as it was: the frames after it decode, and are built, exactly as on TypeScript.
 */
import { DATA_FULL } from '@opensynaptic/cmd';
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
  const binding = (nativeAvailable ? fusionBackend('native').decompress() : null) as FusionBinding & Record<string, unknown>;
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

  const receiverCases: [string, (orig: FusionBinding['fusionReceive']) => FusionBinding['fusionReceive'], string][] = [
    [
      'throws a RangeError',
      () => () => {
        throw new RangeError('byte length of Uint32Array should be a multiple of 4');
      },
      'ERR_OPENSYNAPTIC_NATIVE_CALL',
    ],
    ['throws an addon error', () => () => {
      throw new Error('[arg] io must hold 9000 bytes, it has 4096');
    }, 'ERR_OPENSYNAPTIC_NATIVE_CALL'],
    ['returns an unknown status', () => () => 99, 'ERR_OPENSYNAPTIC_NATIVE_STATUS'],
    [
      'writes a body length past the frame',
      (orig) => (frame, io) => {
        const status = orig(frame, io);
        new Uint32Array(io.buffer, io.byteOffset, 32)[9] = frame.length + 1;
        return status;
      },
      'ERR_OPENSYNAPTIC_NATIVE_STATUS',
    ],
  ];

  for (const [what, make, code] of receiverCases) {
    it(`decompress when fusionReceive ${what}: ${code}, and the engine is unchanged`, () => {
      const frames = tsFrames(12);
      const ts = rx('ts');
      const nat = rx('native');
      for (const f of frames.slice(0, 4)) expect(outcome(() => nat.decompress(f))).toEqual(outcome(() => ts.decompress(f)));
      patch('fusionReceive', make);
      for (const f of frames.slice(4, 6)) {
        const e = outcome(() => nat.decompress(f));
        expect(e).toEqual({ name: 'NativeBackendError', code });
        const p = nat.parse(f);
        expect(p.cause).toBeInstanceOf(NativeBackendError);
        expect(p.error).toMatch(/native fusionReceive failed/);
      }
      restore();
      // The failed frames left nothing behind: the rest decode as on a TypeScript engine that never saw them.
      for (const f of frames.slice(6)) expect(outcome(() => nat.decompress(f))).toEqual(outcome(() => ts.decompress(f)));
    });
  }

  it('runEngine when the addon throws after building the frame: NativeBackendError, registry unchanged, later frames as on TypeScript', () => {
    const ts = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    const nat = new OSVisualFusionEngine({ localId: 42, backend: 'native', clock: () => NOW });
    for (let i = 0; i < 3; i++) expect(hex(nat.runEngine(bodies(i)))).toBe(hex(ts.runEngine(bodies(i))));
    const before = [...nat.registry.peek(42)!.recent!.values!];
    // The addon's template copy moves on (the call succeeded inside), but the caller sees a throw.
    patch('fusionSend', (orig) => (io) => {
      orig(io);
      throw new Error('[arg] io must hold 99999 bytes, it has 4096');
    });
    expect(outcome(() => nat.runEngine(bodies(3)))).toEqual({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_CALL' });
    expect(nat.registry.peek(42)!.recent!.values).toEqual(before);
    patch('fusionSend', (orig) => (io) => orig(io) + 100);
    expect(outcome(() => nat.runEngine(bodies(3)))).toEqual({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_STATUS' });
    expect(nat.registry.peek(42)!.recent!.values).toEqual(before);
    restore();
    for (let i = 3; i < 12; i++) expect(hex(nat.runEngine(bodies(i)))).toBe(hex(ts.runEngine(bodies(i))));
  });

  it('runEngine when the frame encoder refuses the input natively: the TypeScript path decides', () => {
    const ts = new OSVisualFusionEngine({ localId: 42, backend: 'ts', clock: () => NOW });
    const nat = new OSVisualFusionEngine({ localId: 42, backend: 'native', clock: () => NOW });
    for (let i = 0; i < 3; i++) expect(hex(nat.runEngine(bodies(i)))).toBe(hex(ts.runEngine(bodies(i))));
    patch('fusionSend', () => () => {
      throw new Error('[frame:timestamp-range] timestamp out of range');
    });
    for (let i = 3; i < 6; i++) expect(hex(nat.runEngine(bodies(i)))).toBe(hex(ts.runEngine(bodies(i))));
    restore();
    for (let i = 6; i < 12; i++) expect(hex(nat.runEngine(bodies(i)))).toBe(hex(ts.runEngine(bodies(i))));
  });

  it('runEngineBatch when the addon throws: NativeBackendError, later batches as on TypeScript', () => {
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
