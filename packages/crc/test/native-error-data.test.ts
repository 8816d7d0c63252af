/**
 * Errors cross from the addon as data (a contract code), not as text to parse: the native CRC
 * batches give the same typed error, code and message as the TypeScript ones for the same bad
 * offsets, and decide on the code alone.
 */
import { loadNative, NativeErrorCode } from '@opensynaptic/internal';
import { afterEach, describe, expect, it } from 'vitest';
import { backendInfo, getCodec } from '../src/index.js';
const { nativeAvailable } = backendInfo();

function outcome(f: () => unknown): unknown {
  try {
    return { ok: Array.from(f() as ArrayLike<number>) };
  } catch (e) {
    const x = e as { name?: string; code?: string; message?: string };
    return { name: x.name, code: x.code, message: x.message };
  }
}

describe.skipIf(!nativeAvailable && !process.env.CI)('CRC batch errors, native against TypeScript', () => {
  const data = new TextEncoder().encode('123456789hello world');
  const cases: [string, Uint32Array][] = [
    ['no boundaries', new Uint32Array(0)],
    ['a decreasing boundary', Uint32Array.of(0, 9, 4)],
    ['a boundary past the data', Uint32Array.of(0, 9, 30)],
    ['a lone boundary past the data', Uint32Array.of(30)],
  ];
  for (const op of ['crc8Batch', 'crc16Batch'] as const) {
    for (const [what, offsets] of cases) {
      it(`${op}, ${what}: the same outcome`, () => {
        const ts = outcome(() => getCodec('ts')[op](data, offsets));
        expect(ts).toMatchObject({ name: 'CrcArgumentError', code: 'ERR_CRC_ARGUMENT' });
        expect(outcome(() => getCodec('native')[op](data, offsets))).toEqual(ts);
      });
    }
  }

  const binding = loadNative().binding as Record<string, unknown>;
  const saved = binding.crc8Batch;
  afterEach(() => {
    binding.crc8Batch = saved;
  });
  it('decides on the code, never on the message', () => {
    binding.crc8Batch = () => {
      throw Object.assign(new Error('boundary 1 (30) is decreasing or past the data'), { code: NativeErrorCode.CONTRACT });
    };
    expect(outcome(() => getCodec('native').crc8Batch(data, Uint32Array.of(0, 9)))).toMatchObject({ name: 'NativeBackendError', code: 'ERR_OPENSYNAPTIC_NATIVE_CALL' });
  });
});
