import { describe, expect, it } from 'vitest';
import { composeBackend, NativeBackendError, NativeErrorCode, NativeUnavailableError, nativeCallError, nativeErrorCode, parseBackendMode, selectBackend } from '../src/index.js';

describe('parseBackendMode', () => {
  it('accepts the three modes and treats empty as auto', () => {
    expect(parseBackendMode(undefined)).toBe('auto');
    expect(parseBackendMode('')).toBe('auto');
    expect(parseBackendMode('ts')).toBe('ts');
    expect(parseBackendMode('native')).toBe('native');
  });
  it('rejects anything else with a message naming the variable', () => {
    expect(() => parseBackendMode('rust')).toThrow(/OPENSYNAPTIC_CORE must be/);
  });
});

describe('selectBackend', () => {
  it('never loads the addon in ts mode', () => {
    let made = 0;
    const sel = selectBackend('pkg', 'ts-impl', () => {
      made++;
      return 'native-impl';
    }, 'ts');
    expect(sel.native).toBeNull();
    expect(made).toBe(0);
  });
  it('throws a typed error when native is forced and the factory has nothing to wrap', () => {
    // A factory that returns null simulates a binding that lacks the functions we need.
    expect(() =>
      selectBackend('pkg', 'ts-impl', () => null as unknown as string, 'native'),
    ).toThrow(NativeUnavailableError);
  });
});

describe('composeBackend', () => {
  interface Impl {
    backend: 'ts' | 'native';
    a(): string;
    b(): string;
  }
  const ts: Impl = { backend: 'ts', a: () => 'ts-a', b: () => 'ts-b' };
  const native: Impl = { backend: 'native', a: () => 'n-a', b: () => 'n-b' };
  it('takes only the listed operations from native in auto mode', () => {
    const { impl, backends } = composeBackend({ mode: 'auto', ts, native }, ['b']);
    expect([impl.a(), impl.b()]).toEqual(['ts-a', 'n-b']);
    expect(backends).toEqual({ a: 'ts', b: 'native' });
  });
  it('uses one implementation whole when forced', () => {
    expect(composeBackend({ mode: 'native', ts, native }, []).impl).toBe(native);
    expect(composeBackend({ mode: 'ts', ts, native }, ['a', 'b']).impl).toBe(ts);
  });
  it('falls back to TypeScript in auto mode without the addon', () => {
    const { impl, backends } = composeBackend({ mode: 'auto', ts, native: null }, ['a']);
    expect(impl).toBe(ts);
    expect(backends.a).toBe('ts');
  });
});

describe('NativeBackendError', () => {
  it('wraps what the addon threw, with its contract code, keeping it as the cause', () => {
    const thrown = Object.assign(new Error('io must hold 9000 bytes, it has 4096'), { code: NativeErrorCode.CONTRACT });
    const e = nativeCallError('@opensynaptic/x', 'fusionSendBatch', thrown);
    expect(e).toBeInstanceOf(NativeBackendError);
    expect(e.code).toBe('ERR_OPENSYNAPTIC_NATIVE_CALL');
    expect(e.operation).toBe('fusionSendBatch');
    expect(e.message).toBe('@opensynaptic/x: native fusionSendBatch failed: io must hold 9000 bytes, it has 4096 (OSN_CONTRACT)');
    expect(e.cause).toBe(thrown);
    expect(nativeCallError('@opensynaptic/x', 'other', e)).toBe(e);
    expect(nativeCallError('p', 'op', 'text').message).toBe('p: native op failed: text');
    // A message that looks like the old tags is only text now.
    expect(nativeCallError('p', 'op', new Error('[arg] x')).message).toBe('p: native op failed: [arg] x');
  });
  it('reads the contract code of an addon error, and nothing else', () => {
    expect(nativeErrorCode(Object.assign(new Error('boundary 2 (9) is decreasing'), { code: 'OSN_OFFSETS' }))).toBe(NativeErrorCode.OFFSETS);
    expect(nativeErrorCode(Object.assign(new Error('x'), { code: 'InvalidArg' }))).toBeNull();
    expect(nativeErrorCode(new RangeError('no code'))).toBeNull();
    expect(nativeErrorCode('OSN_OFFSETS')).toBeNull();
  });
});
