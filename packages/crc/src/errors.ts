import { brandError } from '@opensynaptic/internal';

/** Arguments that cannot be used: wrong type, offsets outside the data, non-finite numbers. */
export class CrcArgumentError extends RangeError {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'CrcArgumentError';
  readonly code = 'ERR_CRC_ARGUMENT';
  /** The argument at fault. */
  readonly field: string;
  constructor(field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.field = field;
  }
}

/** SHA-256 is not available synchronously on this platform (browsers: use the async variant). */
export class SyncDigestUnavailableError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'SyncDigestUnavailableError';
  readonly code = 'ERR_SYNC_DIGEST_UNAVAILABLE';
  constructor() {
    super('deriveSessionKey needs node:crypto; in a browser call deriveSessionKeyAsync (WebCrypto) instead');
  }
}
