/**
 * TCP and Unix domain sockets, two modes:
 *
 * - `stream` (default): one persistent connection per peer carrying length-prefixed frames
 *   (`[u32 big-endian length][frame]`, see framing.ts), heartbeats (a zero length) when idle, and
 *   half-open detection (nothing heard for `idleTimeoutMs`: the connection is closed and
 *   reported). Frames sent in the same tick go out in one write. A client reconnects with
 *   back-off; sends made meanwhile wait in a bounded offline queue.
 * - `reference`: as the reference's TCP sender and listener, one frame per connection: the
 *   sender connects, writes the frame and closes; the receiver reads until the sender closes
 *   (or, for a sender that never closes, until `connectionTimeoutMs`, delivering what came).
 *   Reference senders reach our receiver, and ours reach theirs.
 *
 * A transport listens (`listen`), connects (`connect`), or both.
 */
import { nodeBuiltin } from '@opensynaptic/internal';
import {
  type Backoff,
  backoffDelay,
  backoffOf,
  closedError,
  DriverError,
  encodeLengthPrefixed,
  HEARTBEAT,
  ipPeer,
  LengthPrefixDecoder,
  OfflineQueue,
  onAbort,
  type OfflineQueueOptions,
  type Peer,
  PeerError,
  type PeerLike,
  positiveInt,
  QueueFullError,
  type ReconnectOptions,
  TransportBase,
  type TransportError,
  TransportIoError,
  TransportOptionError,
  type TransportOptions,
  TransportProtocolError,
  TransportTimeoutError,
} from '@opensynaptic/transport/core';
import type { TransportDriver } from '@opensynaptic/transport';

/** The reference's TCP port (its `tcp` transporter's default). */
export const DEFAULT_TCP_PORT = 8888;
/** Default largest frame of the streaming mode. */
export const DEFAULT_STREAM_MAX_FRAME_BYTES = 1024 * 1024;
/** Default largest frame of the reference mode (what its listener reads in one `recv`). */
export const DEFAULT_REFERENCE_MAX_FRAME_BYTES = 65_535;

export type StreamMode = 'stream' | 'reference';

interface CommonStreamOptions extends TransportOptions {
  /** `stream` (length-prefixed, persistent; default) or `reference` (one frame per connection). */
  mode?: StreamMode | undefined;
  /** Largest frame (default 1 MiB in `stream` mode, 65535 in `reference` mode). A peer announcing more is a protocol error. */
  maxFrameBytes?: number | undefined;
  /** `stream`: send a heartbeat after this long without writing (default 10000 ms; 0: never). */
  heartbeatMs?: number | undefined;
  /** `stream`: a connection that receives nothing (not even a heartbeat) this long is half-open: closed and reported (default 30000 ms; 0: never). */
  idleTimeoutMs?: number | undefined;
  /** `reference`: how long one connection may take (connect + write, or read until the close); default 3000 ms, as the reference's sender. */
  connectionTimeoutMs?: number | undefined;
  /** `stream` client: how long `start()` waits for the first connection (default 10000 ms). */
  connectTimeoutMs?: number | undefined;
  /** `stream` client: whether `start()` waits for the first connection (default true). */
  waitForConnection?: boolean | undefined;
  /** `stream` client: back-off of reconnections (default 100 ms doubling to 5 s); `false`: none. */
  reconnect?: ReconnectOptions | false | undefined;
  /** `stream` client: sends made while disconnected (default 1024 frames, 10 s each). */
  offlineQueue?: OfflineQueueOptions | undefined;
  /** Server: connections open at once (default 1024); more are closed at once and reported. */
  maxConnections?: number | undefined;
  /** Bytes written but not yet taken by the kernel, per connection, before sends are refused (default 8 MiB). */
  maxPendingBytes?: number | undefined;
}

export interface TcpOptions extends CommonStreamOptions {
  /** Accept connections (port default 8888, host default `0.0.0.0`; `::` for both families). */
  listen?: { readonly host?: string | undefined; readonly port?: number | undefined } | undefined;
  /** `stream`: the server to stay connected to; `reference`: where `send` goes without a `to` (port default 8888). */
  connect?: { readonly host: string; readonly port?: number | undefined } | undefined;
  /** Disable Nagle's algorithm (default true: frames leave at once; batching is done here). */
  noDelay?: boolean | undefined;
}

export interface UnixOptions extends CommonStreamOptions {
  /** Accept connections on this socket path (a stale socket file nobody listens on is replaced). */
  listen?: { readonly path: string } | undefined;
  /** The socket path to connect to. */
  connect?: { readonly path: string } | undefined;
}

// The part of `node:net` used here (no @types/node in the published declarations).
interface NetSocket {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly writableLength: number;
  readonly destroyed: boolean;
  on(event: 'data', listener: (chunk: Uint8Array) => void): this;
  on(event: 'close', listener: (hadError: boolean) => void): this;
  on(event: 'error' | 'connect' | 'end' | 'finish', listener: (err?: Error) => void): this;
  once(event: 'connect' | 'error' | 'finish' | 'close', listener: (err?: Error) => void): this;
  write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean;
  cork(): void;
  uncork(): void;
  end(data?: Uint8Array): void;
  destroy(error?: Error): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay: boolean): void;
}
interface NetServer {
  on(event: 'connection', listener: (socket: NetSocket) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'error' | 'listening', listener: (err?: Error) => void): this;
  off(event: 'error', listener: (err?: Error) => void): this;
  listen(options: { port?: number; host?: string; path?: string }): void;
  close(cb?: () => void): void;
  address(): { address: string; port: number; family: string } | string | null;
}
interface Net {
  createServer(options: { noDelay?: boolean }): NetServer;
  connect(options: { host?: string; port?: number; path?: string; noDelay?: boolean }): NetSocket;
}
interface Fs {
  rmSync(path: string, options?: { force?: boolean }): void;
  statSync(path: string): { isSocket(): boolean };
}

const LARGE_FRAME = 16 * 1024;
const RESOLVED = Promise.resolve();

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

interface RefSend {
  frame: Uint8Array;
  where: Address;
  resolve: () => void;
  reject: (e: Error) => void;
  cleanup: () => void;
  done: boolean;
}

/** One streaming connection: its decoder, its write batch, its heartbeat clock. */
class StreamConn {
  readonly socket: NetSocket;
  readonly peer: Peer;
  readonly decoder: LengthPrefixDecoder;
  lastRead: number;
  lastWrite: number;
  closed = false;
  error: TransportError | undefined;
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #waiters: Waiter[] = [];
  #batchPromise: Promise<void> | undefined;
  #scheduled = false;
  #inflight = new Set<Waiter[]>();

  constructor(socket: NetSocket, peer: Peer, maxFrameBytes: number) {
    this.socket = socket;
    this.peer = peer;
    this.decoder = new LengthPrefixDecoder(maxFrameBytes);
    this.lastRead = Date.now();
    this.lastWrite = this.lastRead;
  }

  /** Bytes waiting here or in the socket. */
  get pendingBytes(): number {
    return this.#batchBytes + this.socket.writableLength;
  }

  send(frame: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new PeerError('the connection closed', { medium: this.peer.medium, peer: this.peer.key }));
    if (frame.byteLength >= LARGE_FRAME) {
      // A large frame is written as is (no copy into a batch): its header, then its bytes.
      this.flush();
      return new Promise<void>((resolve, reject) => {
        const w = [{ resolve, reject }];
        this.#inflight.add(w);
        const n = frame.byteLength;
        this.socket.cork();
        this.socket.write(new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]));
        this.socket.write(frame, (err) => this.#settle(w, err));
        this.socket.uncork();
        this.lastWrite = Date.now();
      });
    }
    this.#batch.push(frame);
    this.#batchBytes += frame.byteLength;
    // The frames of one batch leave in one write and settle together: one promise for all of
    // them (a promise and a waiter per frame were a measurable part of a small frame's cost).
    let p = this.#batchPromise;
    if (p === undefined) {
      p = new Promise<void>((resolve, reject) => {
        this.#waiters.push({ resolve, reject });
      });
      this.#batchPromise = p;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      // Every frame sent in this tick goes out in one write.
      queueMicrotask(this.#flushNow);
    }
    return p;
  }

  #flushNow = (): void => this.flush();

  flush(): void {
    this.#scheduled = false;
    if (this.#batch.length === 0 || this.closed) return;
    const data = encodeLengthPrefixed(this.#batch, this.#batchBytes);
    const waiters = this.#waiters;
    this.#batch = [];
    this.#batchBytes = 0;
    this.#waiters = [];
    this.#batchPromise = undefined;
    this.#inflight.add(waiters);
    this.socket.write(data, (err) => this.#settle(waiters, err));
    this.lastWrite = Date.now();
  }

  #settle(waiters: Waiter[], err: Error | null | undefined): void {
    if (!this.#inflight.delete(waiters)) return;
    if (err) {
      const e = this.error ?? new TransportIoError('write failed', err, { medium: this.peer.medium, peer: this.peer.key });
      for (const w of waiters) w.reject(e);
    } else for (const w of waiters) w.resolve();
  }

  heartbeat(): void {
    if (this.closed) return;
    this.socket.write(HEARTBEAT);
    this.lastWrite = Date.now();
  }

  /** Rejects every send not yet confirmed (the connection is gone). */
  fail(error: TransportError): void {
    this.closed = true;
    const all = [this.#waiters, ...this.#inflight];
    this.#batch = [];
    this.#batchBytes = 0;
    this.#waiters = [];
    this.#batchPromise = undefined;
    this.#inflight.clear();
    for (const ws of all) for (const w of ws) w.reject(error);
  }

  /** Whether every write was taken by the kernel. */
  get idle(): boolean {
    return this.#batch.length === 0 && this.#inflight.size === 0;
  }
}

type Address = { host: string; port: number } | { path: string };

const isPath = (a: Address): a is { path: string } => 'path' in a;

/**
 * The TCP and Unix socket transport (`medium` `tcp` or `unix`). Make it with
 * `createTcpTransport` or `createUnixTransport`.
 */
export class StreamSocketTransport extends TransportBase {
  readonly reliable = true;
  readonly mode: StreamMode;
  readonly #listen: Address | undefined;
  readonly #connect: Address | undefined;
  readonly #heartbeatMs: number;
  readonly #idleTimeoutMs: number;
  readonly #connectionTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #waitForConnection: boolean;
  readonly #backoff: Backoff | false;
  readonly #maxConnections: number;
  readonly #maxPendingBytes: number;
  readonly #noDelay: boolean;
  readonly #offline: OfflineQueue;
  #net: Net | undefined;
  #server: NetServer | undefined;
  #conns = new Map<string, StreamConn>();
  /** Reference mode: sockets of connections in progress (both directions). */
  #refSockets = new Set<NetSocket>();
  /** Reference mode: peers of received frames (their connection is closed: no reply goes there). */
  #inboundPeers = new WeakSet<Peer>();
  /** Reference mode: sends waiting for their destination's previous connection to close. */
  #refQueues = new Map<string, { busy: boolean; items: RefSend[] }>();
  #client: StreamConn | undefined;
  #clientSocket: NetSocket | undefined;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #paused = false;
  #connSeq = 0;
  #closing = false;
  #firstConnect: { resolve: () => void; reject: (e: TransportError) => void } | undefined;

  constructor(medium: 'tcp' | 'unix', options: TcpOptions | UnixOptions) {
    const mode = options.mode ?? 'stream';
    if (mode !== 'stream' && mode !== 'reference') throw new TransportOptionError('mode', mode, '"stream" or "reference"', { medium });
    const maxDefault = mode === 'stream' ? DEFAULT_STREAM_MAX_FRAME_BYTES : DEFAULT_REFERENCE_MAX_FRAME_BYTES;
    // The length prefix is 32 bits; the limit stays well below what one allocation may take.
    super(medium, positiveInt('maxFrameBytes', options.maxFrameBytes, maxDefault, medium, 1, 0x7fff_ffff), options);
    this.mode = mode;
    this.#listen = addressOf(medium, 'listen', options.listen, true);
    this.#connect = addressOf(medium, 'connect', options.connect, false);
    if (this.#listen === undefined && this.#connect === undefined) throw new TransportOptionError('listen / connect', undefined, 'at least one of listen and connect', { medium });
    this.#heartbeatMs = positiveInt('heartbeatMs', options.heartbeatMs, 10_000, medium, 0);
    this.#idleTimeoutMs = positiveInt('idleTimeoutMs', options.idleTimeoutMs, 30_000, medium, 0);
    if (this.#idleTimeoutMs > 0 && this.#heartbeatMs > 0 && this.#idleTimeoutMs <= this.#heartbeatMs) {
      throw new TransportOptionError('idleTimeoutMs', this.#idleTimeoutMs, `more than heartbeatMs (${this.#heartbeatMs}), or the peer's heartbeats could not keep the connection`, { medium });
    }
    this.#connectionTimeoutMs = positiveInt('connectionTimeoutMs', options.connectionTimeoutMs, 3000, medium, 1);
    this.#connectTimeoutMs = positiveInt('connectTimeoutMs', options.connectTimeoutMs, 10_000, medium, 1);
    this.#waitForConnection = options.waitForConnection ?? true;
    this.#backoff = backoffOf(options.reconnect, medium);
    this.#maxConnections = positiveInt('maxConnections', options.maxConnections, 1024, medium);
    this.#maxPendingBytes = positiveInt('maxPendingBytes', options.maxPendingBytes, 8 * 1024 * 1024, medium);
    this.#noDelay = (options as TcpOptions).noDelay ?? true;
    this.#offline = new OfflineQueue(medium, options.offlineQueue);
  }

  /** The listening address (after `start()`): the port the system picked for `port: 0`, or the path. */
  get address(): { address: string; port: number } | { path: string } | undefined {
    const a = this.#server?.address();
    if (a === null || a === undefined) return undefined;
    return typeof a === 'string' ? { path: a } : { address: a.address, port: a.port };
  }

  /** Peers with an open streaming connection (a server's clients, a client's server). */
  peers(): Peer[] {
    return [...this.#conns.values()].map((c) => c.peer);
  }

  protected override connectionCount(): number {
    return this.#conns.size + (this.mode === 'reference' ? this.#refSockets.size : 0);
  }

  protected async open(): Promise<void> {
    const net = nodeBuiltin<Net>('node:net');
    if (net === undefined) throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', this.medium, `${this.medium} needs node:net (Node.js 20.16 or later, Deno, Bun); this platform has none`);
    this.#net = net;
    if (this.#listen !== undefined) await this.#startServer(net, this.#listen);
    if (this.mode === 'stream' && (this.#heartbeatMs > 0 || this.#idleTimeoutMs > 0)) {
      const every = Math.max(10, Math.min(this.#heartbeatMs || Number.POSITIVE_INFINITY, (this.#idleTimeoutMs || Number.POSITIVE_INFINITY) / 4));
      this.#sweepTimer = setInterval(() => this.#sweep(), every);
      (this.#sweepTimer as { unref?: () => void }).unref?.();
    }
    if (this.mode === 'stream' && this.#connect !== undefined) {
      const first = new Promise<void>((resolve, reject) => {
        this.#firstConnect = { resolve, reject };
      });
      const timer = setTimeout(() => this.#firstConnect?.reject(new TransportTimeoutError(`connecting to ${describeAddress(this.#connect!)}`, this.#connectTimeoutMs, { medium: this.medium })), this.#connectTimeoutMs);
      this.#dial();
      if (this.#waitForConnection) {
        try {
          await first;
        } finally {
          clearTimeout(timer);
          this.#firstConnect = undefined;
        }
      } else {
        first.catch(() => undefined).finally(() => clearTimeout(timer));
      }
    }
  }

  async #startServer(net: Net, where: Address): Promise<void> {
    const listenOnce = () =>
      new Promise<NetServer>((resolve, reject) => {
        const server = net.createServer({ noDelay: this.#noDelay });
        const failed = (err?: Error) => reject(err);
        server.once('error', failed);
        server.once('listening', () => {
          server.off('error', failed);
          resolve(server);
        });
        server.listen(isPath(where) ? { path: where.path } : { host: where.host, port: where.port });
      });
    let server: NetServer;
    try {
      server = await listenOnce();
    } catch (err) {
      if (!(isPath(where) && (err as { code?: string }).code === 'EADDRINUSE' && (await this.#staleSocket(net, where.path)))) {
        throw new TransportIoError(`could not listen on ${describeAddress(where)}`, err, { medium: this.medium });
      }
      try {
        server = await listenOnce();
      } catch (again) {
        throw new TransportIoError(`could not listen on ${describeAddress(where)}`, again, { medium: this.medium });
      }
    }
    this.#server = server;
    server.on('error', (err) => this.reportError(new TransportIoError('server error', err, { medium: this.medium })));
    server.on('connection', (socket) => this.#accept(socket));
    const a = this.address!;
    this.events.emit('listening', 'path' in a ? { path: a.path } : { address: a.address, port: a.port });
  }

  /** A socket file nobody listens on (a process that died): removed, so the path can be reused. */
  async #staleSocket(net: Net, path: string): Promise<boolean> {
    const fs = nodeBuiltin<Fs>('node:fs');
    try {
      // Only ever a socket file: anything else at the path is not ours to remove.
      if (fs === undefined || !fs.statSync(path).isSocket()) return false;
    } catch {
      return false;
    }
    const refused = await new Promise<boolean>((resolve) => {
      const probe = net.connect({ path });
      probe.once('connect', () => {
        probe.destroy();
        resolve(false);
      });
      probe.once('error', (err) => resolve((err as { code?: string } | undefined)?.code === 'ECONNREFUSED'));
    });
    if (!refused) return false;
    fs.rmSync(path, { force: true });
    return true;
  }

  #accept(socket: NetSocket): void {
    if (!this.accepting || this.#closing) {
      socket.destroy();
      return;
    }
    if (this.connectionCount() >= this.#maxConnections) {
      socket.destroy();
      this.reportError(new QueueFullError('inbound', this.#maxConnections, 'frames', { medium: this.medium, peer: 'a new connection (maxConnections reached)' }));
      return;
    }
    const peer = this.#remotePeer(socket);
    if (this.mode === 'reference') {
      this.#acceptReference(socket, peer);
      return;
    }
    const conn = new StreamConn(socket, peer, this.maxFrameBytes);
    this.#track(conn);
  }

  #remotePeer(socket: NetSocket): Peer {
    const n = ++this.#connSeq;
    if (this.medium === 'unix') {
      const path = isPath(this.#listen ?? { path: '' }) ? (this.#listen as { path: string }).path : '';
      return { medium: 'unix', key: `unix:${path}#${n}`, path };
    }
    const address = socket.remoteAddress ?? '?';
    const family = socket.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4';
    return ipPeer('tcp', address, socket.remotePort ?? 0, family);
  }

  /** Wires a streaming connection (accepted, or the client's). */
  #track(conn: StreamConn): void {
    const { socket, peer } = conn;
    this.#conns.set(peer.key, conn);
    if (this.#paused) socket.pause();
    socket.on('data', (chunk) => this.#read(conn, chunk));
    socket.on('error', (err) => {
      conn.error ??= new TransportIoError('connection error', err, { medium: this.medium, peer: peer.key });
    });
    socket.on('close', () => this.#closed(conn));
    this.events.emit('connected', { peer });
  }

  #read(conn: StreamConn, chunk: Uint8Array): void {
    conn.lastRead = Date.now();
    // A plain Uint8Array view of the chunk: frames that arrived whole are views of it (no copy).
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // One clock reading per chunk: its frames arrived together.
    const receivedAt = this.clock();
    try {
      conn.decoder.push(bytes, (frame) => {
        if (!this.deliver(frame, conn.peer, true, receivedAt)) this.#pauseAll();
      });
    } catch (e) {
      const error = e instanceof TransportProtocolError ? new TransportProtocolError(e.message.replace(/^[^:]*: /, ''), { medium: this.medium, peer: conn.peer.key }) : new TransportIoError('read failed', e, { medium: this.medium, peer: conn.peer.key });
      this.drop('protocol', 1, conn.peer, error);
      this.reportError(error);
      conn.error = error;
      conn.socket.destroy();
    }
  }

  #closed(conn: StreamConn): void {
    const error = conn.error;
    conn.fail(error ?? new PeerError('the connection closed before the frame was sent', { medium: this.medium, peer: conn.peer.key }));
    this.#conns.delete(conn.peer.key);
    this.events.emit('disconnected', error ? { peer: conn.peer, error } : { peer: conn.peer });
    if (conn === this.#client) {
      this.#client = undefined;
      this.#clientSocket = undefined;
      this.#scheduleReconnect(error);
    }
  }

  #pauseAll(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const c of this.#conns.values()) c.socket.pause();
    for (const s of this.#refSockets) s.pause();
  }

  protected override onInboundPressure(active: boolean): void {
    if (active) {
      this.#pauseAll();
      return;
    }
    if (!this.#paused) return;
    this.#paused = false;
    for (const c of this.#conns.values()) c.socket.resume();
    for (const s of this.#refSockets) s.resume();
  }

  #sweep(): void {
    const now = Date.now();
    for (const conn of this.#conns.values()) {
      if (conn.closed) continue;
      // A paused connection reads nothing on purpose: its silence is ours, not the peer's.
      if (this.#idleTimeoutMs > 0 && !this.#paused && now - conn.lastRead >= this.#idleTimeoutMs) {
        const error = new TransportTimeoutError(`no data or heartbeat from the peer (half-open connection)`, this.#idleTimeoutMs, { medium: this.medium, peer: conn.peer.key });
        conn.error = error;
        this.reportError(error);
        conn.socket.destroy();
        continue;
      }
      if (this.#heartbeatMs > 0 && now - conn.lastWrite >= this.#heartbeatMs && conn.idle) conn.heartbeat();
    }
    if (this.#paused) for (const conn of this.#conns.values()) conn.lastRead = now;
  }

  // --- the streaming client ------------------------------------------------------------------

  #dial(): void {
    if (!this.accepting || this.#closing || this.#net === undefined) return;
    const where = this.#connect!;
    const socket = this.#net.connect(isPath(where) ? { path: where.path } : { host: where.host, port: where.port, noDelay: this.#noDelay });
    this.#clientSocket = socket;
    let connected = false;
    const timer = setTimeout(() => {
      if (!connected) socket.destroy(new Error(`connect timed out after ${this.#connectionTimeoutMs} ms`));
    }, Math.max(this.#connectionTimeoutMs, 1000));
    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      if (!this.accepting || this.#closing) {
        socket.destroy();
        return;
      }
      this.#attempt = 0;
      const peer: Peer = isPath(where) ? { medium: this.medium, key: `${this.medium}:${where.path}`, path: where.path } : ipPeer(this.medium, where.host, where.port);
      const conn = new StreamConn(socket, peer, this.maxFrameBytes);
      this.#client = conn;
      this.#track(conn);
      this.#firstConnect?.resolve();
      this.#offline.flush((f) => conn.send(f));
    });
    socket.once('error', (err) => {
      if (connected) return;
      clearTimeout(timer);
      const error = new TransportIoError(`could not connect to ${describeAddress(where)}`, err, { medium: this.medium });
      this.#clientSocket = undefined;
      socket.destroy();
      if (this.#backoff === false) this.#firstConnect?.reject(error);
      this.#scheduleReconnect(error);
    });
  }

  #scheduleReconnect(error: TransportError | undefined): void {
    if (!this.accepting || this.#closing || this.mode !== 'stream' || this.#connect === undefined) return;
    if (this.#backoff === false) {
      this.#offline.rejectAll(error ?? new PeerError('the connection closed and reconnect is off', { medium: this.medium }));
      return;
    }
    const attempt = ++this.#attempt;
    const delayMs = backoffDelay(this.#backoff, attempt);
    this.events.emit('reconnecting', error ? { attempt, delayMs, error } : { attempt, delayMs });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#dial();
    }, delayMs);
  }

  // --- sending -------------------------------------------------------------------------------

  protected write(frame: Uint8Array, to: PeerLike | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (this.mode === 'reference') return this.#writeReference(frame, to, signal);
    let conn: StreamConn | undefined;
    if (to !== undefined) {
      const key = (to as Peer).key;
      if (typeof key !== 'string') throw new PeerError('a streaming destination is a Peer of an open connection (from a received frame or peers())', { medium: this.medium });
      conn = this.#conns.get(key);
      if (conn === undefined) {
        if (this.#client === undefined && this.#connect !== undefined && key === this.#clientKey()) return this.#offline.wait(frame, signal, 'send');
        throw new PeerError(`no open connection to ${key}`, { medium: this.medium, peer: key });
      }
    } else if (this.#connect !== undefined) {
      conn = this.#client;
      if (conn === undefined) return this.#offline.wait(frame, signal, 'send');
    } else {
      throw new PeerError('no destination: a listening transport sends to a Peer (from a received frame or peers())', { medium: this.medium });
    }
    if (conn.pendingBytes + frame.byteLength > this.#maxPendingBytes) {
      this.events.emit('backpressure', { direction: 'outbound', active: true, queued: conn.pendingBytes, limit: this.#maxPendingBytes, peer: conn.peer });
      throw new QueueFullError('outbound', this.#maxPendingBytes, 'bytes', { medium: this.medium, peer: conn.peer.key });
    }
    return conn.send(frame);
  }

  #clientKey(): string {
    const where = this.#connect!;
    return isPath(where) ? `${this.medium}:${where.path}` : ipPeer(this.medium, where.host, where.port).key;
  }

  /** Reference mode: one connection per frame (connect, write, close). */
  #writeReference(frame: Uint8Array, to: PeerLike | undefined, signal: AbortSignal | undefined): Promise<void> {
    let where: Address;
    if (to === undefined) {
      if (this.#connect === undefined) throw new PeerError('no destination: pass `to` or set the `connect` option', { medium: this.medium });
      where = this.#connect;
    } else if (this.#inboundPeers.has(to as Peer)) {
      throw new PeerError(
        `reference-mode ${this.medium} carries no replies over the sender's connection (it is closed after one frame); send to the peer's listening address`,
        { medium: this.medium, peer: (to as Peer).key },
      );
    } else if (this.medium === 'unix') {
      const path = (to as { path?: unknown }).path;
      if (typeof path !== 'string' || path === '') throw new PeerError('a unix destination needs a path', { medium: this.medium });
      where = { path };
    } else {
      const t = to as { address?: unknown; port?: unknown };
      if (typeof t.address !== 'string' || t.address === '') throw new PeerError(`a TCP destination needs an address; got ${JSON.stringify(t.address)}`, { medium: this.medium });
      if (typeof t.port !== 'number' || !Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new PeerError(`a TCP destination needs a port in 1..65535; got ${String(t.port)}`, { medium: this.medium });
      where = { host: t.address, port: t.port };
    }
    return new Promise<void>((resolve, reject) => {
      const key = describeAddress(where);
      let queue = this.#refQueues.get(key);
      if (queue === undefined) {
        queue = { busy: false, items: [] };
        this.#refQueues.set(key, queue);
      }
      const item: RefSend = { frame, where, resolve, reject, cleanup: () => undefined, done: false };
      item.cleanup = onAbort(signal, this.medium, 'send', (e) => {
        if (item.done) return;
        item.done = true;
        const i = queue.items.indexOf(item);
        if (i >= 0) queue.items.splice(i, 1);
        reject(e);
      });
      queue.items.push(item);
      this.#pumpReference(key, queue);
    });
  }

  /**
   * One connection at a time per destination, the next after the receiver closed the previous
   * one (it has read that frame): the order of frames is kept, as with the reference's
   * synchronous sender, and a receiver's accept backlog never overflows.
   */
  #pumpReference(key: string, queue: { busy: boolean; items: RefSend[] }): void {
    if (queue.busy) return;
    const item = queue.items.shift();
    if (item === undefined) {
      this.#refQueues.delete(key);
      return;
    }
    if (item.done) {
      this.#pumpReference(key, queue);
      return;
    }
    item.done = true;
    item.cleanup();
    queue.busy = true;
    const where = item.where;
    const socket = this.#net!.connect(isPath(where) ? { path: where.path } : { host: where.host, port: where.port, noDelay: true });
    this.#refSockets.add(socket);
    let settled = false;
    const finish = (error?: TransportError) => {
      if (settled) return;
      settled = true;
      if (error) {
        socket.destroy();
        item.reject(error);
      } else item.resolve();
    };
    const timer = setTimeout(() => {
      finish(new TransportTimeoutError(`sending to ${key}`, this.#connectionTimeoutMs, { medium: this.medium }));
      socket.destroy();
    }, this.#connectionTimeoutMs);
    socket.once('connect', () => socket.end(item.frame));
    // Written and closed on our side: what the reference's `sendall` + close promise.
    socket.once('finish', () => finish());
    socket.once('error', (err) => finish(new TransportIoError(`sending to ${key} failed`, err, { medium: this.medium })));
    socket.once('close', () => {
      clearTimeout(timer);
      this.#refSockets.delete(socket);
      finish(closedError(this.medium, 'the connection closed before the frame was written'));
      queue.busy = false;
      if (!this.#closing) this.#pumpReference(key, queue);
      else for (const rest of queue.items.splice(0)) if (!rest.done) rest.reject(closedError(this.medium));
    });
    // The reference's listener sends nothing back; anything it does is read and ignored.
    socket.on('data', () => undefined);
  }

  /** Reference mode, receiving: the bytes up to the sender's close are one frame. */
  #acceptReference(socket: NetSocket, peer: Peer): void {
    this.#refSockets.add(socket);
    this.#inboundPeers.add(peer);
    if (this.#paused) socket.pause();
    const chunks: Uint8Array[] = [];
    let size = 0;
    let over = false;
    let delivered = false;
    const deliverNow = () => {
      if (delivered || over || size === 0) return;
      delivered = true;
      const frame = chunks.length === 1 ? chunks[0]! : concat(chunks, size);
      if (!this.deliver(frame, peer, true)) this.#pauseAll();
    };
    const timer = setTimeout(() => {
      // A sender that never closes: what came is the frame (the reference reads one recv).
      deliverNow();
      socket.destroy();
    }, this.#connectionTimeoutMs);
    socket.on('data', (chunk) => {
      if (over) return;
      size += chunk.byteLength;
      if (size > this.maxFrameBytes) {
        over = true;
        const error = new TransportProtocolError(`a connection carried more than maxFrameBytes (${this.maxFrameBytes}) before closing`, { medium: this.medium, peer: peer.key });
        this.drop('oversize', 1, peer, error);
        socket.destroy();
        return;
      }
      chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      deliverNow();
      socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      this.#refSockets.delete(socket);
    });
  }

  // --- closing -------------------------------------------------------------------------------

  protected async close(drain: boolean): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#reconnectTimer);
    this.#firstConnect?.reject(closedError(this.medium, 'the transport closed before it connected'));
    this.#offline.rejectAll(closedError(this.medium, 'the transport closed before it (re)connected'));
    const server = this.#server;
    this.#server = undefined;
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : RESOLVED;
    const conns = [...this.#conns.values()];
    if (drain) {
      for (const c of conns) c.flush();
      await Promise.all(conns.map((c) => endGracefully(c.socket, 2000)));
      await waitAll(this.#refSockets, 2000);
    }
    const error = closedError(this.medium);
    for (const c of conns) {
      c.error ??= error;
      c.fail(c.error);
      c.socket.destroy();
    }
    for (const q of this.#refQueues.values()) for (const item of q.items.splice(0)) if (!item.done) {
      item.done = true;
      item.cleanup();
      item.reject(error);
    }
    for (const s of this.#refSockets) s.destroy();
    this.#refSockets.clear();
    this.#clientSocket?.destroy();
    this.#clientSocket = undefined;
    await serverClosed;
  }
}

function describeAddress(a: Address): string {
  return isPath(a) ? a.path : `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

function addressOf(medium: 'tcp' | 'unix', name: string, value: unknown, listening: boolean): Address | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) throw new TransportOptionError(name, value, medium === 'unix' ? 'an object { path }' : 'an object { host, port }', { medium });
  const v = value as { host?: unknown; port?: unknown; path?: unknown };
  if (medium === 'unix') {
    if (typeof v.path !== 'string' || v.path === '') throw new TransportOptionError(`${name}.path`, v.path, 'a non-empty socket path', { medium });
    return { path: v.path };
  }
  const host = v.host ?? (listening ? '0.0.0.0' : undefined);
  if (typeof host !== 'string' || host === '') throw new TransportOptionError(`${name}.host`, v.host, 'a non-empty host name or address', { medium });
  return { host, port: positiveInt(`${name}.port`, v.port, DEFAULT_TCP_PORT, medium, listening ? 0 : 1, 65535) };
}

function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Half-closes a socket once its writes are out and waits for the peer's close, at most `ms`. */
function endGracefully(socket: NetSocket, ms: number): Promise<void> {
  if (socket.destroyed) return RESOLVED;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}

function waitAll(sockets: Set<NetSocket>, ms: number): Promise<void> {
  return Promise.all([...sockets].map((s) => (s.destroyed ? RESOLVED : new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  })))).then(() => undefined);
}

export function createTcpTransport(options: TcpOptions): StreamSocketTransport {
  return new StreamSocketTransport('tcp', options);
}

export function createUnixTransport(options: UnixOptions): StreamSocketTransport {
  return new StreamSocketTransport('unix', options);
}

/** The registry's `tcp` and `unix` drivers. */
export const tcpDriver: TransportDriver = { name: 'tcp', create: (options) => new StreamSocketTransport('tcp', options as TcpOptions) };
export const unixDriver: TransportDriver = { name: 'unix', create: (options) => new StreamSocketTransport('unix', options as UnixOptions) };
