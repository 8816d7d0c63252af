/**
 * What the cluster reads from a frame before anyone decodes it: its device and its clock. Plain
 * and legacy secure data frames are read by `@opensynaptic/server`'s `frameAid` and
 * `frameTimestamp`; authenticated frames (AUTH_FULL / DIFF / HEART) keep the same plain header
 * (`[cmd][n][routes][tid][ts]`) before their sealed body, so they are routed and ordered the same
 * way. An AUTH_HELLO names its device in bytes 1..4.
 */
import { AUTH_HELLO, isAuthData } from '@opensynaptic/cmd';
import { readU32, readU48 } from '@opensynaptic/packet';
import { frameAid, frameTimestamp, partitionOf } from '@opensynaptic/server';

/** The source aid of a data frame (plain, secure or authenticated), or `undefined` (a control packet, too short). */
export function sourceAid(frame: Uint8Array): number | undefined {
  const aid = frameAid(frame);
  if (aid !== undefined || frame.length < 2 || !isAuthData(frame[0]!)) return aid;
  const n = frame[1]!;
  if (n === 0 || frame.length < 2 + 4 * n) return undefined;
  return readU32(frame, 2 + 4 * (n - 1));
}

/** The header timestamp of a data frame (plain, secure or authenticated), or `undefined`. */
export function sourceTimestamp(frame: Uint8Array): number | undefined {
  const ts = frameTimestamp(frame);
  if (ts !== undefined || frame.length < 2 || !isAuthData(frame[0]!)) return ts;
  const at = 2 + 4 * frame[1]! + 1;
  return frame.length < at + 6 ? undefined : readU48(frame, at);
}

/** The partition of a data frame's device, or `undefined` for a packet without a source aid. */
export function sourcePartition(frame: Uint8Array, partitions: number): number | undefined {
  const aid = sourceAid(frame);
  return aid === undefined ? undefined : partitionOf(aid, partitions);
}

/** The device of an AUTH_HELLO (aid in bytes 1..4, big-endian), or `undefined` for any other packet. */
export function helloAid(packet: Uint8Array): number | undefined {
  return packet[0] === AUTH_HELLO && packet.length >= 5 ? readU32(packet, 1) : undefined;
}
