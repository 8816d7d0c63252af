/**
 * Names on NATS, one rule for gateways and receivers: partition `p` of `prefix` is the subject
 * `<prefix>.frames.<p>` of stream `<PREFIX>_FRAMES`, consumed through the durable consumer
 * `<prefix>-p<p>`; leases and members live in the key-value bucket `<prefix>_leases`.
 */
import { MAX_PARTITIONS } from '@opensynaptic/server';
import { optionError } from './errors.js';

/** Default subject prefix. */
export const DEFAULT_PREFIX = 'os';
/** Default partition count, cluster-wide (every gateway and receiver must use the same). */
export const DEFAULT_PARTITIONS = 64;

const PREFIX = /^[a-z][a-z0-9_-]{0,31}$/;
const MEMBER = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a subject prefix: 1..32 characters a-z, 0-9, `_`, `-`, starting with a letter (a NATS token, a stream and bucket name part). */
export function checkPrefix(prefix: unknown, key = 'prefix'): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) throw optionError(key, `${JSON.stringify(prefix)} is not 1..32 characters a-z, 0-9, _ or -, starting with a letter`);
  return prefix;
}

/** Checks a partition count (1..65536, the routing contract's range). */
export function checkPartitions(partitions: unknown, key = 'partitions'): number {
  if (typeof partitions !== 'number' || !Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) throw optionError(key, `${String(partitions)} is not an integer from 1 to ${MAX_PARTITIONS}`);
  return partitions;
}

/** Checks a gateway or receiver id (1..64 characters A-Z, a-z, 0-9, `_`, `-`: a key-value key part). */
export function checkMemberId(id: unknown, key = 'id'): string {
  if (!isMemberId(id)) throw optionError(key, `${JSON.stringify(id)} is not 1..64 characters A-Z, a-z, 0-9, _ or -`);
  return id;
}

/** Whether `id` is a gateway or receiver id (what a header naming one must hold before it goes into a subject). */
export function isMemberId(id: unknown): id is string {
  return typeof id === 'string' && MEMBER.test(id);
}

/** The subject of partition `p`: `<prefix>.frames.<p>`. */
export function framesSubject(prefix: string, partition: number): string {
  return `${prefix}.frames.${partition}`;
}

/** The filter every frame subject matches: `<prefix>.frames.*`. */
export function framesWildcard(prefix: string): string {
  return `${prefix}.frames.*`;
}

/** The partition of a frames subject, or `undefined` for another subject. */
export function partitionOfSubject(prefix: string, subject: string): number | undefined {
  const head = `${prefix}.frames.`;
  if (!subject.startsWith(head)) return undefined;
  const rest = subject.slice(head.length);
  if (!/^(?:0|[1-9][0-9]{0,4})$/.test(rest)) return undefined;
  const p = Number(rest);
  return p < MAX_PARTITIONS ? p : undefined;
}

/** The stream of the frames: `<PREFIX>_FRAMES` (upper case, `-` as `_`). */
export function streamName(prefix: string): string {
  return `${prefix.toUpperCase().replaceAll('-', '_')}_FRAMES`;
}

/** The durable consumer of partition `p`: `<prefix>-p<p>`. */
export function consumerName(prefix: string, partition: number): string {
  return `${prefix}-p${partition}`;
}

/** The key-value bucket of leases and members: `<prefix>_leases`. */
export function leaseBucket(prefix: string): string {
  return `${prefix.replaceAll('-', '_')}_leases`;
}

/** The lease key of partition `p`. */
export function leaseKey(partition: number): string {
  return `p.${partition}`;
}

/** The membership key of receiver `id`. */
export function memberKey(id: string): string {
  return `m.${id}`;
}

/**
 * The subject an AUTH_HELLO of partition `p` is asked on: `<prefix>.hello.<p>` (core NATS
 * request/reply). The receiver that owns the partition answers it with the WELCOME or REJECT, so
 * the session starts where the device's frames are decoded.
 */
export function helloSubject(prefix: string, partition: number): string {
  return `${prefix}.hello.${partition}`;
}

/**
 * The subject a receiver sends a device's answers to (SECURE_DICT_READY, AUTH_REJECT): the
 * gateway the frame came through, `<prefix>.reply.<gateway>`, with the device in header `Os-Peer`.
 */
export function replySubject(prefix: string, gateway: string): string {
  return `${prefix}.reply.${gateway}`;
}

/**
 * The subject ID_REQUEST and ID_POOL_REQ are asked on when the cluster assigns ids:
 * `<prefix>.ids` (core NATS request/reply), answered by the receiver that owns partition 0 (the
 * one `IdAllocator` of the cluster, `ReceiverOptions.ids`).
 */
export function idsSubject(prefix: string): string {
  return `${prefix}.ids`;
}
