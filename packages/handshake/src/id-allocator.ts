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
 * at most `maxLeases` leases exist at once (default 65536), and at most `newLeaseLimit.max` new
 * leases are created per `newLeaseLimit.windowSeconds` (default 1024 per 60 s). Renewals of
 * known devices are never limited. Identity keys longer than 128 characters are stored as their
 * SHA-256, so a lease costs well under 200 bytes whatever the meta.
 */
import { HandshakeFieldError, StoreError } from './errors.js';
import { canonicalJson } from './json.js';
import { nodeBuiltin } from '@opensynaptic/internal';
import type { SnapshotStore } from './store.js';

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
  /** Most NEW leases per window (default 1024 per 60 s); renewals are not counted. */
  newLeaseLimit?: { max: number; windowSeconds: number };
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

/** Min-heap of ids, so the lowest free id comes out first. */
class IdHeap {
  readonly items: number[] = [];
  get size(): number {
    return this.items.length;
  }
  push(v: number): void {
    const a = this.items;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }
  pop(): number | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      const n = a.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && a[r]! < a[l]! ? r : l;
        if (a[c]! >= last) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
  delete(v: number): boolean {
    const i = this.items.indexOf(v);
    if (i < 0) return false;
    const rest = this.items.splice(i);
    rest.shift();
    for (const x of rest) this.push(x);
    return true;
  }
}

function positiveNumber(name: string, v: number): number {
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new HandshakeFieldError(name, `${String(v)} is not a positive number`);
  return v;
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
  readonly #released = new IdHeap();
  #next: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #windowCount = 0;
  #dirty = false;
  #lastSave = Number.NEGATIVE_INFINITY;
  #lastReclaim: number;
  #batching = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerUrgent = false;
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
    this.#saveInterval = options.saveIntervalSeconds ?? 1;
    this.#renewSaveInterval = options.renewSaveIntervalSeconds ?? 60;
    this.#reclaimInterval = options.reclaimIntervalSeconds ?? 3600;
    this.#next = this.start;
    this.#lastReclaim = this.#clock();
    this.#load();
  }

  #load(): void {
    const snap = this.#store?.load();
    if (snap === undefined) return;
    const where = (this.#store as { path?: string }).path ?? 'lease store';
    if (!snap || typeof snap !== 'object' || snap.version !== 1 || !Array.isArray(snap.leases) || !Array.isArray(snap.released)) {
      throw new StoreError(where, 'not a lease snapshot (version 1)');
    }
    for (const l of snap.leases) {
      if (!l || !Number.isInteger(l.id) || typeof l.key !== 'string' || typeof l.expiresAt !== 'number') {
        throw new StoreError(where, `bad lease record ${JSON.stringify(l)}`);
      }
      if (this.#byId.has(l.id) || this.#byKey.has(l.key)) throw new StoreError(where, `duplicate lease for id ${l.id}`);
      const rec = { id: l.id, key: l.key, expiresAt: l.expiresAt };
      this.#byId.set(rec.id, rec);
      this.#byKey.set(rec.key, rec);
    }
    const next = Number.isInteger(snap.next) ? snap.next : this.start;
    this.#next = Math.max(this.start, next);
    for (const id of snap.released) {
      // A range that shrank since the snapshot keeps its leases but stops reusing ids outside it.
      if (Number.isInteger(id) && id >= this.start && id <= this.end && id < this.#next && !this.#byId.has(id)) this.#released.push(id);
    }
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
      known.expiresAt = now + this.leaseSeconds;
      this.#markDirty(now, false);
      return { ok: true, id: known.id, renewed: true };
    }
    if (now - this.#windowStart >= this.newLeaseLimit.windowSeconds || now < this.#windowStart) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (this.#windowCount >= this.newLeaseLimit.max) return { ok: false, reason: 'RATE_LIMITED' };
    if (now - this.#lastReclaim >= this.#reclaimInterval) this.reclaimExpired();
    let id = this.#takeFreeId();
    if (id === undefined && this.reclaimExpired() > 0) id = this.#takeFreeId();
    if (id === undefined) return { ok: false, reason: 'EXHAUSTED' };
    const rec: LeaseRecord = { id, key, expiresAt: now + this.leaseSeconds };
    this.#byId.set(id, rec);
    this.#byKey.set(key, rec);
    this.#windowCount++;
    this.#markDirty(now, true);
    return { ok: true, id, renewed: false };
  }

  /**
   * `count` distinct ids for a gateway, one lease per slot (`key#0`, `key#1`...), so asking again
   * returns the same ids. The pool may come back short; `shortBy` says why.
   */
  allocatePool(key: string, count: number): PoolResult {
    const ids: number[] = [];
    this.#batching = true;
    try {
      for (let i = 0; i < count; i++) {
        const r = this.allocate(`${key}#${i}`);
        if (!r.ok) return { ids, shortBy: r.reason };
        ids.push(r.id);
      }
      return { ids };
    } finally {
      this.#batching = false;
      if (this.#dirty) this.#markDirty(this.#clock(), true);
    }
  }

  /** Renews the lease of `id` (the device was seen). False when `id` has no lease. */
  touch(id: number): boolean {
    const l = this.#byId.get(id);
    if (!l) return false;
    const now = this.#clock();
    l.expiresAt = now + this.leaseSeconds;
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

  /** Ends every lease past its expiry; returns how many. */
  reclaimExpired(): number {
    const now = this.#clock();
    this.#lastReclaim = now;
    let n = 0;
    for (const l of this.#byId.values()) {
      if (l.expiresAt <= now) {
        this.#byId.delete(l.id);
        this.#byKey.delete(l.key);
        if (l.id >= this.start && l.id <= this.end) this.#released.push(l.id);
        n++;
      }
    }
    if (n > 0) this.#markDirty(now, true);
    return n;
  }

  /** Writes pending changes now. */
  flush(): void {
    if (this.#dirty) this.#save(this.#clock());
  }

  /** Writes pending changes and stops the deferred-write timer. */
  close(): void {
    this.flush();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The state as persisted. */
  snapshot(): LeaseSnapshot {
    const leases: LeaseRecord[] = [];
    for (const l of this.#byId.values()) leases.push({ id: l.id, key: l.key, expiresAt: l.expiresAt });
    const released = [...this.#released.items];
    return { version: 1, start: this.start, end: this.end, next: this.#next, leases, released };
  }

  #takeFreeId(): number | undefined {
    if (this.#byId.size >= this.maxLeases) return undefined;
    const r = this.#released.pop();
    if (r !== undefined) return r;
    // Skip ids still held, e.g. leases loaded from a snapshot of a wider range.
    while (this.#next <= this.end) {
      const id = this.#next++;
      if (!this.#byId.has(id)) return id;
    }
    return undefined;
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
