import { brandError } from '@opensynaptic/internal';

/**
 * Codes of {@link ClusterError}:
 * - `ERR_CLUSTER_OPTION`: an option outside its documented range (`key` names it).
 * - `ERR_CLUSTER_STATE`: a call the lifecycle does not allow (start twice, publish after stop).
 * - `ERR_CLUSTER_NATS`: NATS refused or did not answer (connection, stream, consumer, key-value).
 * - `ERR_CLUSTER_PUBLISH`: a frame's publish got no JetStream acknowledgement after its retries.
 * - `ERR_CLUSTER_STORE`: PostgreSQL refused a commit or a read (readings or template state).
 * - `ERR_CLUSTER_FENCED`: a commit of a receiver whose partition a newer claim took (its lease
 *   lapsed while it was paused): refused in the transaction, nothing stored; the receiver gives
 *   the partition up.
 * - `ERR_CLUSTER_LATE`: a DIFF or HEART older than the last frame its device's state took (it came
 *   through an unordered edge later than the receiver's reorder window): decoding it against the
 *   newer state would give wrong values, so it is refused (reported as `undecodable`, never stored).
 * - `ERR_CLUSTER_PARTITION`: a frame of a device that belongs to another partition (a gateway
 *   with another `partitions`, or a publish by hand): refused before decoding, reported as `undecodable`.
 * - `ERR_CLUSTER_VALUE`: a frame whose texts PostgreSQL cannot keep (NUL, a lone surrogate): it
 *   is decoded (its template and device state move on, as on the device) but its readings are
 *   refused, reported as `undecodable`, so the batch around it still commits.
 */
export type ClusterErrorCode = 'ERR_CLUSTER_OPTION' | 'ERR_CLUSTER_STATE' | 'ERR_CLUSTER_NATS' | 'ERR_CLUSTER_PUBLISH' | 'ERR_CLUSTER_STORE' | 'ERR_CLUSTER_LATE' | 'ERR_CLUSTER_FENCED' | 'ERR_CLUSTER_PARTITION' | 'ERR_CLUSTER_VALUE';

/** Every error this package throws or rejects with; test it with `isOpenSynapticError(err, code?)`. */
export class ClusterError extends Error {
  static {
    brandError(ClusterError);
  }
  override readonly name: string = 'ClusterError';
  readonly code: ClusterErrorCode;
  /** The option concerned, for `ERR_CLUSTER_OPTION`. */
  readonly key: string | undefined;
  constructor(code: ClusterErrorCode, message: string, options: { key?: string | undefined; cause?: unknown } = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.key = options.key;
  }
}

/** `ERR_CLUSTER_OPTION` for `key`. */
export function optionError(key: string, detail: string): ClusterError {
  return new ClusterError('ERR_CLUSTER_OPTION', `${key}: ${detail}`, { key });
}

/** An integer option in `[min, max]`, or its default. */
export function intOption(key: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw optionError(key, `${String(value)} is not an integer from ${min} to ${max}`);
  return value;
}

/** The message of anything thrown. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
