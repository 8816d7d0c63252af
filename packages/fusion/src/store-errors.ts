import { brandError } from '@opensynaptic/internal';
import { isStoreError } from '@opensynaptic/store';

/**
 * Codes of the registry cache's errors (the store's own are `StoreError`s of
 * `@opensynaptic/store`, kept as `cause`).
 * - `ERR_FUSION_STORE_AID`: an AID that is not an integer 0..4294967295 (it would not name a
 *   device, and a file store must never turn it into a path).
 * - `ERR_FUSION_STORE_OPTION`: an option outside its documented range.
 * - `ERR_FUSION_STORE_NOT_OPEN`: the cache has a store and `preload()` has not resolved yet.
 * - `ERR_FUSION_STORE_CORRUPT`: a registry record or file that is not one: not JSON (torn by
 *   another writer, truncated by a full disk...) or JSON of another shape (edited by hand, written
 *   by another program, a value that is not base64). Never loaded as empty or repaired, so no
 *   later save overwrites what it held.
 * - `ERR_FUSION_STORE_READ`: the store could not read a registry (I/O error; `cause` holds it).
 * - `ERR_FUSION_STORE_WRITE`: the store could not persist a registry; the registry stays dirty
 *   in the cache so the next flush retries it.
 * - `ERR_FUSION_STORE_DELETE`: the store could not forget a registry.
 */
export type RegistryStoreErrorCode =
  | 'ERR_FUSION_STORE_AID'
  | 'ERR_FUSION_STORE_OPTION'
  | 'ERR_FUSION_STORE_NOT_OPEN'
  | 'ERR_FUSION_STORE_CORRUPT'
  | 'ERR_FUSION_STORE_READ'
  | 'ERR_FUSION_STORE_WRITE'
  | 'ERR_FUSION_STORE_DELETE';

/** What a store error is about; every field is optional. */
export interface RegistryStoreErrorContext {
  /** The AID concerned, when it is a number (a bad one included). */
  aid?: number | undefined;
  /** The file concerned, for file stores. */
  path?: string | undefined;
  /** The underlying error (the store's `StoreError`, a JSON syntax error...). */
  cause?: unknown;
}

/** A registry that cannot be loaded, saved or deleted, or a cache set up or used wrongly. */
export class RegistryStoreError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'RegistryStoreError';
  readonly code: RegistryStoreErrorCode;
  /** The AID concerned, when known. */
  readonly aid: number | undefined;
  /** The file concerned, for file stores. */
  readonly path: string | undefined;
  constructor(code: RegistryStoreErrorCode, detail: string, context: RegistryStoreErrorContext = {}) {
    const where = context.path ?? (context.aid === undefined ? '' : `aid ${context.aid}`);
    super(where === '' ? detail : `${where}: ${detail}`, 'cause' in context ? { cause: context.cause } : undefined);
    this.code = code;
    this.aid = context.aid;
    this.path = context.path;
  }
}

/** Largest AID: the wire field is a 32-bit unsigned integer. */
export const MAX_AID = 0xffff_ffff;

/** Throws `ERR_FUSION_STORE_AID` unless `aid` is an integer 0..4294967295. */
export function checkAid(aid: unknown): asserts aid is number {
  // `>>> 0` maps every valid AID to itself and anything else (fractions, negatives, NaN, 2**32,
  // strings) to a different value, in one cheap comparison.
  if (typeof aid !== 'number' || aid >>> 0 !== aid) {
    throw new RegistryStoreError('ERR_FUSION_STORE_AID', `AID must be an integer 0..${MAX_AID}, got ${describe(aid)}`, {
      aid: typeof aid === 'number' ? aid : undefined,
    });
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return value === null ? 'null' : typeof value;
}

/**
 * Returns `error` when it already is a registry error, else wraps it with `code` (a record the
 * store reports as corrupt, `ERR_STORE_CORRUPT`, becomes `ERR_FUSION_STORE_CORRUPT`).
 */
export function asStoreError(error: unknown, code: RegistryStoreErrorCode, detail: string, aid: number): RegistryStoreError {
  if (error instanceof RegistryStoreError) return error;
  if (isStoreError(error, 'ERR_STORE_CORRUPT')) return new RegistryStoreError('ERR_FUSION_STORE_CORRUPT', error.message, { aid, cause: error });
  return new RegistryStoreError(code, detail, { aid, cause: error });
}
