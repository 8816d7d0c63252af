import { installAsyncDispose } from '@opensynaptic/internal';
import {
  type AsyncDisposableLike,
  type DispatchAttempt,
  DispatchError,
  DriverError,
  type Inbound,
  isTransportError,
  onAbort,
  type PeerLike,
  positiveInt,
  type Transport,
  TransportAbortError,
  type TransportError,
  type TransportEvent,
  type TransportEventType,
  TransportIoError,
  TransportOptionError,
  TransportStateError,
  TransportTimeoutError,
} from '@opensynaptic/transport/core';
import { type DriverRegistry, drivers, mediumKey } from './registry.js';

/**
 * The reference's `network_retry`: a failed send is tried again `maxRetries` times, `intervalMs`
 * apart (its defaults: 2 retries, 1 s, so three attempts in all).
 */
export interface RetryPolicy {
  /** Retries after the first attempt (default 2). */
  maxRetries?: number | undefined;
  /** Wait between attempts (default 1000 ms). */
  intervalMs?: number | undefined;
}

export const DEFAULT_MAX_RETRIES = 2;
export const DEFAULT_RETRY_INTERVAL_MS = 1000;
/** Default bound of one attempt on one medium (the reference's TCP sender waits 3 s). */
export const DEFAULT_SEND_TIMEOUT_MS = 3000;

export interface TransporterManagerOptions {
  /** The media by name (`udp`, `mqtt`, or names of your own such as `udp-lan`). */
  transports: Readonly<Record<string, Transport>> | ReadonlyMap<string, Transport>;
  /** Order in which automatic dispatch tries them (default: the order of `transports`). */
  priority?: readonly string[] | undefined;
  /** Retry policy (default: the reference's, 2 retries 1 s apart); `false`: one attempt. */
  retry?: RetryPolicy | false | undefined;
  /** Bound of one attempt on one medium (default 3000 ms). */
  sendTimeoutMs?: number | undefined;
}

export interface DispatchOptions {
  /** Only this medium (the reference's `dispatch(packet, medium)`); default: every medium by priority. */
  medium?: string | undefined;
  /** The destination: one for every medium tried, or one per medium name (default: each transport's own). */
  to?: PeerLike | Readonly<Record<string, PeerLike>> | undefined;
  signal?: AbortSignal | undefined;
  /** Bound of each attempt (default: the manager's `sendTimeoutMs`). */
  timeoutMs?: number | undefined;
  /** This dispatch's retry policy (default: the manager's). */
  retry?: RetryPolicy | false | undefined;
}

export interface DispatchResult {
  /** The medium that took the frame. */
  readonly medium: string;
  /** Attempts made, the successful one included. */
  readonly attempts: number;
  /** The attempts that failed before it. */
  readonly failures: readonly DispatchAttempt[];
}

/** A frame received by one of the manager's media; `via` is the manager's name for it. */
export interface ManagedInbound extends Inbound {
  readonly via: string;
}

/** How `open` makes a manager from plain configuration through the driver registry. */
export interface TransporterManagerConfig {
  /** Options per medium name; the name is the driver's unless `driver` is given in the options. */
  media: Readonly<Record<string, object & { driver?: string }>>;
  priority?: readonly string[] | undefined;
  retry?: RetryPolicy | false | undefined;
  sendTimeoutMs?: number | undefined;
  /** Registry to create from (default: the built-in drivers). */
  registry?: DriverRegistry | undefined;
}

function retryOf(policy: RetryPolicy | false | undefined): { maxRetries: number; intervalMs: number } {
  if (policy === false) return { maxRetries: 0, intervalMs: 0 };
  return {
    maxRetries: positiveInt('retry.maxRetries', policy?.maxRetries, DEFAULT_MAX_RETRIES, 'manager', 0, 100),
    intervalMs: positiveInt('retry.intervalMs', policy?.intervalMs, DEFAULT_RETRY_INTERVAL_MS, 'manager', 0, 3_600_000),
  };
}

/** The frame was refused for what it is (size, content): another attempt on that medium cannot help. */
function isFrameProblem(e: TransportError): boolean {
  return e.code === 'ERR_TRANSPORT_FRAME' || e.code === 'ERR_TRANSPORT_FRAME_SIZE';
}

/**
 * Dispatch over several media, as the reference's `TransporterManager`: by priority, the first
 * medium that takes the frame wins (`dispatch_auto`); a round in which none did is retried
 * after the interval (`network_retry`); each attempt is bounded by a timeout and every wait
 * honours the caller's `AbortSignal`. Also starts, stops and destroys its media together and
 * merges their inbound frames.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface below only types `[Symbol.asyncDispose]`, defined on the prototype after the class
export class TransporterManager implements AsyncIterable<ManagedInbound>, AsyncDisposableLike {
  readonly #transports: Map<string, Transport>;
  readonly #priority: string[];
  readonly #retry: { maxRetries: number; intervalMs: number };
  readonly #sendTimeoutMs: number;

  constructor(options: TransporterManagerOptions) {
    const entries = options.transports instanceof Map ? [...options.transports] : Object.entries(options.transports ?? {});
    if (entries.length === 0) throw new TransportOptionError('transports', options.transports, 'at least one medium', { medium: 'manager' });
    this.#transports = new Map();
    for (const [name, t] of entries) {
      if (typeof (t as Transport)?.send !== 'function') throw new TransportOptionError(`transports.${name}`, t, 'a Transport', { medium: 'manager' });
      this.#transports.set(mediumKey(name), t as Transport);
    }
    const priority = (options.priority ?? [...this.#transports.keys()]).map((p) => mediumKey(p));
    for (const p of priority) if (!this.#transports.has(p)) throw new TransportOptionError('priority', p, `one of the configured media (${[...this.#transports.keys()].join(', ')})`, { medium: 'manager' });
    this.#priority = priority;
    this.#retry = retryOf(options.retry);
    this.#sendTimeoutMs = positiveInt('sendTimeoutMs', options.sendTimeoutMs, DEFAULT_SEND_TIMEOUT_MS, 'manager', 1);
  }

  /** Creates each medium through the registry (loading only the drivers named), starts them all. */
  static async open(config: TransporterManagerConfig): Promise<TransporterManager> {
    const registry = config.registry ?? drivers;
    const made = new Map<string, Transport>();
    try {
      for (const [name, opts] of Object.entries(config.media ?? {})) {
        made.set(mediumKey(name), await registry.create(opts.driver ?? name, opts));
      }
      const manager = new TransporterManager({ transports: made, priority: config.priority, retry: config.retry, sendTimeoutMs: config.sendTimeoutMs });
      await manager.start();
      return manager;
    } catch (e) {
      await Promise.all([...made.values()].map((t) => t.destroy().catch(() => undefined)));
      throw e;
    }
  }

  /** The media names, in priority order first. */
  get media(): string[] {
    return [...new Set([...this.#priority, ...this.#transports.keys()])];
  }

  get(medium: string): Transport | undefined {
    return this.#transports.get(mediumKey(medium));
  }

  /** Starts every medium; rejects with the first failure (the others keep running: `destroy()` them). */
  async start(): Promise<void> {
    const results = await Promise.allSettled([...this.#transports.values()].map((t) => (t.state === 'created' ? t.start() : undefined)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#transports.values()].map((t) => t.stop()));
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.#transports.values()].map((t) => t.destroy()));
  }

  /**
   * Sends `frame` over the first medium that takes it (see the class comment). Resolves with
   * the medium and the attempts; rejects with `DispatchError` (every attempt listed) or, when
   * the caller's signal fired, `TransportAbortError`. An attempt that timed out may still be
   * delivered late: like the reference's retries, delivery is at least once.
   */
  async dispatch(frame: Uint8Array, options: DispatchOptions = {}): Promise<DispatchResult> {
    const media = options.medium === undefined ? this.#priority : [mediumKey(options.medium)];
    for (const m of media) if (!this.#transports.has(m)) throw new DriverError('ERR_TRANSPORT_DRIVER', m, `no medium "${m}" in this manager; configured: ${this.media.join(', ')}`);
    const retry = options.retry === undefined ? this.#retry : retryOf(options.retry);
    const timeoutMs = positiveInt('timeoutMs', options.timeoutMs, this.#sendTimeoutMs, 'manager', 1);
    const signal = options.signal;
    const failures: DispatchAttempt[] = [];
    const hopeless = new Set<string>();
    for (let round = 1; round <= 1 + retry.maxRetries; round++) {
      for (const medium of media) {
        if (hopeless.has(medium)) continue;
        if (signal?.aborted) throw new TransportAbortError('dispatch', signal.reason, { medium });
        const t = this.#transports.get(medium)!;
        const to = destinationFor(options.to, medium);
        try {
          await attempt(t, medium, frame, to, timeoutMs, signal);
          return { medium, attempts: failures.length + 1, failures };
        } catch (e) {
          const error = isTransportError(e) ? e : new TransportIoError('send failed', e, { medium });
          if (error.code === 'ERR_TRANSPORT_ABORTED' && signal?.aborted) throw error;
          failures.push({ medium, round, error });
          if (isFrameProblem(error)) hopeless.add(medium);
        }
      }
      if (hopeless.size === media.length) break;
      if (round <= retry.maxRetries && retry.intervalMs > 0) await sleep(retry.intervalMs, signal);
    }
    throw new DispatchError(failures);
  }

  /** Frames from every medium, merged (one consumer). */
  async *frames(): AsyncGenerator<ManagedInbound, void, undefined> {
    const live = new Map<string, AsyncIterator<Inbound>>();
    for (const [name, t] of this.#transports) live.set(name, t.frames());
    const pending = new Map<string, Promise<[string, IteratorResult<Inbound>]>>();
    const arm = (name: string) => pending.set(name, live.get(name)!.next().then((r) => [name, r]));
    for (const name of live.keys()) arm(name);
    while (pending.size > 0) {
      const [name, r] = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(name);
        continue;
      }
      arm(name);
      yield { frame: r.value.frame, peer: r.value.peer, receivedAt: r.value.receivedAt, via: name };
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<ManagedInbound> {
    return this.frames();
  }

  /** Subscribes to one event type on every medium; the listener also gets the medium's name. */
  on<K extends TransportEventType>(type: K, listener: (event: TransportEvent<K>, via: string) => void): () => void {
    const offs = [...this.#transports].map(([name, t]) => t.on(type, (event) => listener(event, name)));
    return () => {
      for (const off of offs) off();
    };
  }
}

export interface TransporterManager extends AsyncDisposableLike {}
installAsyncDispose(TransporterManager);

/** `to` is one destination (it has a `key`, `address` or `topic` text) or a map by medium name. */
function destinationFor(to: DispatchOptions['to'], medium: string): PeerLike | undefined {
  if (to === undefined) return undefined;
  const r = to as Record<string, unknown>;
  if (typeof r.key === 'string' || typeof r.address === 'string' || typeof r.topic === 'string') return to as PeerLike;
  return (to as Readonly<Record<string, PeerLike>>)[medium];
}

/** One send on one medium, bounded by `timeoutMs` and the caller's signal even if the driver is slow to notice. */
function attempt(t: Transport, medium: string, frame: Uint8Array, to: PeerLike | undefined, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
  if (t.state !== 'running') return Promise.reject(new TransportStateError(t.state === 'created' || t.state === 'starting' ? 'ERR_TRANSPORT_STATE' : 'ERR_TRANSPORT_CLOSED', `medium ${medium} is ${t.state}`, t.state, { medium }));
  const ac = new AbortController();
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (error?: TransportError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      off();
      if (error) {
        ac.abort(error);
        reject(error);
      } else resolve();
    };
    const timer = setTimeout(() => finish(new TransportTimeoutError('send', timeoutMs, { medium })), timeoutMs);
    const off = onAbort(signal, medium, 'send', (e) => finish(e));
    t.send(frame, to, { signal: ac.signal }).then(
      () => finish(),
      (e: unknown) => finish(isTransportError(e) ? e : new TransportIoError('send failed', e, { medium })),
    );
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      resolve();
    }, ms);
    const off = onAbort(signal, 'manager', 'dispatch', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
