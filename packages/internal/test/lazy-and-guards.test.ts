import { afterEach, describe, expect, it } from 'vitest';
import { BackendModeError, envBackendMode, isOpenSynapticError, NativeBackendError, NativeUnavailableError, nativeUnavailable, packageBackends } from '../src/index.js';

const realEnv = Object.getOwnPropertyDescriptor(process, 'env')!;
afterEach(() => {
  Object.defineProperty(process, 'env', realEnv);
});

describe('envBackendMode', () => {
  it('treats an environment that throws on read (Deno without --allow-env) as auto', () => {
    Object.defineProperty(process, 'env', {
      configurable: true,
      get() {
        throw new Error('NotCapable');
      },
    });
    expect(envBackendMode()).toBe('auto');
  });
  it('still refuses a value that is not a mode, with a branded typed error', () => {
    Object.defineProperty(process, 'env', { configurable: true, value: { OPENSYNAPTIC_CORE: 'rust' } });
    let error: unknown;
    try {
      envBackendMode();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BackendModeError);
    expect(isOpenSynapticError(error, 'ERR_OPENSYNAPTIC_BACKEND_MODE')).toBe(true);
  });
});

describe('packageBackends', () => {
  interface Impl {
    readonly backend: 'ts' | 'native';
    twice(n: number): number;
  }
  const ts: Impl = { backend: 'ts', twice: (n) => 2 * n };

  it('reads nothing and loads nothing until first use, then swaps the stand-in out', () => {
    let reads = 0;
    Object.defineProperty(process, 'env', {
      configurable: true,
      get() {
        reads++;
        return { OPENSYNAPTIC_CORE: 'ts' };
      },
    });
    const b = packageBackends<Impl>('@opensynaptic/x', ts, () => null, []);
    let impl: Impl = b.deferred((chosen) => {
      impl = chosen;
    });
    const standIn = impl;
    expect(reads).toBe(0);
    expect(impl.twice(21)).toBe(42);
    expect(reads).toBe(1);
    expect(impl).toBe(ts);
    expect(standIn.backend).toBe('ts');
    expect(b.info()).toEqual({ package: '@opensynaptic/x', backendMode: 'ts', backend: 'ts', backends: { twice: 'ts' }, nativeAvailable: false, nativeUnavailable: expect.objectContaining({ reason: 'disabled' }) });
    expect(reads).toBe(1);
  });
});

describe('isOpenSynapticError', () => {
  it('recognises the bundled native errors by brand and code', () => {
    const e = new NativeBackendError('p', 'op', 'ERR_OPENSYNAPTIC_NATIVE_STATUS', 'x');
    expect(isOpenSynapticError(e, 'ERR_OPENSYNAPTIC_NATIVE_STATUS')).toBe(true);
    expect(isOpenSynapticError(new NativeUnavailableError('p', nativeUnavailable('no-loader', 'gone')), 'ERR_OPENSYNAPTIC_NATIVE_UNAVAILABLE')).toBe(true);
    expect(isOpenSynapticError(new TypeError('plain'))).toBe(false);
  });
});
