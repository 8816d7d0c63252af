/**
 * Per-device template registries: what a sender and a receiver remember about each source AID.
 *
 * A template is the shape of a body text with its values cut out (the signature) plus the last
 * values sent or received for it. Each AID has up to 255 templates, numbered by template id
 * (tid, the frame's one-byte field).
 */

/** Highest template id: the wire field is one byte and 0 is never assigned. */
export const MAX_TEMPLATE_ID = 255;

/** One learned template. */
export interface FusionTemplate {
  /** Template id, 1..255 (0 only when a peer sent tid 256, which the wire masks to 0). */
  readonly tid: number;
  /**
   * The signature: `{id}.{state}.{TS}|` then each body segment with sensor values replaced by
   * `\x01` placeholders (`T1>\x01:\x01`), each followed by `|`.
   */
  readonly sig: string;
  /**
   * The last values, two per sensor (`"{state}.{unit}"` and the Base62 value) in order, as text.
   * `null` when none are known (a template read from a file without values).
   */
  values: string[] | null;
  /** Engine-private cache derived from `sig` (decode plan); never persisted. */
  plan?: unknown;
}

/** All templates of one source AID. */
export class DeviceRegistry {
  /** Templates by tid, in the order they were assigned. */
  readonly templates = new Map<number, FusionTemplate>();
  /** Templates by signature (the sender's lookup). */
  readonly bySig = new Map<string, FusionTemplate>();
  /** True when the registry changed since it was last saved. */
  dirty = false;
  /** Clock (ms) of the last access, for the cache's TTL and LRU order. */
  lastSeen = 0;
  /** Clock (ms) of the last save, for throttled sync (0: never saved). */
  lastSync = 0;
  /** The template the sender used last: most frames repeat it, and comparing is cheaper than hashing. */
  recent: FusionTemplate | null = null;

  constructor(readonly aid: number) {}

  /** Adds or replaces the template `tid`; the signature index follows. */
  put(tid: number, sig: string, values: string[] | null): FusionTemplate {
    const old = this.templates.get(tid);
    if (old && this.bySig.get(old.sig) === old) this.bySig.delete(old.sig);
    if (old && this.recent === old) this.recent = null;
    const t: FusionTemplate = { tid, sig, values };
    this.templates.set(tid, t);
    this.bySig.set(sig, t);
    this.dirty = true;
    return t;
  }

  /** Removes template `tid`. */
  remove(tid: number): boolean {
    const old = this.templates.get(tid);
    if (!old) return false;
    this.templates.delete(tid);
    if (this.bySig.get(old.sig) === old) this.bySig.delete(old.sig);
    if (this.recent === old) this.recent = null;
    this.dirty = true;
    return true;
  }
}

/**
 * Where registries live between uses. The engine keeps recently used registries in a bounded
 * cache and calls `save` for changed ones at most once per sync interval per AID, and always
 * before dropping a changed registry from the cache, so nothing learned is lost.
 *
 * The interface is synchronous because the engine decodes frames synchronously; a store backed
 * by a network service (shared templates across receivers) keeps a local mirror and writes
 * behind.
 */
export interface RegistryStore {
  /** The registry of `aid`, or `null` when the store has none. */
  load(aid: number): DeviceRegistry | null;
  /** Persists `registry` (the whole of it). */
  save(registry: DeviceRegistry): void;
  /** Forgets `aid`. */
  delete(aid: number): void;
}
