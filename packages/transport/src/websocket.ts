/**
 * WebSocket, binary messages only (one message, one frame; a text message is a protocol error:
 * reported, and the connection closed with 1003). Two sides:
 *
 * - a server, with the `ws` package (an optional peer dependency: `npm install ws`, loaded when
 *   the transport starts), either listening on its own port (`listen`) or sharing an HTTP(S)
 *   server the application already runs (`attach`: its upgrade requests for one path). An
 *   optional `verifyUpgrade` hook accepts or refuses each upgrade before it completes (a token,
 *   a Host check). It pauses its connections when the inbound queue is full, pings them to find
 *   half-open ones, and reports per connection the bytes still waiting to be sent
 *   (`bufferedBytes`), so that a sender can skip a slow peer and resync it later;
 * - a client (`url`), with the standard `WebSocket` class: the browser's, Node 22's, or one given
 *   as `WebSocket` (on Node 20, `ws`'s). The client path uses no Node built-in, so it bundles for
 *   browsers. It reconnects with back-off; sends made meanwhile wait in a bounded queue.
 */
import {
  type Backoff,
  backoffDelay,
  backoffOf,
  closedError,
  DriverError,
  importOptional,
  ipPeer,
  OfflineQueue,
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

export const DEFAULT_WEBSOCKET_MAX_FRAME_BYTES = 1024 * 1024;
/** The close code for a text message: "unsupported data" (RFC 6455). */
export const CLOSE_UNSUPPORTED_DATA = 1003;

/** The part of the standard `WebSocket` class the client uses. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketClass = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** An upgrade request as `verifyUpgrade` sees it (Node's `IncomingMessage` has this shape). */
export interface UpgradeRequest {
  /** The request target: path and query (`/live?token=...`). */
  readonly url?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined; readonly remoteFamily?: string | undefined };
}
/** What `verifyUpgrade` returns to refuse an upgrade: the HTTP status sent back, and its text. */
export interface UpgradeRefusal {
  readonly status: number;
  readonly reason?: string | undefined;
}
/** The raw connection of an upgrade request (Node's `net.Socket`, `tls.TLSSocket`). */
export interface UpgradeSocket {
  end(data: string): void;
  destroy(): void;
}
/** An HTTP(S) server to share (Node's `http.Server`, `https.Server`): its `upgrade` event. */
export interface UpgradeServer {
  on(event: 'upgrade', listener: (req: UpgradeRequest, socket: UpgradeSocket, head: Uint8Array) => void): unknown;
  off(event: 'upgrade', listener: (req: UpgradeRequest, socket: UpgradeSocket, head: Uint8Array) => void): unknown;
  listenerCount?(event: 'upgrade'): number;
  address?(): { address: string; port: number } | string | null;
}
/** Accepts (`true`) or refuses an upgrade; may be async. A throw refuses it with 500, reported. */
export type VerifyUpgrade = (request: UpgradeRequest) => true | UpgradeRefusal | Promise<true | UpgradeRefusal>;

export interface WebSocketOptions extends TransportOptions {
  /** Client: the server's URL (`ws://host:port/path`, `wss://...`). */
  url?: string | undefined;
  /** Client: the WebSocket class (default `globalThis.WebSocket`; on Node 20 pass `ws`'s `WebSocket`). */
  WebSocket?: WebSocketClass | undefined;
  /** Client: subprotocols to ask for. */
  protocols?: string | string[] | undefined;
  /** Server: where to listen (host default `0.0.0.0`, port default 8081, `path` default any). */
  listen?: { readonly host?: string | undefined; readonly port?: number | undefined; readonly path?: string | undefined } | undefined;
  /**
   * Server: share an HTTP(S) server that is already listening instead of opening a port: the
   * transport answers its upgrade requests for `path` (default any). A request for another path
   * is left to the server's other `upgrade` listeners, or refused with 404 when there are none.
   * Stopping the transport leaves the HTTP server running.
   */
  attach?: { readonly server: UpgradeServer; readonly path?: string | undefined } | undefined;
  /** Server: accepts or refuses each upgrade before the handshake completes (default: all accepted, up to `maxConnections`). */
  verifyUpgrade?: VerifyUpgrade | undefined;
  /** Largest frame sent or received (default 1 MiB); a larger message closes the connection (1009) and is reported. */
  maxFrameBytes?: number | undefined;
  /** Largest message received, when it must be smaller than what is sent (default `maxFrameBytes`). */
  maxInboundBytes?: number | undefined;
  /** Server: connections open at once (default 1024). */
  maxConnections?: number | undefined;
  /** Bytes buffered but not yet sent, per connection, before sends are refused (default 8 MiB). */
  maxPendingBytes?: number | undefined;
  /** Server: ping each connection this often and close one that did not answer the last ping (default 30000 ms; 0: never). */
  pingIntervalMs?: number | undefined;
  /** Client: back-off of reconnections (default 100 ms doubling to 5 s); `false`: none. */
  reconnect?: ReconnectOptions | false | undefined;
  /** Client: sends made while disconnected (default 1024 frames, 10 s each). */
  offlineQueue?: OfflineQueueOptions | undefined;
  /** Client: how long `start()` waits for the first connection (default 10000 ms). */
  connectTimeoutMs?: number | undefined;
}

export const DEFAULT_WEBSOCKET_PORT = 8081;

const OPEN = 1;

// The part of `ws` the server uses (its types are not in the published declarations: it is optional).
interface WsSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  on(event: 'message', listener: (data: Uint8Array, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Uint8Array) => void): this;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
  on(event: 'pong', listener: () => void): this;
  send(data: Uint8Array, options: { binary: boolean }, cb: (err?: Error) => void): void;
  ping(): void;
  pause(): void;
  resume(): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}
interface WsServer {
  handleUpgrade(req: UpgradeRequest, socket: UpgradeSocket, head: Uint8Array, cb: (ws: WsSocket) => void): void;
  on(event: 'connection', listener: (ws: WsSocket, req: { socket: { remoteAddress?: string; remotePort?: number; remoteFamily?: string } }) => void): this;
  on(event: 'error' | 'listening', listener: (err?: Error) => void): this;
  once(event: 'error' | 'listening', listener: (err?: Error) => void): this;
  close(cb?: () => void): void;
  address(): { address: string; port: number } | string;
}
interface WsModule {
  WebSocketServer: new (options: object) => WsServer;
}

// The status line of a refused upgrade on a shared server (no node:http here: the module bundles for browsers).
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' };

interface Conn {
  peer: Peer;
  ws: WsSocket;
  alive: boolean;
  pending: Set<{ reject: (e: Error) => void }>;
}

export class WebSocketTransport extends TransportBase {
  readonly reliable = true;
  readonly #url: string | undefined;
  readonly #WebSocket: WebSocketClass | undefined;
  readonly #protocols: string | string[] | undefined;
  readonly #listen: { host: string; port: number; path: string | undefined } | undefined;
  readonly #attach: { server: UpgradeServer; path: string | undefined } | undefined;
  readonly #verifyUpgrade: VerifyUpgrade | undefined;
  readonly #maxInboundBytes: number;
  #detach: (() => void) | undefined;
  readonly #maxConnections: number;
  readonly #maxPendingBytes: number;
  readonly #pingIntervalMs: number;
  readonly #backoff: Backoff | false;
  readonly #offline: OfflineQueue;
  readonly #connectTimeoutMs: number;
  #server: WsServer | undefined;
  #conns = new Map<string, Conn>();
  #pingTimer: ReturnType<typeof setInterval> | undefined;
  #paused = false;
  // Client side
  #socket: WebSocketLike | undefined;
  #clientPeer: Peer | undefined;
  #clientOpen = false;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #closing = false;
  #firstConnect: { resolve: () => void; reject: (e: TransportError) => void } | undefined;

  constructor(options: WebSocketOptions) {
    super('websocket', positiveInt('maxFrameBytes', options.maxFrameBytes, DEFAULT_WEBSOCKET_MAX_FRAME_BYTES, 'websocket', 1, 0x7fff_ffff), options);
    const m = { medium: 'websocket' };
    if (options.url !== undefined && (typeof options.url !== 'string' || !/^wss?:\/\/[^/]+/.test(options.url))) throw new TransportOptionError('url', options.url, 'a ws:// or wss:// URL', m);
    this.#url = options.url;
    this.#WebSocket = options.WebSocket;
    if (this.#WebSocket !== undefined && typeof this.#WebSocket !== 'function') throw new TransportOptionError('WebSocket', this.#WebSocket, 'a WebSocket class', m);
    this.#protocols = options.protocols;
    if (options.listen !== undefined) {
      const l = options.listen as { host?: unknown; port?: unknown; path?: unknown };
      if (typeof l !== 'object' || l === null) throw new TransportOptionError('listen', l, 'an object { host, port, path }', m);
      const host = l.host ?? '0.0.0.0';
      if (typeof host !== 'string' || host === '') throw new TransportOptionError('listen.host', l.host, 'a non-empty host', m);
      if (l.path !== undefined && (typeof l.path !== 'string' || !l.path.startsWith('/'))) throw new TransportOptionError('listen.path', l.path, 'a path starting with /', m);
      this.#listen = { host, port: positiveInt('listen.port', l.port, DEFAULT_WEBSOCKET_PORT, 'websocket', 0, 65535), path: l.path as string | undefined };
    }
    if (options.attach !== undefined) {
      const a = options.attach as { server?: { on?: unknown; off?: unknown }; path?: unknown };
      if (typeof a !== 'object' || a === null || typeof a.server?.on !== 'function' || typeof a.server.off !== 'function') throw new TransportOptionError('attach.server', a?.server, 'an HTTP(S) server (with on/off for its upgrade event)', m);
      if (a.path !== undefined && (typeof a.path !== 'string' || !a.path.startsWith('/'))) throw new TransportOptionError('attach.path', a.path, 'a path starting with /', m);
      if (this.#listen !== undefined) throw new TransportOptionError('attach', 'attach and listen', 'one of them: a server listens on its own port or shares one', m);
      this.#attach = { server: options.attach.server, path: a.path as string | undefined };
    }
    if (options.verifyUpgrade !== undefined && typeof options.verifyUpgrade !== 'function') throw new TransportOptionError('verifyUpgrade', options.verifyUpgrade, 'a function', m);
    this.#verifyUpgrade = options.verifyUpgrade;
    this.#maxInboundBytes = positiveInt('maxInboundBytes', options.maxInboundBytes, this.maxFrameBytes, 'websocket', 1, this.maxFrameBytes);
    if (this.#url === undefined && this.#listen === undefined && this.#attach === undefined) throw new TransportOptionError('url / listen / attach', undefined, 'a url (client), or listen or attach (server)', m);
    this.#maxConnections = positiveInt('maxConnections', options.maxConnections, 1024, 'websocket');
    this.#maxPendingBytes = positiveInt('maxPendingBytes', options.maxPendingBytes, 8 * 1024 * 1024, 'websocket');
    this.#pingIntervalMs = positiveInt('pingIntervalMs', options.pingIntervalMs, 30_000, 'websocket', 0);
    this.#backoff = backoffOf(options.reconnect, 'websocket');
    this.#offline = new OfflineQueue('websocket', options.offlineQueue);
    this.#connectTimeoutMs = positiveInt('connectTimeoutMs', options.connectTimeoutMs, 10_000, 'websocket', 1);
  }

  /** The server's address after `start()` (the port picked for `port: 0`; with `attach`, the shared server's). */
  get address(): { address: string; port: number } | undefined {
    if (this.#server === undefined) return undefined;
    const a = this.#attach !== undefined ? this.#attach.server.address?.() : this.#server.address();
    return typeof a === 'object' && a !== null ? { address: a.address, port: a.port } : undefined;
  }

  /** Peers connected to the server now. */
  peers(): Peer[] {
    return [...this.#conns.values()].map((c) => c.peer);
  }

  /**
   * Bytes given to `send()` for this peer that the socket has not written yet (the client's own
   * connection when `peer` is omitted); `undefined` when it is not connected. A sender that
   * fans out to many peers skips one whose backlog grows, and resyncs it when it drains.
   */
  bufferedBytes(peer?: PeerLike): number | undefined {
    if (peer === undefined || (this.#clientPeer !== undefined && (peer as Peer).key === this.#clientPeer.key)) {
      return this.#clientOpen && this.#socket !== undefined ? this.#socket.bufferedAmount : undefined;
    }
    const conn = this.#conns.get((peer as Peer).key);
    return conn === undefined ? undefined : conn.ws.bufferedAmount;
  }

  /**
   * Closes one server connection: with a close handshake (`code`, default 1000), or at once with
   * `force` (for a peer so far behind that a close frame would wait behind its backlog). Returns
   * whether it was connected; its `disconnected` event follows.
   */
  disconnect(peer: PeerLike, options: { code?: number; reason?: string; force?: boolean } = {}): boolean {
    const conn = this.#conns.get((peer as Peer).key);
    if (conn === undefined) return false;
    if (options.force === true) conn.ws.terminate();
    else conn.ws.close(options.code ?? 1000, options.reason);
    return true;
  }

  protected override connectionCount(): number {
    return this.#conns.size + (this.#clientOpen ? 1 : 0);
  }

  protected async open(): Promise<void> {
    if (this.#listen !== undefined) await this.#startServer(this.#listen);
    if (this.#attach !== undefined) await this.#attachTo(this.#attach);
    if (this.#url !== undefined) {
      const WS = this.#WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
      if (WS === undefined) {
        throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'websocket', 'no WebSocket class here (Node 20 has none): pass the WebSocket option, e.g. the ws package\'s WebSocket');
      }
      this.#clientPeer = { medium: 'websocket', key: `websocket:${this.#url}`, address: this.#url };
      const first = new Promise<void>((resolve, reject) => {
        this.#firstConnect = { resolve, reject };
      });
      const timer = setTimeout(() => this.#firstConnect?.reject(new TransportTimeoutError(`connecting to ${this.#url}`, this.#connectTimeoutMs, { medium: 'websocket' })), this.#connectTimeoutMs);
      this.#dial(WS);
      try {
        await first;
      } finally {
        clearTimeout(timer);
        this.#firstConnect = undefined;
      }
    }
  }

  // --- server ----------------------------------------------------------------------------------

  async #wsServerClass(): Promise<WsModule['WebSocketServer']> {
    const ws = await importOptional<WsModule & { default?: WsModule }>('websocket', 'ws', '^8');
    return ws.WebSocketServer ?? ws.default!.WebSocketServer;
  }

  /** Why an upgrade is refused, or `undefined` to accept it. */
  async #refusal(req: UpgradeRequest): Promise<UpgradeRefusal | undefined> {
    if (!this.accepting || this.#closing) return { status: 503, reason: 'closing' };
    if (this.#verifyUpgrade !== undefined) {
      let verdict: true | UpgradeRefusal;
      try {
        verdict = await this.#verifyUpgrade(req);
      } catch (e) {
        this.reportError(new TransportIoError('verifyUpgrade threw; the upgrade was refused (500)', e, { medium: 'websocket' }));
        return { status: 500 };
      }
      if (verdict !== true) {
        const status = Number.isInteger(verdict?.status) && verdict.status >= 400 && verdict.status <= 599 ? verdict.status : 403;
        return { status, reason: verdict?.reason };
      }
    }
    if (this.#conns.size >= this.#maxConnections) {
      this.reportError(new QueueFullError('inbound', this.#maxConnections, 'frames', { medium: 'websocket', peer: 'a new connection (maxConnections reached)' }));
      return { status: 503, reason: 'too many connections' };
    }
    return undefined;
  }

  async #startServer(where: { host: string; port: number; path: string | undefined }): Promise<void> {
    const WebSocketServer = await this.#wsServerClass();
    const verifyClient = (info: { req: UpgradeRequest }, done: (ok: boolean, status?: number, reason?: string) => void) => {
      // ws writes the status line and, without a reason, the status text as the body.
      void this.#refusal(info.req).then((r) => (r === undefined ? done(true) : done(false, r.status, r.reason)));
    };
    const server = new WebSocketServer({ host: where.host, port: where.port, path: where.path, maxPayload: this.#maxInboundBytes, perMessageDeflate: false, clientTracking: false, verifyClient });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new TransportIoError(`could not listen on ${where.host}:${where.port}`, err, { medium: 'websocket' })));
      server.once('listening', () => resolve());
    });
    server.on('error', (err) => this.reportError(new TransportIoError('server error', err, { medium: 'websocket' })));
    server.on('connection', (socket, req) => this.#accept(socket, req.socket));
    this.#serving(server);
  }

  /** The server is up (its own port or a shared one): announced, and its connections pinged. */
  #serving(server: WsServer): void {
    this.#server = server;
    const a = this.address;
    if (a !== undefined) this.events.emit('listening', { address: a.address, port: a.port });
    if (this.#pingIntervalMs > 0) {
      this.#pingTimer = setInterval(() => this.#ping(), this.#pingIntervalMs);
      (this.#pingTimer as { unref?: () => void }).unref?.();
    }
  }

  async #attachTo(a: { server: UpgradeServer; path: string | undefined }): Promise<void> {
    const WebSocketServer = await this.#wsServerClass();
    const wss = new WebSocketServer({ noServer: true, maxPayload: this.#maxInboundBytes, perMessageDeflate: false, clientTracking: false });
    const refuse = (socket: UpgradeSocket, status: number, reason?: string) => {
      const text = (reason ?? STATUS_TEXT[status] ?? 'Refused').replace(/[^\x20-\x7e]/g, ' ');
      try {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } catch {
        socket.destroy();
      }
    };
    const onUpgrade = (req: UpgradeRequest, socket: UpgradeSocket, head: Uint8Array) => {
      if (a.path !== undefined && pathOf(req.url) !== a.path) {
        // Another listener's path, or nobody's.
        if ((a.server.listenerCount?.('upgrade') ?? 1) <= 1) refuse(socket, 404);
        return;
      }
      void this.#refusal(req).then((r) => {
        if (r !== undefined) refuse(socket, r.status, r.reason);
        else wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, req.socket));
      });
    };
    a.server.on('upgrade', onUpgrade);
    this.#detach = () => a.server.off('upgrade', onUpgrade);
    this.#serving(wss);
  }

  #accept(ws: WsSocket, socket: UpgradeRequest['socket']): void {
    if (!this.accepting || this.#closing) {
      ws.terminate();
      return;
    }
    if (this.#conns.size >= this.#maxConnections) {
      ws.terminate();
      this.reportError(new QueueFullError('inbound', this.#maxConnections, 'frames', { medium: 'websocket', peer: 'a new connection (maxConnections reached)' }));
      return;
    }
    const peer = ipPeer('websocket', socket.remoteAddress ?? '?', socket.remotePort ?? 0, socket.remoteFamily === 'IPv6' ? 'IPv6' : 'IPv4');
    const conn: Conn = { peer, ws, alive: true, pending: new Set() };
    this.#conns.set(peer.key, conn);
    if (this.#paused) ws.pause();
    let error: TransportError | undefined;
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', (data, isBinary) => {
      conn.alive = true;
      if (!isBinary) {
        error = this.#textMessage(peer);
        ws.close(CLOSE_UNSUPPORTED_DATA, 'binary frames only');
        return;
      }
      const frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (!this.deliver(frame, peer, true)) this.#pauseAll();
    });
    ws.on('error', (err) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        error = new TransportProtocolError(`a message over ${this.#maxInboundBytes} bytes (maxInboundBytes); connection closed (1009)`, { medium: 'websocket', peer: peer.key });
        this.drop('oversize', 1, peer, error);
        this.reportError(error);
      } else {
        error ??= new TransportIoError('connection error', err, { medium: 'websocket', peer: peer.key });
      }
    });
    ws.on('close', () => {
      this.#conns.delete(peer.key);
      const e = error ?? new PeerError('the connection closed before the frame was sent', { medium: 'websocket', peer: peer.key });
      for (const p of conn.pending) p.reject(e);
      conn.pending.clear();
      this.events.emit('disconnected', error ? { peer, error } : { peer });
    });
    this.events.emit('connected', { peer });
  }

  #textMessage(peer: Peer): TransportProtocolError {
    const error = new TransportProtocolError('a text message; frames travel as binary messages only (connection closed, 1003)', { medium: 'websocket', peer: peer.key });
    this.drop('protocol', 1, peer, error);
    this.reportError(error);
    return error;
  }

  #ping(): void {
    for (const conn of this.#conns.values()) {
      if (!conn.alive) {
        // No pong (nor message) since the last ping: half-open.
        const error = new TransportTimeoutError('no answer to a ping (half-open connection)', this.#pingIntervalMs, { medium: 'websocket', peer: conn.peer.key });
        this.reportError(error);
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      try {
        conn.ws.ping();
      } catch {
        // Closing already.
      }
    }
  }

  #pauseAll(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const c of this.#conns.values()) c.ws.pause();
    (this.#socket as { pause?: () => void } | undefined)?.pause?.();
  }

  protected override onInboundPressure(active: boolean): void {
    if (active) {
      this.#pauseAll();
      return;
    }
    if (!this.#paused) return;
    this.#paused = false;
    for (const c of this.#conns.values()) {
      c.alive = true;
      c.ws.resume();
    }
    (this.#socket as { resume?: () => void } | undefined)?.resume?.();
  }

  // --- client ----------------------------------------------------------------------------------

  #dial(WS: WebSocketClass): void {
    if (!this.accepting || this.#closing) return;
    let socket: WebSocketLike;
    try {
      socket = new WS(this.#url!, this.#protocols);
    } catch (e) {
      const error = new TransportIoError(`could not open ${this.#url}`, e, { medium: 'websocket' });
      this.#firstConnect?.reject(error);
      return;
    }
    this.#socket = socket;
    socket.binaryType = 'arraybuffer';
    const peer = this.#clientPeer!;
    let opened = false;
    let error: TransportError | undefined;
    socket.onopen = () => {
      opened = true;
      this.#clientOpen = true;
      this.#attempt = 0;
      if (this.#paused) (socket as { pause?: () => void }).pause?.();
      this.events.emit('connected', { peer });
      this.#firstConnect?.resolve();
      this.#offline.flush((f) => this.#clientSend(f));
    };
    socket.onmessage = (ev) => {
      const data = ev.data;
      if (typeof data === 'string') {
        error = this.#textMessage(peer);
        socket.close(CLOSE_UNSUPPORTED_DATA, 'binary frames only');
        return;
      }
      const frame = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined;
      if (frame === undefined || frame.byteLength === 0) return;
      if (frame.byteLength > this.#maxInboundBytes) {
        this.drop('oversize', 1, peer);
        return;
      }
      // The standard API cannot pause a socket (ws's can): without it a full queue drops, counted.
      const pausable = typeof (socket as { pause?: unknown }).pause === 'function';
      if (!this.deliver(frame, peer, pausable) && pausable) this.#pauseAll();
    };
    socket.onerror = () => {
      error ??= new TransportIoError(opened ? 'connection error' : `could not connect to ${this.#url}`, undefined, { medium: 'websocket', peer: peer.key });
    };
    socket.onclose = (ev) => {
      this.#clientOpen = false;
      if (this.#socket === socket) this.#socket = undefined;
      if (opened) this.events.emit('disconnected', error ? { peer, error } : { peer });
      const why = error ?? (ev.code === 1000 ? undefined : new TransportIoError(`connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`, undefined, { medium: 'websocket', peer: peer.key }));
      if (!opened && this.#backoff === false) this.#firstConnect?.reject(why ?? new TransportIoError(`could not connect to ${this.#url}`, undefined, { medium: 'websocket' }));
      this.#scheduleReconnect(WS, why);
    };
  }

  #scheduleReconnect(WS: WebSocketClass, error: TransportError | undefined): void {
    if (!this.accepting || this.#closing) return;
    if (this.#backoff === false) {
      this.#offline.rejectAll(error ?? new PeerError('the connection closed and reconnect is off', { medium: 'websocket' }));
      return;
    }
    const attempt = ++this.#attempt;
    const delayMs = backoffDelay(this.#backoff, attempt);
    this.events.emit('reconnecting', error ? { attempt, delayMs, error } : { attempt, delayMs });
    this.#reconnectTimer = setTimeout(() => this.#dial(WS), delayMs);
  }

  #clientSend(frame: Uint8Array): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || socket.readyState !== OPEN) return Promise.reject(new PeerError('the connection is not open', { medium: 'websocket', peer: this.#clientPeer?.key }));
    if (socket.bufferedAmount + frame.byteLength > this.#maxPendingBytes) {
      this.events.emit('backpressure', { direction: 'outbound', active: true, queued: socket.bufferedAmount, limit: this.#maxPendingBytes, peer: this.#clientPeer });
      return Promise.reject(new QueueFullError('outbound', this.#maxPendingBytes, 'bytes', { medium: 'websocket' }));
    }
    try {
      // The standard API has no completion callback: the frame is in the socket's buffer.
      socket.send(frame);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(new TransportIoError('send failed', e, { medium: 'websocket' }));
    }
  }

  // --- sending ---------------------------------------------------------------------------------

  protected write(frame: Uint8Array, to: PeerLike | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (to === undefined || (this.#clientPeer !== undefined && (to as Peer).key === this.#clientPeer.key)) {
      if (this.#url === undefined) return Promise.reject(new PeerError('no destination: a server sends to a Peer (from a received frame or peers())', { medium: 'websocket' }));
      if (!this.#clientOpen) return this.#offline.wait(frame, signal, 'send');
      return this.#clientSend(frame);
    }
    const key = (to as Peer).key;
    const conn = typeof key === 'string' ? this.#conns.get(key) : undefined;
    if (conn === undefined || conn.ws.readyState !== OPEN) return Promise.reject(new PeerError(`no open connection to ${String(key)}`, { medium: 'websocket', peer: key }));
    if (conn.ws.bufferedAmount + frame.byteLength > this.#maxPendingBytes) {
      this.events.emit('backpressure', { direction: 'outbound', active: true, queued: conn.ws.bufferedAmount, limit: this.#maxPendingBytes, peer: conn.peer });
      return Promise.reject(new QueueFullError('outbound', this.#maxPendingBytes, 'bytes', { medium: 'websocket', peer: key }));
    }
    return new Promise<void>((resolve, reject) => {
      const entry = { reject };
      conn.pending.add(entry);
      conn.ws.send(frame, { binary: true }, (err) => {
        if (!conn.pending.delete(entry)) return;
        if (err) reject(new TransportIoError('send failed', err, { medium: 'websocket', peer: key }));
        else resolve();
      });
    });
  }

  protected async close(drain: boolean): Promise<void> {
    this.#closing = true;
    clearInterval(this.#pingTimer);
    clearTimeout(this.#reconnectTimer);
    this.#firstConnect?.reject(closedError('websocket', 'the transport closed before it connected'));
    this.#offline.rejectAll(closedError('websocket', 'the transport closed before it (re)connected'));
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) {
      // A stop waits for what the browser still buffers, a little.
      if (drain) for (let i = 0; i < 100 && socket.readyState === OPEN && socket.bufferedAmount > 0; i++) await new Promise((r) => setTimeout(r, 10));
      socket.onclose = null;
      socket.onmessage = null;
      try {
        socket.close(1000, 'closing');
      } catch {
        // Closed already.
      }
      this.#clientOpen = false;
    }
    const conns = [...this.#conns.values()];
    const error = closedError('websocket');
    for (const c of conns) {
      for (const p of c.pending) p.reject(error);
      c.pending.clear();
      if (drain) c.ws.close(1001, 'going away');
      else c.ws.terminate();
    }
    this.#detach?.();
    this.#detach = undefined;
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (drain) {
      // Give closing handshakes a moment, then cut what is left.
      for (let i = 0; i < 50 && this.#conns.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
      for (const c of this.#conns.values()) c.ws.terminate();
    }
  }
}

/** The path of a request target, split at `?` as ws splits it for `listen.path`. */
function pathOf(url = '/'): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

export function createWebSocketTransport(options: WebSocketOptions): WebSocketTransport {
  return new WebSocketTransport(options);
}

/** The registry's `websocket` (and `ws`) driver. */
export const websocketDriver: TransportDriver = { name: 'websocket', create: (options) => new WebSocketTransport(options as WebSocketOptions) };
