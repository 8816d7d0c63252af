/**
 * Serial lines (UART, RS-485) with `serialport` (an optional peer dependency: `npm install
 * serialport`, loaded when the transport starts), for gateways wired to microcontrollers. A byte
 * stream with no frames of its own, so it is framed (see framing.ts): COBS by default (a frame
 * is `00 <cobs> 00`; a receiver finds the next frame after noise), SLIP, the reference UART
 * listener's STX/ETX (`02 <frame> 03`, which cannot carry a frame holding 03), or its RS-485
 * driver's STX/ETX with an LRC byte before the ETX. Noise, frames
 * with no delimiter and undecodable bytes are bounded by `maxFrameBytes`, dropped and reported.
 * A port that goes away (a USB adapter pulled) is reopened with back-off.
 */
import {
  type Backoff,
  backoffDelay,
  backoffOf,
  closedError,
  type DecoderSink,
  type FrameDecoder,
  importOptional,
  OfflineQueue,
  type OfflineQueueOptions,
  type Peer,
  type PeerLike,
  positiveInt,
  QueueFullError,
  type ReconnectOptions,
  type SerialFraming,
  serialFraming,
  TransportBase,
  type TransportError,
  TransportIoError,
  TransportOptionError,
  type TransportOptions,
  TransportProtocolError,
} from '@opensynaptic/transport/core';
import type { TransportDriver } from '@opensynaptic/transport';

/** The reference's UART speed. */
export const DEFAULT_BAUD_RATE = 115_200;
export const DEFAULT_SERIAL_MAX_FRAME_BYTES = 4096;

export interface SerialOptions extends TransportOptions {
  /** The device (`/dev/ttyUSB0`, `COM3`). */
  path: string;
  /** Line speed (default 115200, the reference's UART default). */
  baudRate?: number | undefined;
  /**
   * `cobs` (default), `slip`, `stx-etx` (the reference's UART listener's; cannot carry 0x03), or
   * `stx-etx-lrc` (the reference's RS-485 driver's, an LRC byte before the ETX; the same limit).
   */
  framing?: SerialFraming | undefined;
  /** Largest frame (default 4096 bytes); longer runs without a delimiter are dropped as noise. */
  maxFrameBytes?: number | undefined;
  dataBits?: 5 | 6 | 7 | 8 | undefined;
  stopBits?: 1 | 1.5 | 2 | undefined;
  parity?: 'none' | 'even' | 'odd' | 'mark' | 'space' | undefined;
  /** Hardware flow control (RTS/CTS), default false. */
  rtscts?: boolean | undefined;
  /** Reopening a port that went away (default 100 ms doubling to 5 s); `false`: none. */
  reconnect?: ReconnectOptions | false | undefined;
  /** Sends made while the port is closed (default 1024 frames, 10 s each). */
  offlineQueue?: OfflineQueueOptions | undefined;
  /** Encoded bytes written but not yet sent before sends are refused (default 64 KiB; a line is slow). */
  maxPendingBytes?: number | undefined;
}

// The part of serialport used here (its types are not in the published declarations: it is optional).
interface Port {
  readonly isOpen: boolean;
  readonly writableLength: number;
  open(cb: (err: Error | null) => void): void;
  write(data: Uint8Array, cb: (err?: Error | null) => void): boolean;
  close(cb?: (err: Error | null) => void): void;
  pause(): void;
  resume(): void;
  on(event: 'data', listener: (chunk: Uint8Array) => void): this;
  on(event: 'close', listener: (err?: Error & { disconnected?: boolean }) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  removeAllListeners(): this;
}
interface SerialPortModule {
  SerialPort: new (options: object) => Port;
}

const FRAMINGS: readonly SerialFraming[] = ['cobs', 'slip', 'stx-etx', 'stx-etx-lrc'];

export class SerialTransport extends TransportBase {
  readonly reliable = false;
  readonly framing: SerialFraming;
  readonly peer: Peer;
  readonly #portOptions: Record<string, unknown>;
  readonly #encode: (frame: Uint8Array) => Uint8Array;
  readonly #decoder: FrameDecoder;
  readonly #backoff: Backoff | false;
  readonly #offline: OfflineQueue;
  readonly #maxPendingBytes: number;
  #SerialPort: SerialPortModule['SerialPort'] | undefined;
  #port: Port | undefined;
  #open = false;
  #closing = false;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pending = new Set<{ reject: (e: Error) => void }>();
  #pendingBytes = 0;
  #sink: DecoderSink;

  constructor(options: SerialOptions) {
    const m = { medium: 'serial' };
    const path = (options as { path?: unknown })?.path;
    if (typeof path !== 'string' || path === '') throw new TransportOptionError('path', path, 'the serial device path (/dev/ttyUSB0, COM3)', m);
    super('serial', positiveInt('maxFrameBytes', options.maxFrameBytes, DEFAULT_SERIAL_MAX_FRAME_BYTES, 'serial', 1, 16 * 1024 * 1024), options);
    const framing = options.framing ?? 'cobs';
    if (!FRAMINGS.includes(framing)) throw new TransportOptionError('framing', framing, '"cobs", "slip", "stx-etx" or "stx-etx-lrc"', m);
    this.framing = framing;
    const codec = serialFraming(framing, this.maxFrameBytes);
    this.#encode = codec.encode;
    this.#decoder = codec.decoder;
    this.peer = { medium: 'serial', key: `serial:${path}`, path };
    const dataBits = options.dataBits ?? 8;
    if (![5, 6, 7, 8].includes(dataBits)) throw new TransportOptionError('dataBits', dataBits, '5, 6, 7 or 8', m);
    const stopBits = options.stopBits ?? 1;
    if (![1, 1.5, 2].includes(stopBits)) throw new TransportOptionError('stopBits', stopBits, '1, 1.5 or 2', m);
    const parity = options.parity ?? 'none';
    if (!['none', 'even', 'odd', 'mark', 'space'].includes(parity)) throw new TransportOptionError('parity', parity, 'none, even, odd, mark or space', m);
    this.#portOptions = {
      path,
      baudRate: positiveInt('baudRate', options.baudRate, DEFAULT_BAUD_RATE, 'serial', 50, 20_000_000),
      dataBits,
      stopBits,
      parity,
      rtscts: options.rtscts === true,
      autoOpen: false,
    };
    this.#backoff = backoffOf(options.reconnect, 'serial');
    this.#offline = new OfflineQueue('serial', options.offlineQueue);
    this.#maxPendingBytes = positiveInt('maxPendingBytes', options.maxPendingBytes, 64 * 1024, 'serial');
    this.#sink = {
      frame: (frame) => {
        if (!this.deliver(frame, this.peer, true)) this.#port?.pause();
      },
      drop: (reason, count, detail) => {
        this.drop(reason, count, this.peer, reason === 'protocol' ? new TransportProtocolError(detail, { medium: 'serial', peer: this.peer.key }) : undefined);
      },
    };
  }

  protected override connectionCount(): number {
    return this.#open ? 1 : 0;
  }

  protected async open(): Promise<void> {
    const mod = await importOptional<SerialPortModule & { default?: SerialPortModule }>('serial', 'serialport', '^13');
    this.#SerialPort = mod.SerialPort ?? mod.default?.SerialPort;
    await this.#openPort();
  }

  #openPort(): Promise<void> {
    const port = new this.#SerialPort!(this.#portOptions);
    this.#port = port;
    return new Promise<void>((resolve, reject) => {
      port.open((err) => {
        if (err) {
          reject(new TransportIoError(`could not open ${this.peer.path}: ${err.message}`, err, { medium: 'serial', peer: this.peer.key }));
          return;
        }
        this.#open = true;
        this.#attempt = 0;
        this.#decoder.reset();
        port.on('data', (chunk) => this.#decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), this.#sink));
        port.on('error', (e) => this.reportError(new TransportIoError('port error', e, { medium: 'serial', peer: this.peer.key })));
        port.on('close', (e) => this.#closed(port, e));
        if (this.inbound.underPressure) port.pause();
        this.events.emit('connected', { peer: this.peer });
        this.#offline.flush((f) => this.#write(f));
        resolve();
      });
    });
  }

  #closed(port: Port, e: (Error & { disconnected?: boolean }) | undefined): void {
    if (port !== this.#port) return;
    this.#open = false;
    const error = e ? new TransportIoError(`the port closed: ${e.message}`, e, { medium: 'serial', peer: this.peer.key }) : undefined;
    this.#failPending(error ?? closedError('serial', 'the port closed before the frame was written'));
    this.events.emit('disconnected', error ? { peer: this.peer, error } : { peer: this.peer });
    this.#scheduleReopen(error);
  }

  #scheduleReopen(error: TransportError | undefined): void {
    if (!this.accepting || this.#closing || this.#backoff === false) return;
    const attempt = ++this.#attempt;
    const delayMs = backoffDelay(this.#backoff, attempt);
    this.events.emit('reconnecting', error ? { attempt, delayMs, error } : { attempt, delayMs });
    this.#timer = setTimeout(() => {
      this.#openPort().catch((err: TransportError) => this.#scheduleReopen(err));
    }, delayMs);
  }

  protected override onInboundPressure(active: boolean): void {
    if (active) this.#port?.pause();
    else this.#port?.resume();
  }

  protected write(frame: Uint8Array, _to: PeerLike | undefined, signal: AbortSignal | undefined): Promise<void> {
    // Encoding first: a frame STX/ETX cannot carry is refused whether or not the port is open.
    const encoded = this.#encode(frame);
    if (!this.#open) return this.#offline.wait(encoded, signal, 'send').then(() => undefined);
    return this.#write(encoded);
  }

  #write(encoded: Uint8Array): Promise<void> {
    const port = this.#port;
    if (port === undefined || !this.#open) return Promise.reject(closedError('serial', 'the port is not open'));
    if (this.#pendingBytes + encoded.byteLength > this.#maxPendingBytes) {
      this.events.emit('backpressure', { direction: 'outbound', active: true, queued: this.#pendingBytes, limit: this.#maxPendingBytes, peer: this.peer });
      return Promise.reject(new QueueFullError('outbound', this.#maxPendingBytes, 'bytes', { medium: 'serial', peer: this.peer.key }));
    }
    this.#pendingBytes += encoded.byteLength;
    return new Promise<void>((resolve, reject) => {
      const entry = { reject };
      this.#pending.add(entry);
      port.write(encoded, (err) => {
        if (!this.#pending.delete(entry)) return;
        this.#pendingBytes -= encoded.byteLength;
        if (err) reject(new TransportIoError('write failed', err, { medium: 'serial', peer: this.peer.key }));
        else resolve();
      });
    });
  }

  #failPending(error: Error): void {
    for (const p of this.#pending) p.reject(error);
    this.#pending.clear();
    this.#pendingBytes = 0;
  }

  protected async close(_drain: boolean): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#timer);
    this.#offline.rejectAll(closedError('serial', 'the transport closed before the port (re)opened'));
    const port = this.#port;
    this.#port = undefined;
    this.#open = false;
    this.#failPending(closedError('serial'));
    if (port?.isOpen) {
      port.removeAllListeners();
      port.on('error', () => undefined);
      await new Promise<void>((resolve) => port.close(() => resolve()));
    }
  }
}

export function createSerialTransport(options: SerialOptions): SerialTransport {
  return new SerialTransport(options);
}

/** The registry's `serial` driver (also under the reference's keys `uart` and `rs485`). */
export const serialDriver: TransportDriver = { name: 'serial', create: (options) => new SerialTransport(options as SerialOptions) };
