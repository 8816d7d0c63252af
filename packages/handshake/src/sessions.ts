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
import { BackgroundFlush, type Store, type StoreWrite } from '@opensynaptic/store';
import { StoreError } from './errors.js';
import { toHex } from './hex.js';
import type { U64 } from './packets.js';

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
  /** When the session was last looked up or changed, ms since the epoch. */
  lastSeenMs: number;
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

/**
 * A session as persisted (a record of the `sessions` kind, keyed by the AID in decimal): keys in
 * hex, wire timestamps above 2^53 as decimal strings, `lastSeenMs` in ms (session files of
 * version 1 had `lastSeen` in seconds instead; `sessionSnapshotWrites` converts them).
 */
export interface StoredSession {
  state: SessionState;
  dictReady: boolean;
  decryptConfirmed: boolean;
  key: string | null;
  pendingKey: string | null;
  firstPlaintextTs: number | string | null;
  pendingTimestamp: number | string | null;
  lastSeenMs: number;
  /** Absent in files written before the watermark was kept (read as none). */
  lastSecureTs?: number | string | null;
  lastSecureTags?: number[];
}

/** The kinds of a session store. */
export interface SessionKinds {
  sessions: StoredSession;
}

/** Every session in one object: the shape of the old session files, and of `SessionTable.snapshot()`. Version 2: times in ms (version 1 had seconds). */
export interface SessionSnapshot {
  version: 2;
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
    lastSeenMs: now,
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

/** Throws `StoreError` unless `value` is a stored session; `seenMs` is its last-seen time in ms (the field's name differs by version). */
function sessionOf(where: string, aidText: string, value: unknown, seenMs: unknown): SecureSession {
  const s = value as StoredSession | null;
  const aid = Number(aidText);
  if (
    !/^(?:0|[1-9][0-9]{0,9})$/.test(aidText) ||
    !(aid <= 0xffffffff) ||
    !s ||
    typeof s !== 'object' ||
    !STATES.has(s.state) ||
    typeof seenMs !== 'number' ||
    !Number.isFinite(seenMs)
  ) {
    throw new StoreError(where, `bad session for aid ${aidText.slice(0, 40)}`);
  }
  return {
    state: s.state,
    dictReady: s.dictReady === true,
    decryptConfirmed: s.decryptConfirmed === true,
    key: fromHex(where, s.key ?? null),
    pendingKey: fromHex(where, s.pendingKey ?? null),
    firstPlaintextTs: loadTs(where, s.firstPlaintextTs),
    pendingTimestamp: loadTs(where, s.pendingTimestamp),
    lastSeenMs: seenMs,
    lastSecureTs: loadTs(where, s.lastSecureTs),
    lastSecureTags: loadTags(where, s.lastSecureTags),
  };
}

function storedSession(s: SecureSession): StoredSession {
  return {
    state: s.state,
    dictReady: s.dictReady,
    decryptConfirmed: s.decryptConfirmed,
    key: s.key && toHex(s.key),
    pendingKey: s.pendingKey && toHex(s.pendingKey),
    firstPlaintextTs: storeTs(s.firstPlaintextTs),
    pendingTimestamp: storeTs(s.pendingTimestamp),
    lastSeenMs: s.lastSeenMs,
    lastSecureTs: storeTs(s.lastSecureTs),
    lastSecureTags: s.lastSecureTags.slice(),
  };
}

/**
 * The store writes that hold a session snapshot: a session file of an earlier version
 * (`JsonFileStore`, version 1, `lastSeen` in seconds) or a version 2 snapshot (`lastSeenMs`).
 * Checked as the store's own records are (`StoreError` for anything that is not a session).
 * Write them to the store before `OSHandshakeManager.open()`:
 *
 *     await store.write(sessionSnapshotWrites(JSON.parse(readFileSync('secure_sessions.json', 'utf8'))));
 */
export function sessionSnapshotWrites(snapshot: unknown, where = 'session snapshot'): StoreWrite<SessionKinds>[] {
  const snap = snapshot as { version?: unknown; sessions?: unknown } | null;
  const version = snap?.version;
  if (!snap || typeof snap !== 'object' || (version !== 1 && version !== 2) || !snap.sessions || typeof snap.sessions !== 'object') {
    throw new StoreError(where, 'not a session snapshot (version 1 or 2)');
  }
  const out: StoreWrite<SessionKinds>[] = [];
  for (const [aidText, value] of Object.entries(snap.sessions as Record<string, unknown>)) {
    // Version 1 kept `lastSeen` in seconds; version 2 keeps `lastSeenMs`.
    const v = (value as Record<string, unknown> | null)?.[version === 1 ? 'lastSeen' : 'lastSeenMs'];
    const session = sessionOf(where, aidText, value, version === 1 && typeof v === 'number' ? v * 1000 : v);
    out.push({ op: 'put', kind: 'sessions', key: aidText, value: storedSession(session) });
  }
  return out;
}

/**
 * Secure sessions by AID in two bounded tables (established, pending), with expiry and, with a
 * store, throttled write-behind persistence: one record per changed session, written at most
 * once per `saveIntervalMs` (what the throttle holds back goes out with the next change or
 * `sweep`), flushed in the background.
 */
export class SessionTable {
  // Insertion order is creation (or promotion) order; nothing is evicted to make room.
  readonly #established = new Map<number, SecureSession>();
  readonly #pending = new Map<number, SecureSession>();
  readonly #maxEstablished: number;
  readonly #maxPending: number;
  readonly #store: Store<SessionKinds> | undefined;
  readonly #background: BackgroundFlush | undefined;
  readonly #saveInterval: number;
  /** AIDs whose record must be written (a put when the session exists, else a delete). */
  readonly #dirty = new Set<number>();
  #lastSave = Number.NEGATIVE_INFINITY;
  #opened: boolean;
  #opening: Promise<void> | null = null;
  /** The last background write or flush that failed, if any (the next write retries it). */
  lastError: StoreError | undefined;

  constructor(maxEstablished: number, maxPending: number, store: Store<SessionKinds> | undefined, saveIntervalMs: number) {
    this.#maxEstablished = maxEstablished;
    this.#maxPending = maxPending;
    this.#store = store;
    this.#saveInterval = saveIntervalMs;
    this.#opened = store === undefined;
    this.#background = store && new BackgroundFlush(store, (e) => this.#failed(e, 'cannot be flushed'));
  }

  /** Sessions held in both tables. */
  get size(): number {
    return this.#established.size + this.#pending.size;
  }

  get pendingSize(): number {
    return this.#pending.size;
  }

  /** Whether the sessions are loaded (or there is no store). */
  get opened(): boolean {
    return this.#opened;
  }

  /** Loads the stored sessions (once). Rejects with `StoreError` for a store that cannot be read or records that are not sessions. */
  open(): Promise<void> {
    if (this.#opened) return Promise.resolve();
    this.#opening ??= this.#load(this.#store!).catch((e: unknown) => {
      this.#opening = null;
      throw e;
    });
    return this.#opening;
  }

  async #load(store: Store<SessionKinds>): Promise<void> {
    const where = 'session store';
    let keys: string[];
    let values: (StoredSession | undefined)[];
    try {
      keys = await store.keys('sessions');
      values = await store.getMany('sessions', keys);
    } catch (e) {
      throw new StoreError(where, 'cannot be read', { cause: e });
    }
    const rows: [number, SecureSession][] = [];
    for (let i = 0; i < keys.length; i++) {
      const value = values[i];
      if (value === undefined) continue;
      rows.push([Number(keys[i]), sessionOf(where, keys[i]!, value, (value as { lastSeenMs?: unknown }).lastSeenMs)]);
    }
    rows.sort((a, b) => a[1].lastSeenMs - b[1].lastSeenMs);
    for (const [aid, session] of rows) {
      // A store written with larger limits keeps its most recently seen sessions.
      const table = tierOf(session) === 'established' ? this.#established : this.#pending;
      table.delete(aid);
      table.set(aid, session);
      const max = table === this.#established ? this.#maxEstablished : this.#maxPending;
      if (table.size > max) {
        const dropped = table.keys().next().value as number;
        table.delete(dropped);
        this.#dirty.add(dropped);
      }
    }
    this.#opened = true;
  }

  /** Without refreshing it. */
  peek(aid: number): SecureSession | undefined {
    return this.#established.get(aid) ?? this.#pending.get(aid);
  }

  /** Looks up and refreshes `lastSeenMs`. */
  get(aid: number, now: number): SecureSession | undefined {
    const s = this.peek(aid);
    if (s) s.lastSeenMs = now;
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
    const gone = this.#established.delete(aid) || this.#pending.delete(aid);
    if (gone && this.#store) this.#dirty.add(aid);
    return gone;
  }

  /** Forgets sessions idle for `expireMs`; returns how many. */
  expire(now: number, expireMs: number): number {
    return this.#expireFrom(this.#established, now, expireMs) + this.#expireFrom(this.#pending, now, expireMs);
  }

  #expireFrom(table: Map<number, SecureSession>, now: number, expireMs: number): number {
    let n = 0;
    for (const [aid, s] of table) {
      if (now - s.lastSeenMs >= expireMs) {
        table.delete(aid);
        if (this.#store) this.#dirty.add(aid);
        n++;
      }
    }
    return n;
  }

  /** Records a change of `aid`'s session; writes when the last write is `saveIntervalMs` old. */
  changed(aid: number, now: number): void {
    if (!this.#store) return;
    this.#dirty.add(aid);
    this.maybeSave(now);
  }

  /** Writes the changed sessions once `saveIntervalMs` has passed since the last write. */
  maybeSave(now: number): void {
    if (!this.#store || this.#dirty.size === 0) return;
    const since = now - this.#lastSave;
    if (since >= this.#saveInterval || since < 0) {
      this.save(now).then(
        () => this.#background!.request(),
        () => undefined, // kept in lastError by save
      );
    }
  }

  /**
   * Hands every changed session to the store (write-behind, one batch). Resolves when the store
   * took it; on failure the sessions are marked changed again and it rejects with `StoreError`.
   */
  save(now: number): Promise<void> {
    if (!this.#store || this.#dirty.size === 0) return Promise.resolve();
    const aids = [...this.#dirty];
    const batch: StoreWrite<SessionKinds>[] = [];
    for (const aid of aids) {
      const s = this.peek(aid);
      batch.push(s ? { op: 'put', kind: 'sessions', key: String(aid), value: storedSession(s) } : { op: 'delete', kind: 'sessions', key: String(aid) });
    }
    this.#dirty.clear();
    this.#lastSave = now;
    let write: Promise<void>;
    try {
      write = this.#store.write(batch);
    } catch (e) {
      write = Promise.reject(e);
    }
    return write.catch((e: unknown) => {
      for (const aid of aids) this.#dirty.add(aid);
      throw this.#failed(e, 'cannot be written');
    });
  }

  /** `save`, then the store's flush: resolves when every change before it is as durable as the store promises. */
  async flush(now: number): Promise<void> {
    if (!this.#store || !this.#opened) return;
    await this.save(now);
    try {
      await this.#store.flush();
    } catch (e) {
      throw this.#failed(e, 'cannot be flushed');
    }
  }

  /** Resolves once no background flush runs. */
  async idle(): Promise<void> {
    await this.#background?.idle();
  }

  get dirty(): boolean {
    return this.#dirty.size > 0;
  }

  #failed(e: unknown, detail: string): StoreError {
    const error = e instanceof StoreError ? e : new StoreError('session store', detail, { cause: e });
    this.lastError = error;
    return error;
  }

  /** Every session in one object (for inspection). */
  snapshot(): SessionSnapshot {
    const sessions: Record<string, StoredSession> = {};
    for (const table of [this.#established, this.#pending]) for (const [aid, s] of table) sessions[String(aid)] = storedSession(s);
    return { version: 2, sessions };
  }
}
