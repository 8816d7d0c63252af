/**
 * Per-AID secure-session records, bounded (least recently used evicted first) and expiring.
 *
 * States: INIT → PLAINTEXT_SENT (sender: first plain FULL sent, key pending) → DICT_READY (both
 * sides hold the key) → SECURE (the receiver decoded a secure frame and said so).
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
}

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
  };
}

const STATES: ReadonlySet<string> = new Set(['INIT', 'PLAINTEXT_SENT', 'DICT_READY', 'SECURE']);

function fromHex(where: string, s: unknown): Uint8Array | null {
  if (s === null) return null;
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(s)) throw new StoreError(where, `bad key ${JSON.stringify(s)}`);
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

/** A map that forgets its least recently used entries beyond `max`. */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>();
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
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.#map.delete(k);
    this.#map.set(k, v);
    while (this.#map.size > this.max) {
      const oldest = this.#map.keys().next().value as K;
      this.#map.delete(oldest);
    }
  }
  delete(k: K): boolean {
    return this.#map.delete(k);
  }
  clear(): void {
    this.#map.clear();
  }
  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}

/** Secure sessions by AID, with expiry and throttled persistence. */
export class SessionTable {
  readonly #map: LruMap<number, SecureSession>;
  readonly #store: SnapshotStore<SessionSnapshot> | undefined;
  readonly #saveInterval: number;
  #dirty = false;
  #lastSave = Number.NEGATIVE_INFINITY;

  constructor(max: number, store: SnapshotStore<SessionSnapshot> | undefined, saveIntervalSeconds: number) {
    this.#map = new LruMap(max);
    this.#store = store;
    this.#saveInterval = saveIntervalSeconds;
    if (store) this.#load(store);
  }

  get size(): number {
    return this.#map.size;
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
      if (!(Number.isInteger(aid) && aid >= 0 && aid <= 0xffffffff) || !s || !STATES.has(s.state) || typeof s.lastSeen !== 'number') {
        throw new StoreError(where, `bad session for aid ${aidText}`);
      }
      this.#map.set(aid, {
        state: s.state,
        dictReady: s.dictReady === true,
        decryptConfirmed: s.decryptConfirmed === true,
        key: fromHex(where, s.key ?? null),
        pendingKey: fromHex(where, s.pendingKey ?? null),
        firstPlaintextTs: loadTs(where, s.firstPlaintextTs),
        pendingTimestamp: loadTs(where, s.pendingTimestamp),
        lastSeen: s.lastSeen,
      });
    }
  }

  /** Without refreshing it. */
  peek(aid: number): SecureSession | undefined {
    return this.#map.peek(aid);
  }

  /** Looks up and refreshes `lastSeen`. */
  get(aid: number, now: number): SecureSession | undefined {
    const s = this.#map.get(aid);
    if (s) s.lastSeen = now;
    return s;
  }

  getOrCreate(aid: number, now: number): SecureSession {
    let s = this.get(aid, now);
    if (!s) {
      s = newSession(now);
      this.#map.set(aid, s);
    }
    return s;
  }

  delete(aid: number): boolean {
    return this.#map.delete(aid);
  }

  /** Forgets sessions idle for `expireSeconds`; returns how many. */
  expire(now: number, expireSeconds: number): number {
    let n = 0;
    for (const [aid, s] of this.#map.entries()) {
      if (now - s.lastSeen >= expireSeconds) {
        this.#map.delete(aid);
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
    for (const [aid, s] of this.#map.entries()) {
      sessions[String(aid)] = {
        state: s.state,
        dictReady: s.dictReady,
        decryptConfirmed: s.decryptConfirmed,
        key: s.key && toHex(s.key),
        pendingKey: s.pendingKey && toHex(s.pendingKey),
        firstPlaintextTs: storeTs(s.firstPlaintextTs),
        pendingTimestamp: storeTs(s.pendingTimestamp),
        lastSeen: s.lastSeen,
      };
    }
    return { version: 1, sessions };
  }
}
