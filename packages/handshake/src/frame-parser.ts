/**
 * What the manager needs from a data-frame parser, and a frame-level one.
 *
 * The full parser (template learning, DIFF/HEART reconstruction, body text → fact) is
 * `OSVisualFusionEngine` of `@opensynaptic/fusion`, which fits `DataFrameParser` as is (the
 * `OpenSynaptic` node of `@opensynaptic/core` plugs it in). `frameLevelParser` does the
 * frame-level decode only (`decodeFrame` of @opensynaptic/packet: length, header, CRC-16, session
 * key, CRC-8) and returns the `__packet_meta__` record the reference attaches to every decode,
 * without fact fields, for nodes that only relay or track sessions. It cannot report
 * `template_learned`, nor the fusion errors ("Template 01 missing for 0x7F", "No cached values").
 */
import { decodeFrame, FrameError, frameErrorMeta, type KeyLookup, type PacketMeta, type StampedTimestamp, stampTimestamp, tidText } from '@opensynaptic/packet';

/** The reference's `__packet_meta__` (defined by `@opensynaptic/packet`). */
export type { PacketMeta };

/**
 * A decoded data frame as the reference returns it: the fact fields (`id`, `s`, `t_raw`,
 * `s1_id`...) and `__packet_meta__`, or `error` with `__packet_meta__` when a check failed.
 */
export interface DataParseResult {
  error?: unknown;
  __packet_meta__?: PacketMeta;
  [field: string]: unknown;
}

/** What a parser gets besides the frame. */
export interface ParseContext {
  /** Session keys by source aid (for secure frames). */
  readonly keys: KeyLookup;
  /** The receiver's clock, ms since the epoch (stamps frames sent without a timestamp). */
  readonly nowMs: number;
}

/** Decodes inbound data frames for `OSHandshakeManager`. Should not throw; if it does, the manager reports the error. */
export interface DataFrameParser {
  parse(frame: Uint8Array, context: ParseContext): DataParseResult;
}

export interface FrameLevelParserOptions {
  /** Report `timestamp_raw` 0 for every frame, as rx_only nodes do (default false). */
  skipTimestamp?: boolean;
}

export { tidText };

/** The frame-level parser described in the module comment. */
export function frameLevelParser(options: FrameLevelParserOptions = {}): DataFrameParser {
  const skip = options.skipTimestamp === true;
  const stamp = (ts: number | undefined, nowMs: number): StampedTimestamp => stampTimestamp(ts, nowMs, skip);
  return {
    parse(frame, ctx) {
      try {
        const f = decodeFrame(frame, { keys: ctx.keys });
        return {
          __packet_meta__: {
            cmd: f.cmd,
            base_cmd: f.baseCmd,
            secure: f.secure,
            source_aid: f.sourceAid,
            crc16_ok: true,
            ...stamp(f.timestamp, ctx.nowMs),
            tid: tidText(f.tid),
            crc8_ok: true,
          },
        };
      } catch (e) {
        if (!(e instanceof FrameError)) return { error: e instanceof Error ? e.message : String(e), __packet_meta__: { crc16_ok: false } };
        return { error: e.referenceText, __packet_meta__: frameErrorMeta(e, (ts) => stamp(ts, ctx.nowMs)) };
      }
    },
  };
}
