/**
 * Which implementation serves each fusion operation: the engine's TypeScript code, or the
 * steady state compiled into `@opensynaptic/binding` (crates/opensynaptic-core `fusion`).
 *
 * Measured on x64 / Node 20 (`bench/native.bench.mjs`, ns per frame, TypeScript vs native): a
 * call into the addon costs ~100-200 ns before any work, so single frames lose or barely win:
 * `runEngine` DIFF 265 vs 425 (1 sensor), 690 vs 590 (8 sensors); `decompress` DIFF 365 vs 730
 * and 1690 vs 2040; `decompressBatch` (frame checks in one call, the rest per frame) 365 vs 320
 * and 1700 vs 1670. Only `runEngineBatch` (a run of steady-state bodies in one call) is clearly
 * faster: 95 ns per frame (1 sensor) and 200 (8 sensors), against 265 / 690 for `runEngine` on
 * strings and 710 / 1090 for the TypeScript batch (bytes in). `auto` therefore sends only
 * `runEngineBatch` to the addon; `OPENSYNAPTIC_CORE=native` or `backend: 'native'` use it for
 * every operation.
 */
import { type BackendInfo, type BackendName, packageBackends } from '@opensynaptic/internal';

/** The part of `@opensynaptic/binding` the fusion engine calls (see crates/opensynaptic-napi/src/fusion.rs). */
export interface FusionBinding {
  fusionSenderNew(): number;
  fusionSenderFree(id: number): void;
  fusionSenderLoad(io: Uint8Array): void;
  fusionSend(io: Uint8Array): number;
  fusionSendBatch(io: Uint8Array, bodies: Uint8Array, offsets: Uint32Array, out: Uint8Array, frameEnds: Uint32Array): number;
  fusionReceive(frame: Uint8Array, io: Uint8Array): number;
  decodeFrames(buf: Uint8Array, offsets: Uint32Array, out: Float64Array): number;
}

/**
 * One backend: for each engine operation, the addon to run it with, or `null` for the engine's
 * TypeScript code.
 */
export interface FusionBackend {
  readonly backend: BackendName;
  /** `runEngine` DIFF / HEART frames. */
  runEngine(): FusionBinding | null;
  /** `decompress` / `parse`: frame checks and DIFF body reading. */
  decompress(): FusionBinding | null;
  /** `runEngineBatch`. */
  runEngineBatch(): FusionBinding | null;
  /** `decompressBatch`: frame checks of the whole batch in one call. */
  decompressBatch(): FusionBinding | null;
}

/** The engine operations a backend serves. */
export type FusionOperation = Exclude<keyof FusionBackend, 'backend'>;

const none = (): null => null;
const tsBackend: FusionBackend = { backend: 'ts', runEngine: none, decompress: none, runEngineBatch: none, decompressBatch: none };

function nativeBackend(binding: unknown): FusionBackend | null {
  const b = binding as Partial<FusionBinding> | null;
  // An addon built before the fusion functions existed counts as missing.
  if (!b || typeof b.fusionSend !== 'function' || typeof b.fusionSendBatch !== 'function' || typeof b.decodeFrames !== 'function') {
    return null;
  }
  const n = (): FusionBinding => b as FusionBinding;
  return { backend: 'native', runEngine: n, decompress: n, runEngineBatch: n, decompressBatch: n };
}

/** Operations `auto` runs natively: only those measured at least 2x faster. */
const AUTO_NATIVE: readonly FusionOperation[] = ['runEngineBatch'];

const selected = packageBackends('@opensynaptic/fusion', tsBackend, nativeBackend, AUTO_NATIVE);

/**
 * The default backend of each engine operation (`backends`: `runEngine`, `decompress`,
 * `runEngineBatch`, `decompressBatch`), whether the addon with the fusion steady state loaded,
 * the requested mode; an engine built with `backend: 'ts' | 'native'` reports its own choice in
 * `engine.backends`. Chosen on first use (this call or the first engine), never at import.
 */
export const backendInfo: () => BackendInfo = selected.info;

/** The default per-operation choice, or one backend for everything (`'native'` throws `NativeUnavailableError` without the addon). */
export function fusionBackend(name?: BackendName): FusionBackend {
  return name === undefined ? selected.impl() : selected.getCodec(name);
}
