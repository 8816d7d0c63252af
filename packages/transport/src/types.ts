import type { TransportError } from './errors.js';

/**
 * Who a frame came from, or goes to. Drivers fill the fields their medium has; `key` is always
 * set and is stable for one peer (a map key, a log field).
 */
export interface Peer {
  /** The driver name: `inprocess`, `udp`, `tcp`, `unix`, `mqtt`, `websocket`, `serial`. */
  readonly medium: string;
  /** A stable text identity: `udp:127.0.0.1:8080`, `tcp:[::1]:40112#3`, `mqtt:os/sensors/raw`. */
  readonly key: string;
  readonly address?: string | undefined;
  readonly port?: number | undefined;
  readonly family?: 'IPv4' | 'IPv6' | undefined;
  /** A Unix socket or serial device path. */
  readonly path?: string | undefined;
  /** The MQTT topic a frame came on, or goes to. */
  readonly topic?: string | undefined;
}

/**
 * A destination for `send`: a `Peer` from an inbound frame (a reply), or the fields a driver needs
 * (`{ address, port }` for UDP and reference-mode TCP, `{ topic }` for MQTT).
 */
export type PeerLike = Peer | { readonly address: string; readonly port: number } | { readonly topic: string };

/** A received frame. `frame` is a view of the bytes as they arrived (no copy where the platform allows). */
export interface Inbound {
  readonly frame: Uint8Array;
  readonly peer: Peer;
  /** When the transport took it off the medium: milliseconds since the epoch (`Date.now()` or the `now` option). */
  readonly receivedAt: number;
  /**
   * Present after `deferAcks()` on a frame the medium acknowledges (MQTT QoS 1): acknowledges it
   * (the PUBACK). Call it once the frame is durable, at most once; a frame never acknowledged is
   * sent again by the broker after a reconnection (with a persistent session).
   */
  readonly ack?: (() => void) | undefined;
}

/** Options of `Transport.batches`. */
export interface BatchOptions {
  /** Frames one batch holds at most (default 1024); more queued wait for the next batch. */
  readonly max?: number | undefined;
}

export interface SendOptions {
  /** Aborts the send while it waits (in a queue, for a connection, for a broker's PUBACK). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * `created` → `starting` → `running` → `stopping` → `stopped`; `destroyed` from anywhere. A
 * transport runs once: a stopped or destroyed one cannot start again (make a new one).
 */
export type TransportState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'destroyed';

/** Why frames were dropped (`dropped` events, `stats().dropped`). */
export type DropReason =
  /** The inbound queue was full and the medium cannot be paused (UDP, MQTT QoS 0 with `onFull: 'drop'`). */
  | 'queue-full'
  /** A received frame over `maxFrameBytes`. */
  | 'oversize'
  /** A peer broke the framing (bad length prefix, WebSocket text, undecodable serial bytes). */
  | 'protocol'
  /** Bytes between frames that belong to none (serial line noise, STX/ETX mode). */
  | 'noise'
  /** Frames still queued inbound when the transport was destroyed. */
  | 'destroyed';

/** The events of a transport, by type. */
export interface TransportEventMap {
  /** A listener is bound (UDP socket, TCP/WebSocket server). */
  listening: { readonly address?: string | undefined; readonly port?: number | undefined; readonly path?: string | undefined };
  /** A connection came up (a client's to its server, a server's from a client, an MQTT session). */
  connected: { readonly peer: Peer };
  /** A connection went down; `error` says why when it was not a clean close. */
  disconnected: { readonly peer: Peer; readonly error?: TransportError | undefined };
  /** A client lost its connection and tries again after `delayMs`. */
  reconnecting: { readonly attempt: number; readonly delayMs: number; readonly error?: TransportError | undefined };
  /**
   * Frames (or bytes, for `noise`) were dropped. Coalesced: one event per reason and peer per
   * macrotask at most; `stats().dropped` has the exact totals.
   */
  dropped: { readonly reason: DropReason; readonly count: number; readonly peer?: Peer | undefined; readonly error?: TransportError | undefined };
  /**
   * Inbound: the queue filled (`active: true`, reading paused or frames dropped) or came back to
   * half its limits (`active: false`). Outbound: a send was refused because a bound (pending
   * sends, bytes not yet written) was reached (`active: true` only; the next send may succeed).
   */
  backpressure: { readonly direction: 'inbound' | 'outbound'; readonly active: boolean; readonly queued: number; readonly limit: number; readonly peer?: Peer | undefined };
  /** An error that belongs to no call (a peer's protocol error, a socket failure). */
  error: { readonly error: TransportError };
  /** The lifecycle state changed. */
  state: { readonly from: TransportState; readonly to: TransportState };
}

export type TransportEventType = keyof TransportEventMap;
/** One event: its payload and its `type`. */
export type TransportEvent<K extends TransportEventType = TransportEventType> = { [T in K]: TransportEventMap[T] & { readonly type: T } }[K];

/** Counters since the transport was made. */
export interface TransportStats {
  readonly framesIn: number;
  readonly bytesIn: number;
  readonly framesOut: number;
  readonly bytesOut: number;
  /** Frames dropped, by reason (bytes for `noise`). */
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Frames waiting in the inbound queue now, and their bytes. */
  readonly inboundQueued: number;
  readonly inboundQueuedBytes: number;
  /** Sends not settled yet. */
  readonly pendingSends: number;
  /** Connections open now (1 or 0 for a client; connected clients for a server). */
  readonly connections: number;
}

// `Symbol.asyncDispose` where the consumer's TypeScript lib has it (esnext.disposable, @types/node),
// nothing where it does not: the declarations then type-check with any lib.
type AsyncDisposeKey = SymbolConstructor extends { readonly asyncDispose: infer S extends symbol } ? S : never;
/** `[Symbol.asyncDispose]()` (= `destroy()`), typed only where the TypeScript lib knows the symbol. */
export type AsyncDisposableLike = { [K in AsyncDisposeKey]: () => Promise<void> };

/**
 * One medium. Lifecycle: `start()`, then `send` and the inbound iterator; `stop()` stops
 * accepting sends, drains what is queued and ends the iterator after the frames already received;
 * `destroy()` frees everything at once and is idempotent (also `await using`).
 */
export interface Transport extends AsyncIterable<Inbound>, AsyncDisposableLike {
  /** The driver name (`udp`...). */
  readonly medium: string;
  readonly state: TransportState;
  /** Frames arrive once, in order, or the loss is reported (TCP, WebSocket, MQTT QoS 1, in-process). */
  readonly reliable: boolean;
  /** The largest frame `send` takes (and the largest a peer may send). */
  readonly maxFrameBytes: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  destroy(): Promise<void>;
  /**
   * Sends one frame, to `to` or the transport's default peer. Resolves when the medium took it
   * (the kernel for sockets, the broker's PUBACK for MQTT QoS 1); rejects with a `TransportError`.
   */
  send(frame: Uint8Array, to?: PeerLike, options?: SendOptions): Promise<void>;
  /** The inbound frames (one consumer: frames are shared out between iterators, not copied to each). */
  frames(): AsyncIterableIterator<Inbound>;
  /**
   * The same inbound frames in batches: each `next()` gives the frames already queued (up to
   * `max`), or waits for the first and gives what arrived with it (a native UDP batch whole).
   * One promise per batch instead of one per frame; the frames leave the bounded queue when their
   * batch is taken, so the backpressure is the per-frame iterator's. Ends as the iterator does.
   * Shares the queue with `frames()` (one consumer: use one or the other).
   */
  batches(options?: BatchOptions): AsyncIterableIterator<Inbound[]>;
  /**
   * Hands each frame of a medium that cannot pause (UDP, MQTT QoS 0) to `handler` as it is
   * received, instead of queueing it for `frames()` / `batches()`: for a consumer with a bounded
   * queue of its own that drops by its own rule (the server's per-device fair queue) rather than
   * by arrival order when it falls behind. Frames a pausable medium delivers still go through the
   * queue (its pressure pauses the medium), so a consumer keeps reading `batches()` as well. The
   * handler runs synchronously in the receive path and must not throw. One handler at a time;
   * returns the function that goes back to queueing. Optional: third-party transports may lack it.
   */
  receiveInto?(handler: (inbound: Inbound) => void): () => void;
  /**
   * From now on the transport does not acknowledge what it receives itself: each frame the medium
   * acknowledges (MQTT QoS 1) carries `ack`, for the consumer to call once the frame is durable
   * (the server: once its readings are committed), so a crash before that loses nothing the
   * sender was told was delivered. Returns false where the medium has nothing to acknowledge or
   * cannot defer it. Optional.
   */
  deferAcks?(): boolean;
  /** Subscribes to one event type; returns the unsubscribe function. */
  on<K extends TransportEventType>(type: K, listener: (event: TransportEvent<K>) => void): () => void;
  stats(): TransportStats;
}
