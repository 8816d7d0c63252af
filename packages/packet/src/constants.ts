/**
 * Data frame layout, all integers big-endian:
 *
 * ```
 * [cmd:1][route_count:1][route_id:4]*route_count[tid:1][ts:6][body:N][crc8:1][crc16:2]
 * ```
 *
 * The limits shared with the native addon (`Wire`) are generated from crates/opensynaptic-contract.
 */
import { Wire } from '@opensynaptic/internal';

/** Command byte: 1 byte at offset 0 (see `@opensynaptic/cmd`). */
export const CMD_OFFSET = 0;
/** Number of route ids that follow: 1 byte at offset 1, 0..255. */
export const ROUTE_COUNT_OFFSET = 1;
/** First route id: offset 2. Each route id is a 4-byte big-endian unsigned integer. */
export const ROUTES_OFFSET = 2;
/** Size of one route id: 4 bytes, big-endian uint32. The source device is the LAST route. */
export const ROUTE_ID_SIZE = 4;
/** Most route ids one frame can carry (the count is one byte). */
export const MAX_ROUTES = Wire.MAX_ROUTES;
/** Template id: 1 byte after the routes, 0..255 (templates are numbered 1..255). */
export const TID_SIZE = 1;
/** Timestamp: 6 bytes after the tid, big-endian uint48, normally milliseconds; 0 = "stamp it for me". */
export const TIMESTAMP_SIZE = 6;
/** Largest timestamp the 48-bit field holds: 2^48 - 1 ms (year 10889). */
export const MAX_TIMESTAMP = Wire.MAX_TIMESTAMP;
/** CRC-8/SMBUS of the PLAIN body: 1 byte after the body. */
export const CRC8_SIZE = 1;
/** CRC-16/CCITT-FALSE of every preceding wire byte: last 2 bytes, big-endian. */
export const CRC16_SIZE = 2;
/** Bytes of a frame besides its routes and body: cmd, count, tid, ts, crc8, crc16 = 12. */
export const FRAME_OVERHEAD = Wire.FRAME_OVERHEAD;
/** A frame shorter than this cannot even be classified ("Packet too short"). */
export const MIN_CLASSIFIABLE_LENGTH = Wire.MIN_FRAME_LENGTH;
/** Smallest frame a device sends: one route and an empty body (a HEART), 16 bytes. */
export const MIN_FRAME_LENGTH = FRAME_OVERHEAD + ROUTE_ID_SIZE;
/**
 * Default largest frame a receiver accepts, in bytes: the largest UDP payload over IPv4
 * (65,535 - 8 - 20), so above any frame a datagram carries. Receivers (the fusion engine, the
 * handshake manager, the node) take a `maxFrameSize` option; a longer frame is refused with
 * `FrameTooLargeError` before any of it is read.
 */
export const DEFAULT_MAX_FRAME_SIZE = 65_507;
/** Route id meaning "no id assigned yet". */
export const UNASSIGNED_AID = 0xffffffff;

/** Total length of a frame with `routeCount` routes and a `bodyLength`-byte body. */
export function encodedLength(routeCount: number, bodyLength: number): number {
  return FRAME_OVERHEAD + ROUTE_ID_SIZE * routeCount + bodyLength;
}
