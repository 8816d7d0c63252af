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
   * Wire timestamp in ms; for a server-stamped frame (six zero bytes) the receiver's clock in
   * whole SECONDS; 0 when the receiver skips timestamps (rx_only nodes).
   */
  timestamp_raw?: number;
  server_stamped?: boolean;
  /** Template id as text: `"01"`, `"100"`, `"00"`. */
  tid?: string;
  crc8_ok?: boolean;
  template_learned?: boolean;
}

/** How a receiver reports a frame's timestamp: `timestamp_raw` and `server_stamped`. */
export type TimestampStamp = (wireTimestamp: number | undefined) => { timestamp_raw: number; server_stamped: boolean };

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
