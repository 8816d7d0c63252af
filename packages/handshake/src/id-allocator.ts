/**
 * Server-side device id allocator: hands out ids from [start, end] as leases.
 *
 * - A lease lasts `leaseSeconds` (30 days by default) and is renewed whenever the device is seen
 *   (`touch`, called by the manager for every valid data frame, or a repeated ID_REQUEST).
 * - The same device asking again gets the same id: devices are told apart by an identity key
 *   (`deviceKey`: `device_key`, `device_id`, `serial`, `mac` or `uuid` from the JSON meta, else
 *   the whole meta, else the sender address and the current second).
 * - Released and reclaimed (expired) ids are reused lowest first, before never-used ids.
 * - Pool requests hand out DISTINCT ids, one lease per pool slot. The reference returns one id
 *   repeated; that is a listed deviation.
 *
 * Flood protection (so fake devices cannot grow memory or the lease file without bound):
 * at most `maxLeases` leases exist at once (default 65536), and at most `newLeaseLimit.max`
 * requests from unknown devices are served per `newLeaseLimit.windowSeconds` (default 1024 per
 * 60 s), whether they get a new lease or an `EXHAUSTED` answer; more are answered
 * `RATE_LIMITED` at once. Renewals of known devices are never limited. Expired leases are found
 * through a heap ordered by expiry, so a request costs O(log n) at the cap, not a scan of every
 * lease. Identity keys longer than 128 characters are stored as their SHA-256, so a lease costs
 * well under 200 bytes whatever the meta.
 *
 * Durability (with a store): an id handed out is acknowledged state, so it must never go to
 * another device after a crash. Before handing out an id that is not yet reserved, the allocator
 * saves a snapshot listing the next `reserveIds` ids it may hand out (`reserved`), and the store's
 * `save` returning means that list survives a kill (see `SnapshotStore`). Ids from that list are
 * then handed out without touching the disk; the full lease records follow with the save
 * throttle. On restart, every reserved id without a saved lease may have been sent: it is held
 * under a placeholder lease (`~sent:<id>`, renewed by `touch` when its device sends data) for
 * `leaseSeconds`, never given to another device. A clean `close()` releases the reservation.
 *
 * With a write-behind store (a `SnapshotMirror` on the asynchronous store contract) `save`
 * returning is not durable, so a reservation is made by `reserveAhead()`, which writes it and
 * awaits the store's flush. The allocator keeps a block reserved ahead: when fewer than half of
 * `reserveIds` are left it reserves the next block in the background, so an ID request waits
 * for the disk only when a burst outruns the block. `OSHandshakeManager.classifyAndDispatchAsync`
 * awaits `reserveAhead` for ID requests that need it; the synchronous `allocate` never hands out
 * an id whose reservation is not flushed (it throws `StoreError`: dispatch answers ERROR, no
 * ID_ASSIGN leaves).
 */
import { HandshakeFieldError, StoreError } from './errors.js';
import { canonicalJson } from './json.js';
import { MinHeap } from './min-heap.js';
import { nodeBuiltin } from '@opensynaptic/internal';
import { isWriteBehind, type SnapshotStore } from './store.js';

/** Where a packet came from: `"host:port"`, `{ host, port }` or a `[host, port]` pair. */
export type PeerAddress = string | { readonly host: string; readonly port: number } | readonly [string, number];

/** The persisted state of an allocator. */
export interface LeaseSnapshot {
  version: 1;
  start: number;
  end: number;
  /** Lowest id never handed out. */
  next: number;
  leases: LeaseRecord[];
  /** Ids given back (released or reclaimed), free for reuse. */
  released: number[];
  /**
   * Ids the allocator may have handed out since this snapshot was written, without their lease
   * in `leases` (absent in files of older versions: none). Quarantined when loaded.
   */
  reserved?: number[];
}

export interface LeaseRecord {
  id: number;
  /** Identity key of the device (see `deviceKey`). */
  key: string;
  /** Unix seconds after which the lease may be reclaimed. */
  expiresAt: number;
}

export interface IdAllocatorOptions {
  /** First id handed out (default 1; 0 is refused by devices as `INVALID_ID`). */
  start?: number;
  /** Last id handed out (default 4294967294; 4294967295 means "unassigned" on the wire). */
  end?: number;
  /** Lease length in seconds (default 30 days). */
  leaseSeconds?: number;
  /** Unix time in seconds (default `Date.now() / 1000`). */
  clock?: () => number;
  /** Persistence (default none: leases live in memory only). Use `JsonFileStore` for a lease file. */
  store?: SnapshotStore<LeaseSnapshot> | null;
  /** Most leases held at once, whatever the range (default 65536). */
  maxLeases?: number;
  /**
   * Most requests from unknown devices per window (default 1024 per 60 s), answered with a new
   * lease or `EXHAUSTED`; renewals are not counted.
   */
  newLeaseLimit?: { max: number; windowSeconds: number };
  /**
   * Ids reserved per durable write ahead of use (default 64, see the module comment): the disk
   * is written once per this many new leases, and a crash holds back at most this many unused
   * ids (plus the size of a pool being handed out) for `leaseSeconds`.
   */
  reserveIds?: number;
  /**
   * New leases and releases are written at most this often, in seconds (default 1): the first
   * change after a quiet period is written at once, a burst is written at the end of the interval.
   */
  saveIntervalSeconds?: number;
  /** Renewals alone are written at most this often, in seconds (default 60). */
  renewSaveIntervalSeconds?: number;
  /** Expired leases are swept at most this often, in seconds (default 3600), and on exhaustion. */
  reclaimIntervalSeconds?: number;
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

export const DEFAULT_LEASE_SECONDS = 30 * 86400;
export const DEFAULT_MAX_LEASES = 65536;
export const DEFAULT_NEW_LEASE_LIMIT = Object.freeze({ max: 1024, windowSeconds: 60 });
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
 * else the whole meta (keys sorted), else the sender address and the current whole second (so
 * an anonymous request is deduplicated only within one second, as in the reference).
 */
export function deviceKey(meta: unknown, addr: PeerAddress | null | undefined, nowSeconds: number): string {
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
  if (key === undefined) key = `anon=${addressText(addr)}@${Math.floor(nowSeconds)}`;
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

function positiveNumber(name: string, v: number): number {
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new HandshakeFieldError(name, `${String(v)} is not a positive number`);
  return v;
}

const SNAPSHOT_FIELDS = new Set(['version', 'start', 'end', 'next', 'leases', 'released', 'reserved']);

function isWireId(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 0xfffffffe;
}

function checkId(name: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 1 && v <= 0xfffffffe)) {
    throw new HandshakeFieldError(name, `${String(v)} is not an integer in 1..4294967294`);
  }
  return v;
}

export class IdAllocator {
  readonly start: number;
  readonly end: number;
  readonly leaseSeconds: number;
  readonly maxLeases: number;
  readonly newLeaseLimit: { readonly max: number; readonly windowSeconds: number };
  readonly #clock: () => number;
  readonly #store: SnapshotStore<LeaseSnapshot> | null;
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
  /** Ids whose reservation is on disk and that were not handed out yet. */
  #reserved = new Set<number>();
  /** A pool being handed out asks for a reservation this large at once. */
  #reserveHint = 0;
  #reclaimSteps = 0;
  #next: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #windowCount = 0;
  #dirty = false;
  #lastSave = Number.NEGATIVE_INFINITY;
  #lastReclaim: number;
  #batching = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerUrgent = false;
  readonly #writeBehind: boolean;
  #reserving: Promise<void> | null = null;
  /** The block a running `reserveAhead` is flushing: every snapshot written meanwhile lists it too. */
  #reservingBatch: number[] = [];
  /** The error of the last deferred write that failed (deferred writes cannot throw to a caller). */
  lastSaveError: unknown;

  constructor(options: IdAllocatorOptions = {}) {
    this.start = checkId('start', options.start ?? 1);
    this.end = checkId('end', options.end ?? 0xfffffffe);
    if (this.end < this.start) throw new HandshakeFieldError('end', `${this.end} is below start ${this.start}`);
    this.leaseSeconds = positiveNumber('leaseSeconds', options.leaseSeconds ?? DEFAULT_LEASE_SECONDS);
    this.maxLeases = positiveNumber('maxLeases', options.maxLeases ?? DEFAULT_MAX_LEASES);
    const lim = options.newLeaseLimit ?? DEFAULT_NEW_LEASE_LIMIT;
    this.newLeaseLimit = Object.freeze({
      max: positiveNumber('newLeaseLimit.max', lim.max),
      windowSeconds: positiveNumber('newLeaseLimit.windowSeconds', lim.windowSeconds),
    });
    this.#clock = options.clock ?? (() => Date.now() / 1000);
    this.#store = options.store ?? null;
    this.#writeBehind = isWriteBehind(this.#store);
    this.#saveInterval = options.saveIntervalSeconds ?? 1;
    this.#renewSaveInterval = options.renewSaveIntervalSeconds ?? 60;
    this.#reclaimInterval = options.reclaimIntervalSeconds ?? 3600;
    const reserve = options.reserveIds ?? DEFAULT_RESERVE_IDS;
    if (!(Number.isInteger(reserve) && reserve >= 1)) throw new HandshakeFieldError('reserveIds', `${String(reserve)} is not a positive integer`);
    this.#reserveIds = reserve;
    this.#next = this.start;
    this.#lastReclaim = this.#clock();
    this.#load();
  }

  #load(): void {
    const snap = this.#store?.load() as unknown;
    if (snap === undefined) return;
    const where = (this.#store as { path?: string }).path ?? 'lease store';
    const bad = (detail: string): never => {
      throw new StoreError(where, `not a lease snapshot (version 1): ${detail}`);
    };
    if (snap === null || typeof snap !== 'object' || Array.isArray(snap)) bad(`expected an object, got ${snap === null ? 'null' : Array.isArray(snap) ? 'a list' : typeof snap}`);
    const o = snap as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!SNAPSHOT_FIELDS.has(k)) bad(`unknown field ${JSON.stringify(k)}`);
    if (o['version'] !== 1) bad(`version is ${JSON.stringify(o['version'])}`);
    for (const k of ['start', 'end', 'next'] as const) if (!Number.isInteger(o[k])) bad(`${k} is not an integer`);
    const idList = (k: 'released' | 'reserved'): number[] => {
      const v = o[k];
      if (v === undefined && k === 'reserved') return [];
      if (!Array.isArray(v)) return bad(`${k} is not a list`);
      for (const id of v) if (!isWireId(id)) bad(`${k} holds ${JSON.stringify(id)}, not an id`);
      return v as number[];
    };
    const released = idList('released');
    const reserved = idList('reserved');
    if (!Array.isArray(o['leases'])) bad('leases is not a list');
    const leases: LeaseRecord[] = [];
    for (const l of o['leases'] as unknown[]) {
      const r = l as Partial<LeaseRecord> | null;
      if (!r || typeof r !== 'object' || !isWireId(r.id) || typeof r.key !== 'string' || typeof r.expiresAt !== 'number' || !Number.isFinite(r.expiresAt) || Object.keys(r).length !== 3) {
        throw new StoreError(where, `bad lease record ${JSON.stringify(l)}`);
      }
      leases.push({ id: r.id, key: r.key, expiresAt: r.expiresAt });
    }
    for (const rec of leases) {
      if (this.#byId.has(rec.id) || this.#byKey.has(rec.key)) throw new StoreError(where, `duplicate lease for id ${rec.id}`);
      this.#addLease(rec);
    }
    this.#next = Math.max(this.start, o['next'] as number);
    // Reserved ids without a lease may have reached a device before the crash: hold them.
    const now = this.#clock();
    let quarantined = 0;
    for (const id of reserved) {
      if (this.#byId.has(id)) continue;
      this.#addLease({ id, key: `${SENT_ID_KEY_PREFIX}${id}`, expiresAt: now + this.leaseSeconds });
      quarantined++;
    }
    this.quarantined = quarantined;
    for (const id of released) {
      // A range that shrank since the snapshot keeps its leases but stops reusing ids outside it.
      if (id >= this.start && id <= this.end && id < this.#next && !this.#byId.has(id)) this.#released.push(id);
    }
    if (quarantined > 0 && this.#store) this.#dirty = true;
  }

  /** How many reserved ids were found without their lease when the store was loaded (held as sent). */
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
   * `RATE_LIMITED` when too many new leases were created in the current window.
   */
  allocate(key: string): AllocateResult {
    const now = this.#clock();
    const known = this.#byKey.get(key);
    if (known) {
      this.#renew(known, now);
      this.#markDirty(now, false);
      return { ok: true, id: known.id, renewed: true };
    }
    if (now - this.#windowStart >= this.newLeaseLimit.windowSeconds || now < this.#windowStart) {
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
    this.#addLease({ id, key, expiresAt: now + this.leaseSeconds });
    this.#markDirty(now, true);
    this.#maybeTopUp();
    return { ok: true, id, renewed: false };
  }

  /**
   * `count` distinct ids for a gateway, one lease per slot (`key#0`, `key#1`...), so asking again
   * returns the same ids. The pool may come back short; `shortBy` says why.
   */
  allocatePool(key: string, count: number): PoolResult {
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
      if (this.#dirty) this.#markDirty(this.#clock(), true);
    }
  }

  /** Renews the lease of `id` (the device was seen). False when `id` has no lease. */
  touch(id: number): boolean {
    const l = this.#byId.get(id);
    if (!l) return false;
    const now = this.#clock();
    this.#renew(l, now);
    this.#markDirty(now, false);
    return true;
  }

  /** Ends the lease of `id`; the id becomes free for reuse. False when it had no lease. */
  release(id: number): boolean {
    const l = this.#byId.get(id);
    if (!l) return false;
    this.#byId.delete(id);
    this.#byKey.delete(l.key);
    if (id >= this.start && id <= this.end) this.#released.push(id);
    this.#markDirty(this.#clock(), true);
    return true;
  }

  /** Ends every lease past its expiry, earliest first; returns how many. O(k log n) for k due. */
  reclaimExpired(): number {
    const now = this.#clock();
    this.#lastReclaim = now;
    let n = 0;
    const heap = this.#expiry;
    for (let e = heap.peek(); e !== undefined && e.at <= now; e = heap.peek()) {
      heap.pop();
      this.#reclaimSteps++;
      const l = e.rec;
      if (this.#byId.get(l.id) !== l) continue; // released meanwhile
      if (l.expiresAt > now) {
        // Renewed since it was filed: file it again under its real expiry.
        e.at = l.expiresAt;
        heap.push(e);
        continue;
      }
      this.#byId.delete(l.id);
      this.#byKey.delete(l.key);
      if (l.id >= this.start && l.id <= this.end) this.#released.push(l.id);
      n++;
    }
    if (n > 0) this.#markDirty(now, true);
    return n;
  }

  /** Writes pending changes now (to a write-behind store: handed to it; `persist` waits for the disk). */
  flush(): void {
    if (this.#dirty) this.#save(this.#clock());
  }

  /** `flush`, then, for a write-behind store, waits until the store holds it durably. */
  async persist(): Promise<void> {
    this.flush();
    if (this.#writeBehind) await (this.#store as unknown as { flush(): Promise<void> }).flush();
  }

  /**
   * Writes pending changes and stops the deferred-write timer. The reservation is given up (no
   * reserved id is held as possibly sent after this restart); allocating afterwards reserves
   * again.
   */
  close(): void {
    if (this.#store && this.#reserved.size > 0) {
      this.#reserved = new Set();
      this.#dirty = true;
    }
    this.flush();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The state as persisted. */
  snapshot(): LeaseSnapshot {
    const leases: LeaseRecord[] = [];
    for (const l of this.#byId.values()) leases.push({ id: l.id, key: l.key, expiresAt: l.expiresAt });
    const released = [...this.#released.items];
    const reserved = [...this.#reserved];
    for (const id of this.#reservingBatch) if (!this.#reserved.has(id)) reserved.push(id);
    return { version: 1, start: this.start, end: this.end, next: this.#next, leases, released, reserved };
  }

  #addLease(rec: LeaseRecord): void {
    this.#byId.set(rec.id, rec);
    this.#byKey.set(rec.key, rec);
    this.#expiry.push({ at: rec.expiresAt, rec });
    // Entries of released leases wait in the heap until they come due; rebuild before they
    // outnumber the leases, so memory stays O(leases).
    if (this.#expiry.items.length > 2 * this.#byId.size + 1024) this.#rebuildExpiry();
  }

  #renew(l: LeaseRecord, now: number): void {
    const at = now + this.leaseSeconds;
    // A clock that went back shortens the lease: its entry would be filed too late.
    if (at < l.expiresAt) this.#expiry.push({ at, rec: l });
    l.expiresAt = at;
  }

  #rebuildExpiry(): void {
    const items = this.#expiry.items;
    items.length = 0;
    for (const rec of this.#byId.values()) items.push({ at: rec.expiresAt, rec });
    items.sort((x, y) => x.at - y.at); // a sorted array is a valid min-heap
  }

  /** The id `#takeFreeId` would hand out next, without taking it. */
  #peekFreeId(): number | undefined {
    const r = this.#released.items[0];
    if (r !== undefined) return r;
    // Skip ids still held, e.g. leases loaded from a snapshot of a wider range or quarantined.
    while (this.#next <= this.end && this.#byId.has(this.#next)) this.#next++;
    return this.#next <= this.end ? this.#next : undefined;
  }

  #takeFreeId(): number | undefined {
    if (this.#byId.size >= this.maxLeases) return undefined;
    const id = this.#peekFreeId();
    if (id === undefined) return undefined;
    if (this.#store && !this.#reserved.has(id)) this.#reserve();
    if (this.#released.items[0] === id) this.#released.pop();
    else this.#next = id + 1;
    this.#reserved.delete(id);
    return id;
  }

  // Write-behind stores: reserve the next block in the background so the next requests find
  // their ids reserved already. Only once the id taken has its lease: the snapshot the top-up
  // writes must hold every id handed out, as a lease or as reserved.
  #maybeTopUp(): void {
    if (!this.#writeBehind || this.#reserving !== null || this.#reserved.size >= this.#reserveIds / 2) return;
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

  /** Write-behind stores: whether handing out `count` new ids now would need a reservation first. */
  needsReservation(count = 1): boolean {
    if (!this.#writeBehind) return false;
    for (const id of this.#freeIds(Math.min(count, this.maxLeases))) if (!this.#reserved.has(id)) return true;
    return false;
  }

  /**
   * Write-behind stores: reserves (at least `count`, at least `reserveIds`) of the next free ids
   * and resolves once the reservation is flushed; resolves at once when they are reserved
   * already or the store is not write-behind. Rejects with `StoreError` when the store cannot
   * flush (nothing was handed out from it). One reservation runs at a time.
   */
  async reserveAhead(count = 1): Promise<void> {
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
    const store = this.#store as SnapshotStore<LeaseSnapshot> & { flush(): Promise<void> };
    // The ids reserved and unused stay in the new block; the block extends past them.
    const batch = this.#freeIds(Math.max(this.#reserveIds + this.#reserved.size, count, this.#reserveHint));
    this.#reservingBatch = batch;
    try {
      store.save(this.snapshot());
      this.#dirty = false;
      this.#lastSave = this.#clock();
      await store.flush();
      // Only now may these ids leave; ids handed out meanwhile are leases already.
      for (const id of batch) this.#reserved.add(id);
    } finally {
      this.#reservingBatch = [];
    }
  }

  /**
   * Durably records the next ids that may be handed out (lowest free first, as they will be),
   * before any of them is. Throws `StoreError` when the store cannot save; nothing changes then.
   */
  #reserve(): void {
    if (this.#writeBehind) {
      throw new StoreError(
        (this.#store as { path?: string }).path ?? 'lease store',
        'no flushed id reservation ahead (the store is write-behind): await reserveAhead() or dispatch through classifyAndDispatchAsync',
      );
    }
    const batch = this.#freeIds(Math.max(this.#reserveIds, this.#reserveHint));
    const snap = this.snapshot();
    snap.reserved = batch;
    this.#store!.save(snap);
    this.#reserved = new Set(batch);
    // The snapshot just written holds every lease too.
    this.#dirty = false;
    this.#lastSave = this.#clock();
  }

  #markDirty(now: number, urgent: boolean): void {
    if (!this.#store) return;
    this.#dirty = true;
    if (this.#batching) return;
    const interval = urgent ? this.#saveInterval : this.#renewSaveInterval;
    const since = now - this.#lastSave;
    if (since >= interval || since < 0) {
      this.#save(now);
    } else if (this.#timer === undefined || (urgent && !this.#timerUrgent)) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timerUrgent = urgent;
      // A burst: write once at the end of the interval rather than once per change.
      const t = setTimeout(() => {
        this.#timer = undefined;
        try {
          this.flush();
        } catch (e) {
          this.lastSaveError = e;
        }
      }, Math.ceil((interval - since) * 1000));
      (t as { unref?: () => void }).unref?.();
      this.#timer = t;
    }
  }

  #save(now: number): void {
    this.#store?.save(this.snapshot());
    this.#dirty = false;
    this.#lastSave = now;
  }
}
