/**
 * Body text codec: the compact text a fact travels as inside FULL frames.
 *
 * ```
 * {id}.{state}.{ts8}|{sid}>{sstate}.{unit}:{value}|...[&{geohash}|][#{b64url(url)}|][@{b64url(msg)}]
 * ```
 */
export { type CompressOptions, compressFact, encodeValue, type FactInput, type FactText, timestampToken } from './compress.js';
export { type BodyFact, bodySizeLimit, checkBodySize, type DecompressOptions, decompressBody } from './decompress.js';
export { type BodyErrorCode, BodyTextError, BodyTooLargeError } from './errors.js';
export { DEFAULT_BODY_PRECISION, DEFAULT_MAX_BODY_SIZE, type SensorKeys, sensorKeys } from './keys.js';
export { formatG, pyFloatRepr, pyJsonFloat, pyParseFloat } from './python-text.js';
export { base64Decode, base64Encode, hasLoneSurrogate, utf8DecodeLossy, utf8DecodeShort, utf8DecodeStrict, utf8Encode, utf8EncodeLossy, utf8Length } from './text-bytes.js';
export { STATE_SYMBOLS, SYMBOL_GROUPS, type SymbolGroup } from './symbols.js';
export { decodeState, decodeUnit, encodeState, encodeUnit, STATE_CODES, STATE_NAMES, UNIT_CODES, UNIT_NAMES, UNKNOWN_UNIT } from './units.js';
