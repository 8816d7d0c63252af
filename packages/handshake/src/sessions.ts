/**
 * Per-AID secure-session records, bounded (least recently used evicted first) and expiring.
 *
 * States: INIT → PLAINTEXT_SENT (sender: first plain FULL sent, key pending) → DICT_READY (both
 * sides hold the key) → SECURE (the receiver decoded a secure frame and said so).
 *
 * Two tables, so that traffic nobody vouches for cannot push out a working session:
 * - established: sessions this node started itself (sender side, `noteLocalPlaintextSent`) and
 *   receiver sessions that decoded a secure frame. Bounded by `maxSessions`; when full, new ones
 *   are refused (never evicted to make room); they leave only by expiry or `resetSession`.
 * - pending: receiver sessions opened by a plain FULL (key derived, SECURE_DICT_READY answered)
 *   that have not yet decoded a secure frame. Any address can open one, so their budget
 *   (`maxPendingSessions`) is small and separate; when full, new ones are refused until some
 *   expire or are promoted, which leaves handshakes in progress intact.
 */
import { StoreError } from './errors.js';
import type { U64 } from './packets.js';
import { toHex } from './hex.js';
import type { SnapshotStore } from './store.js';

export type SessionState = 'INIT' | 'PLAINTEXT_SENT' | 'DICT_READY' | 'SECURE';

export interface SecureSession {
  state: SessionState;
  /** Both sides hold the session dictionary (key): outbound frames may be secure. */
  dictReady: boolean;
  /** The peer decoded a secure frame (receiver side), or confirmed so (sender side). */
  decryptConfirmed: boolean;
  /** The session key in use. */
  key: Uint8Array | null;
  /** Sender side: the key of its first plaintext FULL, waiting for SECURE_DICT_READY. */
  pendingKey: Uint8Array | null;
  /** The timestamp `key` derives from. */
  firstPlaintextTs: U64 | null;
  /** The timestamp `pendingKey` derives from. */
  pendingTimestamp: U64 | null;
  /** Unix seconds of the last lookup or change. */
  lastSeen: number;
  /**
   * Anti-replay watermark: the newest timestamp of a secure frame accepted under this session
   * (receiver side; null before the first). Kept with the key so that it lives, expires and
   * persists with it, and no other traffic can push it out.
   */
  lastSecureTs: U64 | null;
  /**
   * Tags (a 32-bit hash of the whole frame) of the secure frames accepted with `lastSecureTs`, at
   * most `MAX_SECURE_TAGS`, so that `reject-old` also knows an exact copy of one of them.
   */
  lastSecureTags: number[];
}

/** Most frame tags kept per session for the latest timestamp. */
export const MAX_SECURE_TAGS = 8;

/** A session as persisted: keys in hex, timestamps above 2^53 as decimal strings. */
export interface StoredSession {
  state: SessionState;
  dictReady: boolean;
  decryptConfirmed: boolean;
  key: string | null;
  pendingKey: string | null;
  firstPlaintextTs: number | string | null;
  pendingTimestamp: number | string | null;
  lastSeen: number;
  /** Absent in files written before the watermark was kept (read as none). */
  lastSecureTs?: number | string | null;
  lastSecureTags?: number[];
}

export interface SessionSnapshot {
  version: 1;
  sessions: Record<string, StoredSession>;
}

export function newSession(now: number): SecureSession {
  return {
    state: 'INIT',
    dictReady: false,
    decryptConfirmed: false,
    key: null,
    pendingKey: null,
    firstPlaintextTs: null,
    pendingTimestamp: null,
    lastSeen: now,
    lastSecureTs: null,
    lastSecureTags: [],
  };
}

const STATES: ReadonlySet<string> = new Set(['INIT', 'PLAINTEXT_SENT', 'DICT_READY', 'SECURE']);

/** A stored session key: 32 bytes (a SHA-256 digest) in hex, or null. */
function fromHex(where: string, s: unknown): Uint8Array | null {
  if (s === null) return null;
  if (typeof s !== 'string' || s.length !== 64 || !/^[0-9a-f]*$/i.test(s)) throw new StoreError(where, `bad key ${JSON.stringify(s).slice(0, 80)}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function storeTs(v: U64 | null): number | string | null {
  return typeof v === 'bigint' ? v.toString() : v;
}

function loadTs(where: string, v: unknown): U64 | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  if (typeof v === 'string' && /^[0-9]{1,20}$/.test(v)) return BigInt(v);
  throw new StoreError(where, `bad timestamp ${JSON.stringify(v)}`);
}

function loadTags(where: string, v: unknown): number[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > MAX_SECURE_TAGS || !v.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
    throw new StoreError(where, `bad lastSecureTags ${JSON.stringify(v).slice(0, 80)}`);
  }
  return v.slice();
}

/** Marks "no newest key" in `LruMap` (no key of the map can be this object). */
const NO_KEY: unique symbol = Symbol('none');

/**
 * A map that forgets its least recently used entries beyond `max` (strategy counters, plain
 * anti-replay). The order is the Map's insertion order; an access moves its entry to the end only
 * when it is not already the newest, so a node that sends for one id (the common case: its own)
 * touches the Map once per access instead of deleting and re-inserting.
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>();
  /** The key at the end of the order (most recently used), or `NO_KEY` when unknown or empty. */
  #newest: K | typeof NO_KEY = NO_KEY;
  constructor(readonly max: number) {}
  get size(): number {
    return this.#map.size;
  }
  /** Looks up without changing the order. */
  peek(k: K): V | undefined {
    return this.#map.get(k);
  }
  /** Looks up and marks as most recently used. */
  get(k: K): V | undefined {
    const v = this.#map.get(k);
    if (v !== undefined && k !== this.#newest) {
      this.#map.delete(k);
      this.#map.set(k, v);
      this.#newest = k;
    }
    return v;
  }
  set(k: K, v: V): void {
    if (k === this.#newest) {
      // Already last: Map.set of an existing key keeps its place.
      this.#map.set(k, v);
      return;
    }
    this.#map.delete(k);
    this.#map.set(k, v);
    this.#newest = k;
    while (this.#map.size > this.max) {
      const oldest = this.#map.keys().next().value as K;
      this.#map.delete(oldest);
      if (oldest === this.#newest) this.#newest = NO_KEY;
    }
  }
  delete(k: K): boolean {
    if (k === this.#newest) this.#newest = NO_KEY;
    return this.#map.delete(k);
  }
  clear(): void {
    this.#map.clear();
    this.#newest = NO_KEY;
  }
  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}

/** Where a session lives: see the module comment. */
export type SessionTier = 'established' | 'pending';

/** Which table a loaded session belongs to: our own (pending key) or confirmed ones are established. */
function tierOf(s: SecureSession): SessionTier {
  return s.pendingKey !== null || s.state === 'PLAINTEXT_SENT' || s.state === 'SECURE' ? 'established' : 'pending';
}

/** Secure sessions by AID in two bounded tables (established, pending), with expiry and throttled persistence. */
export class SessionTable {
  // Insertion order is creation (or promotion) order; nothing is evicted to make room.
  readonly #established = new Map<number, SecureSession>();
  readonly #pending = new Map<number, SecureSession>();
  readonly #maxEstablished: number;
  readonly #maxPending: number;
  readonly #store: SnapshotStore<SessionSnapshot> | undefined;
  readonly #saveInterval: number;
  #dirty = false;
  #lastSave = Number.NEGATIVE_INFINITY;

  constructor(maxEstablished: number, maxPending: number, store: SnapshotStore<SessionSnapshot> | undefined, saveIntervalSeconds: number) {
    this.#maxEstablished = maxEstablished;
    this.#maxPending = maxPending;
    this.#store = store;
    this.#saveInterval = saveIntervalSeconds;
    if (store) this.#load(store);
  }

  /** Sessions held in both tables. */
  get size(): number {
    return this.#established.size + this.#pending.size;
  }

  get pendingSize(): number {
    return this.#pending.size;
  }

  #load(store: SnapshotStore<SessionSnapshot>): void {
    const snap = store.load();
    if (snap === undefined) return;
    const where = (store as { path?: string }).path ?? 'session store';
    if (!snap || typeof snap !== 'object' || snap.version !== 1 || !snap.sessions || typeof snap.sessions !== 'object') {
      throw new StoreError(where, 'not a session snapshot (version 1)');
    }
    const rows = Object.entries(snap.sessions).sort((a, b) => (a[1]?.lastSeen ?? 0) - (b[1]?.lastSeen ?? 0));
    for (const [aidText, s] of rows) {
      const aid = Number(aidText);
      if (!(Number.isInteger(aid) && aid >= 0 && aid <= 0xffffffff) || !s || !STATES.has(s.state) || typeof s.lastSeen !== 'number' || !Number.isFinite(s.lastSeen)) {
        throw new StoreError(where, `bad session for aid ${aidText}`);
      }
      const session: SecureSession = {
        state: s.state,
        dictReady: s.dictReady === true,
        decryptConfirmed: s.decryptConfirmed === true,
        key: fromHex(where, s.key ?? null),
        pendingKey: fromHex(where, s.pendingKey ?? null),
        firstPlaintextTs: loadTs(where, s.firstPlaintextTs),
        pendingTimestamp: loadTs(where, s.pendingTimestamp),
        lastSeen: s.lastSeen,
        lastSecureTs: loadTs(where, s.lastSecureTs),
        lastSecureTags: loadTags(where, s.lastSecureTags),
      };
      // A file written with larger limits keeps its most recently seen sessions.
      const table = tierOf(session) === 'established' ? this.#established : this.#pending;
      table.delete(aid);
      table.set(aid, session);
      const max = table === this.#established ? this.#maxEstablished : this.#maxPending;
      if (table.size > max) table.delete(table.keys().next().value as number);
    }
  }

  /** Without refreshing it. */
  peek(aid: number): SecureSession | undefined {
    return this.#established.get(aid) ?? this.#pending.get(aid);
  }

  /** Looks up and refreshes `lastSeen`. */
  get(aid: number, now: number): SecureSession | undefined {
    const s = this.peek(aid);
    if (s) s.lastSeen = now;
    return s;
  }

  /** Which table holds `aid`, or `null`. */
  tier(aid: number): SessionTier | null {
    return this.#established.has(aid) ? 'established' : this.#pending.has(aid) ? 'pending' : null;
  }

  /**
   * A new session in `tier` (the caller checked there is none for `aid`), or `null` when that
   * table is full: room comes back through expiry (the manager's periodic sweep), never by
   * evicting a session that may be in use.
   */
  create(aid: number, tier: SessionTier, now: number): SecureSession | null {
    const table = tier === 'established' ? this.#established : this.#pending;
    if (table.size >= (tier === 'established' ? this.#maxEstablished : this.#maxPending)) return null;
    const s = newSession(now);
    table.set(aid, s);
    return s;
  }

  /** Moves a pending session to the established table; false when that is full (it stays pending). */
  promote(aid: number): boolean {
    const s = this.#pending.get(aid);
    if (!s) return this.#established.has(aid);
    if (this.#established.size >= this.#maxEstablished) return false;
    this.#pending.delete(aid);
    this.#established.set(aid, s);
    return true;
  }

  delete(aid: number): boolean {
    return this.#established.delete(aid) || this.#pending.delete(aid);
  }

  /** Forgets sessions idle for `expireSeconds`; returns how many. */
  expire(now: number, expireSeconds: number): number {
    return this.#expireFrom(this.#established, now, expireSeconds) + this.#expireFrom(this.#pending, now, expireSeconds);
  }

  #expireFrom(table: Map<number, SecureSession>, now: number, expireSeconds: number): number {
    let n = 0;
    for (const [aid, s] of table) {
      if (now - s.lastSeen >= expireSeconds) {
        table.delete(aid);
        n++;
      }
    }
    if (n > 0) this.#dirty = true;
    return n;
  }

  /** Records a change; writes when the last write is `saveIntervalSeconds` old. */
  changed(now: number): void {
    this.#dirty = true;
    this.maybeSave(now);
  }

  maybeSave(now: number): void {
    if (!this.#store || !this.#dirty) return;
    const since = now - this.#lastSave;
    if (since >= this.#saveInterval || since < 0) this.save(now);
  }

  save(now: number): void {
    if (!this.#store) return;
    this.#store.save(this.snapshot());
    this.#dirty = false;
    this.#lastSave = now;
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  snapshot(): SessionSnapshot {
    const sessions: Record<string, StoredSession> = {};
    for (const table of [this.#established, this.#pending]) {
      for (const [aid, s] of table) {
        sessions[String(aid)] = {
          state: s.state,
          dictReady: s.dictReady,
          decryptConfirmed: s.decryptConfirmed,
          key: s.key && toHex(s.key),
          pendingKey: s.pendingKey && toHex(s.pendingKey),
          firstPlaintextTs: storeTs(s.firstPlaintextTs),
          pendingTimestamp: storeTs(s.pendingTimestamp),
          lastSeen: s.lastSeen,
          lastSecureTs: storeTs(s.lastSecureTs),
          lastSecureTags: s.lastSecureTags.slice(),
        };
      }
    }
    return { version: 1, sessions };
  }
}
