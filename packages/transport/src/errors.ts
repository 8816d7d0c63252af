import { brandError, isOpenSynapticError } from '@opensynaptic/internal';

/**
 * Codes of the transport errors (each class below carries the codes it can have):
 * - `ERR_TRANSPORT_OPTION`: an option outside its documented range ({@link TransportOptionError}).
 * - `ERR_TRANSPORT_FRAME`: a frame that is not a non-empty `Uint8Array`, or holds a byte the
 *   framing cannot carry (0x03 in STX/ETX mode) ({@link FrameError}).
 * - `ERR_TRANSPORT_FRAME_SIZE`: a frame larger than the transport's `maxFrameBytes` ({@link FrameError}).
 * - `ERR_TRANSPORT_PEER`: a destination the driver cannot reach: malformed, or a connection that is gone ({@link PeerError}).
 * - `ERR_TRANSPORT_STATE`: a lifecycle call out of order (`start` twice, `start` after `stop`) ({@link TransportStateError}).
 * - `ERR_TRANSPORT_CLOSED`: a send or start on a stopped or destroyed transport, or a send
 *   still queued when it was destroyed ({@link TransportStateError}).
 * - `ERR_TRANSPORT_QUEUE_FULL`: a bounded queue is full; the frame was not taken ({@link QueueFullError}).
 * - `ERR_TRANSPORT_TIMEOUT`: a send, connection or heartbeat took longer than its limit ({@link TransportTimeoutError}).
 * - `ERR_TRANSPORT_ABORTED`: the caller's `AbortSignal` fired first ({@link TransportAbortError}).
 * - `ERR_TRANSPORT_IO`: the medium failed (socket, broker, serial port); `cause` holds the
 *   platform's error ({@link TransportIoError}).
 * - `ERR_TRANSPORT_PROTOCOL`: a peer broke the framing (a length prefix over the limit, a
 *   WebSocket text message, an undecodable serial frame) ({@link TransportProtocolError}).
 * - `ERR_TRANSPORT_DRIVER`: no driver of that name in the registry ({@link DriverError}).
 * - `ERR_TRANSPORT_DEPENDENCY`: the driver's optional peer dependency (`mqtt`, `ws`,
 *   `serialport`) is not installed ({@link DriverError}).
 * - `ERR_TRANSPORT_UNSUPPORTED`: the platform lacks what the driver needs (no `node:dgram` in a
 *   browser, no `WebSocket` class) ({@link DriverError}).
 * - `ERR_TRANSPORT_DISPATCH`: every attempt of a `TransporterManager` dispatch failed ({@link DispatchError}).
 */
export type TransportErrorCode =
  | 'ERR_TRANSPORT_OPTION'
  | 'ERR_TRANSPORT_FRAME'
  | 'ERR_TRANSPORT_FRAME_SIZE'
  | 'ERR_TRANSPORT_PEER'
  | 'ERR_TRANSPORT_STATE'
  | 'ERR_TRANSPORT_CLOSED'
  | 'ERR_TRANSPORT_QUEUE_FULL'
  | 'ERR_TRANSPORT_TIMEOUT'
  | 'ERR_TRANSPORT_ABORTED'
  | 'ERR_TRANSPORT_IO'
  | 'ERR_TRANSPORT_PROTOCOL'
  | 'ERR_TRANSPORT_DRIVER'
  | 'ERR_TRANSPORT_DEPENDENCY'
  | 'ERR_TRANSPORT_UNSUPPORTED'
  | 'ERR_TRANSPORT_DISPATCH';

/** What an error is about; every field is optional. */
export interface TransportErrorContext {
  /** The medium (driver name) that raised it: `udp`, `tcp`, `mqtt`... */
  medium?: string | undefined;
  /** The peer concerned, as its `key` (`udp:127.0.0.1:8080`). */
  peer?: string | undefined;
  cause?: unknown;
}

/**
 * Every error a transport throws, rejects with or reports in an `error` event. Test it with
 * {@link isTransportError} or `isOpenSynapticError(err, code?)`, which hold across the ESM and
 * CJS builds and across packages, where `instanceof` does not.
 */
export class TransportError extends Error {
  static {
    brandError(this);
  }
  override readonly name: string = 'TransportError';
  readonly code: TransportErrorCode;
  readonly medium: string | undefined;
  readonly peer: string | undefined;
  constructor(code: TransportErrorCode, detail: string, context: TransportErrorContext = {}) {
    const where = context.medium === undefined ? '' : context.peer === undefined ? `${context.medium}: ` : `${context.medium} ${context.peer}: `;
    super(`${where}${detail}`, 'cause' in context && context.cause !== undefined ? { cause: context.cause } : undefined);
    this.code = code;
    this.medium = context.medium;
    this.peer = context.peer;
  }
}

/** An option outside its documented range; `option` names it. */
export class TransportOptionError extends TransportError {
  override readonly name = 'TransportOptionError';
  declare readonly code: 'ERR_TRANSPORT_OPTION';
  readonly option: string;
  constructor(option: string, value: unknown, expected: string, context: TransportErrorContext = {}) {
    super('ERR_TRANSPORT_OPTION', `option ${option} must be ${expected}; got ${describeValue(value)}`, context);
    this.option = option;
  }
}

/** A frame the transport cannot send: not a non-empty `Uint8Array`, too large, or unframeable. */
export class FrameError extends TransportError {
  override readonly name = 'FrameError';
  declare readonly code: 'ERR_TRANSPORT_FRAME' | 'ERR_TRANSPORT_FRAME_SIZE';
  /** The frame's length in bytes (`-1` when it is not a `Uint8Array`). */
  readonly size: number;
  /** The limit it broke, for `ERR_TRANSPORT_FRAME_SIZE`. */
  readonly limit: number | undefined;
  constructor(code: 'ERR_TRANSPORT_FRAME' | 'ERR_TRANSPORT_FRAME_SIZE', detail: string, size: number, limit?: number, context: TransportErrorContext = {}) {
    super(code, detail, context);
    this.size = size;
    this.limit = limit;
  }
}

/** A destination the driver cannot reach: malformed, or a connection that is gone. */
export class PeerError extends TransportError {
  override readonly name = 'PeerError';
  declare readonly code: 'ERR_TRANSPORT_PEER';
  constructor(detail: string, context: TransportErrorContext = {}) {
    super('ERR_TRANSPORT_PEER', detail, context);
  }
}

/** A call that the transport's lifecycle state does not allow. */
export class TransportStateError extends TransportError {
  override readonly name = 'TransportStateError';
  declare readonly code: 'ERR_TRANSPORT_STATE' | 'ERR_TRANSPORT_CLOSED';
  /** The state the transport was in. */
  readonly state: string;
  constructor(code: 'ERR_TRANSPORT_STATE' | 'ERR_TRANSPORT_CLOSED', detail: string, state: string, context: TransportErrorContext = {}) {
    super(code, detail, context);
    this.state = state;
  }
}

/** A bounded queue was full; what was offered was not taken. */
export class QueueFullError extends TransportError {
  override readonly name = 'QueueFullError';
  declare readonly code: 'ERR_TRANSPORT_QUEUE_FULL';
  /** Which queue: `outbound` (sends waiting for the medium) or `inbound`. */
  readonly queue: 'outbound' | 'inbound';
  /** The limit, and its unit. */
  readonly limit: number;
  readonly unit: 'frames' | 'bytes';
  constructor(queue: 'outbound' | 'inbound', limit: number, unit: 'frames' | 'bytes', context: TransportErrorContext = {}) {
    super('ERR_TRANSPORT_QUEUE_FULL', `the ${queue} queue is full (${limit} ${unit}); the frame was not queued`, context);
    this.queue = queue;
    this.limit = limit;
    this.unit = unit;
  }
}

/** Something took longer than its limit. */
export class TransportTimeoutError extends TransportError {
  override readonly name = 'TransportTimeoutError';
  declare readonly code: 'ERR_TRANSPORT_TIMEOUT';
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number, context: TransportErrorContext = {}) {
    super('ERR_TRANSPORT_TIMEOUT', `${what} timed out after ${timeoutMs} ms`, context);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller's `AbortSignal` fired; `cause` is the signal's reason. */
export class TransportAbortError extends TransportError {
  override readonly name = 'TransportAbortError';
  declare readonly code: 'ERR_TRANSPORT_ABORTED';
  constructor(what: string, reason: unknown, context: TransportErrorContext = {}) {
    super('ERR_TRANSPORT_ABORTED', `${what} was aborted`, { ...context, cause: reason });
  }
}

/** The medium failed; `cause` holds the platform's error. */
export class TransportIoError extends TransportError {
  override readonly name = 'TransportIoError';
  declare readonly code: 'ERR_TRANSPORT_IO';
  /** The platform's error code (`ECONNREFUSED`...), when it has one. */
  readonly errno: string | undefined;
  constructor(detail: string, cause: unknown, context: TransportErrorContext = {}) {
    const errno = typeof (cause as { code?: unknown } | null)?.code === 'string' ? (cause as { code: string }).code : undefined;
    super('ERR_TRANSPORT_IO', errno === undefined ? detail : `${detail} (${errno})`, { ...context, cause });
    this.errno = errno;
  }
}

/** A peer broke the framing; the connection (where there is one) was closed. */
export class TransportProtocolError extends TransportError {
  override readonly name = 'TransportProtocolError';
  declare readonly code: 'ERR_TRANSPORT_PROTOCOL';
  constructor(detail: string, context: TransportErrorContext = {}) {
    super('ERR_TRANSPORT_PROTOCOL', detail, context);
  }
}

/** A driver that is not registered, lacks its optional dependency, or cannot run on this platform. */
export class DriverError extends TransportError {
  override readonly name = 'DriverError';
  declare readonly code: 'ERR_TRANSPORT_DRIVER' | 'ERR_TRANSPORT_DEPENDENCY' | 'ERR_TRANSPORT_UNSUPPORTED';
  readonly driver: string;
  constructor(code: 'ERR_TRANSPORT_DRIVER' | 'ERR_TRANSPORT_DEPENDENCY' | 'ERR_TRANSPORT_UNSUPPORTED', driver: string, detail: string, cause?: unknown) {
    super(code, detail, cause === undefined ? { medium: driver } : { medium: driver, cause });
    this.driver = driver;
  }
}

/** One failed attempt of a dispatch. */
export interface DispatchAttempt {
  readonly medium: string;
  /** 1 for the first round, 2 for the first retry... */
  readonly round: number;
  readonly error: TransportError;
}

/** Every attempt of a `TransporterManager` dispatch failed; `attempts` lists them, `cause` is the last error. */
export class DispatchError extends TransportError {
  override readonly name = 'DispatchError';
  declare readonly code: 'ERR_TRANSPORT_DISPATCH';
  readonly attempts: readonly DispatchAttempt[];
  constructor(attempts: readonly DispatchAttempt[]) {
    const last = attempts[attempts.length - 1];
    const media = [...new Set(attempts.map((a) => a.medium))].join(', ') || 'no medium';
    super('ERR_TRANSPORT_DISPATCH', `no medium took the frame after ${attempts.length} attempts over ${media}${last ? `; last: ${last.error.message}` : ''}`, { cause: last?.error });
    this.attempts = attempts;
  }
}

/**
 * Whether `error` is a transport error (with `code`, when given). Checks the brand and the
 * `ERR_TRANSPORT_` code rather than `instanceof`, which fails across the ESM and CJS builds.
 */
export function isTransportError<C extends TransportErrorCode>(error: unknown, code: C): error is TransportError & { readonly code: C };
export function isTransportError(error: unknown, code?: TransportErrorCode): error is TransportError;
export function isTransportError(error: unknown, code?: TransportErrorCode): error is TransportError {
  if (!isOpenSynapticError(error) || !error.code.startsWith('ERR_TRANSPORT_')) return false;
  return code === undefined || error.code === code;
}

/** A short, safe description of an option value for messages (never the whole of a large value). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === undefined || value === null) return String(value);
  if (value instanceof Uint8Array) return `a Uint8Array of ${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `a ${typeof value === 'function' ? 'function' : ((value as object).constructor?.name ?? 'object')}`;
}
