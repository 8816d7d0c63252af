import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// The session-key cases recorded from the reference (vectors/security.json): inputs, the u64
// seed and the SHA-256 of its decimal text.
const file = JSON.parse(readFileSync(new URL('../../../vectors/security.json', import.meta.url), 'utf8')) as {
  cases: { id: string; input: { fn: string; assigned_id_repr?: string; timestamp_raw_repr?: string }; expected: { key?: string; seed_u64?: string } }[];
};
const derive = file.cases.filter((c) => c.input.fn === 'derive_session_key');
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
/** Python integer reprs and None; other reprs (strings, floats) are the vector runner's business. */
const int = (r: string | undefined): bigint | null | undefined => (r === 'None' ? null : r && /^-?\d+$/.test(r) ? BigInt(r) : undefined);

describe('session key without node:crypto (a browser, Node before 20.16)', () => {
  const proc = process as { getBuiltinModule?: unknown };
  const saved = proc.getBuiltinModule;
  let crc: typeof import('../src/index.js');

  // Node built-ins (node:crypto, and the addon's require) are reached only through
  // process.getBuiltinModule, which a browser lacks: without it, a fresh import of the package
  // sees what a browser sees.
  beforeAll(async () => {
    proc.getBuiltinModule = undefined;
    vi.resetModules();
    crc = await import('../src/index.js');
  });
  afterAll(() => {
    proc.getBuiltinModule = saved;
    vi.resetModules();
  });

  it('sees no addon, so every operation is TypeScript', () => {
    const info = crc.backendInfo();
    expect(info.nativeAvailable).toBe(false);
    expect(info.nativeUnavailable?.reason).toBe('no-loader');
    expect(Object.values(info.backends).every((b) => b === 'ts')).toBe(true);
    expect(derive.length).toBeGreaterThan(20);
  });

  it.each(derive.map((c) => [c.id, c] as const))('%s: gives the reference key', (_id, c) => {
    expect(proc.getBuiltinModule).toBeUndefined();
    const key = crc.getCodec('ts').digestSeed(BigInt(c.expected.seed_u64!));
    expect(key).toBeInstanceOf(Uint8Array);
    expect(hex(key)).toBe(c.expected.key);
    const aid = int(c.input.assigned_id_repr);
    const ts = int(c.input.timestamp_raw_repr);
    if (aid !== undefined && ts !== undefined) {
      const k2 = crc.deriveSessionKey(aid, ts);
      expect(k2).toHaveLength(crc.SESSION_KEY_LENGTH);
      expect(hex(k2)).toBe(c.expected.key);
    }
  });
});
