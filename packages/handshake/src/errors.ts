import { brandError } from '@opensynaptic/internal';

/** Codes of the handshake package's errors; every one starts with `ERR_`. */
export type HandshakeErrorCode =
  | 'ERR_HANDSHAKE_TRUNCATED'
  | 'ERR_HANDSHAKE_OVERSIZED'
  | 'ERR_HANDSHAKE_WRONG_CMD'
  | 'ERR_HANDSHAKE_META_TOO_LARGE'
  | 'ERR_HANDSHAKE_JSON'
  | 'ERR_HANDSHAKE_FIELD'
  | 'ERR_HANDSHAKE_STORE'
  | 'ERR_HANDSHAKE_NOT_OPEN'
  | 'ERR_HANDSHAKE_NACK'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_HANDSHAKE_ABORTED'
  | 'ERR_HANDSHAKE_TOO_MANY_REQUESTS'
  | 'ERR_HANDSHAKE_BAD_ANSWER'
  | AuthErrorCode;

/** Base class of every error thrown by this package; `code` names the failure. */
export class HandshakeError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
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

/**
 * A lease or session store that cannot be read back (corrupt records, wrong shapes), written or
 * flushed (`ERR_HANDSHAKE_STORE`), or an allocator or manager with a store used before its
 * `open()` resolved (`ERR_HANDSHAKE_NOT_OPEN`).
 */
export class StoreError extends HandshakeError {
  override readonly name = 'StoreError';
  constructor(
    readonly path: string,
    detail: string,
    options?: { cause?: unknown; code?: 'ERR_HANDSHAKE_STORE' | 'ERR_HANDSHAKE_NOT_OPEN' },
  ) {
    super(options?.code ?? 'ERR_HANDSHAKE_STORE', `${path}: ${detail}`);
    if (options && 'cause' in options) (this as { cause?: unknown }).cause = options.cause;
  }
}

/** The peer answered a pending request with NACK (same seq). */
export class RequestNackError extends HandshakeError {
  override readonly name = 'RequestNackError';
  constructor(
    /** The request's packet name (`ID_REQUEST`...). */
    readonly request: string,
    readonly seq: number,
    /** The NACK's reason text (`ID_POOL_EXHAUSTED`, `NO_ALLOCATOR`...), possibly empty. */
    readonly reason: string,
  ) {
    super('ERR_HANDSHAKE_NACK', `${request} seq ${seq} refused: ${reason === '' ? '(no reason)' : reason}`);
  }
}

/** No answer arrived within the request's timeout; the request is no longer pending. */
export class RequestTimeoutError extends HandshakeError {
  override readonly name = 'RequestTimeoutError';
  constructor(
    readonly request: string,
    readonly seq: number,
    readonly timeoutMs: number,
    /** How many times the packet was sent (first send included). */
    readonly attempts: number,
  ) {
    super('ERR_HANDSHAKE_TIMEOUT', `${request} seq ${seq}: no answer within ${timeoutMs} ms (${attempts} sent)`);
  }
}

/** A request cancelled by an `AbortSignal` that carried no reason, or by `cancelAll()`. */
export class RequestAbortedError extends HandshakeError {
  override readonly name = 'RequestAbortedError';
  constructor(detail = 'request aborted') {
    super('ERR_HANDSHAKE_ABORTED', detail);
  }
}

/** More requests in flight than the requester's `maxInFlight`; nothing was sent. */
export class TooManyRequestsError extends HandshakeError {
  override readonly name = 'TooManyRequestsError';
  constructor(readonly limit: number) {
    super('ERR_HANDSHAKE_TOO_MANY_REQUESTS', `${limit} requests already in flight`);
  }
}

/** An answer with the right seq and command but unusable content (ID_ASSIGN with aid 0, empty pool). */
export class InvalidAnswerError extends HandshakeError {
  override readonly name = 'InvalidAnswerError';
  constructor(
    readonly request: string,
    readonly seq: number,
    detail: string,
  ) {
    super('ERR_HANDSHAKE_BAD_ANSWER', `${request} seq ${seq}: ${detail}`);
  }
}

export type AuthErrorCode =
  | 'ERR_AUTH_TRUNCATED'
  | 'ERR_AUTH_BAD_PACKET'
  | 'ERR_AUTH_NO_SESSION'
  | 'ERR_AUTH_REPLAY'
  | 'ERR_AUTH_TAG'
  | 'ERR_AUTH_REQUIRED'
  | 'ERR_AUTH_NO_KEY'
  | 'ERR_AUTH_SEQ_EXHAUSTED'
  | 'ERR_AUTH_UNSUPPORTED'
  | 'ERR_AUTH_REJECTED'
  | 'ERR_AUTH_SECRET'
  | 'ERR_AUTH_LOW_ORDER';

/** Every failure of the authenticated mode; `code` names it. */
export class AuthError extends HandshakeError {
  override readonly name = 'AuthError';
  override readonly code: AuthErrorCode;
  constructor(
    code: AuthErrorCode,
    message: string,
    /** The frame's source aid, when it was read. */
    readonly aid: number | null = null,
  ) {
    super(code, message);
    this.code = code;
  }
}

