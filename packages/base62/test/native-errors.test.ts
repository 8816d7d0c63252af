import { loadNative } from '@opensynaptic/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { backendInfo, getCodec, InvalidBase62Error, NativeBackendError } from '../src/index.js';
const { nativeAvailable } = backendInfo();

/** An addon error this package has no typed error for becomes NativeBackendError, not a plain Error. */
describe.skipIf(!nativeAvailable && !process.env.CI)('native base62 failures', () => {
  const binding = loadNative().binding as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  afterEach(() => {
    for (const [k, v] of saved) binding[k] = v;
    saved.clear();
  });

  it('maps an unknown addon error to NativeBackendError and keeps the known ones', () => {
    saved.set('b62DecodeNumber', binding.b62DecodeNumber);
    binding.b62DecodeNumber = () => {
      throw new Error('[arg] unexpected');
    };
    expect(() => getCodec('native').decodeInt('1')).toThrow(NativeBackendError);
    expect(() => getCodec('native').decodeInt('1')).toThrow(expect.objectContaining({ code: 'ERR_OPENSYNAPTIC_NATIVE_CALL' }));
    binding.b62DecodeNumber = saved.get('b62DecodeNumber');
    expect(() => getCodec('native').decodeInt('!')).toThrow(InvalidBase62Error);
  });
});
