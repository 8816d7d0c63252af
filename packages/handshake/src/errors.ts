/** Codes of the handshake package's errors; every one starts with `ERR_`. */
export type HandshakeErrorCode =
  | 'ERR_HANDSHAKE_TRUNCATED'
  | 'ERR_HANDSHAKE_OVERSIZED'
  | 'ERR_HANDSHAKE_WRONG_CMD'
  | 'ERR_HANDSHAKE_META_TOO_LARGE'
  | 'ERR_HANDSHAKE_JSON'
  | 'ERR_HANDSHAKE_FIELD'
  | 'ERR_HANDSHAKE_STORE';

/** Base class of every error thrown by this package; `code` names the failure. */
export class HandshakeError extends Error {
  override readonly name: string = 'HandshakeError';
  readonly code: HandshakeErrorCode;
  constructor(code: HandshakeErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A control packet shorter than its layout requires. */
export class TruncatedPacketError extends HandshakeError {
  override readonly name = 'TruncatedPacketError';
  constructor(
    /** Name of the packet (`ID_ASSIGN`...). */
    readonly packet: string,
    readonly length: number,
    /** Smallest length that parses. */
    readonly needed: number,
  ) {
    super('ERR_HANDSHAKE_TRUNCATED', `${packet}: ${length} bytes, needs at least ${needed}`);
  }
}

/** A control packet longer than its layout allows (trailing bytes, or a field above its limit). */
export class OversizedPacketError extends HandshakeError {
  override readonly name = 'OversizedPacketError';
  constructor(
    readonly packet: string,
    readonly length: number,
    /** Largest length that parses. */
    readonly limit: number,
  ) {
    super('ERR_HANDSHAKE_OVERSIZED', `${packet}: ${length} bytes, at most ${limit} allowed`);
  }
}

/** The first byte is not the command the parser was asked to read. */
export class WrongCommandError extends HandshakeError {
  override readonly name = 'WrongCommandError';
  constructor(
    /** The command expected, or `null` for "any control command". */
    readonly expected: number | null,
    readonly actual: number | undefined,
  ) {
    const want = expected === null ? 'a control command' : `cmd ${expected}`;
    super('ERR_HANDSHAKE_WRONG_CMD', `expected ${want}, got ${actual === undefined ? 'an empty packet' : `cmd ${actual}`}`);
  }
}

/** JSON meta above `maxMetaBytes` (UTF-8 bytes), refused both when building and parsing. */
export class MetaTooLargeError extends HandshakeError {
  override readonly name = 'MetaTooLargeError';
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super('ERR_HANDSHAKE_META_TOO_LARGE', `JSON meta is ${size} bytes, the limit is ${limit}`);
  }
}

/** A value that has no JSON text (function, symbol, cycle, nesting too deep). */
export class JsonValueError extends HandshakeError {
  override readonly name = 'JsonValueError';
  constructor(detail: string) {
    super('ERR_HANDSHAKE_JSON', detail);
  }
}

/** A builder argument that cannot go on the wire (seq outside 0..65535, aid outside uint32...). */
export class HandshakeFieldError extends HandshakeError {
  override readonly name = 'HandshakeFieldError';
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super('ERR_HANDSHAKE_FIELD', `${field}: ${detail}`);
  }
}

/** A lease or session file that cannot be read back (corrupt, wrong shape) or written. */
export class StoreError extends HandshakeError {
  override readonly name = 'StoreError';
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_HANDSHAKE_STORE', `${path}: ${detail}`);
    if (options && 'cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}
