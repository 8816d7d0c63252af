import { brandError } from '@opensynaptic/internal';

/**
 * Codes of the standardizer's errors; every one starts with `ERR_`.
 * - `ERR_STD_UNKNOWN_UNIT`: a unit label the library cannot resolve (sensor dropped).
 * - `ERR_STD_UNIT_RANGE`: a unit that resolves, but whose factor overflows or vanishes once raised
 *   to its power or inverted (sensor dropped).
 * - `ERR_STD_INVALID_SENSOR`: a sensor that is not `[id, state, value, unit]`, or whose id, state or
 *   unit has the wrong type (sensor dropped).
 * - `ERR_STD_INVALID_VALUE`: a value that is not a number (sensor dropped).
 * - `ERR_STD_VALUE_RANGE`: a value that is, or becomes after conversion, NaN or infinite (sensor
 *   dropped).
 * - `ERR_STD_INPUT`: a call the standardizer refuses as a whole (sensors not an array, too many of
 *   them, a bad device id, extra field or clock reading). Always thrown.
 * - `ERR_UNIT_LIBRARY`: unit or prefix definitions that cannot be added to a library.
 * - `ERR_UNIT_DUPLICATE`: a definition whose key or symbol the library already holds.
 * - `ERR_UNIT_READ_ONLY`: a change to a read-only library (the shared default).
 * - `ERR_UNIT_FILE`: a unit file that cannot be read or parsed.
 */
export type StandardizeErrorCode =
  | 'ERR_STD_UNKNOWN_UNIT'
  | 'ERR_STD_UNIT_RANGE'
  | 'ERR_STD_INVALID_SENSOR'
  | 'ERR_STD_INVALID_VALUE'
  | 'ERR_STD_VALUE_RANGE'
  | 'ERR_STD_INPUT'
  | 'ERR_UNIT_LIBRARY'
  | 'ERR_UNIT_DUPLICATE'
  | 'ERR_UNIT_READ_ONLY'
  | 'ERR_UNIT_FILE';

/** Base class of every error of the standardizer and the unit library; `code` names the failure. */
export class StandardizeError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name: string = 'StandardizeError';
  readonly code: StandardizeErrorCode;
  constructor(code: StandardizeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Why a unit label did not resolve. */
export type UnknownUnitReason =
  /** `""` or `"Unknown"`, which the reference never resolves. */
  | 'empty'
  /** Longer than the standardizer's `maxUnitLength`. */
  | 'too-long'
  /** Not a unit key, lower-case key, alias or UCUM code, nor a prefix on a unit that takes one. */
  | 'not-found'
  /** A list element that is not text, a number, a boolean or null. */
  | 'not-text';

/** A unit label that does not resolve. */
export class UnknownUnitError extends StandardizeError {
  override readonly name = 'UnknownUnitError';
  constructor(
    /** The label as given (for a list unit: the element that failed). */
    readonly unit: string,
    readonly reason: UnknownUnitReason,
  ) {
    super('ERR_STD_UNKNOWN_UNIT', `unknown unit ${show(unit)}${reason === 'not-found' ? '' : ` (${reason})`}`);
  }
}

/** A unit whose factor, raised to its power or inverted, is not a usable number. */
export class UnitRangeError extends StandardizeError {
  override readonly name = 'UnitRangeError';
  constructor(
    readonly unit: string,
    /** The factor computed (`Infinity` or 0). */
    readonly factor: number,
  ) {
    super('ERR_STD_UNIT_RANGE', `unit ${show(unit)}: the factor becomes ${factor}`);
  }
}

/** A sensor that is not `[id, state, value, unit]` with usable types. */
export class InvalidSensorError extends StandardizeError {
  override readonly name = 'InvalidSensorError';
  constructor(
    /** Position of the sensor in the input list. */
    readonly index: number,
    detail: string,
  ) {
    super('ERR_STD_INVALID_SENSOR', `sensor ${index}: ${detail}`);
  }
}

/** A sensor value that is not a number, or not a finite one (before or after conversion). */
export class InvalidValueError extends StandardizeError {
  override readonly name = 'InvalidValueError';
  constructor(
    code: 'ERR_STD_INVALID_VALUE' | 'ERR_STD_VALUE_RANGE',
    readonly index: number,
    /** The value as given. */
    readonly value: unknown,
    detail: string,
    /** The sensor's id as given (named in the message when it is text or a number). */
    readonly sensorId?: unknown,
  ) {
    const named = typeof sensorId === 'string' ? ` (${show(sensorId)})` : typeof sensorId === 'number' ? ` (${sensorId})` : '';
    super(code, `sensor ${index}${named}: ${detail}`);
  }
}

/** A standardize call refused as a whole. */
export class StandardizeInputError extends StandardizeError {
  override readonly name = 'StandardizeInputError';
  constructor(
    /** The argument or field at fault: `sensors`, `deviceId`, `status`, `extras.t`, `clock`... */
    readonly field: string,
    detail: string,
  ) {
    super('ERR_STD_INPUT', `${field}: ${detail}`);
  }
}

/** Unit or prefix definitions a library refuses, or a unit file that cannot be read. */
export class UnitLibraryError extends StandardizeError {
  override readonly name = 'UnitLibraryError';
  constructor(code: 'ERR_UNIT_LIBRARY' | 'ERR_UNIT_DUPLICATE' | 'ERR_UNIT_READ_ONLY' | 'ERR_UNIT_FILE', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Text for an error message: quoted, cut to 48 characters. */
export function show(text: string): string {
  return JSON.stringify(text.length > 48 ? `${text.slice(0, 48)}…` : text);
}

/** A short description of any value for an error message. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `the string ${show(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return `${v}n`;
  return `a ${typeof v}`;
}
