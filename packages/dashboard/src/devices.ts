import type { DeviceSummary } from '@opensynaptic/store';
import { decodeGeohash, type GeoPosition } from './geohash.js';

/** A device's state from how long ago it was last heard. */
export type DeviceState = 'online' | 'stale' | 'offline';

/** The latest value of one sensor. */
export interface LiveSensor {
  id: string;
  state: string;
  value: number;
  unit: string;
  timestampMs: number;
}

/** A device as the API and the live feed show it. */
export interface DeviceView {
  /** `aid:deviceId`, stable for one device (the key the page and the feed use). */
  key: string;
  aid: number;
  deviceId: string;
  state: DeviceState;
  firstSeenMs: number;
  lastSeenMs: number;
  /** Templates the server's node holds for the device (`null` when not known). */
  templates: number | null;
  /** Data frames per strategy since the server started (the store's totals before that). */
  frames: { FULL: number; DIFF: number; HEART: number };
  /** Secure data frames among them; `secure` says whether the latest was. */
  secureFrames: number;
  secure: boolean;
  /** Authenticated data frames among them (the authenticated mode's AUTH_*); `authenticated` says whether the latest was. */
  authenticatedFrames: number;
  authenticated: boolean;
  /**
   * The mode of the latest frame: authenticated with a pre-shared secret (`auth-psk`) or X25519
   * (`auth-x25519`), `secure` (the legacy XOR obfuscation) or `plain`.
   */
  mode: 'auth-psk' | 'auth-x25519' | 'secure' | 'plain';
  /** Bytes of its data frames on the wire, and of the same readings as JSON text. */
  wireBytes: number;
  jsonBytes: number;
  /** The transport it was last heard on. */
  via: string;
  sensors: LiveSensor[];
  /** Where the latest geohash a frame carried puts it (`null`: none yet, or not a geohash). */
  position: GeoPosition | null;
}

interface Row {
  view: DeviceView;
  sensors: Map<string, LiveSensor>;
}

/** A reading as the book takes it (the server's `ServerReading`, loosely). */
export interface BookReading {
  aid: number;
  deviceId: string;
  strategy: 'FULL' | 'DIFF' | 'HEART';
  timestampMs: number;
  receivedAtMs: number;
  sensors: readonly { id: string; state: string; value: number; unit: string }[];
  secure?: boolean;
  authenticated?: boolean;
  /** An authenticated frame's suite (absent: `auth-psk`, the only one before X25519). */
  authMode?: 'auth-psk' | 'auth-x25519' | undefined;
  via?: string;
  geohash?: string | undefined;
}

/** The same reading as JSON text (what a JSON-over-the-wire device would have sent). */
export function readingJsonBytes(r: BookReading): number {
  const text = JSON.stringify({ device: r.deviceId, t: r.timestampMs, sensors: r.sensors.map((s) => ({ id: s.id, state: s.state, value: s.value, unit: s.unit })) });
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 2 : 3; // a surrogate pair is 4 bytes: 2 + 2
  }
  return bytes;
}

/**
 * Every device the dashboard knows: those the store had at start, then each one heard since,
 * with its latest value per sensor. Bounded: at most `maxDevices` rows (the least recently heard
 * is forgotten first).
 */
export class DeviceBook {
  readonly #rows = new Map<string, Row>();
  readonly maxDevices: number;
  readonly staleAfterMs: number;
  readonly offlineAfterMs: number;
  /** Wire bytes of data frames seen by `onFrame` and not yet matched to their reading, per aid. */
  readonly #wire = new Map<number, number[]>();

  constructor(options: { maxDevices: number; staleAfterMs: number; offlineAfterMs: number }) {
    this.maxDevices = options.maxDevices;
    this.staleAfterMs = options.staleAfterMs;
    this.offlineAfterMs = options.offlineAfterMs;
  }

  get size(): number {
    return this.#rows.size;
  }

  stateAt(lastSeenMs: number, nowMs: number): DeviceState {
    const age = nowMs - lastSeenMs;
    return age <= this.staleAfterMs ? 'online' : age <= this.offlineAfterMs ? 'stale' : 'offline';
  }

  /** A device row of the store (known before this server started). */
  seed(d: DeviceSummary, nowMs: number): void {
    const key = `${d.aid}:${d.deviceId}`;
    if (this.#rows.has(key)) return;
    this.#insert(key, {
      key,
      aid: d.aid,
      deviceId: d.deviceId,
      state: this.stateAt(d.lastSeenMs, nowMs),
      firstSeenMs: d.firstSeenMs,
      lastSeenMs: d.lastSeenMs,
      templates: d.templates,
      frames: { ...d.frames },
      secureFrames: 0,
      secure: false,
      authenticatedFrames: 0,
      authenticated: false,
      mode: 'plain',
      wireBytes: 0,
      jsonBytes: 0,
      via: '',
      sensors: [],
      position: null,
    });
  }

  /** The size of a data frame from `aid`, matched to the next reading of that aid. */
  frame(aid: number, bytes: number): void {
    let list = this.#wire.get(aid);
    if (list === undefined) {
      if (this.#wire.size >= this.maxDevices * 2) this.#wire.clear(); // frames of aids that never decode: bounded
      list = [];
      this.#wire.set(aid, list);
    }
    if (list.length < 64) list.push(bytes);
  }

  /** Takes a decoded reading; returns the row and whether the device is new. */
  reading(r: BookReading, templates: number | null): { view: DeviceView; added: boolean; changed: boolean } {
    const key = `${r.aid}:${r.deviceId}`;
    let row = this.#rows.get(key);
    const added = row === undefined;
    if (row === undefined) {
      row = this.#insert(key, {
        key,
        aid: r.aid,
        deviceId: r.deviceId,
        state: 'online',
        firstSeenMs: r.receivedAtMs,
        lastSeenMs: r.receivedAtMs,
        templates: null,
        frames: { FULL: 0, DIFF: 0, HEART: 0 },
        secureFrames: 0,
        secure: false,
        authenticatedFrames: 0,
        authenticated: false,
        mode: 'plain',
        wireBytes: 0,
        jsonBytes: 0,
        via: '',
        sensors: [],
        position: null,
      });
    } else {
      // Most recently heard last: the first row is the one to forget when the book is full.
      this.#rows.delete(key);
      this.#rows.set(key, row);
    }
    const v = row.view;
    const changed = v.state !== 'online';
    v.state = 'online';
    v.lastSeenMs = Math.max(v.lastSeenMs, r.receivedAtMs);
    v.frames[r.strategy]++;
    v.secure = r.secure === true;
    if (v.secure) v.secureFrames++;
    v.authenticated = r.authenticated === true;
    if (v.authenticated) v.authenticatedFrames++;
    v.mode = v.authenticated ? (r.authMode ?? 'auth-psk') : v.secure ? 'secure' : 'plain';
    if (r.via !== undefined) v.via = r.via;
    if (templates !== null) v.templates = templates;
    // Decoded once per new geohash text, not per frame.
    if (typeof r.geohash === 'string' && r.geohash !== v.position?.geohash) v.position = decodeGeohash(r.geohash);
    const wire = this.#wire.get(r.aid)?.shift();
    if (wire !== undefined) {
      v.wireBytes += wire;
      v.jsonBytes += readingJsonBytes(r);
    }
    for (const s of r.sensors) {
      const live = { id: s.id, state: s.state, value: s.value, unit: s.unit, timestampMs: r.timestampMs };
      row.sensors.set(s.id, live);
    }
    v.sensors = [...row.sensors.values()];
    return { view: v, added, changed };
  }

  #insert(key: string, view: DeviceView): Row {
    if (this.#rows.size >= this.maxDevices) {
      const oldest = this.#rows.keys().next().value;
      if (oldest !== undefined) this.#rows.delete(oldest);
    }
    const row: Row = { view, sensors: new Map(view.sensors.map((s) => [s.id, s])) };
    this.#rows.set(key, row);
    return row;
  }

  /** The latest values of a device's sensors (the inspector compares a secure DIFF with them). */
  sensorsOf(key: string): ReadonlyMap<string, LiveSensor> | undefined {
    return this.#rows.get(key)?.sensors;
  }

  get(key: string): DeviceView | undefined {
    return this.#rows.get(key)?.view;
  }

  delete(key: string): boolean {
    return this.#rows.delete(key);
  }

  /** Re-derives each state from the clock; returns the rows whose state changed. */
  refresh(nowMs: number): DeviceView[] {
    const changed: DeviceView[] = [];
    for (const { view } of this.#rows.values()) {
      const state = this.stateAt(view.lastSeenMs, nowMs);
      if (state !== view.state) {
        view.state = state;
        changed.push(view);
      }
    }
    return changed;
  }

  list(): DeviceView[] {
    return [...this.#rows.values()].map((r) => r.view);
  }
}
