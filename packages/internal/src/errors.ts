/**
 * The one test for "is this an OpenSynaptic error", that works where `instanceof` cannot: the
 * ESM and CJS builds of a package carry separate classes, and this module is bundled into every
 * package, so two packages never share a class either. A brand on the prototype, under a
 * registry symbol (`Symbol.for`, the same in every copy of the code), marks every error class.
 */

const BRAND: unique symbol = Symbol.for('@opensynaptic/error') as never;

/** What every OpenSynaptic error has: an `Error` with a stable `code` string (`ERR_...`). */
export interface OpenSynapticError extends Error {
  readonly code: string;
}

/** Marks an error class (and so its subclasses) as an OpenSynaptic error; call it in a `static {}` block. */
export function brandError(errorClass: abstract new (...args: never[]) => Error): void {
  Object.defineProperty(errorClass.prototype, BRAND, { value: true });
}

/**
 * Whether `error` is an error thrown by an @opensynaptic package, with the given `code` when one
 * is given (`'ERR_FRAME_CRC16'`...). Checks the brand and `code`, never the class: it holds
 * across the ESM and CJS builds and across packages, where `instanceof` does not.
 */
export function isOpenSynapticError<C extends string>(error: unknown, code: C): error is OpenSynapticError & { readonly code: C };
export function isOpenSynapticError(error: unknown, code?: string): error is OpenSynapticError;
export function isOpenSynapticError(error: unknown, code?: string): error is OpenSynapticError {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { [BRAND]?: unknown; code?: unknown };
  return e[BRAND] === true && typeof e.code === 'string' && (code === undefined || e.code === code);
}
