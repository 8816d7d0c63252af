import { loadNative } from '@opensynaptic/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { backendInfo, getCodec, NativeBackendError } from '../src/index.js';
const { nativeAvailable } = backendInfo();

/** An addon call that throws, or returns what it never should, gives a typed NativeBackendError. */
describe.skipIf(!nativeAvailable && !process.env.CI)('native frame codec failures', () => {
  const binding = loadNative().binding as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  const patch = (name: string, f: unknown) => {
    if (!saved.has(name)) saved.set(name, binding[name]);
    binding[name] = f;
  };
  afterEach(() => {
    for (const [k, v] of saved) binding[k] = v;
    saved.clear();
  });
  const codec = () => getCodec('native');
  const fields = { cmd: 63, routes: 42, tid: 1, timestamp: 1, body: Uint8Array.of(65, 124) };

  it('decodeFrame: a throw or an unknown status', () => {
    const frame = codec().encodeFrame(fields);
    patch('decodeFrame', () => {
      throw new RangeError('offset is out of bounds');
    });
    expect(() => codec().decodeFrame(frame)).toThrow(expect.objectContaining({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_CALL' }));
    patch('decodeFrame', () => 42);
    expect(() => codec().decodeFrame(frame)).toThrow(NativeBackendError);
    expect(() => codec().decodeFrame(frame)).toThrow(expect.objectContaining({ code: 'ERR_OPENSYNAPTIC_NATIVE_STATUS' }));
  });

  it('encodeFrame and encodeFrames: a throw', () => {
    patch('encodeFrame', () => {
      throw Object.assign(new Error('something the checks missed'), { code: 'OSN_CONTRACT' });
    });
    expect(() => codec().encodeFrame(fields)).toThrow(expect.objectContaining({ name: 'NativeBackendError', message: expect.stringMatching(/native encodeFrame failed: something the checks missed \(OSN_CONTRACT\)$/) }));
    patch('encodeFrames', () => {
      throw new TypeError('boom');
    });
    const batch = { cmds: Uint8Array.of(63), aids: Uint32Array.of(42), tids: Uint8Array.of(1), timestamps: Float64Array.of(1), bodies: Uint8Array.of(65), bodyOffsets: Uint32Array.of(0, 1) };
    expect(() => codec().encodeFrames(batch)).toThrow(NativeBackendError);
  });
});
