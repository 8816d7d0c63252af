/**
 * The ingest on worker threads: the main thread owns the transports and routes every data frame
 * (plain or legacy secure) by its device (`framePartition`) into the `FrameRing` of the worker
 * that owns that partition; each worker decodes with a node of its own and writes to a sink of
 * its own. Control traffic (ID and time requests, handshakes) has no source aid, and
 * authenticated frames (which do, in their plain header) are left to `framePartition`'s plain
 * reading, which skips them: the main thread's node answers both, so there is one id allocator
 * and one authenticated-session table. See the server README, "On every core".
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { isSecureData } from '@opensynaptic/cmd';
import { OpenSynaptic, type OpenSynapticOptions, type ReceiveResult } from '@opensynaptic/core';
import { AuthServer, type AuthServerOptions, IdAllocator, type LeaseKinds, type SessionKinds } from '@opensynaptic/handshake';
import type { ReadingFrame, ReadingsSink, Store } from '@opensynaptic/store';
import { createTransport, type Inbound, type Peer, type Transport, type TransportStats } from '@opensynaptic/transport';
import { ServerError, optionError } from './errors.js';
import { Emitter } from './events.js';
import { FrameRing } from './frame-ring.js';
import { framePartition, MAX_PARTITIONS } from './partition.js';
import { deviceIdOf, type ServerTransportSpec, sensorsOf, strategyOf } from './server.js';
import { STAT, type MainToWorker, type WorkerData, type WorkerReading, type WorkerSinkSpec, type WorkerToMain } from './worker-protocol.js';

export type { WorkerSinkSpec } from './worker-protocol.js';

/** A reading from a worker (or, `worker: -1`, from the main thread's node: a secure or authenticated frame). */
export interface IngestReading extends ReadingFrame {
  secure: boolean;
  via: string;
  /** The peer it came from (undefined when the peer table forgot it: see `maxPeers`). */
  peer: Peer | undefined;
  geohash?: string | undefined;
}

export interface WorkerIngestOptions {
  /** Transports to listen on (at least one), owned by the main thread. */
  transports: readonly ServerTransportSpec[];
  /** Worker threads, one partition each (default `os.availableParallelism()`, 1 to 256). */
  workers?: number;
  /** Each worker's ring, bytes (a power of two, default 4 MiB: some 100,000 small frames). */
  ringBytes?: number;
  /**
   * Options of every node (the workers' and the main thread's). They cross to the workers by
   * structured clone: plain data only (no functions, stores or instances).
   */
  node?: Record<string, unknown>;
  /** Durable store of the main thread's id leases and sessions (as the server's `store`). */
  store?: Store<LeaseKinds & SessionKinds> | null;
  /** Ids handed out by the main thread's allocator (as the server's `ids`). */
  ids?: { start?: number; end?: number; leaseMs?: number };
  /** The main thread's authenticated-mode server (default: one in memory; `false`: none). */
  auth?: AuthServerOptions | false;
  /**
   * The sink each worker opens for itself (and the main thread, for readings its node decodes):
   * a module and the export that opens it, e.g. `{ module: '@opensynaptic/store-sqlite', export:
   * 'openSqliteReadingsSink', options: { path } }`. Default none: readings are only counted (and
   * forwarded with `forwardReadings`).
   */
  sink?: WorkerSinkSpec | null;
  /**
   * Hand every reading to the main thread too, in batches (`on('readings')`). Default false. A
   * worker has at most 64 batches in flight: a main thread that falls behind holds the worker,
   * whose ring then fills (drops counted, or a reliable medium waits).
   */
  forwardReadings?: boolean;
  /** Most readings in one sink write (and one forwarded batch), default 256. */
  sinkBatch?: number;
  /** Frames waiting for the main thread's node (control, secure, authenticated), default 1024; past it they are dropped and counted. */
  controlQueue?: number;
  /** Peers remembered for responses (a power of two, default 65536; an older one is forgotten and its response counted stale). */
  maxPeers?: number;
  /** How long `stop()` waits for the rings to drain and the workers to close their sinks, ms (default 30000). */
  stopTimeoutMs?: number;
  /** The worker program (default the built `ingest-worker.js` beside this module). */
  workerUrl?: URL | string;
}

export type WorkerState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** One worker's part of `status()`. */
export interface WorkerStatus {
  index: number;
  state: WorkerState;
  /** Frames routed into its ring. */
  routed: number;
  /** Frames it took off the ring, readings it decoded, frames its node refused or ignored. */
  frames: number;
  readings: number;
  errors: number;
  ignored: number;
  responses: number;
  /** Readings its sink accepted, reported committed, refused. */
  written: number;
  committed: number;
  rejected: number;
  ring: { usedBytes: number; capacity: number; records: number };
  /** Frames not routed to it: its ring was full (a medium that cannot wait), it had failed, too long for its ring. */
  dropped: { ringFull: number; down: number; tooLong: number };
  /** After a failure: frames left unread in its ring and readings its sink had not reported committed (lost with it). */
  lost: { frames: number; readings: number };
  /** Its event loop's utilisation since it started (0..1), or null when it could not say. */
  utilization: number | null;
  /** Its node's refusals by code. */
  errorCodes: Record<string, number>;
}

export interface WorkerIngestStatus {
  state: IngestState;
  workers: WorkerStatus[];
  /** The main thread's node: frames it handled, readings it decoded, control packets, refusals by code, frames dropped (its queue full). */
  main: { frames: number; readings: number; control: number; errors: Record<string, number>; dropped: number };
  responses: number;
  responseErrors: number;
  /** Responses whose peer the table had forgotten. */
  stalePeers: number;
  transports: Record<string, TransportStats & { medium: string; state: string }>;
}

export type IngestState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'destroyed';

export interface WorkerIngestEvents {
  state: { state: IngestState };
  /** A worker died (crash, exit, terminate): it serves no more; what it held is counted in `lost`. */
  'worker-error': { worker: number; error: Error; lostFrames: number; lostReadings: number };
  /** Decoded readings (with `forwardReadings`; `worker` -1: the main thread's node). */
  readings: { worker: number; readings: IngestReading[] };
  /** A worker's sink refused a batch (counted in `rejected`). */
  'sink-error': { worker: number; message: string };
  'transport-error': { via: string; error: unknown };
}

/** What {@link WorkerIngest.thread} gives: the worker thread's id and a way to end it. */
export interface WorkerThreadHandle {
  readonly threadId: number;
  /** Stops the thread at once (what a crash looks like to the ingest); resolves to its exit code. */
  terminate(): Promise<number>;
}

const DEFAULT_RING_BYTES = 4 << 20;
const MAX_WORKERS = 256;

function checkInt(key: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) throw optionError(key, `${String(value)} is not an integer from ${min} to ${max}`);
  return value;
}

/** Peers by a 32-bit id a ring record carries; bounded, an id whose slot was reused is stale. */
class PeerTable {
  readonly #peers: (Peer | undefined)[];
  readonly #ids: Uint32Array;
  readonly #byKey = new Map<string, number>();
  readonly #mask: number;
  #next = 1;
  #last: Peer | undefined;
  #lastId = 0;
  constructor(size: number) {
    this.#peers = new Array<Peer | undefined>(size);
    this.#ids = new Uint32Array(size);
    this.#mask = size - 1;
  }
  idOf(peer: Peer): number {
    // Frames come in runs from one peer (a gateway; a datagram socket's cached peer).
    if (peer === this.#last) return this.#lastId;
    let id = this.#byKey.get(peer.key);
    if (id === undefined || this.#ids[id & this.#mask] !== id) {
      id = this.#next;
      this.#next = (this.#next + 1) >>> 0 || 1;
      const slot = id & this.#mask;
      const old = this.#peers[slot];
      if (old !== undefined) this.#byKey.delete(old.key);
      this.#peers[slot] = peer;
      this.#ids[slot] = id;
      this.#byKey.set(peer.key, id);
    }
    this.#last = peer;
    this.#lastId = id;
    return id;
  }
  get(id: number): Peer | undefined {
    const slot = id & this.#mask;
    return this.#ids[slot] === id ? this.#peers[slot] : undefined;
  }
}

interface Entry {
  name: string;
  transport: Transport;
  loop: Promise<void> | null;
  offs: (() => void)[];
}

interface WorkerSlot {
  index: number;
  ring: FrameRing;
  thread: Worker | null;
  state: WorkerState;
  routed: number;
  dropped: { ringFull: number; down: number; tooLong: number };
  lost: { frames: number; readings: number };
  error: Error | null;
  ready: Promise<void>;
  exited: Promise<void>;
  stopped: boolean;
  statusWaiters: Map<number, (m: Extract<WorkerToMain, { type: 'status' }> | null) => void>;
}

/**
 * The ingest on worker threads (see the module comment): `start()` starts the workers, then the
 * transports; `stop()` stops the transports, lets the rings drain, and has every worker close its
 * sink; `destroy()` ends everything at once. Runs once.
 */
export class WorkerIngest {
  readonly workers: number;
  readonly ringBytes: number;
  readonly sinkBatch: number;
  readonly controlQueue: number;
  readonly stopTimeoutMs: number;
  /** The main thread's node: control traffic, secure and authenticated frames, the one id allocator. */
  readonly node: OpenSynaptic;
  readonly #options: WorkerIngestOptions;
  readonly #events = new Emitter<WorkerIngestEvents>();
  readonly #entries: Entry[] = [];
  readonly #slots: WorkerSlot[] = [];
  readonly #peers: PeerTable;
  readonly #control: { entry: number; inbound: Inbound }[] = [];
  #controlWake: (() => void) | null = null;
  #controlLoop: Promise<void> | null = null;
  #mainSink: ReadingsSink | null = null;
  /** The one id allocator (the main thread's node's); workers report the aids they hear for it. */
  readonly #allocator: IdAllocator | undefined;
  readonly #main = { frames: 0, readings: 0, control: 0, errors: {} as Record<string, number>, dropped: 0 };
  #responses = 0;
  #responseErrors = 0;
  #stalePeers = 0;
  #state: IngestState = 'created';
  #statusId = 0;

  constructor(options: WorkerIngestOptions) {
    if (!Array.isArray(options?.transports) || options.transports.length === 0) throw optionError('transports', 'at least one transport is needed');
    this.workers = checkInt('workers', options.workers, Math.min(MAX_WORKERS, availableParallelism()), 1, Math.min(MAX_WORKERS, MAX_PARTITIONS));
    this.ringBytes = options.ringBytes ?? DEFAULT_RING_BYTES;
    this.sinkBatch = checkInt('sinkBatch', options.sinkBatch, 256, 1);
    this.controlQueue = checkInt('controlQueue', options.controlQueue, 1024, 1);
    this.stopTimeoutMs = checkInt('stopTimeoutMs', options.stopTimeoutMs, 30_000, 0);
    const maxPeers = checkInt('maxPeers', options.maxPeers, 65_536, 2, 1 << 24);
    if ((maxPeers & (maxPeers - 1)) !== 0) throw optionError('maxPeers', `${maxPeers} is not a power of two`);
    this.#peers = new PeerTable(maxPeers);
    // The ring checks its size; made here so a bad one fails the constructor, not start().
    for (let i = 0; i < this.workers; i++) this.#slots.push(this.#newSlot(i));
    const names = new Set<string>();
    for (const [i, spec] of options.transports.entries()) {
      const name = spec.name ?? ('transport' in spec ? spec.transport.medium : spec.medium);
      if (typeof name !== 'string' || name === '') throw optionError(`transports[${i}]`, 'needs a medium or a transport');
      if (names.has(name)) throw optionError(`transports[${i}].name`, `"${name}" is used twice`);
      names.add(name);
    }
    this.#options = options;
    const store = options.store ?? null;
    const nodeOptions = { assignedId: 1, deviceId: 'SERVER', ...(options.node as OpenSynapticOptions) };
    const handshake = { ...nodeOptions.handshake };
    handshake.allocator ??= new IdAllocator({ ...options.ids, store: store as Store<LeaseKinds> | null });
    this.#allocator = handshake.allocator instanceof IdAllocator ? handshake.allocator : undefined;
    if (store !== null && handshake.sessionStore === undefined) handshake.sessionStore = store as unknown as Store<SessionKinds>;
    if (options.auth !== false) handshake.auth = { ...handshake.auth, server: new AuthServer({ ...options.auth }) };
    nodeOptions.handshake = handshake;
    this.node = new OpenSynaptic(nodeOptions);
  }

  #newSlot(index: number): WorkerSlot {
    return {
      index,
      ring: FrameRing.create(this.ringBytes),
      thread: null,
      state: 'starting',
      routed: 0,
      dropped: { ringFull: 0, down: 0, tooLong: 0 },
      lost: { frames: 0, readings: 0 },
      error: null,
      ready: Promise.resolve(),
      exited: Promise.resolve(),
      stopped: false,
      statusWaiters: new Map(),
    };
  }

  get state(): IngestState {
    return this.#state;
  }

  on<K extends keyof WorkerIngestEvents>(type: K, listener: (event: WorkerIngestEvents[K]) => void): () => void {
    return this.#events.on(type, listener);
  }

  /** The transport of that name (after `start()`). */
  transport(name: string): Transport | undefined {
    return this.#entries.find((e) => e.name === name)?.transport;
  }

  /**
   * Worker `index`'s thread (after `start()`; for diagnostics, and to test a worker's death): a
   * `node:worker_threads` Worker, typed by what it offers here so the published declarations
   * need no Node types.
   */
  thread(index: number): WorkerThreadHandle | null {
    return this.#slots[index]?.thread ?? null;
  }

  #setState(state: IngestState): void {
    this.#state = state;
    this.#events.emit('state', { state });
  }

  /** Starts the workers (each opens its node and sink), the main thread's node and sink, then the transports. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new ServerError('ERR_SERVER_STATE', `start() in state ${this.#state}: an ingest runs once`);
    this.#setState('starting');
    try {
      await this.node.open();
      // The main thread's sink first: it makes the tables (a SQLite file's schema) before the
      // workers open theirs at once.
      if (this.#options.sink != null) this.#mainSink = await openSink(this.#options.sink);
      const url = this.#options.workerUrl ?? new URL('./ingest-worker.js', import.meta.url);
      await Promise.all(this.#slots.map((slot) => this.#startWorker(slot, url)));
      for (const spec of this.#options.transports) {
        const transport = 'transport' in spec ? spec.transport : await createTransport(spec.medium, spec.options ?? {});
        this.#entries.push({ name: spec.name ?? transport.medium, transport, loop: null, offs: [] });
      }
      for (const [t, entry] of this.#entries.entries()) {
        entry.offs.push(entry.transport.on('error', (e) => this.#events.emit('transport-error', { via: entry.name, error: 'error' in e ? e.error : e })));
        // A medium that cannot pause hands each frame over as it is received: routed at once,
        // dropped and counted when its worker's ring is full (it cannot be made to wait).
        if (!entry.transport.reliable && typeof entry.transport.receiveInto === 'function') {
          entry.offs.push(entry.transport.receiveInto((inbound) => this.#routeNow(t, inbound)));
        }
        if (entry.transport.state === 'created') await entry.transport.start();
      }
    } catch (e) {
      await this.destroy();
      throw e;
    }
    for (const [t, entry] of this.#entries.entries()) entry.loop = this.#pump(t, entry);
    this.#controlLoop = this.#runControl();
    this.#setState('running');
  }

  #startWorker(slot: WorkerSlot, url: URL | string): Promise<void> {
    const data: WorkerData = { index: slot.index, ring: slot.ring.buffer, node: this.#options.node ?? {}, sink: this.#options.sink ?? null, forward: this.#options.forwardReadings === true, sinkBatch: this.sinkBatch };
    const thread = new Worker(url, { workerData: data });
    slot.thread = thread;
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    slot.ready = new Promise<void>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    });
    slot.exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
    thread.on('message', (m: WorkerToMain) => {
      switch (m.type) {
        case 'ready':
          slot.state = 'running';
          readyResolve();
          break;
        case 'failed':
          slot.error = new ServerError('ERR_SERVER_SERVICE', `worker ${slot.index}: ${m.message}`);
          readyReject(slot.error);
          break;
        case 'respond':
          this.#respondFromWorker(m.peerId, m.transport, m.bytes);
          break;
        case 'readings':
          this.#events.emit('readings', { worker: slot.index, readings: m.readings.map((r) => this.#reading(r)) });
          slot.ring.stats[STAT.forwardDone]!++;
          break;
        case 'sink-error':
          this.#events.emit('sink-error', { worker: slot.index, message: m.message });
          break;
        case 'touch':
          try {
            for (const aid of m.aids) this.#allocator?.touch(aid);
          } catch {
            // A report that crosses the close of the node renews nothing (a closed allocator throws).
          }
          break;
        case 'status':
          slot.statusWaiters.get(m.id)?.(m);
          slot.statusWaiters.delete(m.id);
          break;
        case 'stopped':
          slot.stopped = true;
          break;
      }
    });
    thread.on('error', (error) => {
      slot.error ??= error;
    });
    thread.on('exit', (code) => {
      for (const w of slot.statusWaiters.values()) w(null);
      slot.statusWaiters.clear();
      if (slot.stopped && (slot.state === 'stopping' || this.#state === 'stopping')) {
        slot.state = 'stopped';
        return;
      }
      const error = slot.error ?? new ServerError('ERR_SERVER_SERVICE', `worker ${slot.index} exited (code ${code})`);
      readyReject(error);
      if (slot.state === 'failed') return;
      const wasStarting = slot.state === 'starting';
      slot.state = 'failed';
      // What it had not taken off its ring, and what its sink had not reported committed, is gone with it.
      const s = slot.ring.stats;
      slot.lost = { frames: slot.ring.records(), readings: Math.max(0, s[STAT.written]! - s[STAT.committed]!) };
      if (!wasStarting) this.#events.emit('worker-error', { worker: slot.index, error, lostFrames: slot.lost.frames, lostReadings: slot.lost.readings });
    });
    return slot.ready;
  }

  /** A worker's reading as the main thread gives it out (transport index and peer id resolved). */
  #reading(r: WorkerReading): IngestReading {
    const { transport, peerId, ...rest } = r;
    return { ...rest, via: this.#entries[transport]?.name ?? '?', peer: this.#peers.get(peerId) };
  }

  #respondFromWorker(peerId: number, t: number, bytes: Uint8Array): void {
    const peer = this.#peers.get(peerId);
    const entry = this.#entries[t];
    if (peer === undefined || entry === undefined) {
      this.#stalePeers++;
      return;
    }
    this.#respond(entry, bytes, peer);
  }

  #respond(entry: Entry, bytes: Uint8Array, peer: Peer): void {
    let sent: Promise<void>;
    try {
      sent = entry.transport.send(bytes, peer);
    } catch (error) {
      this.#responseErrors++;
      this.#events.emit('transport-error', { via: entry.name, error });
      return;
    }
    this.#responses++;
    sent.catch((error: unknown) => {
      this.#responses--;
      this.#responseErrors++;
      this.#events.emit('transport-error', { via: entry.name, error });
    });
  }

  /**
   * Routes one frame: `true` when it is placed (in a ring, in the control queue) or counted
   * dropped, `false` only when its worker's ring is full (the caller waits, or drops and counts).
   */
  #route(t: number, inbound: Inbound): boolean {
    const frame = inbound.frame;
    const cmd = frame[0];
    // Plain and legacy-secure data frames by device: a device's secure session opens with its
    // first plain frame, on its worker, which then holds both its key and its templates.
    // Authenticated frames (framePartition reads only plain and legacy secure ones) and control go
    // to the main thread, which holds the authenticated sessions.
    const p = cmd === undefined ? undefined : framePartition(frame, this.workers);
    if (p === undefined) {
      if (this.#control.length >= this.controlQueue) this.#main.dropped++;
      else {
        this.#control.push({ entry: t, inbound });
        this.#controlWake?.();
      }
      return true;
    }
    const slot = this.#slots[p]!;
    if (slot.state !== 'running') {
      slot.dropped.down++;
      return true;
    }
    if (frame.length > slot.ring.maxFrameBytes) {
      slot.dropped.tooLong++;
      return true;
    }
    if (!slot.ring.push(frame, this.#peers.idOf(inbound.peer), inbound.receivedAt, t)) return false;
    slot.routed++;
    return true;
  }

  /** `#route` for a medium that cannot wait: a full ring drops the frame, counted for its worker. */
  #routeNow(t: number, inbound: Inbound): void {
    if (this.#route(t, inbound)) return;
    const p = framePartition(inbound.frame, this.workers)!;
    this.#slots[p]!.dropped.ringFull++;
  }

  /** Frames a medium queues (reliable ones, or one without `receiveInto`): a full ring makes it wait. */
  async #pump(t: number, entry: Entry): Promise<void> {
    const transport = entry.transport;
    try {
      for await (const batch of transport.batches({ max: 1024 })) {
        for (const inbound of batch) {
          while (!this.#route(t, inbound)) {
            const slot = this.#slots[framePartition(inbound.frame, this.workers)!]!;
            await slot.ring.writable(50);
            if (this.#state === 'destroyed') return;
          }
        }
      }
    } catch (error) {
      if (this.#state === 'running') this.#events.emit('transport-error', { via: entry.name, error });
    }
  }

  /** The main thread's node, one frame after the other (an ID_REQUEST waits for its lease to be durable). */
  async #runControl(): Promise<void> {
    for (;;) {
      const item = this.#control.shift();
      if (item === undefined) {
        if (this.#state !== 'running' && this.#state !== 'starting') return;
        await new Promise<void>((resolve) => (this.#controlWake = resolve));
        this.#controlWake = null;
        continue;
      }
      const entry = this.#entries[item.entry]!;
      const { frame, peer } = item.inbound;
      this.#main.frames++;
      let out: ReceiveResult;
      try {
        out = await this.node.receiveAsync(frame, peer.address !== undefined && peer.port !== undefined ? { host: peer.address, port: peer.port } : undefined);
      } catch {
        this.#count('ERR_SERVER_RECEIVE');
        continue;
      }
      if (out.response !== null) this.#respond(entry, out.response, peer);
      if (out.type === 'control') this.#main.control++;
      else if (out.type === 'error') {
        const code = (out.error as { code?: unknown }).code;
        this.#count(typeof code === 'string' ? code : out.error.name);
      } else if (out.type === 'data') {
        this.#main.readings++;
        const reading: IngestReading = {
          aid: out.aid,
          deviceId: deviceIdOf(String(out.fact.id), out.aid),
          strategy: strategyOf(out.cmd),
          timestampMs: out.timestampMs,
          receivedAtMs: Math.trunc(item.inbound.receivedAt),
          sensors: sensorsOf(out.fact as unknown as Record<string, unknown>),
          secure: isSecureData(out.cmd),
          via: entry.name,
          peer,
          geohash: typeof out.fact.geohash === 'string' ? out.fact.geohash : undefined,
        };
        if (this.#options.forwardReadings === true) this.#events.emit('readings', { worker: -1, readings: [reading] });
        if (this.#mainSink !== null) await this.#mainSink.write([reading]).catch(() => this.#count('ERR_SERVER_SINK'));
      }
    }
  }

  #count(code: string): void {
    this.#main.errors[code] = (this.#main.errors[code] ?? 0) + 1;
  }

  /** Counters of the main thread, of each worker (read from its ring, plus its event-loop utilisation and refusals by code), of each transport. */
  async status(): Promise<WorkerIngestStatus> {
    const workers = await Promise.all(this.#slots.map((slot) => this.#workerStatus(slot)));
    const transports: WorkerIngestStatus['transports'] = {};
    for (const e of this.#entries) transports[e.name] = { ...e.transport.stats(), medium: e.transport.medium, state: e.transport.state };
    return { state: this.#state, workers, main: structuredClone(this.#main), responses: this.#responses, responseErrors: this.#responseErrors, stalePeers: this.#stalePeers, transports };
  }

  async #workerStatus(slot: WorkerSlot): Promise<WorkerStatus> {
    type Reply = Extract<WorkerToMain, { type: 'status' }> | null;
    let extra: Reply = null;
    if (slot.state === 'running' && slot.thread !== null) {
      const id = ++this.#statusId;
      const reply = new Promise<Reply>((resolve) => {
        slot.statusWaiters.set(id, resolve);
        setTimeout(() => resolve(null), 2000).unref?.();
      });
      slot.thread.postMessage({ type: 'status', id } satisfies MainToWorker);
      extra = await reply;
      slot.statusWaiters.delete(id);
    }
    const s = slot.ring.stats;
    return {
      index: slot.index,
      state: slot.state,
      routed: slot.routed,
      frames: s[STAT.frames]!,
      readings: s[STAT.readings]!,
      errors: s[STAT.errors]!,
      ignored: s[STAT.ignored]!,
      responses: s[STAT.responses]!,
      written: s[STAT.written]!,
      committed: s[STAT.committed]!,
      rejected: s[STAT.rejected]!,
      ring: { usedBytes: slot.ring.used, capacity: slot.ring.capacity, records: slot.ring.records() },
      dropped: { ...slot.dropped },
      lost: { ...slot.lost },
      utilization: extra?.elu ?? null,
      errorCodes: extra?.errors ?? {},
    };
  }

  /**
   * Drains: stops the transports (what they received is routed), waits for the main thread's
   * node and the rings to empty, then has each worker flush and close its sink and exit. A worker
   * that does not finish within `stopTimeoutMs` is terminated, and what it held counted lost.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'destroyed') return;
    if (this.#state !== 'running') throw new ServerError('ERR_SERVER_STATE', `stop() in state ${this.#state}`);
    this.#setState('stopping');
    const errors: unknown[] = [];
    await Promise.all(this.#entries.map((e) => e.transport.stop().catch((err: unknown) => errors.push(err))));
    await Promise.all(this.#entries.map((e) => e.loop));
    this.#controlWake?.();
    await this.#controlLoop;
    const deadline = Date.now() + this.stopTimeoutMs;
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (slot.state !== 'running' || slot.thread === null) return;
        slot.state = 'stopping';
        slot.thread.postMessage({ type: 'stop' } satisfies MainToWorker);
        const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())));
        if (!(await Promise.race([slot.exited.then(() => true), timer]))) {
          errors.push(new ServerError('ERR_SERVER_STATE', `stop(): worker ${slot.index} did not finish within ${this.stopTimeoutMs} ms`));
          slot.stopped = false;
          slot.state = 'running';
          await slot.thread.terminate();
          await slot.exited;
        }
      }),
    );
    try {
      await this.#mainSink?.close();
      await this.node.close('ingest stopped');
    } catch (error) {
      errors.push(error);
    }
    for (const e of this.#entries) for (const off of e.offs.splice(0)) off();
    this.#setState('stopped');
    if (errors.length > 0) throw new ServerError('ERR_SERVER_SERVICE', `stop(): ${errors.length} part(s) failed: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`, { cause: errors[0] });
  }

  /** Ends everything at once: transports destroyed, workers terminated (what they held is lost), sinks and node closed; idempotent. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return;
    const wasStopped = this.#state === 'stopped';
    this.#state = 'destroyed';
    await Promise.all(this.#entries.map((e) => e.transport.destroy().catch(() => undefined)));
    for (const slot of this.#slots) {
      if (slot.thread === null || slot.state === 'stopped' || slot.state === 'failed') continue;
      slot.state = 'stopping';
      slot.stopped = true;
      await slot.thread.terminate().catch(() => undefined);
    }
    this.#controlWake?.();
    if (!wasStopped) {
      await this.#mainSink?.close().catch(() => undefined);
      await this.node.close('ingest destroyed').catch(() => undefined);
    }
    for (const e of this.#entries) for (const off of e.offs.splice(0)) off();
    this.#events.emit('state', { state: 'destroyed' });
  }
}

async function openSink(spec: WorkerSinkSpec): Promise<ReadingsSink> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const open = mod[spec.export ?? 'default'];
  if (typeof open !== 'function') throw new ServerError('ERR_SERVER_OPTION', `sink: module "${spec.module}" has no function export "${spec.export ?? 'default'}"`, { key: 'sink' });
  return (await open({ ...(spec.options ?? {}) })) as ReadingsSink;
}
