/**
 * Device-to-partition routing: which worker thread, NATS subject or receiver owns a device.
 *
 * All frames of one device must reach one owner (a DIFF or HEART decodes only against the
 * template its device's FULL taught), so the owner is a function of the device id (aid) alone.
 * The function is a contract between processes and releases (gateways publish to subjects named
 * by it, receivers own partitions by it), so it never changes: the 32-bit aid goes through a
 * fixed integer mix (the "lowbias32" finaliser: xor-shift 16, multiply 0x7feb352d, xor-shift 15,
 * multiply 0x846ca68b, xor-shift 16, all mod 2^32) and the result mod the partition count is the
 * partition. The mix spreads sequential aids (the allocator hands them out in order) and any
 * stride evenly over the partitions.
 */
import { frameAid } from './services.js';

/** Most partitions (a routing table, subjects and consumers per partition stay small). */
export const MAX_PARTITIONS = 65_536;

function checkCount(partitions: number): void {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new RangeError(`partitions must be an integer from 1 to ${MAX_PARTITIONS}, got ${String(partitions)}`);
  }
}

/** The 32-bit mix of `aid` (see the module comment). */
export function mixAid(aid: number): number {
  let x = aid >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The partition (0 to `partitions` - 1) that owns device `aid` (an integer 0 to 2^32 - 1). */
export function partitionOf(aid: number, partitions: number): number {
  checkCount(partitions);
  if (!Number.isInteger(aid) || aid < 0 || aid > 0xffffffff) throw new RangeError(`aid must be an integer from 0 to 4294967295, got ${String(aid)}`);
  return mixAid(aid) % partitions;
}

/**
 * The partition of a data frame's source device, or `undefined` for a frame that carries no
 * source aid (control traffic, or too short to read one): the caller routes those by its own
 * rule (e.g. by peer, since a device without an id has only its address).
 */
export function framePartition(frame: Uint8Array, partitions: number): number | undefined {
  checkCount(partitions);
  const aid = frameAid(frame);
  return aid === undefined ? undefined : mixAid(aid) % partitions;
}
