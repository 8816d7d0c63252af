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

/**
 * Formerly thrown by `deriveSessionKey` where `node:crypto` was missing (browsers, Node before
 * 20.16). Never thrown since SHA-256 has a pure-JS path; kept so existing imports still resolve.
 * @deprecated nothing throws it any more.
 */
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
