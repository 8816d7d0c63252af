/**
 * The id allocator's leases as records of the one store contract (`@opensynaptic/store`), kind
 * `leases`: one record per lease, keyed by the id in decimal (`"1000"`), and one record of the
 * allocator's own state under `ALLOCATOR_STATE_KEY`. Per-record writes keep a flush as small as
 * the change for stores that write records apart (SQLite, PostgreSQL, a `files` layout); a
 * `snapshot` layout of a file store keeps the whole kind in one file.
 *
 * Lease snapshots of earlier versions (`JsonFileStore` files of version 1, times in seconds, and
 * `IdAllocator.snapshot()` of version 2, times in ms) convert to records with
 * `leaseSnapshotWrites`.
 */
import type { StoreWrite } from '@opensynaptic/store';
import { StoreError } from './errors.js';

/** The store key of the allocator's state record (no id is spelt so). */
export const ALLOCATOR_STATE_KEY = '~state';

/** A lease as stored under its id. */
export interface StoredLease {
  /** Identity key of the device (see `deviceKey`). */
  key: string;
  /** When the lease may be reclaimed, ms since the epoch. */
  expiresAtMs: number;
}

/** The allocator's state as stored under `ALLOCATOR_STATE_KEY`. */
export interface StoredAllocatorState {
  version: 2;
  /** Lowest id never handed out. */
  next: number;
  /** Ids given back (released or reclaimed), free for reuse, lowest first. */
  released: number[];
  /**
   * Ids the allocator may have handed out without their lease record being durable yet: held as
   * possibly sent (quarantined) when the store is opened again without their lease.
   */
  reserved: number[];
}

/** A record of the `leases` kind. */
export type StoredLeaseRecord = StoredLease | StoredAllocatorState;

/** The kinds of a lease store. */
export interface LeaseKinds {
  leases: StoredLeaseRecord;
}

/** A lease: its id, the device's identity key and its expiry in ms. */
export interface LeaseRecord {
  id: number;
  /** Identity key of the device (see `deviceKey`). */
  key: string;
  /** When the lease may be reclaimed, ms since the epoch (snapshots of version 1 had `expiresAt` in seconds). */
  expiresAtMs: number;
}

/** The whole state of an allocator in one object: what `IdAllocator.snapshot()` gives, and the shape of the old lease files. */
export interface LeaseSnapshot {
  /** 2: times in ms (version 1, read by `leaseSnapshotWrites`, had `expiresAt` in seconds). */
  version: 2;
  start: number;
  end: number;
  /** Lowest id never handed out. */
  next: number;
  leases: LeaseRecord[];
  /** Ids given back (released or reclaimed), free for reuse. */
  released: number[];
  /** Ids the allocator may have handed out without their lease being durable (absent in old files: none). */
  reserved?: number[];
}

/** Whether `v` is an id the wire can carry as an assigned id (1..4294967294). */
export function isWireId(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 0xfffffffe;
}

const ID_KEY = /^[1-9][0-9]{0,9}$/;

/** The id a lease record's key names, or `undefined` for any other key. */
export function leaseIdOfKey(key: string): number | undefined {
  if (!ID_KEY.test(key)) return undefined;
  const id = Number(key);
  return isWireId(id) ? id : undefined;
}

/** Throws `StoreError` unless `value` is a lease record (exactly `key` and `expiresAtMs`). */
export function checkStoredLease(where: string, id: string, value: unknown): StoredLease {
  const r = value as Record<string, unknown> | null;
  if (
    r === null ||
    typeof r !== 'object' ||
    Array.isArray(r) ||
    typeof r.key !== 'string' ||
    typeof r.expiresAtMs !== 'number' ||
    !Number.isFinite(r.expiresAtMs) ||
    Object.keys(r).length !== 2
  ) {
    throw new StoreError(where, `bad lease record for id ${id}: ${JSON.stringify(value)?.slice(0, 120)}`);
  }
  return { key: r.key, expiresAtMs: r.expiresAtMs };
}

/** Throws `StoreError` unless `value` is the allocator's state record. */
export function checkStoredState(where: string, value: unknown): StoredAllocatorState {
  const r = value as Record<string, unknown> | null;
  const bad = (detail: string): never => {
    throw new StoreError(where, `bad allocator state record (${ALLOCATOR_STATE_KEY}): ${detail}`);
  };
  if (r === null || typeof r !== 'object' || Array.isArray(r)) return bad('expected an object');
  for (const k of Object.keys(r)) if (k !== 'version' && k !== 'next' && k !== 'released' && k !== 'reserved') bad(`unknown field ${JSON.stringify(k)}`);
  if (r.version !== 2) bad(`version is ${JSON.stringify(r.version)}`);
  if (!Number.isSafeInteger(r.next) || (r.next as number) < 1 || (r.next as number) > 0xffffffff) bad('next is not an id');
  for (const k of ['released', 'reserved'] as const) if (!Array.isArray(r[k]) || !(r[k] as unknown[]).every(isWireId)) bad(`${k} is not a list of ids`);
  return { version: 2, next: r.next as number, released: (r.released as number[]).slice(), reserved: (r.reserved as number[]).slice() };
}

const SNAPSHOT_FIELDS = new Set(['version', 'start', 'end', 'next', 'leases', 'released', 'reserved']);

/**
 * The store writes that hold a lease snapshot: a lease file of an earlier version
 * (`JsonFileStore`, version 1, `expiresAt` in seconds) or an `IdAllocator.snapshot()` (version
 * 2, `expiresAtMs`). Checked strictly (unknown or renamed fields, bad ids and leases, a lease
 * given twice throw `StoreError`), so a damaged file never starts an allocator over, which would
 * give ids to other devices. Write them to an empty store before `IdAllocator.open()`:
 *
 *     await store.write(leaseSnapshotWrites(JSON.parse(readFileSync('leases.json', 'utf8'))));
 *     await store.flush();
 */
export function leaseSnapshotWrites(snapshot: unknown, where = 'lease snapshot'): StoreWrite<LeaseKinds>[] {
  const bad = (detail: string): never => {
    throw new StoreError(where, `not a lease snapshot (version 1 or 2): ${detail}`);
  };
  if (snapshot === null || typeof snapshot !== 'object' || Array.isArray(snapshot)) {
    bad(`expected an object, got ${snapshot === null ? 'null' : Array.isArray(snapshot) ? 'a list' : typeof snapshot}`);
  }
  const o = snapshot as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!SNAPSHOT_FIELDS.has(k)) bad(`unknown field ${JSON.stringify(k)}`);
  const version = o.version;
  if (version !== 1 && version !== 2) bad(`version is ${JSON.stringify(version)}`);
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
  if (!Array.isArray(o.leases)) bad('leases is not a list');
  // Version 1 kept `expiresAt` in seconds; version 2 keeps `expiresAtMs`.
  const expiryField = version === 1 ? 'expiresAt' : 'expiresAtMs';
  const out: StoreWrite<LeaseKinds>[] = [];
  const ids = new Set<number>();
  const keys = new Set<string>();
  for (const l of o.leases as unknown[]) {
    const r = l as Record<string, unknown> | null;
    const expiry = r?.[expiryField];
    if (!r || typeof r !== 'object' || !isWireId(r.id) || typeof r.key !== 'string' || typeof expiry !== 'number' || !Number.isFinite(expiry) || Object.keys(r).length !== 3) {
      throw new StoreError(where, `bad lease record ${JSON.stringify(l)}`);
    }
    if (ids.has(r.id) || keys.has(r.key)) throw new StoreError(where, `duplicate lease for id ${r.id}`);
    ids.add(r.id);
    keys.add(r.key);
    out.push({ op: 'put', kind: 'leases', key: String(r.id), value: { key: r.key, expiresAtMs: version === 1 ? expiry * 1000 : expiry } });
  }
  const next = Math.min(Math.max(1, o.next as number), 0xffffffff);
  out.push({ op: 'put', kind: 'leases', key: ALLOCATOR_STATE_KEY, value: { version: 2, next, released: released.slice(), reserved: reserved.slice() } });
  return out;
}
