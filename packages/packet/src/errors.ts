import { brandError } from '@opensynaptic/internal';

/** Header fields known when a decode error happened (those not reached are absent). */
export interface PartialFrameHeader {
  cmd?: number;
  baseCmd?: number;
  secure?: boolean;
  sourceAid?: number;
  tid?: number;
  timestamp?: number;
}

/** Codes of the frame decode errors, in the order the checks run. */
export type FrameErrorCode =
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_TOO_SHORT'
  | 'ERR_FRAME_INCOMPLETE_HEADER'
  | 'ERR_FRAME_CRC16'
  | 'ERR_FRAME_MISSING_KEY'
  | 'ERR_FRAME_CRC8'
  | 'ERR_FRAME_UNKNOWN_CMD';

/** A frame that cannot be decoded. Subclasses name the failed check. */
export class FrameError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name: string = 'FrameError';
  readonly code: FrameErrorCode;
  /** The wire field at fault (`length`, `route_count`, `crc16`, `key`, `crc8`, `cmd`). */
  readonly field: string;
  /** The reference receiver's error text for the same frame, for interop logs and tests. */
  readonly referenceText: string;
  /** What had been parsed before the check failed. */
  readonly header: PartialFrameHeader;
  constructor(code: FrameErrorCode, field: string, message: string, referenceText: string, header: PartialFrameHeader) {
    super(message);
    this.code = code;
    this.field = field;
    this.referenceText = referenceText;
    this.header = header;
  }
}

/**
 * A frame longer than the receiver's `maxFrameSize`, refused before any check reads it. The
 * reference has no such limit (it reads whatever its transport delivers); its text here is ours.
 */
export class FrameTooLargeError extends FrameError {
  override readonly name = 'FrameTooLargeError';
  constructor(
    readonly length: number,
    readonly limit: number,
  ) {
    super('ERR_FRAME_TOO_LARGE', 'length', `frame too large: ${length} bytes, the limit (maxFrameSize) is ${limit}`, `Packet too large (${length} > ${limit} bytes)`, {});
  }
}

export class FrameTooShortError extends FrameError {
  override readonly name = 'FrameTooShortError';
  constructor(readonly length: number) {
    super('ERR_FRAME_TOO_SHORT', 'length', `frame too short: ${length} bytes, the header needs at least 5`, 'Packet too short', {});
  }
}

export class IncompleteHeaderError extends FrameError {
  override readonly name = 'IncompleteHeaderError';
  constructor(
    readonly length: number,
    readonly needed: number,
    readonly routeCount: number,
    secure: boolean,
  ) {
    super(
      'ERR_FRAME_INCOMPLETE_HEADER',
      'route_count',
      `incomplete header: ${length} bytes, but route_count ${routeCount} needs at least ${needed}`,
      'Incomplete Binary Header',
      { secure },
    );
  }
}

export class Crc16MismatchError extends FrameError {
  override readonly name = 'Crc16MismatchError';
  constructor(
    readonly expected: number,
    readonly actual: number,
    header: PartialFrameHeader,
  ) {
    super(
      'ERR_FRAME_CRC16',
      'crc16',
      `crc16 mismatch: frame says 0x${hex(expected, 4)}, bytes give 0x${hex(actual, 4)}`,
      'CRC16 mismatch',
      header,
    );
  }
}

export class MissingSecureKeyError extends FrameError {
  override readonly name = 'MissingSecureKeyError';
  constructor(
    readonly aid: number,
    header: PartialFrameHeader,
  ) {
    super('ERR_FRAME_MISSING_KEY', 'key', `secure frame from aid ${aid} but no session key for it`, `Missing secure key for aid=${aid}`, header);
  }
}

export class Crc8MismatchError extends FrameError {
  override readonly name = 'Crc8MismatchError';
  constructor(
    readonly expected: number,
    readonly actual: number,
    header: PartialFrameHeader,
  ) {
    super(
      'ERR_FRAME_CRC8',
      'crc8',
      `crc8 mismatch: frame says 0x${hex(expected, 2)}, ${header.secure ? 'decrypted ' : ''}body gives 0x${hex(actual, 2)}`,
      'CRC8 mismatch',
      header,
    );
  }
}

export class UnknownCommandError extends FrameError {
  override readonly name = 'UnknownCommandError';
  constructor(
    readonly cmd: number,
    header: PartialFrameHeader,
  ) {
    super('ERR_FRAME_UNKNOWN_CMD', 'cmd', `cmd 0x${hex(cmd, 2)} is not a data command`, `Unknown Command 0x${cmd.toString(16)}`, header);
  }
}

/** An argument of an encoder or helper that cannot go on the wire. */
export class FrameFieldError extends RangeError {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'FrameFieldError';
  readonly code = 'ERR_FRAME_FIELD';
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}
