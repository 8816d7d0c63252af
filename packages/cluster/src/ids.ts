/**
 * Id assignment for a cluster: one `IdAllocator`, run by the receiver that owns partition 0 and
 * asked by every gateway (`<prefix>.ids`, NATS request/reply). Its leases are the project's
 * PostgreSQL store (`os_store` kind `leases` in the cluster's schema), so the next owner of
 * partition 0 loads them, and every id the previous one may have sent stays taken (the
 * allocator's durable reservation). A lease is renewed by its device's frames: the partitions'
 * receivers record when they last stored each device (`os_cluster_devices`), and the allocator's
 * owner renews those leases once a minute (a quarter of the lease, if shorter). One allocator at a
 * time even when an owner of partition 0 lags behind its lease: it holds a PostgreSQL advisory
 * lock for the schema on a connection of its own, and the next owner waits for it.
 */
import { OpenSynaptic } from '@opensynaptic/core';
import { IdAllocator, type IdAllocatorOptions, type LeaseKinds } from '@opensynaptic/handshake';
import type { BatchedStore } from '@opensynaptic/store';
import { openPostgresStore } from '@opensynaptic/store-postgres';
import { openPool, type PostgresPool } from '@opensynaptic/store-postgres/pool';
import type pg from 'pg';
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
/** How often the leases of devices whose frames were stored are renewed, ms (at most; a quarter of a shorter lease). */
const RENEW_MS = 60_000;
/** Devices read per query of a renewal pass. */
const RENEW_PAGE = 4096;

export class ClusterIds {
  readonly #db: ClusterDatabase;
  readonly #store: BatchedStore<LeaseKinds>;
  readonly #allocator: IdAllocator;
  readonly #node: OpenSynaptic;
  readonly #renewMs: number;
  readonly #onError: (e: unknown) => void;
  readonly #lockPool: PostgresPool;
  readonly #lock: pg.PoolClient;
  readonly #lockKey: string;
  /** Resolves when the allocator must stop: closed, or its lock's connection lost. */
  readonly lost: Promise<void>;
  #setLost!: () => void;
  #renewing: Promise<void> | null = null;
  #closed = false;
  #sub: Subscription | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #renewedUpTo: number;
  #inFlight = 0;
  #idle: (() => void) | null = null;
  #counts = { requests: 0, dropped: 0, renewed: 0 };

  private constructor(db: ClusterDatabase, store: BatchedStore<LeaseKinds>, lock: { pool: PostgresPool; client: pg.PoolClient; key: string }, options: ClusterIdOptions, onError: (e: unknown) => void) {
    this.#db = db;
    this.#store = store;
    this.#lockPool = lock.pool;
    this.#lock = lock.client;
    this.#lockKey = lock.key;
    this.#onError = onError;
    this.lost = new Promise<void>((r) => (this.#setLost = r));
    lock.client.on('error', (e) => {
      // The lock went with its connection: another receiver may run the allocator now.
      this.#sub?.unsubscribe();
      this.#onError(new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the id allocator's lock connection was lost (${messageOf(e)}): it stops answering`, { cause: e }));
      this.#setLost();
    });
    this.#allocator = new IdAllocator({ ...allocatorOptions(options), store });
    this.#node = new OpenSynaptic({ assignedId: 1, deviceId: 'CLUSTER-IDS', handshake: { allocator: this.#allocator } });
    const leaseMs = this.#allocator.leaseMs;
    this.#renewMs = Math.max(1000, Math.min(RENEW_MS, Math.floor(leaseMs / 4)));
    // Leases of devices stored while nobody ran the allocator are renewed at the first pass.
    this.#renewedUpTo = Date.now() - leaseMs;
  }

  /**
   * Takes the schema's allocator lock, opens the lease store and loads the leases. Rejects with
   * `ERR_CLUSTER_STATE` while another receiver holds the lock (a previous owner still closing),
   * `ERR_CLUSTER_STORE` when PostgreSQL fails or holds leases that do not load.
   */
  static async open(db: ClusterDatabase, postgres: ClusterPostgresOptions, options: ClusterIdOptions, onError: (e: unknown) => void): Promise<ClusterIds> {
    const key = `opensynaptic cluster ids ${postgres.schema ?? 'public'}`;
    const pool = openPool({ connection: postgres.connection, schema: postgres.schema, maxConnections: 1 });
    let client: pg.PoolClient | null = null;
    let store: BatchedStore<LeaseKinds> | null = null;
    try {
      client = await pool.pool.connect();
      const got = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key]);
      if (got.rows[0]?.ok !== true) throw new ClusterError('ERR_CLUSTER_STATE', 'the id allocator of this schema still runs on another receiver (its lock is held): waiting for it to stop');
      store = await openPostgresStore<LeaseKinds>({ connection: postgres.connection, schema: postgres.schema, kinds: ['leases'], maxConnections: 2 });
      const ids = new ClusterIds(db, store, { pool, client, key }, options, onError);
      await ids.#node.open();
      return ids;
    } catch (e) {
      await store?.close().catch(() => undefined);
      // Ending the connection gives its lock back.
      client?.release(true);
      await pool.pool.end().catch(() => undefined);
      if (e instanceof ClusterError) throw e;
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the id leases cannot be loaded: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Answers `<prefix>.ids` from now on (one subscriber of the queue group per cluster: the owner of partition 0). */
  listen(nc: NatsConnection, prefix: string): void {
    this.#sub = nc.subscribe(idsSubject(prefix), { queue: 'owner', callback: (err, m) => (err === null ? void this.#answer(m) : this.#onError(err)) });
    this.#timer = setInterval(() => this.#renewNow(), this.#renewMs);
    this.#timer.unref?.();
    this.#renewNow();
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

  /** A renewal pass, unless one is running (a slow query never stacks them). */
  #renewNow(): void {
    if (this.#renewing !== null || this.#closed) return;
    this.#renewing = this.renew()
      .catch(this.#onError)
      .finally(() => {
        this.#renewing = null;
      });
  }

  /**
   * Renews the leases of the devices whose frames were stored since the last pass (paged, every
   * one of them), then writes behind what changed. The window reaches one pass back: a commit
   * that began before the last pass and ended after it is read again, not missed.
   */
  async renew(): Promise<void> {
    const started = Date.now();
    const since = this.#renewedUpTo - this.#renewMs;
    for (let after = -1; ; ) {
      const page = await this.#db.devicesSeenSince(since, after, RENEW_PAGE);
      if (this.#closed) return;
      for (const aid of page) if (this.#allocator.touch(aid)) this.#counts.renewed++;
      if (page.length < RENEW_PAGE) break;
      after = page[page.length - 1]!;
    }
    this.#renewedUpTo = started;
    this.#node.sweep();
  }

  status(): IdsStatus {
    return { ...this.#counts, leases: this.#allocator.size, available: this.#allocator.available };
  }

  /** Stops answering, waits for the answers and the renewal in flight, writes the leases, gives the reservation back, then the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sub?.unsubscribe();
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#inFlight > 0) await new Promise<void>((r) => (this.#idle = r));
    await this.#renewing;
    try {
      await this.#node.flush();
      await this.#allocator.close();
    } finally {
      await this.#store.close().catch(this.#onError);
      // The lock last: the next owner loads what was just written.
      await this.#lock.query('SELECT pg_advisory_unlock(hashtext($1))', [this.#lockKey]).catch(() => undefined);
      this.#lock.release(true);
      await this.#lockPool.pool.end().catch(() => undefined);
      this.#setLost();
    }
  }
}
