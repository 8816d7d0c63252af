/**
 * Server-side device id allocator: hands out ids from [start, end] as leases.
 *
 * - A lease lasts `leaseMs` (30 days by default) and is renewed whenever the device is seen
 *   (`touch`, called by the manager for every valid data frame, or a repeated ID_REQUEST).
 * - The same device asking again gets the same id: devices are told apart by an identity key
 *   (`deviceKey`: `device_key`, `device_id`, `serial`, `mac` or `uuid` from the JSON meta, else
 *   the whole meta, else the sender address and the current second).
 * - Released and reclaimed (expired) ids are reused lowest first, before never-used ids.
 * - Pool requests hand out DISTINCT ids, one lease per pool slot. The reference returns one id
 *   repeated; that is a listed deviation.
 *
 * Flood protection (so fake devices cannot grow memory or the lease store without bound):
 * at most `maxLeases` leases exist at once (default 65536), and at most `newLeaseLimit.max`
 * requests from unknown devices are served per `newLeaseLimit.windowMs` (default 1024 per
 * 60 s), whether they get a new lease or an `EXHAUSTED` answer; more are answered
 * `RATE_LIMITED` at once. Renewals of known devices are never limited. Expired leases are found
 * through a heap ordered by expiry, so a request costs O(log n) at the cap, not a scan of every
 * lease. Identity keys longer than 128 characters are stored as their SHA-256, so a lease costs
 * well under 200 bytes whatever the meta.
 *
 * Persistence (with a `store`, see lease-records.ts for the records): `await open()` loads the
 * leases before the first request; changes go to the store's `write` (write-behind, one record
 * per changed lease), throttled by `saveIntervalMs` / `renewSaveIntervalMs`, and its `flush`
 * runs in the background. Nothing runs on a timer: changes left behind by the throttle are
 * written by the next request or by `sweep()`, which a server calls from its own timer.
 *
 * Durability: an id handed out is acknowledged state, so it must never go to another device
 * after a crash. Ids go out only from a reservation: the allocator records the next
 * `reserveIds` ids it may hand out (`reserved` in its state record) and awaits the store's
 * `flush` before any of them leaves (`reserveAhead()`). It keeps a block reserved ahead: when
 * fewer than half of `reserveIds` are left it reserves the next block in the background, so an
 * ID request waits for the disk only when a burst outruns the block.
 * `OSHandshakeManager.classifyAndDispatchAsync` awaits `reserveAhead` for the ID requests that
 * need it; the synchronous `allocate` never hands out an id whose reservation is not flushed (it
 * throws `StoreError`: dispatch answers ERROR, no ID_ASSIGN leaves). An id handed out stays in
 * the state record's `reserved` until a flush that started after its lease record was written
 * has completed, so a crash in the middle of a flush (records written apart) cannot lose it. On
 * restart, every reserved id without a lease record may have been sent: it is held under a
 * placeholder lease (`~sent:<id>`, renewed by `touch` when its device sends data) for `leaseMs`,
 * never given to another device. A clean `close()` gives the reservation back.
 */
import { BackgroundFlush, type Store, type StoreWrite } from '@opensynaptic/store';
import { nodeBuiltin } from '@opensynaptic/internal';
import { HandshakeFieldError, StoreError } from './errors.js';
import { canonicalJson } from './json.js';
import {
  ALLOCATOR_STATE_KEY,
  checkStoredLease,
  checkStoredState,
  isWireId,
  type LeaseKinds,
  type LeaseRecord,
  type LeaseSnapshot,
  leaseIdOfKey,
} from './lease-records.js';
import { MinHeap } from './min-heap.js';
import { refuseRenamed } from './options.js';

export type { LeaseRecord, LeaseSnapshot };

/** Where a packet came from: `"host:port"`, `{ host, port }` or a `[host, port]` pair. */
export type PeerAddress = string | { readonly host: string; readonly port: number } | readonly [string, number];

export interface IdAllocatorOptions {
  /** First id handed out (default 1; 0 is refused by devices as `INVALID_ID`). */
  start?: number;
  /** Last id handed out (default 4294967294; 4294967295 means "unassigned" on the wire). */
  end?: number;
  /** Lease length in ms (default 30 days: 2,592,000,000). Replaces `leaseSeconds`. */
  leaseMs?: number;
  /**
   * The clock, in ms since the epoch (default `Date.now`). Replaces `clock` (seconds), which is
   * refused so that a seconds clock is never read as ms.
   */
  clockMs?: () => number;
  /**
   * Where leases persist: a store of the asynchronous contract (`@opensynaptic/store`) that keeps
   * the `leases` kind; `open()` must be awaited before use. Default none: leases live in memory
   * only, and a restart forgets them.
   */
  store?: Store<LeaseKinds> | null;
  /** Most leases held at once, whatever the range (default 65536). */
  maxLeases?: number;
  /**
   * Most requests from unknown devices per window of `windowMs` ms (default 1024 per 60,000 ms),
   * answered with a new lease or `EXHAUSTED`; renewals are not counted. `windowSeconds` is refused.
   */
  newLeaseLimit?: { max: number; windowMs: number };
  /**
   * Ids reserved per durable write ahead of use (default 64, see the module comment): the disk
   * is written once per this many new leases, and a crash holds back at most this many unused
   * ids (plus the size of a pool being handed out) for `leaseMs`.
   */
  reserveIds?: number;
  /**
   * New leases and releases are written at most this often, in ms (default 1000): the first
   * change after a quiet period is written at once, a burst is written at the end of the
   * interval. Replaces `saveIntervalSeconds`.
   */
  saveIntervalMs?: number;
  /** Renewals alone are written at most this often, in ms (default 60,000). Replaces `renewSaveIntervalSeconds`. */
  renewSaveIntervalMs?: number;
  /** Expired leases are swept at most this often, in ms (default 3,600,000), and on exhaustion. Replaces `reclaimIntervalSeconds`. */
  reclaimIntervalMs?: number;
}

/** Why an allocation failed. */
export type AllocateFailure = 'EXHAUSTED' | 'RATE_LIMITED';

export type AllocateResult = { ok: true; id: number; renewed: boolean } | { ok: false; reason: AllocateFailure };

export interface PoolResult {
  /** Distinct ids, possibly fewer than asked for. */
  ids: number[];
  /** Why the pool is short, when it is. */
  shortBy?: AllocateFailure;
}

/** Default lease length, in ms: 30 days. */
export const DEFAULT_LEASE_MS = 30 * 86_400_000;
export const DEFAULT_MAX_LEASES = 65536;
export const DEFAULT_NEW_LEASE_LIMIT = Object.freeze({ max: 1024, windowMs: 60_000 });
export const DEFAULT_RESERVE_IDS = 64;
/** Key prefix of the placeholder lease of a reserved id found without its lease after a restart. */
export const SENT_ID_KEY_PREFIX = '~sent:';
/** Identity keys longer than this are replaced by their SHA-256. */
export const MAX_IDENTITY_KEY_LENGTH = 128;

/** Meta fields that name a device, in the order they are tried. */
export const IDENTITY_FIELDS: readonly string[] = ['device_key', 'device_id', 'serial', 'mac', 'uuid'];

function truthy(v: unknown): boolean {
  // Python truthiness: None, False, 0, "", [] and {} do not identify anything.
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function jsonText(v: unknown): string {
  try {
    return canonicalJson(v);
  } catch {
    return JSON.stringify(v) ?? String(v);
  }
}

/** Text form of a peer address, for identity keys. */
export function addressText(addr: PeerAddress | null | undefined): string {
  if (addr === null || addr === undefined) return '-';
  if (typeof addr === 'string') return addr;
  if (Array.isArray(addr)) return `${addr[0]}:${addr[1]}`;
  const a = addr as { host: string; port: number };
  return `${a.host}:${a.port}`;
}

/**
 * The identity key of the device behind an ID request: the first identity field of the meta,
 * else the whole meta (keys sorted), else the sender address and the current whole second of
 * `nowMs` (a clock reading in ms; so an anonymous request is deduplicated only within one second,
 * as in the reference, and its key names that second as the reference's does).
 */
export function deviceKey(meta: unknown, addr: PeerAddress | null | undefined, nowMs: number): string {
  let key: string | undefined;
  if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
    const m = meta as Record<string, unknown>;
    for (const f of IDENTITY_FIELDS) {
      const v = m[f];
      if (truthy(v)) {
        key = `${f}=${typeof v === 'string' ? v : jsonText(v)}`;
        break;
      }
    }
  }
  if (key === undefined && truthy(meta)) key = `meta=${jsonText(meta)}`;
  if (key === undefined) key = `anon=${addressText(addr)}@${Math.floor(nowMs / 1000)}`;
  return key.length > MAX_IDENTITY_KEY_LENGTH ? `sha256=${digestHex(key)}` : key;
}

interface NodeCrypto {
  createHash(alg: string): { update(data: string, enc: 'utf8'): { digest(enc: 'hex'): string } };
}

/**
 * SHA-256 of a long identity key (the platform's implementation), so hostile metas can neither
 * bloat the lease file nor collide. Without node:crypto (a browser) long keys are cut instead,
 * keeping the bound on size; an allocator normally runs on a server.
 */
function digestHex(key: string): string {
  const crypto = nodeBuiltin<NodeCrypto>('node:crypto');
  return crypto ? crypto.createHash('sha256').update(key, 'utf8').digest('hex') : `${key.slice(0, MAX_IDENTITY_KEY_LENGTH - 71)}~${key.length}`;
}

interface ExpiryEntry {
  /** When the entry was pushed, the lease's expiry; a renewal only moves the real one later. */
  at: number;
  rec: LeaseRecord;
}

function nonNegative(name: string, v: number): number {
  if (!(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new HandshakeFieldError(name, `${String(v)} is not a finite number >= 0`);
  return v;
}

function positiveNumber(name: string, v: number): number {
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new HandshakeFieldError(name, `${String(v)} is not a positive number`);
  return v;
}

/** Options of earlier versions whose unit changed: given, they are refused rather than misread. */
const RENAMED_ALLOCATOR_OPTIONS = {
  clock: 'clockMs (a clock in ms; the old one returned seconds)',
  leaseSeconds: 'leaseMs (ms)',
  saveIntervalSeconds: 'saveIntervalMs (ms)',
  renewSaveIntervalSeconds: 'renewSaveIntervalMs (ms)',
  reclaimIntervalSeconds: 'reclaimIntervalMs (ms)',
} as const;

function checkId(name: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 1 && v <= 0xfffffffe)) {
    throw new HandshakeFieldError(name, `${String(v)} is not an integer in 1..4294967294`);
  }
  return v;
}

export class IdAllocator {
  readonly start: number;
  readonly end: number;
  /** Lease length in ms. */
  readonly leaseMs: number;
  readonly maxLeases: number;
  readonly newLeaseLimit: { readonly max: number; readonly windowMs: number };
  readonly #clock: () => number;
  readonly #store: Store<LeaseKinds> | null;
  readonly #where: string;
  readonly #saveInterval: number;
  readonly #renewSaveInterval: number;
  readonly #reclaimInterval: number;
  readonly #byKey = new Map<string, LeaseRecord>();
  readonly #byId = new Map<number, LeaseRecord>();
  /** Released ids, so the lowest free id comes out first. */
  readonly #released = new MinHeap<number>((id) => id);
  /**
   * Leases by expiry, a min-heap with lazy deletion: renewals do not touch it (an entry's `at`
   * stays at or before its lease's real expiry), released leases leave their entry behind. A
   * sweep pops entries due by `at` and drops (lease gone), re-files (lease renewed) or reclaims
   * each, so finding nothing to reclaim costs O(1) and each lease is re-filed at most once per
   * renewal period.
   */
  readonly #expiry = new MinHeap<ExpiryEntry>((e) => e.at);
  readonly #reserveIds: number;
  /** Ids whose reservation is flushed and that were not handed out yet. */
  #reserved = new Set<number>();
  /** Ids handed out whose lease record is not written to the store yet. */
  readonly #handedOut = new Set<number>();
  /** Ids handed out whose lease record is written but not yet covered by a completed flush. */
  readonly #unconfirmed = new Set<number>();
  /** Ids whose record must be written (a put when it has a lease, else a delete). */
  readonly #dirtyLeases = new Set<number>();
  #stateDirty = false;
  /** A change that is due after `saveIntervalMs` (new leases, releases) waits, not only renewals. */
  #urgent = false;
  /** A pool being handed out asks for a reservation this large at once. */
  #reserveHint = 0;
  #reclaimSteps = 0;
  #next: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #windowCount = 0;
  #lastSave = Number.NEGATIVE_INFINITY;
  #lastReclaim: number;
  #batching = false;
  #opened: boolean;
  #opening: Promise<void> | null = null;
  readonly #background: BackgroundFlush | null;
  #reserving: Promise<void> | null = null;
  /** The block a running `reserveAhead` is flushing: every state record written meanwhile lists it too. */
  #reservingBatch: number[] = [];
  /** The error of the last background write or flush that failed (they cannot throw to a caller). */
  lastSaveError: unknown;

  constructor(options: IdAllocatorOptions = {}) {
    this.start = checkId('start', options.start ?? 1);
    this.end = checkId('end', options.end ?? 0xfffffffe);
    if (this.end < this.start) throw new HandshakeFieldError('end', `${this.end} is below start ${this.start}`);
    refuseRenamed(options, RENAMED_ALLOCATOR_OPTIONS);
    this.leaseMs = positiveNumber('leaseMs', options.leaseMs ?? DEFAULT_LEASE_MS);
    this.maxLeases = positiveNumber('maxLeases', options.maxLeases ?? DEFAULT_MAX_LEASES);
    const lim = options.newLeaseLimit ?? DEFAULT_NEW_LEASE_LIMIT;
    refuseRenamed(lim, { windowSeconds: 'newLeaseLimit.windowMs (ms)' });
    this.newLeaseLimit = Object.freeze({
      max: positiveNumber('newLeaseLimit.max', lim.max),
      windowMs: positiveNumber('newLeaseLimit.windowMs', lim.windowMs),
    });
    if (options.clockMs !== undefined && typeof options.clockMs !== 'function') throw new HandshakeFieldError('clockMs', 'expected a function returning ms');
    this.#clock = options.clockMs ?? Date.now;
    const store = options.store ?? null;
    if (store !== null && (typeof store.getMany !== 'function' || typeof store.write !== 'function' || typeof store.flush !== 'function' || typeof store.keys !== 'function')) {
      throw new HandshakeFieldError('store', 'expected a store of the @opensynaptic/store contract (keys, getMany, write, flush)');
    }
    this.#store = store;
    this.#where = 'lease store';
    this.#opened = store === null;
    this.#background = store === null ? null : new BackgroundFlush(store, (e) => this.#failed(e, 'cannot be flushed'));
    this.#saveInterval = nonNegative('saveIntervalMs', options.saveIntervalMs ?? 1000);
    this.#renewSaveInterval = nonNegative('renewSaveIntervalMs', options.renewSaveIntervalMs ?? 60_000);
    this.#reclaimInterval = nonNegative('reclaimIntervalMs', options.reclaimIntervalMs ?? 3_600_000);
    const reserve = options.reserveIds ?? DEFAULT_RESERVE_IDS;
    if (!(Number.isInteger(reserve) && reserve >= 1)) throw new HandshakeFieldError('reserveIds', `${String(reserve)} is not a positive integer`);
    this.#reserveIds = reserve;
    this.#next = this.start;
    this.#lastReclaim = this.#clock();
  }

  /** Whether the allocator is ready: it has no store, or `open()` resolved. */
  get opened(): boolean {
    return this.#opened;
  }

  /**
   * Loads the leases from the store (once; later calls resolve at once; without a store there is
   * nothing to load). Rejects with `StoreError` when the store cannot be read or holds records
   * that are not leases (so a damaged store never starts the allocator over, which would give ids
   * to other devices). Every reserved id found without its lease is held as possibly sent.
   */
  open(): Promise<void> {
    if (this.#opened) return Promise.resolve();
    this.#opening ??= this.#load().catch((e: unknown) => {
      this.#opening = null;
      throw e;
    });
    return this.#opening;
  }

  async #load(): Promise<void> {
    const store = this.#store!;
    let keys: string[];
    let values: unknown[];
    try {
      keys = await store.keys('leases');
      values = await store.getMany('leases', keys);
    } catch (e) {
      throw new StoreError(this.#where, 'cannot be read', { cause: e });
    }
    let state: { next: number; released: number[]; reserved: number[] } = { next: this.start, released: [], reserved: [] };
    const leases: LeaseRecord[] = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (values[i] === undefined) continue; // deleted meanwhile
      if (key === ALLOCATOR_STATE_KEY) {
        state = checkStoredState(this.#where, values[i]);
        continue;
      }
      const id = leaseIdOfKey(key);
      if (id === undefined) throw new StoreError(this.#where, `the key ${JSON.stringify(key.slice(0, 40))} names no id`);
      const l = checkStoredLease(this.#where, key, values[i]);
      leases.push({ id, key: l.key, expiresAtMs: l.expiresAtMs });
    }
    for (const rec of leases) {
      if (this.#byKey.has(rec.key)) throw new StoreError(this.#where, `duplicate lease for ${JSON.stringify(rec.key.slice(0, 40))} (ids ${this.#byKey.get(rec.key)!.id} and ${rec.id})`);
      this.#addLease(rec, false);
    }
    this.#next = Math.max(this.start, state.next);
    // Reserved ids without a lease may have reached a device before the crash: hold them.
    const now = this.#clock();
    let quarantined = 0;
    for (const id of state.reserved) {
      if (this.#byId.has(id)) continue;
      this.#addLease({ id, key: `${SENT_ID_KEY_PREFIX}${id}`, expiresAtMs: now + this.leaseMs });
      // Listed as reserved in every state record until its placeholder lease is durable.
      this.#handedOut.add(id);
      quarantined++;
    }
    this.quarantined = quarantined;
    // A range that shrank keeps its leases but stops reusing ids outside it.
    const free = new Set<number>();
    for (const id of state.released) if (id >= this.start && id <= this.end && id < this.#next && !this.#byId.has(id)) free.add(id);
    // Every id below `next` without a lease was handed out once and is free again: this also
    // finds an id whose lease was deleted by a flush that a crash cut before the state record.
    // Only while the range below `next` is of the size the records account for (a state record
    // whose `next` is damaged must not start a scan of billions of ids).
    const top = Math.min(this.#next - 1, this.end);
    if (top - this.start < 4 * (this.#byId.size + free.size) + 1024) for (let id = this.start; id <= top; id++) if (!this.#byId.has(id)) free.add(id);
    for (const id of free) this.#released.push(id);
    if (free.size !== state.released.length) this.#stateDirty = true;
    if (quarantined > 0 || this.#stateDirty) {
      this.#urgent = true;
      this.#stateDirty = true;
    }
    this.#opened = true;
  }

  /** How many reserved ids were found without their lease when the store was opened (held as sent). */
  quarantined = 0;

  /** Work counters: `reclaimSteps` is the number of expiry entries examined by reclaims. */
  get stats(): { readonly reclaimSteps: number } {
    return { reclaimSteps: this.#reclaimSteps };
  }

  /** Number of leases held (expired ones included until reclaimed). */
  get size(): number {
    return this.#byId.size;
  }

  /** How many more ids could be handed out now (ignoring the rate limit). */
  get available(): number {
    const fresh = this.#next <= this.end ? this.end - this.#next + 1 : 0;
    return Math.max(0, Math.min(this.#released.size + fresh, this.maxLeases - this.#byId.size));
  }

  /** The lease of an id, if any. */
  leaseOf(id: number): Readonly<LeaseRecord> | undefined {
    const l = this.#byId.get(id);
    return l && { ...l };
  }

  /** The id leased to an identity key, if any. */
  idFor(key: string): number | undefined {
    return this.#byKey.get(key)?.id;
  }

  /**
   * The id for a device: its current lease renewed, or a new lease. Fails with `EXHAUSTED` when
   * no id is free (after reclaiming expired leases) or `maxLeases` are held, and with
   * `RATE_LIMITED` when too many new leases were created in the current window. Throws
   * `StoreError` before `open()` resolved, and for a new id whose reservation is not flushed.
   */
  allocate(key: string): AllocateResult {
    this.#checkOpen();
    const now = this.#clock();
    const known = this.#byKey.get(key);
    if (known) {
      this.#renew(known, now);
      this.#markDirty(now, false);
      return { ok: true, id: known.id, renewed: true };
    }
    if (now - this.#windowStart >= this.newLeaseLimit.windowMs || now < this.#windowStart) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (this.#windowCount >= this.newLeaseLimit.max) return { ok: false, reason: 'RATE_LIMITED' };
    // Counted whatever the answer: an EXHAUSTED answer costs a lookup too, and a flood of unknown
    // devices at the cap must run into the limit like one below it.
    this.#windowCount++;
    if (now - this.#lastReclaim >= this.#reclaimInterval) this.reclaimExpired();
    let id = this.#takeFreeId();
    if (id === undefined && this.reclaimExpired() > 0) id = this.#takeFreeId();
    if (id === undefined) return { ok: false, reason: 'EXHAUSTED' };
    this.#addLease({ id, key, expiresAtMs: now + this.leaseMs });
    this.#markDirty(now, true);
    this.#maybeTopUp();
    return { ok: true, id, renewed: false };
  }

  /**
   * `count` distinct ids for a gateway, one lease per slot (`key#0`, `key#1`...), so asking again
   * returns the same ids. The pool may come back short; `shortBy` says why.
   */
  allocatePool(key: string, count: number): PoolResult {
    this.#checkOpen();
    const ids: number[] = [];
    this.#batching = true;
    // One reservation for the whole pool rather than one per `reserveIds` slots.
    this.#reserveHint = count;
    try {
      for (let i = 0; i < count; i++) {
        const r = this.allocate(`${key}#${i}`);
        if (!r.ok) return { ids, shortBy: r.reason };
        ids.push(r.id);
      }
      return { ids };
    } finally {
      this.#batching = false;
      this.#reserveHint = 0;
      if (this.#pending) this.#markDirty(this.#clock(), true);
    }
  }

  /** Renews the lease of `id` (the device was seen). False when `id` has no lease. */
  touch(id: number): boolean {
    this.#checkOpen();
    const l = this.#byId.get(id);
    if (!l) return false;
    const now = this.#clock();
    this.#renew(l, now);
    this.#markDirty(now, false);
    return true;
  }

  /** Ends the lease of `id`; the id becomes free for reuse. False when it had no lease. */
  release(id: number): boolean {
    this.#checkOpen();
    const l = this.#byId.get(id);
    if (!l) return false;
    this.#byId.delete(id);
    this.#byKey.delete(l.key);
    this.#recordChanged(id);
    if (id >= this.start && id <= this.end) this.#released.push(id);
    this.#stateChanged();
    this.#markDirty(this.#clock(), true);
    return true;
  }

  /** Ends every lease past its expiry, earliest first; returns how many. O(k log n) for k due. */
  reclaimExpired(): number {
    this.#checkOpen();
    const now = this.#clock();
    this.#lastReclaim = now;
    let n = 0;
    const heap = this.#expiry;
    for (let e = heap.peek(); e !== undefined && e.at <= now; e = heap.peek()) {
      heap.pop();
      this.#reclaimSteps++;
      const l = e.rec;
      if (this.#byId.get(l.id) !== l) continue; // released meanwhile
      if (l.expiresAtMs > now) {
        // Renewed since it was filed: file it again under its real expiry.
        e.at = l.expiresAtMs;
        heap.push(e);
        continue;
      }
      this.#byId.delete(l.id);
      this.#byKey.delete(l.key);
      this.#recordChanged(l.id);
      if (l.id >= this.start && l.id <= this.end) this.#released.push(l.id);
      this.#stateChanged();
      n++;
    }
    if (n > 0) this.#markDirty(now, true);
    return n;
  }

  /**
   * Housekeeping for a server's timer (the allocator runs none): writes the changes the save
   * throttle held back once their interval has elapsed (and flushes them in the background), and
   * reclaims expired leases once `reclaimIntervalMs` has elapsed. `now` defaults to the clock.
   */
  sweep(now: number = this.#clock()): void {
    if (!this.#opened) return;
    if (now - this.#lastReclaim >= this.#reclaimInterval || now < this.#lastReclaim) this.reclaimExpired();
    if (!this.#pending) return;
    const since = now - this.#lastSave;
    if (since >= (this.#urgent ? this.#saveInterval : this.#renewSaveInterval) || since < 0) this.#saveInBackground(now);
  }

  /**
   * Writes every pending change and resolves when the store holds them as durably as its
   * `durability` says (nothing to do without a store). Rejects with `StoreError` when the store
   * cannot write or flush; the changes stay pending, so the next call retries them.
   */
  async flush(): Promise<void> {
    if (this.#store === null || !this.#opened) return;
    if (this.#pending) await this.#save(this.#clock());
    await this.#flushStore();
  }

  /**
   * Gives the reservation back (no reserved id is held as possibly sent after the next open),
   * then `flush()`. Allocating afterwards reserves again.
   */
  async close(): Promise<void> {
    if (this.#store === null || !this.#opened) return;
    this.#reserved = new Set();
    this.#stateDirty = true;
    await this.flush();
    // The state record just flushed still listed the leases that flush made durable: write it
    // once more without them, so a clean restart holds nothing back.
    this.#stateDirty = true;
    await this.flush();
    await this.#background?.idle();
  }

  /** The whole state in one object, for inspection (and `leaseSnapshotWrites`). */
  snapshot(): LeaseSnapshot {
    const leases: LeaseRecord[] = [];
    for (const l of this.#byId.values()) leases.push({ id: l.id, key: l.key, expiresAtMs: l.expiresAtMs });
    const released = [...this.#released.items];
    return { version: 2, start: this.start, end: this.end, next: this.#next, leases, released, reserved: this.#reservedList() };
  }

  /** Every id a state record must list as reserved: unused reservations, and ids handed out without a durable lease. */
  #reservedList(): number[] {
    const out = new Set(this.#reserved);
    for (const id of this.#reservingBatch) out.add(id);
    for (const id of this.#handedOut) out.add(id);
    for (const id of this.#unconfirmed) out.add(id);
    return [...out];
  }

  get #pending(): boolean {
    return this.#dirtyLeases.size > 0 || this.#stateDirty;
  }

  #checkOpen(): void {
    if (!this.#opened) throw new StoreError(this.#where, 'not open: await open() (or OSHandshakeManager.open()) before use', { code: 'ERR_HANDSHAKE_NOT_OPEN' });
  }

  /** With a store: the state record (next, released, reserved) must be written. */
  #stateChanged(): void {
    if (this.#store !== null) this.#stateDirty = true;
  }

  /** With a store: the record of `id` must be written (put or delete). */
  #recordChanged(id: number): void {
    if (this.#store !== null) this.#dirtyLeases.add(id);
  }

  #addLease(rec: LeaseRecord, changed = true): void {
    this.#byId.set(rec.id, rec);
    this.#byKey.set(rec.key, rec);
    if (changed) this.#recordChanged(rec.id);
    this.#expiry.push({ at: rec.expiresAtMs, rec });
    // Entries of released leases wait in the heap until they come due; rebuild before they
    // outnumber the leases, so memory stays O(leases).
    if (this.#expiry.items.length > 2 * this.#byId.size + 1024) this.#rebuildExpiry();
  }

  #renew(l: LeaseRecord, now: number): void {
    const at = now + this.leaseMs;
    // A clock that went back shortens the lease: its entry would be filed too late.
    if (at < l.expiresAtMs) this.#expiry.push({ at, rec: l });
    l.expiresAtMs = at;
    this.#recordChanged(l.id);
  }

  #rebuildExpiry(): void {
    const items = this.#expiry.items;
    items.length = 0;
    for (const rec of this.#byId.values()) items.push({ at: rec.expiresAtMs, rec });
    items.sort((x, y) => x.at - y.at); // a sorted array is a valid min-heap
  }

  /** The id `#takeFreeId` would hand out next, without taking it. */
  #peekFreeId(): number | undefined {
    const r = this.#released.items[0];
    if (r !== undefined) return r;
    // Skip ids still held, e.g. leases loaded from a store of a wider range or quarantined.
    while (this.#next <= this.end && this.#byId.has(this.#next)) this.#next++;
    return this.#next <= this.end ? this.#next : undefined;
  }

  #takeFreeId(): number | undefined {
    if (this.#byId.size >= this.maxLeases) return undefined;
    const id = this.#peekFreeId();
    if (id === undefined) return undefined;
    if (this.#store !== null) {
      if (!this.#reserved.has(id)) {
        throw new StoreError(this.#where, 'no flushed id reservation ahead: await reserveAhead() or dispatch through classifyAndDispatchAsync');
      }
      this.#reserved.delete(id);
      this.#handedOut.add(id);
    }
    if (this.#released.items[0] === id) this.#released.pop();
    else this.#next = id + 1;
    this.#stateChanged();
    return id;
  }

  // Reserve the next block in the background so the next requests find their ids reserved
  // already. Only once the id taken has its lease: every state record must list each id handed
  // out, as a lease or as reserved.
  #maybeTopUp(): void {
    if (this.#store === null || this.#reserving !== null || this.#reserved.size >= this.#reserveIds / 2) return;
    this.reserveAhead(this.#reserved.size + 1).catch((e: unknown) => {
      this.lastSaveError = e;
    });
  }

  /** The lowest `want` free ids, in the order they will be handed out. */
  #freeIds(want: number): number[] {
    const batch: number[] = [];
    const popped: number[] = [];
    while (batch.length < want) {
      const r = this.#released.pop();
      if (r === undefined) break;
      popped.push(r);
      batch.push(r);
    }
    for (const r of popped) this.#released.push(r);
    for (let id = this.#next; batch.length < want && id <= this.end; id++) if (!this.#byId.has(id)) batch.push(id);
    return batch;
  }

  /** With a store: whether handing out `count` new ids now needs a reservation first (`reserveAhead`). */
  needsReservation(count = 1): boolean {
    if (this.#store === null || !this.#opened) return false;
    for (const id of this.#freeIds(Math.min(count, this.maxLeases))) if (!this.#reserved.has(id)) return true;
    return false;
  }

  /**
   * With a store: reserves (at least `count`, at least `reserveIds`) of the next free ids and
   * resolves once the reservation is flushed; resolves at once when they are reserved already or
   * there is no store. Rejects with `StoreError` when the store cannot write or flush (nothing
   * was handed out from it). One reservation runs at a time.
   */
  async reserveAhead(count = 1): Promise<void> {
    this.#checkOpen();
    while (this.needsReservation(count)) {
      if (this.#reserving === null) {
        const run = this.#reserveDurably(count);
        this.#reserving = run;
        run.then(
          () => {
            this.#reserving = null;
          },
          () => {
            this.#reserving = null;
          },
        );
      }
      await this.#reserving;
    }
  }

  async #reserveDurably(count: number): Promise<void> {
    // The ids reserved and unused stay in the new block; the block extends past them.
    const batch = this.#freeIds(Math.max(this.#reserveIds + this.#reserved.size, count, this.#reserveHint));
    this.#reservingBatch = batch;
    try {
      this.#stateDirty = true;
      await this.#save(this.#clock());
      await this.#flushStore();
      // Only now may these ids leave; ids handed out meanwhile are leases already.
      for (const id of batch) this.#reserved.add(id);
    } finally {
      this.#reservingBatch = [];
    }
  }

  #markDirty(now: number, urgent: boolean): void {
    if (this.#store === null) return;
    if (urgent) this.#urgent = true;
    if (this.#batching) return;
    const since = now - this.#lastSave;
    // A burst is written once per interval; what the throttle holds back goes out with the next
    // change or sweep after it.
    if (since >= (this.#urgent ? this.#saveInterval : this.#renewSaveInterval) || since < 0) this.#saveInBackground(now);
  }

  #saveInBackground(now: number): void {
    this.#save(now).then(
      () => this.#background!.request(),
      () => undefined, // reported by #save
    );
  }

  /**
   * Writes every changed lease record (and the state record when it changed) as one batch.
   * Resolves when the store took it; on failure the records are marked changed again, the error
   * is kept in `lastSaveError` and the promise rejects with `StoreError`.
   */
  #save(now: number): Promise<void> {
    const store = this.#store!;
    const batch: StoreWrite<LeaseKinds>[] = [];
    const ids = [...this.#dirtyLeases];
    for (const id of ids) {
      const l = this.#byId.get(id);
      if (l) batch.push({ op: 'put', kind: 'leases', key: String(id), value: { key: l.key, expiresAtMs: l.expiresAtMs } });
      else batch.push({ op: 'delete', kind: 'leases', key: String(id) });
    }
    const withState = this.#stateDirty;
    if (withState) {
      const value = { version: 2 as const, next: this.#next, released: [...this.#released.items], reserved: this.#reservedList() };
      batch.push({ op: 'put', kind: 'leases', key: ALLOCATOR_STATE_KEY, value });
    }
    // The leases of these ids are in this batch: they stay listed as reserved until it is flushed.
    const written = [...this.#handedOut];
    for (const id of written) this.#unconfirmed.add(id);
    this.#handedOut.clear();
    this.#dirtyLeases.clear();
    this.#stateDirty = false;
    this.#urgent = false;
    this.#lastSave = now;
    let write: Promise<void>;
    try {
      write = store.write(batch);
    } catch (e) {
      write = Promise.reject(e);
    }
    return write.catch((e: unknown) => {
      for (const id of ids) this.#dirtyLeases.add(id);
      if (withState) this.#stateDirty = true;
      this.#urgent = true;
      throw this.#failed(e, 'cannot be written');
    });
  }

  /** The store's flush; then the ids whose lease was written before it no longer need listing as reserved. */
  async #flushStore(): Promise<void> {
    const covered = [...this.#unconfirmed];
    try {
      await this.#store!.flush();
    } catch (e) {
      throw this.#failed(e, 'cannot be flushed');
    }
    for (const id of covered) this.#unconfirmed.delete(id);
  }

  #failed(e: unknown, detail: string): StoreError {
    const error = e instanceof StoreError ? e : new StoreError(this.#where, detail, { cause: e });
    this.lastSaveError = error;
    return error;
  }
}
