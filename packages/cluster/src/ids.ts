/**
 * Id assignment for a cluster: one `IdAllocator`, run by the receiver that owns partition 0 and
 * asked by every gateway (`<prefix>.ids`, NATS request/reply). Its leases are the project's
 * PostgreSQL store (`os_store` kind `leases` in the cluster's schema), so the next owner of
 * partition 0 loads them, and every id the previous one may have sent stays taken (the
 * allocator's durable reservation). A lease is renewed by its device's frames: the partitions'
 * receivers record when they last stored each device (`os_cluster_devices`), and the allocator's
 * owner renews those leases once a minute.
 */
import { OpenSynaptic } from '@opensynaptic/core';
import { IdAllocator, type IdAllocatorOptions, type LeaseKinds } from '@opensynaptic/handshake';
import type { BatchedStore } from '@opensynaptic/store';
import { openPostgresStore } from '@opensynaptic/store-postgres';
import type { Msg, NatsConnection, Subscription } from 'nats';
import { ClusterError, messageOf, optionError } from './errors.js';
import type { ClusterDatabase, ClusterPostgresOptions } from './postgres.js';
import { idsSubject } from './subjects.js';

/** Options of the cluster's id allocator (`ReceiverOptions.ids`); see `IdAllocatorOptions` of `@opensynaptic/handshake`. */
export interface ClusterIdOptions {
  /** First id handed out (default 1). */
  start?: number | undefined;
  /** Last id handed out (default 4294967294). */
  end?: number | undefined;
  /** Lease length, ms (default 30 days); renewed by the device's stored frames and by its ID requests. */
  leaseMs?: number | undefined;
  /** Most leases at once (default 65536). */
  maxLeases?: number | undefined;
  /** New devices served per window (default 1024 per 60 s); more are answered RATE_LIMITED. */
  newLeaseLimit?: { max: number; windowMs: number } | undefined;
}

/** `status().ids` of the receiver that runs the allocator. */
export interface IdsStatus {
  /** ID_REQUEST / ID_POOL_REQ answered, and those dropped (more than `IDS_IN_FLIGHT` waiting). */
  requests: number;
  dropped: number;
  /** Leases held now, and ids left to hand out. */
  leases: number;
  available: number;
  /** Leases renewed from the devices' stored frames. */
  renewed: number;
}

/** `options` without its unset fields, as `IdAllocator` takes them. */
function allocatorOptions(options: ClusterIdOptions): IdAllocatorOptions {
  const out: IdAllocatorOptions = {};
  if (options.start !== undefined) out.start = options.start;
  if (options.end !== undefined) out.end = options.end;
  if (options.leaseMs !== undefined) out.leaseMs = options.leaseMs;
  if (options.maxLeases !== undefined) out.maxLeases = options.maxLeases;
  if (options.newLeaseLimit !== undefined) out.newLeaseLimit = options.newLeaseLimit;
  return out;
}

/** Throws `ERR_CLUSTER_OPTION` for options the allocator refuses (checked when the receiver is made, not at the claim). */
export function checkIdOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) throw optionError('ids', 'an object is needed ({ start, end, leaseMs, maxLeases, newLeaseLimit })');
  try {
    new IdAllocator(allocatorOptions(options as ClusterIdOptions));
  } catch (e) {
    throw optionError('ids', messageOf(e));
  }
}

/** Id requests one allocator answers at once; more are dropped (the device asks again). */
const IDS_IN_FLIGHT = 256;
/** How often the leases of devices whose frames were stored are renewed, ms. */
const RENEW_MS = 60_000;

export class ClusterIds {
  readonly #db: ClusterDatabase;
  readonly #store: BatchedStore<LeaseKinds>;
  readonly #allocator: IdAllocator;
  readonly #node: OpenSynaptic;
  readonly #maxLeases: number;
  readonly #onError: (e: unknown) => void;
  #sub: Subscription | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #renewedUpTo: number;
  #inFlight = 0;
  #idle: (() => void) | null = null;
  #counts = { requests: 0, dropped: 0, renewed: 0 };

  private constructor(db: ClusterDatabase, store: BatchedStore<LeaseKinds>, options: ClusterIdOptions, onError: (e: unknown) => void) {
    this.#db = db;
    this.#store = store;
    this.#onError = onError;
    this.#maxLeases = options.maxLeases ?? 65_536;
    this.#allocator = new IdAllocator({ ...allocatorOptions(options), store });
    this.#node = new OpenSynaptic({ assignedId: 1, deviceId: 'CLUSTER-IDS', handshake: { allocator: this.#allocator } });
    // Leases of devices stored while nobody ran the allocator are renewed at the first pass.
    this.#renewedUpTo = Date.now() - (options.leaseMs ?? 2_592_000_000);
  }

  /** Opens the lease store and loads the leases. Rejects with `ERR_CLUSTER_STORE`. */
  static async open(db: ClusterDatabase, postgres: ClusterPostgresOptions, options: ClusterIdOptions, onError: (e: unknown) => void): Promise<ClusterIds> {
    let store: BatchedStore<LeaseKinds>;
    try {
      store = await openPostgresStore<LeaseKinds>({ connection: postgres.connection, schema: postgres.schema, kinds: ['leases'], maxConnections: 2 });
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the id lease store cannot be opened: ${messageOf(e)}`, { cause: e });
    }
    let ids: ClusterIds;
    try {
      ids = new ClusterIds(db, store, options, onError);
      await ids.#node.open();
    } catch (e) {
      await store.close().catch(() => undefined);
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the id leases cannot be loaded: ${messageOf(e)}`, { cause: e });
    }
    return ids;
  }

  /** Answers `<prefix>.ids` from now on (one subscriber of the queue group per cluster: the owner of partition 0). */
  listen(nc: NatsConnection, prefix: string): void {
    this.#sub = nc.subscribe(idsSubject(prefix), { queue: 'owner', callback: (err, m) => (err === null ? void this.#answer(m) : this.#onError(err)) });
    this.#timer = setInterval(() => void this.renew().catch(this.#onError), RENEW_MS);
    this.#timer.unref?.();
    void this.renew().catch(this.#onError);
  }

  async #answer(m: Msg): Promise<void> {
    if (this.#inFlight >= IDS_IN_FLIGHT) {
      this.#counts.dropped++;
      return;
    }
    this.#inFlight++;
    try {
      // The device's address (the allocator's identity of a device without meta), as the gateway saw it.
      const r = await this.#node.receiveAsync(m.data, m.headers?.get('Os-Peer') || null);
      this.#counts.requests++;
      m.respond(r.response ?? new Uint8Array(0));
    } catch (e) {
      this.#onError(e);
    } finally {
      this.#inFlight--;
      if (this.#inFlight === 0) this.#idle?.();
    }
  }

  /** Renews the leases of the devices whose frames were stored since the last pass, then writes behind what changed. */
  async renew(): Promise<void> {
    const since = Date.now();
    const aids = await this.#db.devicesSeenSince(this.#renewedUpTo, this.#maxLeases);
    for (const aid of aids) if (this.#allocator.touch(aid)) this.#counts.renewed++;
    this.#renewedUpTo = since;
    this.#node.sweep();
  }

  status(): IdsStatus {
    return { ...this.#counts, leases: this.#allocator.size, available: this.#allocator.available };
  }

  /** Stops answering, waits for the answers in flight, writes the leases and gives the reservation back. */
  async close(): Promise<void> {
    this.#sub?.unsubscribe();
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#inFlight > 0) await new Promise<void>((r) => (this.#idle = r));
    try {
      await this.#node.flush();
      await this.#allocator.close();
    } finally {
      await this.#store.close();
    }
  }
}
