import { CrcArgumentError } from './errors.js';

/** A session-key input: integer, bigint, or nothing (counts as 0 like the reference). */
export type SessionKeyInput = number | bigint | null | undefined;

const U64 = 2n ** 64n;

function toU64(value: SessionKeyInput, field: string): bigint {
  if (value === null || value === undefined) return 0n;
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new CrcArgumentError(field, `${value} is not a finite number`);
    v = BigInt(Math.trunc(value));
  } else {
    throw new CrcArgumentError(field, `expected an integer or bigint, got ${typeof value}`);
  }
  // Negative clamps to 0; 2^64 and above keep their low 64 bits (the reference's c_ulonglong).
  return v < 0n ? 0n : v % U64;
}

/**
 * The 64-bit seed of a session key: `(aid × ts) mod 2^64`, after clamping negative or missing
 * inputs to 0. `ts` is the millisecond timestamp of the sender's first plaintext FULL frame.
 */
export function sessionSeed(aid: SessionKeyInput, ts: SessionKeyInput): bigint {
  return (toU64(aid, 'aid') * toU64(ts, 'ts')) % U64;
}

/** The text that is hashed: ASCII decimal of the seed. */
export function seedText(seed: bigint): Uint8Array {
  const s = seed.toString();
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

interface SubtleLike {
  digest(alg: string, data: Uint8Array): Promise<ArrayBuffer>;
}

/**
 * Session key through WebCrypto (browsers, Deno, Node): SHA-256 of the decimal seed, 32 bytes.
 * The key derives from values sent in clear, so it obfuscates; it does not encrypt.
 */
export async function deriveSessionKeyAsync(aid: SessionKeyInput, ts: SessionKeyInput): Promise<Uint8Array> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleLike } }).crypto?.subtle;
  if (!subtle) throw new CrcArgumentError('platform', 'WebCrypto (crypto.subtle) is not available');
  return new Uint8Array(await subtle.digest('SHA-256', seedText(sessionSeed(aid, ts))));
}
