import { brandError } from '@opensynaptic/internal';

/**
 * Codes of {@link StoreError}:
 * - `ERR_STORE_OPTION`: an option outside its documented range.
 * - `ERR_STORE_KIND`: a kind (namespace) the store was not opened with.
 * - `ERR_STORE_KEY`: a key that is not a non-empty string of at most `MAX_KEY_LENGTH` characters,
 *   or one the kind's layout cannot name (a file store never turns a bad key into a path).
 * - `ERR_STORE_VALUE`: a value the store cannot keep (`undefined`, or one its codec rejects).
 * - `ERR_STORE_BATCH`: a write batch of the wrong shape (not a list, an unknown `op`), or a
 *   readings write larger than the sink's whole buffer.
 * - `ERR_STORE_QUERY`: a readings or devices query with a field outside its range.
 * - `ERR_STORE_CORRUPT`: a stored record that does not decode; never read as missing, so no
 *   later write overwrites what it held unseen.
 * - `ERR_STORE_READ`: the store could not read (I/O error; `cause` holds it).
 * - `ERR_STORE_WRITE`: the store could not persist; the writes stay pending, the next `flush`
 *   retries them.
 * - `ERR_STORE_CLOSED`: an operation on a closed store.
 * - `ERR_STORE_UNSUPPORTED`: a file store where there is no `node:fs` (browsers).
 */
export type StoreErrorCode =
  | 'ERR_STORE_OPTION'
  | 'ERR_STORE_KIND'
  | 'ERR_STORE_KEY'
  | 'ERR_STORE_VALUE'
  | 'ERR_STORE_BATCH'
  | 'ERR_STORE_QUERY'
  | 'ERR_STORE_CORRUPT'
  | 'ERR_STORE_READ'
  | 'ERR_STORE_WRITE'
  | 'ERR_STORE_CLOSED'
  | 'ERR_STORE_UNSUPPORTED';

/** What a store error is about; every field is optional. */
export interface StoreErrorContext {
  kind?: string | undefined;
  key?: string | undefined;
  /** The file concerned, for file stores. */
  path?: string | undefined;
  cause?: unknown;
}

/**
 * Every error a store of this contract throws or rejects with. Test it with {@link isStoreError}
 * or `isOpenSynapticError(err, code?)`, the guard every @opensynaptic package exports.
 */
export class StoreError extends Error {
  static {
    brandError(this);
  }
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly kind: string | undefined;
  readonly key: string | undefined;
  readonly path: string | undefined;
  constructor(code: StoreErrorCode, detail: string, context: StoreErrorContext = {}) {
    const where = context.path ?? (context.kind === undefined ? '' : context.key === undefined ? context.kind : `${context.kind}/${context.key}`);
    super(where === '' ? detail : `${where}: ${detail}`, 'cause' in context ? { cause: context.cause } : undefined);
    this.code = code;
    this.kind = context.kind;
    this.key = context.key;
    this.path = context.path;
  }
}

/**
 * Whether `error` is a {@link StoreError} (with `code`, when given). Checks the name and code
 * rather than `instanceof`, which fails across the ESM and CJS builds of this package.
 */
export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { name?: unknown; code?: unknown };
  if (e.name !== 'StoreError' || typeof e.code !== 'string' || !e.code.startsWith('ERR_STORE_')) return false;
  return code === undefined || e.code === code;
}
