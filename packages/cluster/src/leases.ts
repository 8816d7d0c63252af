/**
 * Partition ownership in a NATS key-value bucket: one key per partition (`p.<n>`) holding its
 * owner, one per live receiver (`m.<id>`). The bucket's TTL (its stream's max age) expires a key
 * that is not written again in time, so the leases and the membership of a receiver that died
 * (kill -9) vanish after one TTL. Claims are `create` (refused while the key exists), renewals
 * `update` at the revision the owner holds (refused once someone else wrote it): two receivers
 * never both believe they renewed one lease.
 */
import { mixAid } from '@opensynaptic/server';
import { ClusterError, messageOf } from './errors.js';
import { leaseKey, memberKey } from './subjects.js';

/** The part of a NATS key-value bucket the leases use (the `nats` client's `KV` has it). */
export interface LeaseKv {
  create(key: string, value: Uint8Array): Promise<number>;
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  put(key: string, value: Uint8Array): Promise<number>;
  get(key: string): Promise<{ value: Uint8Array; revision: number; operation: string } | null>;
  delete(key: string, options?: { previousSeq?: number }): Promise<void>;
  keys(filter?: string): Promise<AsyncIterable<string>>;
}

/** Who holds a lease. */
export interface LeaseHolder {
  owner: string;
  revision: number;
  /** When the holder last wrote it, Unix ms (its clock). */
  atMs: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A refused compare-and-set (someone else wrote the key), as the server words it. */
function isConflict(e: unknown): boolean {
  const m = messageOf(e);
  return /wrong last sequence|key exists/i.test(m);
}

/** The leases of one receiver (`owner`). */
export class PartitionLeases {
  readonly owner: string;
  readonly #kv: LeaseKv;
  readonly #clock: () => number;

  readonly #listKeys: ((prefix: string) => Promise<string[]>) | undefined;

  /**
   * `listKeys` lists the keys under a prefix (deleted ones may be among them) without the
   * client's key iterator, whose ordered consumer can time out for long while a NATS cluster
   * elects new leaders; default: the iterator.
   */
  constructor(kv: LeaseKv, owner: string, options: { clock?: () => number; listKeys?: (prefix: string) => Promise<string[]> } = {}) {
    this.#kv = kv;
    this.owner = owner;
    this.#clock = options.clock ?? Date.now;
    this.#listKeys = options.listKeys;
  }

  #value(): Uint8Array {
    return encoder.encode(JSON.stringify({ owner: this.owner, at: this.#clock() }));
  }

  /**
   * Takes partition `p` if no live lease holds it (or the live one is this receiver's own): its
   * revision, or `null` (held by another). Rejects with `ERR_CLUSTER_NATS` when NATS does not answer.
   */
  async claim(p: number): Promise<number | null> {
    try {
      return await this.#kv.create(leaseKey(p), this.#value());
    } catch (e) {
      if (!isConflict(e)) throw new ClusterError('ERR_CLUSTER_NATS', `lease ${p}: claim failed: ${messageOf(e)}`, { cause: e });
    }
    // Held: by this receiver itself (it stopped consuming when it could not renew in time, and
    // nobody wrote the key since), it takes it back at that revision; by another, not.
    const held = await this.holder(p);
    if (held === null || held.owner !== this.owner) return null;
    return this.renew(p, held.revision);
  }

  /** Renews the lease held at `revision`: the new revision, or `null` (lost: another wrote it). Rejects with `ERR_CLUSTER_NATS` when NATS does not answer. */
  async renew(p: number, revision: number): Promise<number | null> {
    try {
      return await this.#kv.update(leaseKey(p), this.#value(), revision);
    } catch (e) {
      if (!isConflict(e)) throw new ClusterError('ERR_CLUSTER_NATS', `lease ${p}: renewal failed: ${messageOf(e)}`, { cause: e });
    }
    // A renewal whose answer was lost (a timeout during a leader election) did land: the key is
    // still this receiver's, at a revision it never heard of. Anyone else's write is a loss.
    const held = await this.holder(p);
    if (held === null || held.owner !== this.owner || held.revision === revision) return null;
    try {
      return await this.#kv.update(leaseKey(p), this.#value(), held.revision);
    } catch (e) {
      if (isConflict(e)) return null;
      throw new ClusterError('ERR_CLUSTER_NATS', `lease ${p}: renewal failed: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Gives the lease held at `revision` up at once (a graceful stop): false when it was not ours any more. */
  async release(p: number, revision: number): Promise<boolean> {
    try {
      await this.#kv.delete(leaseKey(p), { previousSeq: revision });
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw new ClusterError('ERR_CLUSTER_NATS', `lease ${p}: release failed: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Who holds partition `p`, or `null`. */
  async holder(p: number): Promise<LeaseHolder | null> {
    let entry: Awaited<ReturnType<LeaseKv['get']>>;
    try {
      entry = await this.#kv.get(leaseKey(p));
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_NATS', `lease ${p}: read failed: ${messageOf(e)}`, { cause: e });
    }
    if (entry === null || entry.operation !== 'PUT' || entry.value.length === 0) return null;
    try {
      const v = JSON.parse(decoder.decode(entry.value)) as { owner?: unknown; at?: unknown };
      return { owner: String(v.owner), revision: entry.revision, atMs: Number(v.at) };
    } catch {
      return { owner: '?', revision: entry.revision, atMs: 0 };
    }
  }

  /** Writes this receiver's membership key (alive for one TTL). */
  async heartbeat(): Promise<void> {
    try {
      await this.#kv.put(memberKey(this.owner), this.#value());
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_NATS', `membership of ${this.owner}: heartbeat failed: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Removes this receiver's membership key (a graceful stop). */
  async leave(): Promise<void> {
    try {
      await this.#kv.delete(memberKey(this.owner));
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_NATS', `membership of ${this.owner}: leave failed: ${messageOf(e)}`, { cause: e });
    }
  }

  /** The live receivers (their membership keys not expired nor deleted), sorted. */
  async members(): Promise<string[]> {
    const out: string[] = [];
    try {
      if (this.#listKeys !== undefined) {
        // The key list may hold deleted keys (a member that left): read each (a handful).
        const keys = await this.#listKeys('m.');
        const entries = await Promise.all(keys.map((k) => this.#kv.get(k)));
        for (let i = 0; i < keys.length; i++) if (entries[i]?.operation === 'PUT') out.push(keys[i]!.slice(2));
      } else {
        const keys = await this.#kv.keys('m.*');
        for await (const k of keys) out.push(k.slice(2));
      }
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_NATS', `members cannot be listed: ${messageOf(e)}`, { cause: e });
    }
    return out.sort();
  }
}

/** FNV-1a of a text, 32 bits. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Which receiver should own each partition: rendezvous hashing with a bound on the load (each
 * partition goes to the member that scores highest for it among those with fewer than
 * ceil(partitions / members) partitions so far). Every receiver computes the same answer from the
 * same member list; when a member dies only its partitions (and a few to even the load) move.
 */
export function assignPartitions(members: readonly string[], partitions: number): Map<string, number[]> {
  const sorted = [...new Set(members)].sort();
  const out = new Map<string, number[]>(sorted.map((m) => [m, []]));
  if (sorted.length === 0) return out;
  const cap = Math.ceil(partitions / sorted.length);
  const seeds = sorted.map(fnv1a);
  for (let p = 0; p < partitions; p++) {
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < sorted.length; i++) {
      if (out.get(sorted[i]!)!.length >= cap) continue;
      const score = mixAid((seeds[i]! ^ Math.imul(p + 1, 0x9e3779b1)) >>> 0);
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    out.get(sorted[best]!)!.push(p);
  }
  return out;
}
