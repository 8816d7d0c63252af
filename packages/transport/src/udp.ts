/**
 * UDP, the reference's default medium: one `node:dgram` socket bound to a port (8080 by default,
 * as the reference's receiver) serves every peer, sending and receiving. IPv4 (`udp4`) or IPv6
 * (`udp6`, dual-stack unless `ipv6Only`). Each datagram is one frame; a received frame is a view
 * of the datagram's bytes (no copy). Unreliable: a full inbound queue drops (counted, reported).
 *
 * Two backends behind the same driver: `node:dgram` (`ts`) and the addon's batched socket
 * (`native`, Linux: `recvmmsg`/`sendmmsg`, one JS call per batch of datagrams; see udp-native.ts).
 */
import { type BackendMode, nodeBuiltin } from '@opensynaptic/internal';
import {
  closedError,
  DriverError,
  ipPeer,
  type Peer,
  PeerError,
  type PeerLike,
  positiveInt,
  TransportBase,
  TransportIoError,
  TransportOptionError,
  type TransportOptions,
} from '@opensynaptic/transport/core';
import type { TransportDriver } from '@opensynaptic/transport';
import {
  ADDRESS,
  FAMILY,
  FLAGS,
  IPV4,
  IPV6,
  ipv4Text,
  ipv6Text,
  isUnsupported,
  LENGTH,
  MAX_BATCH,
  MAX_GATHER,
  type NativeUdpOptions,
  type NativeUdpSocket,
  nativeIoCause,
  OFFSET,
  PORT,
  parseBackendMode,
  parseIp,
  TRUNCATED,
  udpBackend,
  W,
} from './udp-native.js';

export { backendInfo } from './udp-native.js';

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
  /**
   * The socket: `native`, the addon's batched one (Linux; `recvmmsg`/`sendmmsg` on a thread of
   * its own), `ts`, `node:dgram`, or `auto` (default): `OPENSYNAPTIC_CORE` when set, else the
   * package's choice (`backendInfo().backends.udp`: native where the addon is installed and the
   * platform has it). `native` without the addon is `ERR_TRANSPORT_UNSUPPORTED`.
   */
  backend?: BackendMode | undefined;
  /**
   * Native backend: datagrams per receive call (`recvmmsg`), one JS call per batch (default 64,
   * at most 1024). The receive thread holds `recvBatch` slots of 64 KiB (4 MiB at the default):
   * where the kernel coalesces runs from one sender (UDP GRO) a slot holds a whole run; without
   * GRO, slots of `maxFrameBytes`.
   */
  recvBatch?: number | undefined;
  /**
   * Native backend: batches received and not yet taken by the JS thread before the receive
   * thread stops reading (default 4, at most 64; a batch holds at most `recvBatch` messages of
   * up to 64 KiB); the kernel's buffer then fills and drops, which is counted as `queue-full`.
   */
  maxQueuedBatches?: number | undefined;
  /**
   * Native backend: most datagrams one batch gathers while the JS thread is still busy with the
   * earlier ones (default 4096, from `recvBatch` to 65536; and at most about 4 MiB of datagram
   * bytes). The receive thread keeps reading into it meanwhile, so a pause of the JS thread (a
   * garbage collection, a long synchronous task) is ridden out in ~30 bytes a datagram here
   * instead of ~1 KiB in the kernel's buffer, and JS takes one call for all of them.
   */
  maxBatchFrames?: number | undefined;
  /**
   * Native backend: frames of one size queued in one tick for one destination leave as one GSO
   * send (UDP_SEGMENT: the kernel cuts them into datagrams; one pass through the stack for up to
   * 64). Default true; a kernel or route that refuses it turns it off for the socket.
   */
  gso?: boolean | undefined;
}

/** Default datagrams per native receive batch. */
export const DEFAULT_RECV_BATCH = 64;
/** Default native receive batches waiting for the JS thread. */
export const DEFAULT_MAX_QUEUED_BATCHES = 4;
/** Default most datagrams one native receive batch gathers while JS is busy. */
export const DEFAULT_MAX_BATCH_FRAMES = 4096;
/** Bytes of the native send path's staging buffer (a batch is as many queued frames as fit). */
const SEND_STAGE_BYTES = 256 * 1024;

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

const IPV4_TEXT = /^\d{1,3}(\.\d{1,3}){3}$/;
const PEER_CACHE_MAX = 4096;

interface PendingSend {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A frame queued for the native socket's next `sendmmsg`. */
interface NativeSend {
  frame: Uint8Array;
  family: number;
  words: readonly number[];
  port: number;
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
  readonly #mode: BackendMode;
  readonly #recvBatch: number;
  readonly #maxQueuedBatches: number;
  readonly #maxBatchFrames: number;
  readonly #gso: boolean;
  #backend: 'native' | 'ts' | undefined;
  #socket: DgramSocket | undefined;
  #native: NativeUdpSocket | undefined;
  #pending = new Set<PendingSend>();
  #peers = new Map<string, Peer>();
  #lastPeer: Peer | undefined;
  #nativePeers = new Map<number | string, Peer>();
  #kernelDrops = 0;
  #sendQueue: NativeSend[] = [];
  #sendHead = 0;
  #flushing = false;
  #stage: Uint8Array | undefined;
  #stageMeta: Uint32Array | undefined;
  #ips = new Map<string, { family: number; words: readonly number[] }>();

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
    try {
      this.#mode = parseBackendMode(options.backend, 'backend');
    } catch {
      throw new TransportOptionError('backend', options.backend, '"auto", "native" or "ts"', { medium: 'udp' });
    }
    this.#recvBatch = positiveInt('recvBatch', options.recvBatch, DEFAULT_RECV_BATCH, 'udp', 1, MAX_BATCH);
    this.#maxQueuedBatches = positiveInt('maxQueuedBatches', options.maxQueuedBatches, DEFAULT_MAX_QUEUED_BATCHES, 'udp', 1, 64);
    this.#maxBatchFrames = positiveInt('maxBatchFrames', options.maxBatchFrames, Math.max(DEFAULT_MAX_BATCH_FRAMES, this.#recvBatch), 'udp', this.#recvBatch, MAX_GATHER);
    if (options.gso !== undefined && typeof options.gso !== 'boolean') throw new TransportOptionError('gso', options.gso, 'a boolean', { medium: 'udp' });
    this.#gso = options.gso ?? true;
  }

  /** The socket in use once started: `native` (the addon's batched one) or `ts` (`node:dgram`). */
  get backend(): 'native' | 'ts' | undefined {
    return this.#backend;
  }

  /** The bound address (after `start()`): the port the system picked for `port: 0`. */
  get address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } | undefined {
    if (this.#native !== undefined) {
      const n = this.#native.localAddress();
      return { address: n.address, port: n.port, family: n.family === IPV6 ? 'IPv6' : 'IPv4' };
    }
    const a = this.#socket?.address();
    return a === undefined ? undefined : { address: a.address, port: a.port, family: a.family === 'IPv6' || (a.family as unknown) === 6 ? 'IPv6' : 'IPv4' };
  }

  protected async open(): Promise<void> {
    if (await this.#openNative()) return;
    const dgram = nodeBuiltin<Dgram>('node:dgram');
    if (dgram === undefined) throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'udp', 'UDP needs node:dgram (Node.js 20.16 or later, Deno, Bun); this platform has none');
    const socket = dgram.createSocket(this.#socketOptions);
    this.#socket = socket;
    this.#backend = 'ts';
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

  /** Binds the addon's socket when the backend is native; false to use `node:dgram`. */
  async #openNative(): Promise<boolean> {
    let backend: ReturnType<typeof udpBackend>;
    try {
      backend = udpBackend(this.#mode);
    } catch (e) {
      throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'udp', `the native UDP backend is not available: ${(e as Error).message}`, e);
    }
    // The ts backend binds nothing (`null`): node:dgram then. (In `auto`, `backend.backend` names
    // the package's base implementation, not the one `bind` comes from.)
    if (backend.bind === udpBackend('ts').bind) return false;
    const family = this.type === 'udp6' ? IPV6 : IPV4;
    const host = parseIp(this.#host) === undefined ? await this.#lookup(this.#host) : this.#host;
    const o = this.#socketOptions;
    const options: NativeUdpOptions = {};
    if (o.reuseAddr !== undefined) options.reuseAddr = o.reuseAddr;
    if (o.ipv6Only !== undefined) options.ipv6Only = o.ipv6Only;
    if (o.recvBufferSize !== undefined) options.recvBufferSize = o.recvBufferSize;
    if (o.sendBufferSize !== undefined) options.sendBufferSize = o.sendBufferSize;
    options.gso = this.#gso;
    let socket: NativeUdpSocket | null;
    try {
      socket = backend.bind(host, this.#port, family, options);
    } catch (e) {
      if (this.#mode === 'auto' && isUnsupported(e)) return false;
      if (isUnsupported(e)) throw new DriverError('ERR_TRANSPORT_UNSUPPORTED', 'udp', (e as Error).message, e);
      throw new TransportIoError(`could not bind ${this.#host}:${this.#port}`, nativeIoCause(e), { medium: 'udp' });
    }
    if (socket === null) return false;
    this.#native = socket;
    this.#backend = 'native';
    this.#stage = new Uint8Array(SEND_STAGE_BYTES);
    this.#stageMeta = new Uint32Array(MAX_BATCH * W);
    socket.startReceive((data, meta, drops) => this.#receiveBatch(socket, data, meta, drops), this.maxFrameBytes, this.#recvBatch, this.#maxQueuedBatches, this.#maxBatchFrames);
    const a = this.address!;
    this.events.emit('listening', { address: a.address, port: a.port });
    return true;
  }

  /** A host name's address of the socket's family (the native socket takes IP literals only). */
  async #lookup(name: string): Promise<string> {
    const dns = nodeBuiltin<{ promises: { lookup(host: string, options: { family: number }): Promise<{ address: string }> } }>('node:dns');
    if (dns === undefined) throw new PeerError(`cannot resolve ${JSON.stringify(name)}: no node:dns`, { medium: 'udp' });
    try {
      let { address } = await dns.promises.lookup(name, { family: this.type === 'udp6' ? 6 : 4 });
      if (this.type === 'udp6' && IPV4_TEXT.test(address)) address = `::ffff:${address}`;
      return address;
    } catch (e) {
      throw new TransportIoError(`cannot resolve ${JSON.stringify(name)}`, e, { medium: 'udp' });
    }
  }

  /** One batch from the native receive thread: its datagrams are views of `data` (no copy). */
  #receiveBatch(socket: NativeUdpSocket, data: Uint8Array, meta: Uint32Array, kernelDrops: number): void {
    // Batches already on their way when the socket closed are not wanted.
    if (this.#native !== socket) return;
    try {
      if (kernelDrops !== this.#kernelDrops) {
        // The kernel's running count of datagrams it dropped for want of receive buffer.
        const lost = (kernelDrops - this.#kernelDrops) >>> 0;
        this.#kernelDrops = kernelDrops;
        this.drop('queue-full', lost);
      }
      const receivedAt = this.clock();
      const n = meta.length / W;
      for (let w = 0; w < n * W; w += W) {
        if (this.inbound.underPressure && this.inbound.isFull && this.accepting) {
          // The queue is full and said so (a consumer slower than the flood): the rest of the
          // batch is counted dropped at once, without a peer or a view made for each datagram
          // it refuses (their `dropped` event has no peer; the first refused one's had).
          this.#dropRest(meta, w);
          break;
        }
        const peer = this.#nativePeer(meta, w);
        const length = meta[w + LENGTH]!;
        // Cut by the kernel (longer than the receive slot), or longer than the limit.
        if ((meta[w + FLAGS]! & TRUNCATED) !== 0 || length > this.maxFrameBytes) {
          this.drop('oversize', 1, peer);
          continue;
        }
        if (length === 0) continue;
        const offset = meta[w + OFFSET]!;
        this.deliver(data.subarray(offset, offset + length), peer, false, receivedAt);
      }
    } catch (e) {
      // Called from the addon: an exception here would be fatal to the process.
      this.reportError(new TransportIoError('receive failed', e, { medium: 'udp' }));
    }
  }

  /** Counts datagrams `w`.. of a native batch dropped for a full queue (or oversize), in one event each. */
  #dropRest(meta: Uint32Array, from: number): void {
    let full = 0;
    let oversize = 0;
    for (let w = from; w < meta.length; w += W) {
      const length = meta[w + LENGTH]!;
      if ((meta[w + FLAGS]! & TRUNCATED) !== 0 || length > this.maxFrameBytes) oversize++;
      else if (length > 0) full++;
    }
    if (full > 0) this.drop('queue-full', full);
    if (oversize > 0) this.drop('oversize', oversize);
  }

  /** The peer of datagram `w` of a native batch, from a bounded cache keyed by its numbers. */
  #nativePeer(meta: Uint32Array, w: number): Peer {
    const port = meta[w + PORT]!;
    const v4 = meta[w + FAMILY] === IPV4;
    const key = v4 ? meta[w + ADDRESS]! * 65536 + port : `${meta[w + ADDRESS]},${meta[w + ADDRESS + 1]},${meta[w + ADDRESS + 2]},${meta[w + ADDRESS + 3]},${port}`;
    let peer = this.#nativePeers.get(key);
    if (peer === undefined) {
      if (this.#nativePeers.size >= PEER_CACHE_MAX) this.#nativePeers.clear();
      peer = v4 ? ipPeer('udp', ipv4Text(meta[w + ADDRESS]!), port, 'IPv4') : ipPeer('udp', ipv6Text(meta, w + ADDRESS), port, 'IPv6');
      this.#nativePeers.set(key, peer);
    }
    return peer;
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
    // Most datagrams come from the peer of the one before: no key to build for those.
    const last = this.#lastPeer;
    if (last !== undefined && last.port === rinfo.port && last.address === rinfo.address) return last;
    const id = `${rinfo.address}|${rinfo.port}`;
    let peer = this.#peers.get(id);
    if (peer === undefined) {
      // Bounded: a flood from many sources clears the cache rather than growing it.
      if (this.#peers.size >= PEER_CACHE_MAX) this.#peers.clear();
      peer = ipPeer('udp', rinfo.address, rinfo.port, rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4');
      this.#peers.set(id, peer);
    }
    this.#lastPeer = peer;
    return peer;
  }

  #destination(to: PeerLike | undefined): { address: string; port: number } {
    const d = (to ?? this.#remote) as { address?: unknown; port?: unknown } | undefined;
    if (d === undefined) throw new PeerError('no destination: pass `to` ({ address, port }) or set the `remote` option', { medium: 'udp' });
    if (typeof d.address !== 'string' || d.address === '') throw new PeerError(`a UDP destination needs an address; got ${JSON.stringify(d.address)}`, { medium: 'udp' });
    if (typeof d.port !== 'number' || !Number.isInteger(d.port) || d.port < 1 || d.port > 65535) throw new PeerError(`a UDP destination needs a port in 1..65535; got ${String(d.port)}`, { medium: 'udp' });
    // A dual-stack IPv6 socket reaches IPv4 peers through their mapped address.
    const address = this.type === 'udp6' && IPV4_TEXT.test(d.address) ? `::ffff:${d.address}` : d.address;
    return { address, port: d.port };
  }

  protected write(frame: Uint8Array, to: PeerLike | undefined): Promise<void> {
    if (this.#native !== undefined) return this.#writeNative(frame, to);
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

  /** Queues a frame for the next `sendmmsg` (the frames sent in one tick leave in one call). */
  #writeNative(frame: Uint8Array, to: PeerLike | undefined): Promise<void> {
    const { address, port } = this.#destination(to);
    const ip = this.#ipOf(address);
    if (ip === undefined) {
      if (address.includes('%')) return Promise.reject(new PeerError(`the native UDP socket does not take zoned IPv6 addresses (${address}); use backend: 'ts'`, { medium: 'udp' }));
      // A host name: resolved for this send, as node:dgram does.
      return this.#lookup(address).then((resolved) => this.#enqueue(frame, this.#ipOf(resolved)!, port));
    }
    return this.#enqueue(frame, ip, port);
  }

  #ipOf(address: string): { family: number; words: readonly number[] } | undefined {
    let ip = this.#ips.get(address);
    if (ip === undefined) {
      ip = parseIp(address);
      if (ip === undefined) return undefined;
      if (this.#ips.size >= PEER_CACHE_MAX) this.#ips.clear();
      this.#ips.set(address, ip);
    }
    return ip;
  }

  #enqueue(frame: Uint8Array, ip: { family: number; words: readonly number[] }, port: number): Promise<void> {
    if (this.#native === undefined) return Promise.reject(closedError('udp'));
    if (ip.family === IPV6 && this.type === 'udp4') return Promise.reject(new PeerError('an IPv6 destination on an IPv4 (udp4) socket', { medium: 'udp' }));
    return new Promise<void>((resolve, reject) => {
      this.#sendQueue.push({ frame, family: ip.family, words: ip.words, port, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        queueMicrotask(this.#flush);
      }
    });
  }

  /** Sends the queued frames in batches of `sendmmsg`; a full send buffer retries on the next turn. */
  #flush = (): void => {
    this.#flushing = false;
    const socket = this.#native;
    const stage = this.#stage;
    const meta = this.#stageMeta;
    if (socket === undefined || stage === undefined || meta === undefined) return;
    const q = this.#sendQueue;
    while (this.#sendHead < q.length) {
      let n = 0;
      let bytes = 0;
      for (let i = this.#sendHead; i < q.length && n < MAX_BATCH; i++) {
        const s = q[i]!;
        const size = s.frame.byteLength;
        if (bytes + size > stage.byteLength) break;
        stage.set(s.frame, bytes);
        const w = n * W;
        meta[w + OFFSET] = bytes;
        meta[w + LENGTH] = size;
        meta[w + PORT] = s.port;
        meta[w + FAMILY] = s.family;
        for (let k = 0; k < s.words.length; k++) meta[w + ADDRESS + k] = s.words[k]!;
        bytes += size;
        n++;
      }
      let sent: number;
      try {
        sent = socket.sendBatch(stage, meta, 0, n);
      } catch (e) {
        // The first datagram was refused (none sent): it fails, the rest go on.
        const s = q[this.#sendHead++]!;
        s.reject(new TransportIoError(`send to port ${s.port} failed`, nativeIoCause(e), { medium: 'udp' }));
        continue;
      }
      for (let k = 0; k < sent; k++) q[this.#sendHead++]!.resolve();
      if (sent < n) {
        // The socket's send buffer is full: the rest on the next turn of the event loop.
        this.#flushing = true;
        setImmediate(this.#flush);
        break;
      }
    }
    if (this.#sendHead === q.length) {
      q.length = 0;
      this.#sendHead = 0;
    } else if (this.#sendHead >= 1024) {
      this.#sendQueue = q.slice(this.#sendHead);
      this.#sendHead = 0;
    }
  };

  protected async close(_drain: boolean): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    // Sends the socket has not confirmed are settled here: a closed socket may never call back.
    for (const p of this.#pending) p.reject(closedError('udp', 'the socket closed before the datagram was sent'));
    this.#pending.clear();
    const native = this.#native;
    this.#native = undefined;
    if (native !== undefined) {
      const left = this.#sendQueue.slice(this.#sendHead);
      this.#sendQueue = [];
      this.#sendHead = 0;
      for (const s of left) s.reject(closedError('udp', 'the socket closed before the datagram was sent'));
      // Stops and joins the receive thread, then closes the socket.
      native.close();
    }
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

export function createUdpTransport(options: UdpOptions = {}): UdpTransport {
  return new UdpTransport(options);
}

/** The registry's `udp` driver. */
export const udpDriver: TransportDriver = { name: 'udp', create: (options) => new UdpTransport(options as UdpOptions) };
