/**
 * Backend selection shared by the packages that have a native (Rust) implementation.
 *
 * This module is bundled into each public package at build time, so it is never a runtime
 * dependency and browsers never see a `require` of the addon.
 */
import { BINDING_PACKAGE, type NativeLoad, type NativeUnavailability, type NativeUnavailableReason, loadNative, nativeUnavailable } from './native-loader.js';

import { brandError } from './errors.js';
import { NativeErrorCode } from './native-contract.js';

/** One of the addon's error codes (`NativeErrorCode`). */
export type NativeErrorCodeValue = (typeof NativeErrorCode)[keyof typeof NativeErrorCode];
const NATIVE_ERROR_CODES: ReadonlySet<string> = new Set(Object.values(NativeErrorCode));

export * from './errors.js';
export * from './native-contract.js';

/** The two implementations every accelerated package offers behind one API. */
export type BackendName = 'ts' | 'native';

/**
 * `ts` and `native` force one implementation for every operation; `auto` (the default) uses the
 * native one only for the operations where it was measured faster, when the addon is installed.
 */
export type BackendMode = BackendName | 'auto';

/** Name of the environment variable that selects the backend without a code change. */
export const BACKEND_ENV = 'OPENSYNAPTIC_CORE';

export * from './native-loader.js';

interface ProcessLike {
  env?: Record<string, string | undefined>;
  getBuiltinModule?: (id: string) => unknown;
}

function processLike(): ProcessLike | undefined {
  return (globalThis as { process?: ProcessLike }).process;
}

/** A backend mode that is none of `ts`, `native`, `auto` (in `OPENSYNAPTIC_CORE` or an option). */
export class BackendModeError extends TypeError {
  static {
    brandError(this);
  }
  override readonly name = 'BackendModeError';
  readonly code = 'ERR_OPENSYNAPTIC_BACKEND_MODE';
  constructor(source: string, value: unknown) {
    super(`${source} must be "native", "ts" or "auto"; got ${JSON.stringify(value)}`);
  }
}

/** Parses a backend mode; `undefined` and `''` mean `auto`. Throws `BackendModeError` on anything else. */
export function parseBackendMode(value: unknown, source = BACKEND_ENV): BackendMode {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'ts' || value === 'native') return value;
  throw new BackendModeError(source, value);
}

/**
 * The mode requested through `OPENSYNAPTIC_CORE`. No environment (browsers) or one that cannot be
 * read (Deno without `--allow-env` throws `NotCapable`) means `auto`. Called on the first use of
 * a backend, never at import, so importing a package asks for no permission.
 */
export function envBackendMode(): BackendMode {
  let value: string | undefined;
  try {
    value = processLike()?.env?.[BACKEND_ENV];
  } catch {
    return 'auto';
  }
  return parseBackendMode(value);
}

/** Thrown when the native backend is requested but not available; says why, for which platform. */
export class NativeUnavailableError extends Error {
  static {
    brandError(this);
  }
  override readonly name = 'NativeUnavailableError';
  readonly code = 'ERR_OPENSYNAPTIC_NATIVE_UNAVAILABLE';
  /** Why (`no-build`, `build-missing`, `load-failed`...). */
  readonly reason: NativeUnavailableReason;
  /** `process.platform`, `process.arch` and the Linux C library, where a build was looked for. */
  readonly platform: string | null;
  readonly arch: string | null;
  readonly libc: 'glibc' | 'musl' | null;
  /** The platform package looked for (`@opensynaptic/binding-linux-x64-gnu`), or `null`. */
  readonly lookedFor: string | null;
  constructor(packageName: string, unavailable: NativeUnavailability) {
    super(
      `${packageName}: the native backend was requested but is not available: ${unavailable.message};` +
        ` the TypeScript backend works everywhere (${BACKEND_ENV}=ts or auto)`,
      unavailable.cause === null ? undefined : { cause: unavailable.cause },
    );
    this.reason = unavailable.reason;
    this.platform = unavailable.target?.platform ?? null;
    this.arch = unavailable.target?.arch ?? null;
    this.libc = unavailable.target?.libc ?? null;
    this.lookedFor = unavailable.lookedFor;
  }
}

/**
 * Codes of `NativeBackendError`:
 * - `ERR_OPENSYNAPTIC_NATIVE_CALL`: the addon threw (a broken call contract, an internal defect).
 * - `ERR_OPENSYNAPTIC_NATIVE_STATUS`: the addon returned a status or result this package does not know.
 * - `ERR_OPENSYNAPTIC_NATIVE_BUFFER`: the memory a native call needs could not be had.
 */
export type NativeBackendErrorCode = 'ERR_OPENSYNAPTIC_NATIVE_CALL' | 'ERR_OPENSYNAPTIC_NATIVE_STATUS' | 'ERR_OPENSYNAPTIC_NATIVE_BUFFER';

/**
 * A native (addon) operation failed in a way the TypeScript implementation never does. The call
 * left the package's state as it was before it; the addon's own error, if any, is the `cause`.
 */
export class NativeBackendError extends Error {
  static {
    brandError(this);
  }
  override readonly name = 'NativeBackendError';
  readonly code: NativeBackendErrorCode;
  /** The native operation that failed (`fusionReceive`...). */
  readonly operation: string;
  constructor(packageName: string, operation: string, code: NativeBackendErrorCode, detail: string, cause?: unknown) {
    super(`${packageName}: native ${operation} failed: ${detail}`, cause === undefined ? undefined : { cause });
    this.code = code;
    this.operation = operation;
  }
}

/**
 * The contract code (`NativeErrorCode`: `OSN_OFFSETS`...) of an error the addon threw, or `null`
 * for anything else (a JS error, a napi argument conversion, a caught panic). Packages decide on
 * this code and their own inputs, never on the message.
 */
export function nativeErrorCode(error: unknown): NativeErrorCodeValue | null {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && NATIVE_ERROR_CODES.has(code) ? (code as NativeErrorCodeValue) : null;
}

/**
 * The `NativeBackendError` for an error the addon threw: its message (and contract code, when it
 * has one) as the detail, the original as `cause`.
 */
export function nativeCallError(packageName: string, operation: string, error: unknown): NativeBackendError {
  if (error instanceof NativeBackendError) return error;
  const text = error instanceof Error ? error.message : String(error);
  const code = nativeErrorCode(error);
  return new NativeBackendError(packageName, operation, 'ERR_OPENSYNAPTIC_NATIVE_CALL', code === null ? text : `${text} (${code})`, error);
}

/** Node's own modules (`node:crypto`...) without importing them, or `undefined` in a browser. */
export function nodeBuiltin<T>(id: string): T | undefined {
  const getBuiltin = processLike()?.getBuiltinModule;
  if (typeof getBuiltin !== 'function') return undefined;
  try {
    return getBuiltin(id) as T;
  } catch {
    return undefined;
  }
}

/**
 * Picks the implementation for one package. `mode` comes from the environment unless given;
 * `native` with no addon throws, `auto` quietly uses TypeScript where the addon is missing.
 */
export function selectBackend<T>(
  packageName: string,
  tsImpl: T,
  makeNative: (binding: unknown) => T | null,
  mode: BackendMode = envBackendMode(),
): { mode: BackendMode; ts: T; native: T | null; unavailable: NativeUnavailability | null } {
  const load: NativeLoad =
    mode === 'ts' ? { binding: null, unavailable: nativeUnavailable('disabled', `disabled by ${BACKEND_ENV}=ts`) } : loadNative();
  const native = load.binding ? makeNative(load.binding) : null;
  const unavailable =
    load.unavailable ??
    (native ? null : nativeUnavailable('incomplete', `the installed ${BINDING_PACKAGE} lacks functions ${packageName} calls (a build older than it)`));
  if (mode === 'native' && unavailable) throw new NativeUnavailableError(packageName, unavailable);
  return { mode, ts: tsImpl, native, unavailable };
}

/**
 * The implementation the package's top-level functions use. `ts` and `native` modes take one
 * implementation whole; `auto` takes the native version of just the operations in
 * `autoNativeOps` (those `bench/` measured faster through the addon) and TypeScript for the rest.
 * `backends` tells, per operation, which one serves it.
 */
export function composeBackend<T extends { readonly backend: BackendName }>(
  selection: { mode: BackendMode; ts: T; native: T | null },
  autoNativeOps: readonly (keyof T)[],
): { impl: T; backends: Readonly<Record<string, BackendName>> } {
  const { mode, ts, native } = selection;
  const ops = Object.keys(ts).filter((k) => typeof ts[k as keyof T] === 'function') as (keyof T)[];
  const useNative = (op: keyof T) => native !== null && (mode === 'native' || (mode === 'auto' && autoNativeOps.includes(op)));
  const backends: Record<string, BackendName> = {};
  for (const op of ops) backends[op as string] = useNative(op) ? 'native' : 'ts';
  if (mode === 'native' && native) return { impl: native, backends: Object.freeze(backends) };
  if (!ops.some(useNative)) return { impl: ts, backends: Object.freeze(backends) };
  const impl = { ...ts } as T;
  for (const op of ops) if (useNative(op)) (impl as Record<keyof T, unknown>)[op] = native![op];
  return { impl, backends: Object.freeze(backends) };
}

/**
 * The backend facts of one accelerated package (`backendInfo()` in each of them). The same shape
 * everywhere, so `@opensynaptic/core`'s `backendReport()` can list them side by side.
 */
export interface BackendInfo {
  /** The package these facts are about (`@opensynaptic/crc`...). */
  readonly package: string;
  /** The requested mode: `OPENSYNAPTIC_CORE` (`ts`, `native`), or `auto` when unset or unreadable. */
  readonly backendMode: BackendMode;
  /**
   * `ts` or `native` when every operation runs there; `mixed` when `auto` hands some operations
   * (those measured faster) to the addon and keeps the rest in TypeScript. `backends` says which.
   */
  readonly backend: BackendName | 'mixed';
  /** Backend serving each operation of the package's top-level functions. */
  readonly backends: Readonly<Record<string, BackendName>>;
  /** Whether the native addon loaded (it is optional). */
  readonly nativeAvailable: boolean;
  /** Why it did not (`auto` then uses TypeScript without a word), or `null` when it loaded. */
  readonly nativeUnavailable: NativeUnavailability | null;
}

/** What each accelerated package builds its backend exports from. */
export interface PackageBackends<T> {
  /** The implementation behind the package's top-level functions (chosen on the first call). */
  impl(): T;
  /**
   * A stand-in with `T`'s operations that makes the choice on its first call, hands the chosen
   * implementation to `adopt` (which swaps it in for the stand-in) and forwards the call: the
   * choice waits for first use and later calls pay nothing for it.
   */
  deferred(adopt: (impl: T) => void): T;
  /** The package's backend facts (makes the choice if no call has yet). */
  info(): BackendInfo;
  /** A specific implementation; `'native'` throws `NativeUnavailableError` when the addon is missing. */
  getCodec(name: BackendName): T;
}

/**
 * Selection, per-operation composition and the backend facts of one package. Nothing is read or
 * loaded until first use: importing a package touches neither the environment nor the addon.
 */
export function packageBackends<T extends { readonly backend: BackendName }>(
  packageName: string,
  tsImpl: T,
  makeNative: (binding: unknown) => T | null,
  autoNativeOps: readonly (keyof T)[],
): PackageBackends<T> {
  let chosen: { selection: ReturnType<typeof selectBackend<T>>; impl: T; info: BackendInfo } | undefined;
  const choose = () => {
    if (chosen) return chosen;
    const selection = selectBackend(packageName, tsImpl, makeNative);
    const { impl, backends } = composeBackend(selection, autoNativeOps);
    const names = new Set(Object.values(backends));
    const backend = names.size === 1 ? [...names][0]! : names.size === 0 ? 'ts' : 'mixed';
    const info: BackendInfo = Object.freeze({
      package: packageName,
      backendMode: selection.mode,
      backend,
      backends,
      nativeAvailable: selection.native !== null,
      nativeUnavailable: selection.unavailable,
    });
    chosen = { selection, impl, info };
    return chosen;
  };
  return {
    impl: () => choose().impl,
    deferred(adopt) {
      const standIn = {} as Record<string, unknown>;
      for (const key of Object.keys(tsImpl)) {
        const first = (): T => {
          const impl = choose().impl;
          adopt(impl);
          return impl;
        };
        if (typeof tsImpl[key as keyof T] === 'function') {
          standIn[key] = (...args: unknown[]) => (first() as unknown as Record<string, (...a: unknown[]) => unknown>)[key]!(...args);
        } else {
          Object.defineProperty(standIn, key, { enumerable: true, get: () => (first() as unknown as Record<string, unknown>)[key] });
        }
      }
      return standIn as T;
    },
    info: () => choose().info,
    getCodec(name) {
      if (name === 'ts') return tsImpl;
      const { selection } = choose();
      if (!selection.native) throw new NativeUnavailableError(packageName, selection.unavailable!);
      return selection.native;
    },
  };
}
export * from './events.js';
export * from './dispose.js';
export * from './keyed-throttle.js';
