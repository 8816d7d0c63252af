import { describe, expect, it } from 'vitest';
import { NativeUnavailableError, parseBackendMode, selectBackend } from '../src/index.js';

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
