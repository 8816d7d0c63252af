/**
 * UDP, the reference's default medium: one `node:dgram` socket bound to a port (8080 by default,
 * as the reference's receiver) serves every peer, sending and receiving. IPv4 (`udp4`) or IPv6
 * (`udp6`, dual-stack unless `ipv6Only`). Each datagram is one frame; a received frame is a view
 * of the datagram's bytes (no copy). Unreliable: a full inbound queue drops (counted, reported).
 */
import { nodeBuiltin } from '@opensynaptic/internal';
import {
  closedError,
  DriverError,
  ipPeer,
  type Peer,
  PeerError,
  type PeerLike,
  positiveInt,
  type TransportDriver,
  TransportBase,
  TransportIoError,
  TransportOptionError,
  type TransportOptions,
} from '@opensynaptic/transport';

/** The reference's UDP port (its receiver and its client's `server_port`). */
export const DEFAULT_UDP_PORT = 8080;
/** Largest UDP payload over IPv4 (65535 - 20 IP - 8 UDP) and over IPv6 (65535 - 8). */
export const MAX_UDP4_PAYLOAD = 65_507;
export const MAX_UDP6_PAYLOAD = 65_527;

export interface UdpOptions extends TransportOptions {
  /** Local address to bind (default `0.0.0.0`, or `::` for `udp6`). */
  host?: string | undefined;
  /** Local port (default 8080, the reference's; 0 lets the system pick, as a device would). */
  port?: number | undefined;
  /** Socket family (default: `udp6` when `host` is an IPv6 address, else `udp4`). */
  type?: 'udp4' | 'udp6' | undefined;
  /** Where `send` goes without a `to` (its port defaults to 8080). */
  remote?: { readonly address: string; readonly port?: number | undefined } | undefined;
  /** An IPv6 socket refuses IPv4 peers (default false: dual stack). */
  ipv6Only?: boolean | undefined;
  /** Lets several sockets bind the same port (default false). */
  reuseAddr?: boolean | undefined;
  /**
   * Largest frame, checked before sending (default the largest UDP payload: 65507 over IPv4,
   * 65527 over IPv6; lower it, e.g. to 1472, to stay under an Ethernet MTU without fragments).
   * Larger received datagrams are dropped as `oversize`.
   */
  maxFrameBytes?: number | undefined;
  /** The socket's receive and send buffer sizes (SO_RCVBUF / SO_SNDBUF; default the system's). */
  recvBufferSize?: number | undefined;
  sendBufferSize?: number | undefined;
}

// The part of `node:dgram` used here (no @types/node in the published declarations).
interface RemoteInfo {
  address: string;
  family: string;
  port: number;
}
interface DgramSocket {
  on(event: 'message', listener: (msg: Uint8Array, rinfo: RemoteInfo) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'listening', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  off(event: 'error', listener: (err: Error) => void): this;
  bind(port: number, address: string): void;
  send(msg: Uint8Array, port: number, address: string, cb: (err: Error | null) => void): void;
  close(cb?: () => void): void;
  address(): { address: string; family: string; port: number };
}
interface Dgram {
  createSocket(options: { type: 'udp4' | 'udp6'; reuseAddr?: boolean; ipv6Only?: boolean; recvBufferSize?: number; sendBufferSize?: number }): DgramSocket;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const PEER_CACHE_MAX = 4096;

interface PendingSend {
  resolve: () => void;
  reject: (e: Error) => void;
}

export class UdpTransport extends TransportBase {
  readonly reliable = false;
  readonly type: 'udp4' | 'udp6';
  readonly #host: string;
  readonly #port: number;
  readonly #remote: { address: string; port: number } | undefined;
  readonly #socketOptions: { type: 'udp4' | 'udp6'; reuseAddr?: boolean; ipv6Only?: boolean; recvBufferSize?: number; sendBufferSize?: number };
  #socket: DgramSocket | undefined;
  #pending = new Set<PendingSend>();
  #peers = new Map<string, Peer>();

  constructor(options: UdpOptions = {}) {
    const host = options.host;
    if (host !== undefined && (typeof host !== 'string' || host === '')) throw new TransportOptionError('host', host, 'a non-empty address', { medium: 'udp' });
    const type = options.type ?? (host?.includes(':') ? 'udp6' : 'udp4');
    if (type !== 'udp4' && type !== 'udp6') throw new TransportOptionError('type', type, '"udp4" or "udp6"', { medium: 'udp' });
    const ceiling = type === 'udp6' ? MAX_UDP6_PAYLOAD : MAX_UDP4_PAYLOAD;
    super('udp', positiveInt('maxFrameBytes', options.maxFrameBytes, ceiling, 'udp', 1, ceiling), options);
    this.type = type;
    this.#host = host ?? (type === 'udp6' ? '::' : '0.0.0.0');
    this.#port = positiveInt('port', options.port, DEFAULT_UDP_PORT, 'udp', 0, 65535);
    if (options.remote !== undefined) {
      const r = options.remote as { address?: unknown; port?: unknown };
      if (typeof r?.address !== 'string' || r.address === '') throw new TransportOptionError('remote.address', r?.address, 'a non-empty address', { medium: 'udp' });
      this.#remote = { address: r.address, port: positiveInt('remote.port', r.port, DEFAULT_UDP_PORT, 'udp', 1, 65535) };
    }
    this.#socketOptions = { type };
    if (options.reuseAddr !== undefined) this.#socketOptions.reuseAddr = options.reuseAddr === true;
    if (type === 'udp6' && options.ipv6Only !== undefined) this.#socketOptions.ipv6Only = options.ipv6Only === true;
    if (options.recvBufferSize !== undefined) this.#socketOptions.recvBufferSize = positiveInt('recvBufferSize', options.recvBufferSize, 0, 'udp');
    if (options.sendBufferSize !== undefined) this.#socketOptions.sendBufferSize = positiveInt('sendBufferSize', options.sendBufferSize, 0, 'udp');
  }

  /** The bound address (after `start()`): the port the system picked for `port: 0`. */
  get address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } | undefined {
    const a = this.#socket?.address();
    return a === undefined ? undefined : { address: a.address, port: a.port, family: a.family === 'IPv6' || (a.family as unknown) === 6 ? 'IPv6' : 'IPv4' };
  }

  protected async open(): Promise<void> {
    const dgram = nodeBuiltin<Dgram>('node:dgram');
    if (dgram === undefined) throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'udp', 'UDP needs node:dgram (Node.js 20.16 or later, Deno, Bun); this platform has none');
    const socket = dgram.createSocket(this.#socketOptions);
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => reject(new TransportIoError(`could not bind ${this.#host}:${this.#port}`, err, { medium: 'udp' }));
      socket.once('error', failed);
      socket.once('listening', () => {
        socket.off('error', failed);
        resolve();
      });
      socket.bind(this.#port, this.#host);
    });
    socket.on('error', (err) => this.reportError(new TransportIoError('socket error', err, { medium: 'udp' })));
    socket.on('message', (msg, rinfo) => this.#receive(msg, rinfo));
    const a = this.address!;
    this.events.emit('listening', { address: a.address, port: a.port });
  }

  #receive(msg: Uint8Array, rinfo: RemoteInfo): void {
    const peer = this.#peerOf(rinfo);
    // A plain Uint8Array view of the datagram (no copy): no Buffer reaches the consumer.
    const frame = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    if (frame.byteLength === 0) return;
    if (frame.byteLength > this.maxFrameBytes) {
      this.drop('oversize', 1, peer);
      return;
    }
    this.deliver(frame, peer);
  }

  #peerOf(rinfo: RemoteInfo): Peer {
    const id = `${rinfo.address}|${rinfo.port}`;
    let peer = this.#peers.get(id);
    if (peer === undefined) {
      // Bounded: a flood from many sources clears the cache rather than growing it.
      if (this.#peers.size >= PEER_CACHE_MAX) this.#peers.clear();
      peer = ipPeer('udp', rinfo.address, rinfo.port, rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4');
      this.#peers.set(id, peer);
    }
    return peer;
  }

  #destination(to: PeerLike | undefined): { address: string; port: number } {
    const d = (to ?? this.#remote) as { address?: unknown; port?: unknown } | undefined;
    if (d === undefined) throw new PeerError('no destination: pass `to` ({ address, port }) or set the `remote` option', { medium: 'udp' });
    if (typeof d.address !== 'string' || d.address === '') throw new PeerError(`a UDP destination needs an address; got ${JSON.stringify(d.address)}`, { medium: 'udp' });
    if (typeof d.port !== 'number' || !Number.isInteger(d.port) || d.port < 1 || d.port > 65535) throw new PeerError(`a UDP destination needs a port in 1..65535; got ${String(d.port)}`, { medium: 'udp' });
    // A dual-stack IPv6 socket reaches IPv4 peers through their mapped address.
    const address = this.type === 'udp6' && IPV4.test(d.address) ? `::ffff:${d.address}` : d.address;
    return { address, port: d.port };
  }

  protected write(frame: Uint8Array, to: PeerLike | undefined): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined) return Promise.reject(closedError('udp'));
    const { address, port } = this.#destination(to);
    return new Promise<void>((resolve, reject) => {
      const entry: PendingSend = { resolve, reject };
      this.#pending.add(entry);
      socket.send(frame, port, address, (err) => {
        if (!this.#pending.delete(entry)) return;
        if (err) reject(new TransportIoError(`send to ${address}:${port} failed`, err, { medium: 'udp' }));
        else resolve();
      });
    });
  }

  protected async close(_drain: boolean): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    // Sends the socket has not confirmed are settled here: a closed socket may never call back.
    for (const p of this.#pending) p.reject(closedError('udp', 'the socket closed before the datagram was sent'));
    this.#pending.clear();
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

export function createUdpTransport(options: UdpOptions = {}): UdpTransport {
  return new UdpTransport(options);
}

/** The registry's `udp` driver. */
export const udpDriver: TransportDriver = { name: 'udp', create: (options) => new UdpTransport(options as UdpOptions) };
