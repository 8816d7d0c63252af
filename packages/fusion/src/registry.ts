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
  /** Engine-private caches derived from `sig` (decode plan, sender shape); never persisted. */
  plan?: unknown;
  shape?: unknown;
  sigSize?: number;
}

/** Registries with more templates than this keep a signature index; smaller ones scan. */
const INDEX_THRESHOLD = 8;

/** All templates of one source AID. */
export class DeviceRegistry {
  /** Templates by tid, in the order they were assigned. */
  readonly templates = new Map<number, FusionTemplate>();
  /** True when the registry changed since it was last saved. */
  dirty = false;
  /** Clock (ms) of the last access, for the cache's TTL and LRU order. */
  lastSeen = 0;
  /** Clock (ms) of the last save, for throttled sync (0: never saved). */
  lastSync = 0;
  /** The template the sender used last: most frames repeat it, and comparing is cheaper than hashing. */
  recent: FusionTemplate | null = null;
  // Signature index, built only for registries with many templates (memory: most devices have one).
  #bySig: Map<string, FusionTemplate> | null = null;

  constructor(readonly aid: number) {}

  /** The template whose signature is `sig`, if any. */
  findSig(sig: string): FusionTemplate | undefined {
    if (this.#bySig !== null) return this.#bySig.get(sig);
    let found: FusionTemplate | undefined;
    // The last template with that signature wins, as a signature index built in order would.
    for (const t of this.templates.values()) if (t.sig === sig) found = t;
    return found;
  }

  /** Adds or replaces the template `tid`. Strings are stored flat so they hold no larger text alive. */
  put(tid: number, sig: string, values: string[] | null): FusionTemplate {
    const old = this.templates.get(tid);
    if (old) this.#forget(old);
    const t: FusionTemplate = { tid, sig: ownString(sig), values: values === null ? null : ownValues(values) };
    this.templates.set(tid, t);
    if (this.#bySig !== null) this.#bySig.set(t.sig, t);
    else if (this.templates.size > INDEX_THRESHOLD) {
      this.#bySig = new Map();
      for (const x of this.templates.values()) this.#bySig.set(x.sig, x);
    }
    this.dirty = true;
    return t;
  }

  /** Removes template `tid`. */
  remove(tid: number): boolean {
    const old = this.templates.get(tid);
    if (!old) return false;
    this.templates.delete(tid);
    this.#forget(old);
    this.dirty = true;
    return true;
  }

  #forget(old: FusionTemplate): void {
    if (this.#bySig !== null && this.#bySig.get(old.sig) === old) this.#bySig.delete(old.sig);
    if (this.recent === old) this.recent = null;
  }
}

/**
 * A copy of `s` that owns its characters. Slices and concatenations of longer strings can keep
 * the whole text they came from alive; registries live long, so they store flat copies.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : (JSON.parse(JSON.stringify(s)) as string);
}

/** `values` with every string owned (the same array, updated in place). */
export function ownValues(values: string[]): string[] {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v.length >= 13) values[i] = ownString(v);
  }
  return values;
}
