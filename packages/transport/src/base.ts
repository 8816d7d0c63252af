import { installAsyncDispose } from '@opensynaptic/internal';
import { Emitter } from './emitter.js';
import {
  DriverError,
  FrameError,
  isTransportError,
  QueueFullError,
  TransportAbortError,
  type TransportError,
  TransportIoError,
  TransportOptionError,
  TransportStateError,
  TransportTimeoutError,
} from './errors.js';
import { BatchIterator, DEFAULT_BATCH_MAX, FrameQueue, type InboundLimits, positiveInt } from './queue.js';
import type {
  AsyncDisposableLike,
  DropReason,
  Inbound,
  Peer,
  PeerLike,
  SendOptions,
  Transport,
  TransportEvent,
  TransportEventMap,
  TransportEventType,
  BatchOptions,
  TransportState,
  TransportStats,
} from './types.js';

/** Options every driver takes. */
export interface TransportOptions {
  /** Limits of the inbound queue (defaults: 8192 frames, 16 MiB). */
  inbound?: InboundLimits | undefined;
  /** Sends not yet settled before `send` refuses with `ERR_TRANSPORT_QUEUE_FULL` (default 8192). */
  maxPendingSends?: number | undefined;
  /** How long `stop()` waits for pending sends before closing anyway (default 5000 ms). */
  drainTimeoutMs?: number | undefined;
  /** The clock of `receivedAt`, in milliseconds (default `Date.now`). */
  now?: (() => number) | undefined;
}

export const DEFAULT_MAX_PENDING_SENDS = 8192;
export const DEFAULT_DRAIN_TIMEOUT_MS = 5000;

const ZERO_DROPS: Record<DropReason, number> = { 'queue-full': 0, oversize: 0, protocol: 0, noise: 0, destroyed: 0 };

/** A peer of an IP medium; IPv6 addresses are bracketed in the key. */
export function ipPeer(medium: string, address: string, port: number, family?: 'IPv4' | 'IPv6', suffix = ''): Peer {
  const fam = family ?? (address.includes(':') ? 'IPv6' : 'IPv4');
  const host = fam === 'IPv6' ? `[${address}]` : address;
  return { medium, key: `${medium}:${host}:${port}${suffix}`, address, port, family: fam };
}

/** Wraps what a driver threw into a `TransportError` (an `ERR_TRANSPORT_IO` unless it is one). */
export function toTransportError(error: unknown, medium: string, what: string, peer?: string): TransportError {
  if (isTransportError(error)) return error;
  return new TransportIoError(what, error, { medium, peer });
}

/**
 * The shared half of every driver: the lifecycle, the bounded inbound queue and its iterator,
 * events, counters, the bound on pending sends, and frame validation. A driver implements
 * `open`, `write` and `close`, calls `deliver` for each received frame and may override
 * `onInboundPressure` to pause its medium. Exported for third-party drivers.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface below only types `[Symbol.asyncDispose]`, defined on the prototype after the class
export abstract class TransportBase implements Transport {
  readonly medium: string;
  abstract readonly reliable: boolean;
  readonly maxFrameBytes: number;
  protected readonly inbound: FrameQueue<Inbound>;
  protected readonly events = new Emitter<TransportEventMap>();
  readonly #now: () => number;
  readonly #maxPending: number;
  readonly #drainTimeoutMs: number;
  #state: TransportState = 'created';
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  #pending = 0;
  #idleWaiters: (() => void)[] = [];
  #framesIn = 0;
  #bytesIn = 0;
  #framesOut = 0;
  #bytesOut = 0;
  #dropped: Record<DropReason, number> = { ...ZERO_DROPS };
  #dropBatch = new Map<string, { reason: DropReason; count: number; peer: Peer | undefined; error: TransportError | undefined }>();
  #dropTimer: ReturnType<typeof setTimeout> | undefined;
  #handler: ((inbound: Inbound) => void) | null = null;

  constructor(medium: string, maxFrameBytes: number, options: TransportOptions = {}) {
    this.medium = medium;
    this.maxFrameBytes = maxFrameBytes;
    this.#maxPending = positiveInt('maxPendingSends', options.maxPendingSends, DEFAULT_MAX_PENDING_SENDS, medium);
    this.#drainTimeoutMs = positiveInt('drainTimeoutMs', options.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS, medium, 0);
    this.#now = options.now ?? Date.now;
    this.inbound = new FrameQueue<Inbound>(options.inbound ?? {}, (active) => this.#pressure(active), medium);
  }

  get state(): TransportState {
    return this.#state;
  }

  /** Opens the medium (bind, listen, connect). Rejecting leaves the transport stopped. */
  protected abstract open(): Promise<void>;
  /** Sends one validated frame. */
  protected abstract write(frame: Uint8Array, to: PeerLike | undefined, signal: AbortSignal | undefined): Promise<void>;
  /**
   * Closes the medium. `drain`: `stop()` (flush what the driver still holds, then close);
   * otherwise `destroy()` (close now, reject what is still queued with `ERR_TRANSPORT_CLOSED`).
   */
  protected abstract close(drain: boolean): Promise<void>;
  /** Called when the inbound queue fills (`true`) and when it is back at half (`false`). */
  protected onInboundPressure(_active: boolean): void {}
  /** Open connections, for `stats()`. */
  protected connectionCount(): number {
    return 0;
  }

  #setState(to: TransportState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.events.emit('state', { from, to });
  }

  start(): Promise<void> {
    if (this.#state !== 'created') {
      if (this.#state === 'starting' || this.#state === 'running') {
        return Promise.reject(new TransportStateError('ERR_TRANSPORT_STATE', `start() on a transport that is already ${this.#state}`, this.#state, { medium: this.medium }));
      }
      return Promise.reject(new TransportStateError('ERR_TRANSPORT_CLOSED', `start() on a ${this.#state} transport (a transport runs once; make a new one)`, this.#state, { medium: this.medium }));
    }
    this.#setState('starting');
    this.#starting = (async () => {
      try {
        await this.open();
      } catch (e) {
        const error = toTransportError(e, this.medium, 'start failed');
        if (this.#state === 'starting') {
          await this.close(false).catch(() => undefined);
          this.inbound.end();
          this.#setState('stopped');
        }
        throw error;
      }
      if (this.#state === 'starting') this.#setState('running');
      else if (this.#state === 'destroyed') throw new TransportStateError('ERR_TRANSPORT_CLOSED', 'destroyed while starting', 'destroyed', { medium: this.medium });
    })();
    return this.#starting;
  }

  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    if (this.#state === 'destroyed' || this.#state === 'stopped') return this.#destroying ?? Promise.resolve();
    this.#stopping = (async () => {
      if (this.#state === 'starting') await this.#starting?.catch(() => undefined);
      if (this.#state !== 'running' && this.#state !== 'created') return;
      this.#setState('stopping');
      await this.#whenIdle(this.#drainTimeoutMs);
      if ((this.#state as TransportState) !== 'stopping') return; // destroyed meanwhile
      await this.close(true).catch((e) => this.reportError(toTransportError(e, this.medium, 'close failed')));
      this.inbound.end();
      this.#flushDrops();
      if ((this.#state as TransportState) === 'stopping') this.#setState('stopped');
    })();
    return this.#stopping;
  }

  destroy(): Promise<void> {
    if (this.#destroying) return this.#destroying;
    const wasCreated = this.#state === 'created';
    this.#setState('destroyed');
    this.#destroying = (async () => {
      if (!wasCreated) await this.close(false).catch(() => undefined);
      const left = this.inbound.clear();
      this.inbound.end();
      if (left > 0) this.drop('destroyed', left);
      this.#flushDrops();
      for (const w of this.#idleWaiters.splice(0)) w();
    })();
    return this.#destroying;
  }

  send(frame: Uint8Array, to?: PeerLike, options?: SendOptions): Promise<void> {
    const problem = this.#check(frame, options);
    if (problem !== undefined) return Promise.reject(problem);
    this.#pending++;
    let written: Promise<void>;
    try {
      written = this.write(frame, to, options?.signal);
    } catch (e) {
      written = Promise.reject(e);
    }
    const size = frame.byteLength;
    return written.then(
      () => {
        this.#framesOut++;
        this.#bytesOut += size;
        this.#settled();
      },
      (e: unknown) => {
        this.#settled();
        throw toTransportError(e, this.medium, 'send failed');
      },
    );
  }

  #check(frame: Uint8Array, options: SendOptions | undefined): TransportError | undefined {
    const m = { medium: this.medium };
    if (!(frame instanceof Uint8Array)) return new FrameError('ERR_TRANSPORT_FRAME', `a frame must be a Uint8Array; got ${frame === null ? 'null' : typeof frame}`, -1, undefined, m);
    if (frame.byteLength === 0) return new FrameError('ERR_TRANSPORT_FRAME', 'a frame must hold at least one byte', 0, undefined, m);
    if (frame.byteLength > this.maxFrameBytes) {
      return new FrameError('ERR_TRANSPORT_FRAME_SIZE', `a frame of ${frame.byteLength} bytes is over maxFrameBytes (${this.maxFrameBytes})`, frame.byteLength, this.maxFrameBytes, m);
    }
    if (this.#state !== 'running') {
      const code = this.#state === 'created' || this.#state === 'starting' ? 'ERR_TRANSPORT_STATE' : 'ERR_TRANSPORT_CLOSED';
      return new TransportStateError(code, `send() on a ${this.#state} transport`, this.#state, m);
    }
    if (options?.signal?.aborted) return new TransportAbortError('send', options.signal.reason, m);
    if (this.#pending >= this.#maxPending) {
      this.events.emit('backpressure', { direction: 'outbound', active: true, queued: this.#pending, limit: this.#maxPending });
      return new QueueFullError('outbound', this.#maxPending, 'frames', m);
    }
    return undefined;
  }

  #settled(): void {
    this.#pending--;
    if (this.#pending === 0) for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** Resolves when no send is pending, or after `timeoutMs`. */
  #whenIdle(timeoutMs: number): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  frames(): AsyncIterableIterator<Inbound> {
    return this.inbound;
  }

  [Symbol.asyncIterator](): AsyncIterator<Inbound> {
    return this.inbound;
  }

  batches(options?: BatchOptions): AsyncIterableIterator<Inbound[]> {
    const max = positiveInt('batches.max', options?.max, DEFAULT_BATCH_MAX, this.medium);
    return new BatchIterator(this.inbound, max);
  }

  receiveInto(handler: (inbound: Inbound) => void): () => void {
    if (typeof handler !== 'function') throw new TransportOptionError('receiveInto', handler, 'a function', { medium: this.medium });
    if (this.#handler !== null) throw new TransportStateError('ERR_TRANSPORT_STATE', 'receiveInto(): a handler is already set (one consumer)', this.#state, { medium: this.medium });
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = null;
    };
  }

  on<K extends TransportEventType>(type: K, listener: (event: TransportEvent<K>) => void): () => void {
    return this.events.on(type, listener as (event: TransportEventMap[K] & { readonly type: K }) => void);
  }

  stats(): TransportStats {
    return {
      framesIn: this.#framesIn,
      bytesIn: this.#bytesIn,
      framesOut: this.#framesOut,
      bytesOut: this.#bytesOut,
      dropped: { ...this.#dropped },
      inboundQueued: this.inbound.length,
      inboundQueuedBytes: this.inbound.bytes,
      pendingSends: this.#pending,
      connections: this.connectionCount(),
    };
  }

  /** Whether received frames are still wanted (running or stopping). */
  protected get accepting(): boolean {
    return (this.#state === 'running' || this.#state === 'stopping' || this.#state === 'starting') && !this.inbound.ended;
  }

  /**
   * Queues a received frame. Media that cannot pause (`pausable` false) drop it when the queue
   * is full (counted, reported); pausable ones always queue it and must pause reading when this
   * returns false (the queue is full), until `onInboundPressure(false)`. `receivedAt` defaults
   * to the clock now.
   */
  protected deliver(frame: Uint8Array, peer: Peer, pausable = false, receivedAt: number = this.#now(), ack?: () => void): boolean {
    if (!this.accepting) return false;
    const item: Inbound = ack === undefined ? { frame, peer, receivedAt } : { frame, peer, receivedAt, ack };
    if (pausable) {
      if (!this.inbound.pushForce(item)) return false;
      this.#framesIn++;
      this.#bytesIn += frame.byteLength;
      return !this.inbound.isFull;
    }
    const handler = this.#handler;
    if (handler !== null) {
      this.#framesIn++;
      this.#bytesIn += frame.byteLength;
      try {
        handler(item);
      } catch (e) {
        this.reportError(new TransportIoError('the receive handler threw', e, { medium: this.medium }));
      }
      return true;
    }
    if (!this.inbound.push(item)) {
      this.drop('queue-full', 1, peer);
      return false;
    }
    this.#framesIn++;
    this.#bytesIn += frame.byteLength;
    return true;
  }

  /** The clock of `receivedAt`, for drivers that stamp a batch of frames with one reading. */
  protected clock(): number {
    return this.#now();
  }

  /** Counts dropped frames (bytes for `noise`) and reports them in a coalesced `dropped` event. */
  protected drop(reason: DropReason, count: number, peer?: Peer, error?: TransportError): void {
    this.#dropped[reason] += count;
    if (!this.events.has('dropped')) return;
    const key = `${reason}\u0000${peer?.key ?? ''}`;
    const batch = this.#dropBatch.get(key);
    if (batch) {
      batch.count += count;
      if (error) batch.error = error;
    } else {
      this.#dropBatch.set(key, { reason, count, peer, error });
    }
    this.#dropTimer ??= setTimeout(() => this.#flushDrops(), 0);
  }

  #flushDrops(): void {
    if (this.#dropTimer !== undefined) clearTimeout(this.#dropTimer);
    this.#dropTimer = undefined;
    const batches = [...this.#dropBatch.values()];
    this.#dropBatch.clear();
    for (const b of batches) this.events.emit('dropped', b.error ? { reason: b.reason, count: b.count, peer: b.peer, error: b.error } : { reason: b.reason, count: b.count, peer: b.peer });
  }

  /** Reports an error that belongs to no call. */
  protected reportError(error: TransportError): void {
    this.events.emit('error', { error });
  }

  #pressure(active: boolean): void {
    this.events.emit('backpressure', { direction: 'inbound', active, queued: this.inbound.length, limit: this.inbound.maxFrames });
    this.onInboundPressure(active);
  }
}

// `await using` support: the method lives under the platform's `Symbol.asyncDispose` where there
// is one, and is typed through AsyncDisposableLike (only where the consumer's lib has the symbol).
export interface TransportBase extends AsyncDisposableLike {}
installAsyncDispose(TransportBase);

/** Rejects with `TransportAbortError` when `signal` fires; `cleanup` removes the listener. */
export function onAbort(signal: AbortSignal | undefined, medium: string, what: string, abort: (error: TransportAbortError) => void): () => void {
  if (signal === undefined) return () => undefined;
  const listener = () => abort(new TransportAbortError(what, signal.reason, { medium }));
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/** A send waiting for its medium (a connection, a port): settled exactly once. */
interface Waiting {
  frame: Uint8Array;
  resolve: () => void;
  reject: (e: TransportError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  cleanup: () => void;
  done: boolean;
}

/** Limits of the queue of sends that wait for a (re)connection. */
export interface OfflineQueueOptions {
  /** Sends that may wait (default 1024); more are refused with `ERR_TRANSPORT_QUEUE_FULL`. */
  maxFrames?: number | undefined;
  /** How long one may wait before it rejects with `ERR_TRANSPORT_TIMEOUT` (default 10000 ms; 0: refuse at once). */
  timeoutMs?: number | undefined;
}

export const DEFAULT_OFFLINE_MAX_FRAMES = 1024;
export const DEFAULT_OFFLINE_TIMEOUT_MS = 10_000;

/**
 * Sends that wait while a client is not connected: bounded in count and in time, each
 * abortable; taken in order once the connection is back.
 */
export class OfflineQueue {
  readonly maxFrames: number;
  readonly timeoutMs: number;
  readonly #medium: string;
  #items: Waiting[] = [];

  constructor(medium: string, options: OfflineQueueOptions = {}) {
    this.#medium = medium;
    this.maxFrames = positiveInt('offlineQueue.maxFrames', options.maxFrames, DEFAULT_OFFLINE_MAX_FRAMES, medium);
    this.timeoutMs = positiveInt('offlineQueue.timeoutMs', options.timeoutMs, DEFAULT_OFFLINE_TIMEOUT_MS, medium, 0);
  }

  get length(): number {
    return this.#items.length;
  }

  /** Waits for `flush`; rejects on overflow, timeout, abort or `rejectAll`. */
  wait(frame: Uint8Array, signal: AbortSignal | undefined, what: string): Promise<void> {
    if (this.timeoutMs === 0) return Promise.reject(new TransportTimeoutError(`${what} (not connected)`, 0, { medium: this.#medium }));
    if (this.#items.length >= this.maxFrames) return Promise.reject(new QueueFullError('outbound', this.maxFrames, 'frames', { medium: this.#medium }));
    return new Promise<void>((resolve, reject) => {
      const w: Waiting = { frame, resolve, reject, timer: undefined, cleanup: () => undefined, done: false };
      const fail = (e: TransportError) => {
        if (w.done) return;
        w.done = true;
        clearTimeout(w.timer);
        w.cleanup();
        const i = this.#items.indexOf(w);
        if (i >= 0) this.#items.splice(i, 1);
        reject(e);
      };
      w.timer = setTimeout(() => fail(new TransportTimeoutError(`${what} (waiting for a connection)`, this.timeoutMs, { medium: this.#medium })), this.timeoutMs);
      w.cleanup = onAbort(signal, this.#medium, what, fail);
      this.#items.push(w);
    });
  }

  /** Hands every waiting frame to `send` in order; each wait settles as its send does. */
  flush(send: (frame: Uint8Array) => Promise<void>): void {
    const items = this.#items;
    this.#items = [];
    for (const w of items) {
      if (w.done) continue;
      w.done = true;
      clearTimeout(w.timer);
      w.cleanup();
      send(w.frame).then(w.resolve, w.reject);
    }
  }

  rejectAll(error: TransportError): void {
    const items = this.#items;
    this.#items = [];
    for (const w of items) {
      if (w.done) continue;
      w.done = true;
      clearTimeout(w.timer);
      w.cleanup();
      w.reject(error);
    }
  }
}

/** Exponential back-off of a client's reconnections. */
export interface ReconnectOptions {
  /** First delay (default 100 ms; MQTT 1000 ms). */
  initialDelayMs?: number | undefined;
  /** Largest delay (default 5000 ms; MQTT 30000 ms). */
  maxDelayMs?: number | undefined;
  /** The multiplier per failed attempt (default 2). */
  factor?: number | undefined;
  /**
   * Random spread, 0..1: each delay is drawn from `[d × (1 − jitter), d]` so that clients cut
   * off together do not come back together (default 0; MQTT 0.2).
   */
  jitter?: number | undefined;
}

export interface Backoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly factor: number;
  readonly jitter: number;
}

/** The defaults of the TCP and WebSocket clients. */
export const DEFAULT_BACKOFF: Backoff = Object.freeze({ initialDelayMs: 100, maxDelayMs: 5000, factor: 2, jitter: 0 });

export function backoffOf(options: ReconnectOptions | false | undefined, medium: string, defaults: Backoff = DEFAULT_BACKOFF): Backoff | false {
  if (options === false) return false;
  const o = options ?? {};
  const initialDelayMs = positiveInt('reconnect.initialDelayMs', o.initialDelayMs, defaults.initialDelayMs, medium, 1);
  const maxDelayMs = positiveInt('reconnect.maxDelayMs', o.maxDelayMs, Math.max(defaults.maxDelayMs, initialDelayMs), medium, initialDelayMs);
  const factor = o.factor ?? defaults.factor;
  if (typeof factor !== 'number' || !(factor >= 1 && factor <= 10)) throw new TransportOptionError('reconnect.factor', factor, 'a number in 1..10', { medium });
  const jitter = o.jitter ?? defaults.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) throw new TransportOptionError('reconnect.jitter', jitter, 'a number in 0..1', { medium });
  return { initialDelayMs, maxDelayMs, factor, jitter };
}

/** The delay before reconnection attempt `attempt` (1-based); `random` in [0, 1) draws the jitter. */
export function backoffDelay(b: Backoff, attempt: number, random: () => number = Math.random): number {
  const d = Math.min(b.maxDelayMs, b.initialDelayMs * b.factor ** (attempt - 1));
  return Math.max(1, Math.round(b.jitter === 0 ? d : d * (1 - b.jitter * random())));
}

/** A closed-transport error for sends still queued when a transport is destroyed. */
export function closedError(medium: string, what = 'the transport was destroyed before the frame was sent'): TransportStateError {
  return new TransportStateError('ERR_TRANSPORT_CLOSED', what, 'destroyed', { medium });
}

function isNotFound(error: unknown, pkg: string): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND') && String(e.message).includes(pkg);
}

/**
 * Loads a driver's optional peer dependency (`mqtt`, `ws`, `serialport`) when the driver starts,
 * never at import: a user who does not use that driver need not install it. The specifier is not
 * a literal, so bundlers leave it alone. Missing: `ERR_TRANSPORT_DEPENDENCY` saying what to install.
 */
export async function importOptional<T>(driver: string, pkg: string, range: string): Promise<T> {
  const specifier = pkg;
  try {
    return (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as T;
  } catch (e) {
    if (isNotFound(e, pkg)) throw new DriverError('ERR_TRANSPORT_DEPENDENCY', driver, `the ${driver} driver needs its optional peer dependency ${pkg} ${range}: npm install ${pkg}`, e);
    throw new DriverError('ERR_TRANSPORT_DRIVER', driver, `${pkg} failed to load`, e);
  }
}
