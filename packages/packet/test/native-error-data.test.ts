/**
 * Errors cross from the addon as data (a contract code), not as text to parse: the native codec
 * gives the same typed error, code and message as the TypeScript codec for the same bad input,
 * and decides on the code alone, whatever the message says.
 */
import { loadNative, NativeErrorCode } from '@opensynaptic/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { backendInfo, DECODED_FIELDS, encodeFrame, getCodec } from '../src/index.js';
const { nativeAvailable } = backendInfo();

function outcome(f: () => unknown): unknown {
  try {
    return { ok: f() };
  } catch (e) {
    const x = e as { name?: string; code?: string; message?: string };
    return { name: x.name, code: x.code, message: x.message };
  }
}

describe.skipIf(!nativeAvailable && !process.env.CI)('decodeFrames errors, native against TypeScript', () => {
  const frame = encodeFrame({ cmd: 63, routes: 42, tid: 1, timestamp: 1, body: Uint8Array.of(65) });
  const buf = new Uint8Array(3 * frame.length);
  for (let i = 0; i < 3; i++) buf.set(frame, i * frame.length);
  const n = frame.length;
  const cases: [string, Uint32Array, number][] = [
    ['no boundaries', new Uint32Array(0), 0],
    ['a decreasing boundary', Uint32Array.of(0, n, n - 1), 2],
    ['a boundary past the buffer', Uint32Array.of(0, n, 4 * n), 2],
    ['a first boundary past the buffer', Uint32Array.of(4 * n, 4 * n + 1), 1],
    ['an out array too small', Uint32Array.of(0, n, 2 * n), 1],
    ['one boundary past the buffer, no frames', Uint32Array.of(4 * n), 0],
  ];
  for (const [what, offsets, frames] of cases) {
    it(`${what}: the same outcome`, () => {
      const size = what.startsWith('an out') ? DECODED_FIELDS : Math.max(frames, 1) * DECODED_FIELDS;
      const ts = outcome(() => getCodec('ts').decodeFrames(buf, offsets, new Float64Array(size)));
      expect(outcome(() => getCodec('native').decodeFrames(buf, offsets, new Float64Array(size)))).toEqual(ts);
    });
  }

  const binding = loadNative().binding as Record<string, unknown>;
  const saved = binding.decodeFrames;
  afterEach(() => {
    binding.decodeFrames = saved;
  });
  it('decides on the code, never on the message', () => {
    const offsets = Uint32Array.of(0, n, 4 * n);
    // An offsets code with a message that says something else: still the caller's typed error.
    binding.decodeFrames = () => {
      throw Object.assign(new Error('io must hold 9000 bytes'), { code: NativeErrorCode.OFFSETS });
    };
    const ts = outcome(() => getCodec('ts').decodeFrames(buf, offsets, new Float64Array(2 * DECODED_FIELDS)));
    expect(outcome(() => getCodec('native').decodeFrames(buf, offsets, new Float64Array(2 * DECODED_FIELDS)))).toEqual(ts);
    // A contract code with an offsets-like message: the addon's own failure.
    binding.decodeFrames = () => {
      throw Object.assign(new Error('boundary 2 (999) is decreasing or past the data'), { code: NativeErrorCode.CONTRACT });
    };
    expect(outcome(() => getCodec('native').decodeFrames(buf, offsets, new Float64Array(2 * DECODED_FIELDS)))).toMatchObject({
      name: 'NativeBackendError',
      code: 'ERR_OPENSYNAPTIC_NATIVE_CALL',
    });
  });
});
