/** Rates of the health document, from the counters of successive samples. */
export interface HealthRates {
  /** The span the rates are over, ms (`null` before a second sample). */
  spanMs: number | null;
  server: { framesPerS: number | null; readingsPerS: number | null; droppedPerS: number | null; errorsPerS: number | null };
  transports: Record<string, { framesInPerS: number | null; framesOutPerS: number | null; bytesInPerS: number | null; droppedPerS: number | null; dropped: number }>;
  /** Each storage service (a readings sink's status): write rate, backlog, size. */
  storage: Record<string, { committedPerS: number | null; lostPerS: number | null; buffered: number | null; maxBuffered: number | null; sizeBytes: number | null; lost: number | null }>;
}

interface Sample {
  atMs: number;
  counters: Map<string, number>;
}

const sum = (o: unknown): number => (typeof o === 'object' && o !== null ? Object.values(o).reduce<number>((a, b) => a + (typeof b === 'number' ? b : 0), 0) : 0);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

interface Doc {
  server?: { frames?: number; readings?: number; dropped?: unknown; errors?: unknown };
  transports?: Record<string, { framesIn?: number; framesOut?: number; bytesIn?: number; dropped?: unknown }>;
  services?: Record<string, unknown>;
}

/**
 * Keeps the counters of the last health documents (at most 64, none older than twice the
 * window) and answers rates over the newest sample at least `windowMs` old (or the oldest one).
 */
export class RateMeter {
  readonly #samples: Sample[] = [];
  constructor(readonly windowMs: number) {}

  /** Samples `doc` (taken at `nowMs`) and answers its rates. */
  observe(doc: unknown, nowMs: number): HealthRates {
    const d = (doc ?? {}) as Doc;
    const c = new Map<string, number>();
    const put = (k: string, v: unknown) => {
      const n = num(v);
      if (n !== null) c.set(k, n);
    };
    put('frames', d.server?.frames);
    put('readings', d.server?.readings);
    c.set('dropped', sum(d.server?.dropped));
    c.set('errors', sum(d.server?.errors));
    for (const [name, t] of Object.entries(d.transports ?? {})) {
      put(`t\u0000${name}\u0000in`, t.framesIn);
      put(`t\u0000${name}\u0000out`, t.framesOut);
      put(`t\u0000${name}\u0000bytes`, t.bytesIn);
      c.set(`t\u0000${name}\u0000dropped`, sum(t.dropped));
    }
    const sinks: [string, Record<string, unknown>][] = [];
    for (const [name, s] of Object.entries(d.services ?? {})) {
      const st = s as Record<string, unknown> | null;
      if (st === null || typeof st !== 'object' || typeof st.committed !== 'number') continue;
      sinks.push([name, st]);
      put(`s\u0000${name}\u0000committed`, st.committed);
      put(`s\u0000${name}\u0000lost`, st.lost);
    }
    const base = this.#baseline(nowMs);
    const spanMs = base === null ? null : nowMs - base.atMs;
    const rate = (k: string): number | null => {
      if (base === null || spanMs === null || spanMs <= 0) return null;
      const now = c.get(k);
      const then = base.counters.get(k);
      // A counter that went down was reset (a restarted transport): no rate this time.
      if (now === undefined || then === undefined || now < then) return null;
      return Math.round(((now - then) * 1000 * 100) / spanMs) / 100;
    };
    const out: HealthRates = { spanMs, server: { framesPerS: rate('frames'), readingsPerS: rate('readings'), droppedPerS: rate('dropped'), errorsPerS: rate('errors') }, transports: {}, storage: {} };
    for (const [name, t] of Object.entries(d.transports ?? {})) out.transports[name] = { framesInPerS: rate(`t\u0000${name}\u0000in`), framesOutPerS: rate(`t\u0000${name}\u0000out`), bytesInPerS: rate(`t\u0000${name}\u0000bytes`), droppedPerS: rate(`t\u0000${name}\u0000dropped`), dropped: sum(t.dropped) };
    for (const [name, st] of sinks) {
      const stored = st.stored as { sizeBytes?: unknown } | undefined;
      out.storage[name] = { committedPerS: rate(`s\u0000${name}\u0000committed`), lostPerS: rate(`s\u0000${name}\u0000lost`), buffered: num(st.buffered), maxBuffered: num(st.maxBuffered), sizeBytes: num(stored?.sizeBytes), lost: num(st.lost) };
    }
    const last = this.#samples.at(-1);
    // Requests in a burst do not crowd the samples out.
    if (last === undefined || nowMs - last.atMs >= Math.min(250, this.windowMs / 4)) this.#samples.push({ atMs: nowMs, counters: c });
    while (this.#samples.length > 64 || (this.#samples.length > 1 && nowMs - (this.#samples[0] as Sample).atMs > 2 * this.windowMs)) this.#samples.shift();
    return out;
  }

  #baseline(nowMs: number): Sample | null {
    let best: Sample | null = null;
    for (const s of this.#samples) {
      if (nowMs - s.atMs <= 0) continue;
      if (nowMs - s.atMs >= this.windowMs) best = s;
      else {
        best ??= s;
        break;
      }
    }
    return best;
  }
}
