/**
 * The reference receiver's `__packet_meta__` record: what a frame's header said and which checks
 * passed. Receivers that report results in the reference's shape (the fusion engine, the
 * handshake's frame-level parser) build it from a decoded frame or from a `FrameError`.
 */
import type { FrameError } from './errors.js';

export interface PacketMeta {
  cmd?: number;
  base_cmd?: number;
  secure?: boolean;
  source_aid?: number;
  crc16_ok: boolean;
  /**
   * The reference's field, kept as it gives it: the wire timestamp in ms; for a server-stamped
   * frame (six zero bytes) the receiver's clock in whole SECONDS; 0 when the receiver skips
   * timestamps (rx_only nodes). Use `timestampMs` for a time that always has one unit.
   */
  timestamp_raw?: number;
  /** The reference's field: the frame had no timestamp and the receiver stamped it (false on rx_only nodes, which skip timestamps). */
  server_stamped?: boolean;
  /**
   * Ours, beside `timestamp_raw`: the reading's time in ms since the epoch, always: the frame's
   * timestamp, or, for a frame without one (six zero bytes), the receiver's clock in ms (then
   * `receiverStamped` is true). Set on rx_only nodes too, where `timestamp_raw` is 0.
   */
  timestampMs?: number;
  /** Ours: `timestampMs` is the receiver's clock because the frame carried no timestamp. */
  receiverStamped?: boolean;
  /** Template id as text: `"01"`, `"100"`, `"00"`. */
  tid?: string;
  crc8_ok?: boolean;
  template_learned?: boolean;
}

/** A frame's timestamp as a receiver reports it: the reference's two fields and ours. */
export interface StampedTimestamp {
  timestamp_raw: number;
  server_stamped: boolean;
  timestampMs: number;
  receiverStamped: boolean;
}

/** How a receiver reports a frame's timestamp (see {@link stampTimestamp}). */
export type TimestampStamp = (wireTimestamp: number | undefined) => StampedTimestamp;

/**
 * The timestamp fields of a frame's meta: `wireTimestamp` (ms, 0 or undefined for "none") as the
 * reference reports it (`timestamp_raw`, `server_stamped`: the receiver's whole seconds for a frame
 * without one, 0 when `skipTimestamp`) and as ms always (`timestampMs`, `receiverStamped`).
 * `nowMs` is the receiver's clock in ms.
 */
export function stampTimestamp(wireTimestamp: number | undefined, nowMs: number, skipTimestamp: boolean): StampedTimestamp {
  const stamped = !wireTimestamp;
  const timestampMs = stamped ? Math.trunc(nowMs) : wireTimestamp;
  if (skipTimestamp) return { timestamp_raw: 0, server_stamped: false, timestampMs, receiverStamped: stamped };
  // The reference stamps in whole seconds here, where a frame's own timestamp is ms.
  return { timestamp_raw: stamped ? Math.floor(nowMs / 1000) : wireTimestamp, server_stamped: stamped, timestampMs, receiverStamped: stamped };
}

/** The 256 template ids' texts, made once: every decoded frame reports one. */
const TID_TEXT: readonly string[] = Array.from({ length: 256 }, (_, tid) => (tid < 10 ? `0${tid}` : String(tid)));

/** Template id as the reference prints it: at least two digits. */
export function tidText(tid: number): string {
  return TID_TEXT[tid] ?? (tid < 10 ? `0${tid}` : String(tid));
}

/** The meta record the reference reports alongside the error of a frame that failed `e`'s check. */
export function frameErrorMeta(e: FrameError, stamp: TimestampStamp): PacketMeta {
  const h = e.header;
  switch (e.code) {
    case 'ERR_FRAME_TOO_LARGE':
    case 'ERR_FRAME_TOO_SHORT':
      return { crc16_ok: false };
    case 'ERR_FRAME_INCOMPLETE_HEADER':
      return { crc16_ok: false, secure: h.secure ?? false };
    case 'ERR_FRAME_CRC16':
      return { cmd: h.cmd!, base_cmd: h.baseCmd!, secure: h.secure!, source_aid: h.sourceAid!, crc16_ok: false };
    default:
      return {
        cmd: h.cmd!,
        base_cmd: h.baseCmd!,
        secure: h.secure!,
        source_aid: h.sourceAid!,
        crc16_ok: true,
        ...stamp(h.timestamp),
        tid: tidText(h.tid ?? 0),
        // Unknown commands fail after the CRC-8 check passed.
        crc8_ok: e.code === 'ERR_FRAME_UNKNOWN_CMD',
      };
  }
}
