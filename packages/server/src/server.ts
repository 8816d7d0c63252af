import { installAsyncDispose, KeyedThrottle } from '@opensynaptic/internal';
import { AUTH_DIFF, AUTH_FULL, AUTH_HEART, AUTH_HELLO, DATA_DIFF, DATA_DIFF_SEC, DATA_FULL, DATA_FULL_SEC, DATA_HEART, DATA_HEART_SEC, isAuthData, isData, isSecureData } from '@opensynaptic/cmd';
import { OpenSynaptic, type OpenSynapticOptions, type ReceiveResult } from '@opensynaptic/core';

type ControlResult = Extract<ReceiveResult, { type: 'control' }>['result'];
import { AUTH_SUITE_X25519_CHACHA20_POLY1305, AuthServer, type AuthServerCounters, authRejectReasonName, type AuthServerOptions, IdAllocator, type LeaseKinds, type SessionKinds } from '@opensynaptic/handshake';
import { readU32 } from '@opensynaptic/packet';
import type { ReadingFrame, ReadingsSink, Store } from '@opensynaptic/store';
import { type AsyncDisposableLike, createTransport, type Inbound, type Peer, type Transport, type TransportStats } from '@opensynaptic/transport';
import { ServerError, optionError } from './errors.js';
import { Emitter } from './events.js';
import { BoundedQueue, FairQueue } from './queue.js';
import { frameAid, type Service, type ServiceHost, ServiceRegistry, SinkService, type StorageChange } from './services.js';

/** A decoded reading as the server delivers it: a sink's `ReadingFrame`, and where it came from. */
export interface ServerReading extends ReadingFrame {
  /** The frame was secure (body XORed with the session key: the legacy obfuscation). */
  secure: boolean;
  /** The frame was authenticated (AUTH_FULL / DIFF / HEART: opened under the device's session, its replay window checked). */
  authenticated: boolean;
  /** An authenticated frame's suite, from its device's session: pre-shared secret (suite 1) or X25519 (suite 2). */
  authMode?: 'auth-psk' | 'auth-x25519' | undefined;
  /** The transport's name. */
  via: string;
  peer: Peer;
  /** The fact's geohash (`&…|` in the body text; a DIFF or HEART has its template's), when the frame carries one. */
  geohash?: string | undefined;
}

/** The mode name of an authenticated session's suite (the current one's: a frame in flight across a change of suite is rare enough). */
const authModeOf = (suite: number | null | undefined): 'auth-psk' | 'auth-x25519' => (suite === AUTH_SUITE_X25519_CHACHA20_POLY1305 ? 'auth-x25519' : 'auth-psk');

/**
 * An inbound control packet the node handled (PONG, TIME_RESPONSE, HANDSHAKE_ACK...), as the
 * services' `onControl` hook sees it: `result` is the node's reading of it (status, seq...),
 * `response` what the server sent back (or `null`).
 */
export interface ServerControl {
  cmd: number;
  result: ControlResult;
  frame: Uint8Array;
  response: Uint8Array | null;
  via: string;
  peer: Peer;
  receivedAtMs: number;
}

/** Where a device was last heard (`OpenSynapticServer.peerOf`). */
export interface DevicePeer {
  /** The transport's name. */
  via: string;
  peer: Peer;
  /** When its last decoded data frame came, Unix ms. */
  heardAtMs: number;
}

/** A transport to listen on: an instance, or a registry driver name and its options. */
export type ServerTransportSpec = { name?: string; transport: Transport } | { name?: string; medium: string; options?: object };

/** Where the server's timer comes from (tests inject their own). */
export interface ServerTimers {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export type ServerState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'destroyed';

export interface OpenSynapticServerOptions {
  /** Transports to listen on (at least one). Names default to the medium; they must be unique. */
  transports: readonly ServerTransportSpec[];
  /** The node that reads frames, or options for the one the server makes (it then owns and closes it). */
  node?: OpenSynaptic | OpenSynapticOptions;
  /**
   * Durable store for id leases and secure sessions (e.g. `openSqliteStore` or `FileStore`), used
   * by the node the server makes: an ID_ASSIGN leaves only once its lease is durable
   * (`receiveAsync`). Default none: leases and sessions live in memory and a restart forgets them.
   */
  store?: Store<LeaseKinds & SessionKinds> | null;
  /** Close `store` after the node, on `stop()` and `destroy()` (default false: the caller closes it). */
  ownStore?: boolean;
  /**
   * The authenticated mode's server half (devices' pre-shared secrets and sessions; `require`
   * refuses legacy data frames). Default: one that keeps its secrets and sessions in `store` when
   * that keeps the kinds `keys` and `auth` (else in memory), so a device with a secret can
   * authenticate and one without gets REJECT NO_KEY (and legacy frames, in mode `prefer`).
   * `false`: none (AUTH_HELLO gets the reference's "Unknown CMD" NACK, as from a legacy server).
   */
  auth?: AuthServerOptions | AuthServer | false;
  /** Ids handed out (default 1..4294967294, the reference's `Start_ID`/`End_ID`) and lease length (default 30 days). */
  ids?: { start?: number; end?: number; leaseMs?: number };
  /** Readings sinks, each registered as a storage service (`storage`, `storage-2`...). */
  sinks?: readonly ReadingsSink[];
  /** More services, registered after the sinks in this order. */
  services?: readonly Service[];
  /**
   * Readings each `readings()` iterator holds for a slow consumer (default 4096 frames). When it
   * is full, `overflow` decides.
   */
  readingsBuffer?: number;
  /**
   * What a full sink or iterator does (default `'wait'`): `'wait'` holds the transport's loop
   * until there is room, so the pressure reaches the transport (a pausable medium stops reading;
   * UDP fills its inbound queue and counts its drops, reported in `status().transports`);
   * `'drop'` drops the reading for that sink or iterator and counts it in `status().dropped`.
   */
  overflow?: 'wait' | 'drop';
  /**
   * How long `stop()` waits for the loops to deliver what the transports had received, ms
   * (default 30000). A loop still held by a sink that takes nothing (a database down) is then let
   * go: the services stop (the storage sink counts what it cannot write as lost), and the
   * reading the loop held is counted `dropped.rejected` when the closed sink refuses it.
   */
  stopTimeoutMs?: number;
  /**
   * Most readings given to the sinks in one write (default 256): a loop collects the readings of
   * the frames already waiting in its transport's queue and writes them at once when the queue
   * is empty or this many wait, so a burst costs one sink call instead of one per frame.
   */
  sinkBatch?: number;
  /**
   * Frames one device may have waiting in the server's intake queue of an unreliable transport
   * (UDP, MQTT QoS 0; default 1024: about a second of a device sending 1,000 frames/s, what a
   * stall of the server or of its sink must not lose). The intake takes frames off the transport as they come and
   * the server reads them round-robin, one per device (a data frame's source aid, else the peer)
   * in turn, so a device that floods gets no more turns than the others; its frames past this
   * bound are dropped, counted in `status().dropped.device` and per device in
   * `status().devices`. A reliable transport (TCP, serial) drops nothing: its intake waits.
   */
  deviceQueue?: number;
  /**
   * Frames of all devices in one transport's intake queue (default 65536, some 10 MB at most). A medium that cannot
   * pause (UDP, MQTT QoS 0) hands its frames over as they arrive (`Transport.receiveInto`); past
   * this bound only a device below its fair share (this bound over the devices with frames
   * waiting) gets one in, up to twice the bound, and the others' are dropped and counted for
   * their device as over `deviceQueue` are. A pausable medium's intake waits instead, and the
   * pressure reaches the transport.
   */
  queueFrames?: number;
  /** Devices `status().devices` keeps counters for (default 1024; the others are summed under `*`). */
  maxTrackedDevices?: number;
  /**
   * Devices whose last transport and peer the server remembers, for `sendTo` (default 16384; the
   * least recently changed is forgotten first, and learnt again with the device's next frame).
   */
  maxDevicePeers?: number;
  /** Longest packet `sendTo` takes, bytes (default 65507; a transport's own `maxFrameBytes` still applies). */
  maxSendBytes?: number;
  /** How often `node.sweep()` runs, ms (default 1000; 0: never, the caller sweeps). */
  sweepIntervalMs?: number;
  timers?: ServerTimers;
  /** The clock (ms) of the node the server makes and of `receivedAtMs` (default `Date.now`). */
  clock?: () => number;
}

/** Counters of `status()`; everything the server did not deliver is counted here. */
export interface ServerCounters {
  /** Frames taken off the transports. */
  frames: number;
  /** Data frames decoded into readings. */
  readings: number;
  /** Control packets answered or taken (ID, time, ping, secure-session). */
  control: number;
  /** Responses sent back to peers, and sends that failed. */
  responses: number;
  responseErrors: number;
  /** Frames the node ignored, by code (unsolicited, replayed...). */
  ignored: Record<string, number>;
  /** Frames the node refused, by error code (CRC, unknown device's DIFF, junk...). */
  errors: Record<string, number>;
  /**
   * Dropped: `iterator` (readings: a full `readings()` consumer, `overflow: 'drop'`), `sink`
   * (readings: a full sink, `'drop'`), `rejected` (readings a sink refused as invalid), `device`
   * (frames: a device over its `deviceQueue` share of the intake queue).
   */
  dropped: { iterator: number; sink: number; rejected: number; device: number };
}

/** A device's trouble counters in `status().devices`: frames dropped at intake, frames refused (unknown device, bad frame...). */
export interface DeviceCounters {
  dropped: number;
  errors: number;
}

export interface ServerStatus extends ServerCounters {
  state: ServerState;
  /** The authenticated mode: its counters, devices with sessions, and whether legacy frames are refused (`null`: no auth server). */
  auth: (AuthServerCounters & { devices: number; require: boolean }) | null;
  /** Each transport's own counters (its drops included: `dropped['queue-full']` for a UDP queue overflow). */
  transports: Record<string, TransportStats & { medium: string; state: string }>;
  /** Each service's own status. */
  services: Record<string, unknown>;
  /** Readings waiting in `readings()` iterators. */
  queued: number;
  /** Frames waiting in the intake queues. */
  intake: number;
  /**
   * Per device (its aid, or the peer for frames without one) that had frames dropped or refused:
   * a flood or an unknown device shows up here by name; bounded (`maxTrackedDevices`).
   */
  devices: Record<string, DeviceCounters>;
}

/** Typed events of the server (`on`). */
export interface ServerEvents {
  state: { state: ServerState };
  /** Readings were dropped (coalesced: at most one event per tick, with the totals). */
  dropped: { iterator: number; sink: number; rejected: number; device: number };
  /** A frame the node refused (the server keeps serving). */
  'frame-error': { via: string; peer: Peer; code: string; error: Error };
  /** A transport reported an error, or a response could not be sent. */
  'transport-error': { via: string; error: unknown };
  /** A service failed (start, stop, a hook, a sink write). */
  'service-error': { service: string; error: unknown };
  /** `node.sweep()` failed. */
  'sweep-error': { error: unknown };
  /** A storage service's health changed (checked on the sweep timer): failing, recovered, readings lost. */
  storage: StorageChange & { service: string };
  /**
   * The authenticated mode: a device asked for a session (`hello`: a WELCOME went back, or
   * `rejected` with its reason), or a legacy data frame was refused because the server requires
   * authentication (`legacy-refused`, at most once a minute per device; all are counted in
   * `status().auth.legacyRefused`).
   */
  auth: { aid: number | null; state: 'hello' | 'rejected' | 'legacy-refused'; via: string; peer: Peer; reason?: string };
}

interface TransportEntry {
  name: string;
  transport: Transport;
  loop: Promise<void> | null;
  offs: (() => void)[];
  /** Readings of this transport waiting to go to the sinks in one write. */
  batch: ServerReading[];
  /** The medium's acknowledgements (MQTT QoS 1 PUBACKs) of the frames behind `batch`, given once the sinks committed it. */
  batchAcks: (() => void)[];
  /** The acknowledgement of the frame being handled, until its reading joins `batch` (or it is handled without one). */
  pendingAck: (() => void) | undefined;
  /** Frames taken off the transport, waiting their device's turn. */
  queue: FairQueue<Inbound>;
  intakeDone: boolean;
  /** The last peer a frame came from and its address for the node (see `#addressOf`). */
  lastPeer: Peer | undefined;
  lastAddress: { host: string; port: number } | undefined;
}

const DEFAULT_READINGS_BUFFER = 4096;
const DEFAULT_SWEEP_MS = 1000;
const DEFAULT_STOP_TIMEOUT_MS = 30_000;

function checkInt(key: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) throw optionError(key, `${String(value)} is not an integer >= ${min}`);
  return value;
}

/** A data command's strategy (FULL, DIFF or HEART), as readings carry it. */
export function strategyOf(cmd: number): ReadingFrame['strategy'] {
  if (cmd === DATA_FULL || cmd === DATA_FULL_SEC || cmd === AUTH_FULL) return 'FULL';
  if (cmd === DATA_DIFF || cmd === DATA_DIFF_SEC || cmd === AUTH_DIFF) return 'DIFF';
  return 'HEART';
}

/** Frames the intake takes off its transport at once (`Transport.batches`). */
const INTAKE_BATCH = 1024;
/** Frames a loop handles in a row before it lets the event loop run (see `#process`). */
const YIELD_EVERY = 256;
// setImmediate runs right after the event loop's poll phase (where sockets are read); where there is none, a timer.
const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => (immediate !== undefined ? immediate(resolve) : setTimeout(resolve, 0)));

const NEEDS_TEMPLATE = new Set<number>([DATA_DIFF, DATA_DIFF_SEC, DATA_HEART, DATA_HEART_SEC, AUTH_DIFF, AUTH_HEART]);
/** How long an aid the template store did not have is not asked for again (a flood of unknown DIFFs costs one read per second each). */
const ABSENT_TEMPLATE_MS = 1000;
const ABSENT_TEMPLATE_MAX = 4096;
/** Aids whose device id is remembered (past it the cache starts over). */
const DEVICE_ID_CACHE_MAX = 16_384;

/**
 * The device id of a fact: a FULL body decodes with the sender's `"{aid};"` prefix in its id (the
 * reference's text), a DIFF or HEART without it; readings carry it without, so one device is one id.
 */
export function deviceIdOf(id: string, aid: number): string {
  const prefix = `${aid};`;
  if (id.startsWith(prefix) && id.length > prefix.length) return id.slice(prefix.length);
  const semi = id.indexOf(';');
  // A digit-text id ("0042;NODE") is the same aid written with leading zeros.
  if (semi > 0 && semi < id.length - 1 && /^\d+$/.test(id.slice(0, semi)) && Number(id.slice(0, semi)) === aid) return id.slice(semi + 1);
  return id;
}

/** The sensors of a decoded fact (`s1_id`, `s1_s`, `s1_v`, `s1_u`, ...). */
export function sensorsOf(fact: Record<string, unknown>): ReadingFrame['sensors'] {
  const sensors: { id: string; state: string; value: number; unit: string }[] = [];
  for (let i = 1; ; i++) {
    const k = i < SENSOR_KEYS.length ? SENSOR_KEYS[i]! : sensorKeys(i);
    const id = fact[k[0]];
    if (id === undefined) break;
    sensors.push({ id: String(id), state: String(fact[k[1]] ?? ''), value: Number(fact[k[2]]), unit: String(fact[k[3]] ?? '') });
  }
  return sensors;
}

const sensorKeys = (i: number): readonly [string, string, string, string] => [`s${i}_id`, `s${i}_s`, `s${i}_v`, `s${i}_u`];
/** The fact keys of sensors 1..64, made once (a frame's path would build four strings per sensor). */
const SENSOR_KEYS = Array.from({ length: 65 }, (_, i) => sensorKeys(i));

/**
 * The server: listens on its transports, feeds every inbound frame to the node's receive path
 * (`receiveAsync`, so an id is durable before its ID_ASSIGN leaves), sends the node's response
 * back to the peer it came from, decodes data frames into readings for `readings()` and the
 * sinks, with backpressure (see `overflow`), and sweeps the node on a timer. Runs once:
 * `start()` → `stop()` (drains) → `destroy()`; `await using` destroys.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface below only types `[Symbol.asyncDispose]`, defined on the prototype after the class
export class OpenSynapticServer {
  readonly node: OpenSynaptic;
  readonly services = new ServiceRegistry();
  readonly readingsBuffer: number;
  readonly overflow: 'wait' | 'drop';
  readonly sweepIntervalMs: number;
  readonly stopTimeoutMs: number;
  readonly sinkBatch: number;
  readonly deviceQueue: number;
  readonly queueFrames: number;
  readonly maxTrackedDevices: number;
  readonly maxDevicePeers: number;
  readonly maxSendBytes: number;
  /** The transport and peer each device aid was last heard on (bounded: `maxDevicePeers`). */
  readonly #peers = new Map<number, { entry: TransportEntry; peer: Peer; heardAtMs: number }>();
  readonly #devices = new Map<string, DeviceCounters>();
  readonly #ownNode: boolean;
  readonly #ownedStore: Store<LeaseKinds & SessionKinds> | null;
  readonly #specs: readonly ServerTransportSpec[];
  readonly #entries: TransportEntry[] = [];
  readonly #byName = new Map<string, Transport>();
  readonly #iterators = new Set<BoundedQueue<ServerReading>>();
  readonly #events = new Emitter<ServerEvents>();
  readonly #timers: ServerTimers;
  readonly #clock: () => number;
  readonly #counters: ServerCounters = { frames: 0, readings: 0, control: 0, responses: 0, responseErrors: 0, ignored: {}, errors: {}, dropped: { iterator: 0, sink: 0, rejected: 0, device: 0 } };
  #sinks: SinkService[] = [];
  #hooks: Service[] = [];
  #state: ServerState = 'created';
  #sweep: unknown = null;
  #dropReport = false;
  #started: Service[] = [];
  /** Each device's secrets are read for a HELLO at most once a second (a HELLO flood reads no more). */
  readonly #keysRead = new KeyedThrottle<number>(1000, 4096);
  /** A device's `legacy-refused` event goes out at most once a minute. */
  readonly #refused = new KeyedThrottle<number>(60_000, 4096);
  /** Aids the template store did not have: asked again after `ABSENT_TEMPLATE_MS`. */
  readonly #absentTemplates = new KeyedThrottle<number>(ABSENT_TEMPLATE_MS, ABSENT_TEMPLATE_MAX);
  /** The device id last made of each aid's fact id (see `#deviceIdOf`). */
  readonly #deviceIds = new Map<number, { raw: string; id: string }>();

  constructor(options: OpenSynapticServerOptions) {
    if (!Array.isArray(options?.transports) || options.transports.length === 0) throw optionError('transports', 'at least one transport is needed');
    this.readingsBuffer = checkInt('readingsBuffer', options.readingsBuffer, DEFAULT_READINGS_BUFFER, 1);
    this.sweepIntervalMs = checkInt('sweepIntervalMs', options.sweepIntervalMs, DEFAULT_SWEEP_MS, 0);
    this.sinkBatch = checkInt('sinkBatch', options.sinkBatch, 256, 1);
    this.stopTimeoutMs = checkInt('stopTimeoutMs', options.stopTimeoutMs, DEFAULT_STOP_TIMEOUT_MS, 0);
    this.deviceQueue = checkInt('deviceQueue', options.deviceQueue, 1024, 1);
    this.queueFrames = checkInt('queueFrames', options.queueFrames, 65536, 1);
    this.maxTrackedDevices = checkInt('maxTrackedDevices', options.maxTrackedDevices, 1024, 1);
    this.maxDevicePeers = checkInt('maxDevicePeers', options.maxDevicePeers, 16_384, 1);
    this.maxSendBytes = checkInt('maxSendBytes', options.maxSendBytes, 65_507, 1);
    const overflow = options.overflow ?? 'wait';
    if (overflow !== 'wait' && overflow !== 'drop') throw optionError('overflow', `${String(overflow)} is not 'wait' or 'drop'`);
    this.overflow = overflow;
    this.#timers = options.timers ?? { setInterval: (fn, ms) => setInterval(fn, ms), clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>) };
    this.#clock = options.clock ?? Date.now;
    this.#specs = options.transports;
    const names = new Set<string>();
    for (const [i, spec] of options.transports.entries()) {
      const name = spec.name ?? ('transport' in spec ? spec.transport.medium : spec.medium);
      if (typeof name !== 'string' || name === '') throw optionError(`transports[${i}]`, 'needs a medium or a transport');
      if (names.has(name)) throw optionError(`transports[${i}].name`, `"${name}" is used twice`);
      names.add(name);
    }
    this.#ownedStore = options.ownStore === true ? (options.store ?? null) : null;
    if (options.node instanceof OpenSynaptic) {
      this.node = options.node;
      this.#ownNode = false;
    } else {
      const nodeOptions: OpenSynapticOptions = { assignedId: 1, deviceId: 'SERVER', clock: this.#clock, ...options.node };
      const store = options.store ?? null;
      const handshake = { ...nodeOptions.handshake };
      // One store keeps both kinds; each caller sees the kind it uses (the store type is invariant).
      handshake.allocator ??= new IdAllocator({ ...options.ids, clockMs: this.#clock, store: store as Store<LeaseKinds> | null });
      if (store !== null && handshake.sessionStore === undefined) handshake.sessionStore = store as unknown as Store<SessionKinds>;
      if (handshake.auth?.server === undefined && options.auth !== false) {
        const keeps = store !== null && store.kinds.includes('keys') && store.kinds.includes('auth');
        const server = options.auth instanceof AuthServer ? options.auth : new AuthServer({ ...(keeps ? { store: store as never } : {}), ...options.auth });
        handshake.auth = { ...handshake.auth, server };
      }
      nodeOptions.handshake = handshake;
      this.node = new OpenSynaptic(nodeOptions);
      this.#ownNode = true;
    }
    for (const [i, sink] of (options.sinks ?? []).entries()) this.services.register(new SinkService(sink, { name: i === 0 ? 'storage' : `storage-${i + 1}` }));
    for (const service of options.services ?? []) this.services.register(service);
  }

  get state(): ServerState {
    return this.#state;
  }

  on<K extends keyof ServerEvents>(type: K, listener: (event: ServerEvents[K]) => void): () => void {
    return this.#events.on(type, listener);
  }

  off<K extends keyof ServerEvents>(type: K, listener: (event: ServerEvents[K]) => void): void {
    this.#events.off(type, listener);
  }

  /** The transport of that name (after `start()`). */
  transport(name: string): Transport | undefined {
    return this.#byName.get(name);
  }

  #setState(state: ServerState): void {
    this.#state = state;
    this.#events.emit('state', { state });
  }

  /** Opens the node, starts the services, then the transports, then the loops and the sweep timer. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new ServerError('ERR_SERVER_STATE', `start() in state ${this.#state}: a server runs once`);
    this.#setState('starting');
    try {
      await this.node.open();
      for (const spec of this.#specs) {
        const transport = 'transport' in spec ? spec.transport : await createTransport(spec.medium, spec.options ?? {});
        const name = spec.name ?? transport.medium;
        // Reliable media must not lose frames: their intake waits instead of dropping.
        const perDevice = transport.reliable ? Number.POSITIVE_INFINITY : this.deviceQueue;
        this.#entries.push({ name, transport, loop: null, offs: [], batch: [], batchAcks: [], pendingAck: undefined, queue: new FairQueue<Inbound>(perDevice, this.queueFrames), intakeDone: false, lastPeer: undefined, lastAddress: undefined });
        this.#byName.set(name, transport);
      }
      const host: ServiceHost = { transport: (n) => this.#byName.get(n), reportError: (service, error) => this.#events.emit('service-error', { service, error }) };
      this.#sinks = this.services.list().filter((s): s is SinkService => s instanceof SinkService || s.sink !== undefined) as SinkService[];
      this.#hooks = this.services.list().filter((s) => s.onFrame !== undefined || s.onReading !== undefined || s.onControl !== undefined);
      for (const service of this.services.list()) {
        await service.start?.(host);
        this.#started.push(service);
      }
      for (const entry of this.#entries) {
        entry.offs.push(entry.transport.on('error', (e) => this.#events.emit('transport-error', { via: entry.name, error: 'error' in e ? e.error : e })));
        // Frames of a medium that cannot pause come straight into the fair queue, never through
        // the transport's own queue, which would drop by arrival order (a flood's batch with the
        // quiet devices' frames in it) when the server falls behind; the fair queue drops by device.
        if (!entry.transport.reliable && typeof entry.transport.receiveInto === 'function') {
          const queue = entry.queue;
          entry.offs.push(entry.transport.receiveInto((inbound) => this.#take(queue, inbound, true)));
        }
        // A medium that acknowledges (MQTT QoS 1) does so once the readings are committed, not on
        // receipt: a crash in between then loses nothing the sender was told was delivered.
        if (this.#sinks.length > 0 && entry.transport.reliable && entry.transport.state === 'created' && typeof entry.transport.deferAcks === 'function') entry.transport.deferAcks();
        if (entry.transport.state === 'created') await entry.transport.start();
      }
    } catch (e) {
      await this.destroy();
      throw e;
    }
    for (const entry of this.#entries) entry.loop = this.#pump(entry);
    if (this.sweepIntervalMs > 0) this.#sweep = this.#timers.setInterval(() => this.#runSweep(), this.sweepIntervalMs);
    this.#setState('running');
  }

  #runSweep(): void {
    try {
      this.node.sweep();
    } catch (error) {
      this.#events.emit('sweep-error', { error });
    }
    for (const service of this.#sinks) {
      if (!(service instanceof SinkService)) continue;
      service.check().then(
        (change) => {
          if (change !== null) this.#events.emit('storage', { service: service.name, ...change });
        },
        () => undefined,
      );
    }
  }

  #pump(entry: TransportEntry): Promise<void> {
    return Promise.all([this.#intake(entry), this.#process(entry)]).then(() => undefined);
  }

  /** Takes frames off the transport into the fair queue as they come (see `deviceQueue`). */
  async #intake(entry: TransportEntry): Promise<void> {
    const queue = entry.queue;
    const transport = entry.transport;
    try {
      // In batches (one promise per batch of frames, a native UDP batch whole) where the
      // transport has them; a third-party transport with only the iterator, frame by frame.
      if (typeof transport.batches === 'function') {
        for await (const batch of transport.batches({ max: INTAKE_BATCH })) {
          for (let i = 0; i < batch.length; i++) this.#take(queue, batch[i]!);
          if (queue.full) await queue.space();
        }
      } else {
        for await (const inbound of transport) {
          this.#take(queue, inbound);
          if (queue.full) await queue.space();
        }
      }
    } catch (error) {
      // The iterator failed (destroyed mid-read): the loop ends, the others keep serving.
      if (this.#state === 'running') this.#events.emit('transport-error', { via: entry.name, error });
    } finally {
      entry.intakeDone = true;
      queue.wake();
    }
  }

  /** Queues one frame for its device's turn, or drops and counts it (the device is over its share). */
  #take(queue: FairQueue<Inbound>, inbound: Inbound, unpaced = false): void {
    const aid = frameAid(inbound.frame);
    const key = aid ?? inbound.peer.key;
    if (unpaced ? queue.offer(key, inbound) : queue.push(key, inbound)) return;
    this.#counters.frames++;
    this.#device(aid === undefined ? inbound.peer.key : String(aid)).dropped++;
    this.#dropped('device');
  }

  /** Handles the queued frames, one device after the other. */
  async #process(entry: TransportEntry): Promise<void> {
    const queue = entry.queue;
    let run = 0;
    try {
      while (this.#state !== 'destroyed') {
        const inbound = queue.shift();
        if (inbound !== undefined) {
          entry.pendingAck = inbound.ack;
          const waiting = this.#handle(entry, inbound);
          if (waiting !== undefined) await waiting;
          // Handled without a reading for the sinks (control, refused, no sink): nothing to wait for.
          if (entry.pendingAck !== undefined) {
            entry.pendingAck();
            entry.pendingAck = undefined;
          }
          // A long run of frames handled without waiting would keep the event loop from reading
          // the sockets, and a datagram socket's kernel buffer is small: let it read now and then.
          else if (++run >= YIELD_EVERY) {
            run = 0;
            await yieldToEventLoop();
          }
          continue;
        }
        if (entry.intakeDone) break;
        // Idle: the readings batched so far go to the sinks now (the frames after the last
        // reading may have been control or bad frames, which never flush the batch).
        if (entry.batch.length > 0) {
          await this.#flushBatch(entry);
          continue;
        }
        await queue.readable();
      }
      // Destroyed: the sinks are gone with it; only a drained loop hands them its last batch.
      if (this.#state !== 'destroyed') await this.#flushBatch(entry);
    } catch (error) {
      if (this.#state === 'running') this.#events.emit('transport-error', { via: entry.name, error });
    }
  }

  /** The trouble counters of a device (bounded: past `maxTrackedDevices`, the rest share `*`). */
  #device(key: string): DeviceCounters {
    let c = this.#devices.get(key);
    if (c === undefined) {
      const k = this.#devices.size >= this.maxTrackedDevices ? '*' : key;
      c = this.#devices.get(k);
      if (c === undefined) {
        c = { dropped: 0, errors: 0 };
        this.#devices.set(k, c);
      }
    }
    return c;
  }

  /**
   * One frame: a promise only when something must be waited for (a template load, an id
   * assignment made durable, a full sink), so that the common data frame costs no promise.
   */
  #handle(entry: TransportEntry, inbound: Inbound): Promise<void> | undefined {
    this.#counters.frames++;
    for (const hook of this.#hooks) {
      if (hook.onFrame === undefined) continue;
      try {
        hook.onFrame(inbound, entry.name);
      } catch (error) {
        this.#events.emit('service-error', { service: hook.name, error });
      }
    }
    const frame = inbound.frame;
    const cmd = frame[0]!;
    if (NEEDS_TEMPLATE.has(cmd) && this.#mayLoadTemplates(frame)) return this.#loadTemplates(frame).then(() => this.#receiveAsync(entry, inbound));
    // A HELLO reads its device's secrets again first: `os-node keys` may have added or removed one.
    if (cmd === AUTH_HELLO && this.node.protocol.authServer?.persistent === true && frame.length >= 5) return this.#reloadKeys(frame).then(() => this.#receiveAsync(entry, inbound));
    // A data frame is handled as receiveAsync would, without its promise: only an ID_REQUEST
    // waits there (for its lease to be durable).
    if (isData(cmd) || isAuthData(cmd)) {
      const peer = inbound.peer;
      const address = this.#addressOf(entry, peer);
      let out: ReceiveResult;
      try {
        out = this.node.receive(frame, address);
      } catch (error) {
        this.#receiveFailed(entry, peer, error);
        return undefined;
      }
      return this.#received(entry, inbound, out);
    }
    return this.#receiveAsync(entry, inbound);
  }

  /**
   * The node's address of a peer; the last one's is kept, since frames come in runs from one peer
   * (a gateway, a datagram socket's cached peer), so the common frame allocates none.
   */
  #addressOf(entry: TransportEntry, peer: Peer): { host: string; port: number } | undefined {
    if (entry.lastPeer === peer) return entry.lastAddress;
    const address = peer.address !== undefined && peer.port !== undefined ? Object.freeze({ host: peer.address, port: peer.port }) : undefined;
    entry.lastPeer = peer;
    entry.lastAddress = address;
    return address;
  }

  async #receiveAsync(entry: TransportEntry, inbound: Inbound): Promise<void> {
    const peer = inbound.peer;
    const address = this.#addressOf(entry, peer);
    let out: ReceiveResult;
    try {
      out = await this.node.receiveAsync(inbound.frame, address);
    } catch (error) {
      this.#receiveFailed(entry, peer, error);
      return;
    }
    await this.#received(entry, inbound, out);
  }

  #receiveFailed(entry: TransportEntry, peer: Peer, error: unknown): void {
    // The node's receive does not throw; an injected store's failure may still surface here.
    this.#count(this.#counters.errors, 'ERR_SERVER_RECEIVE');
    this.#events.emit('frame-error', { via: entry.name, peer, code: 'ERR_SERVER_RECEIVE', error: error as Error });
  }

  #received(entry: TransportEntry, inbound: Inbound, out: ReceiveResult): Promise<void> | undefined {
    const peer = inbound.peer;
    if (out.response !== null) this.#respond(entry, out.response, peer);
    switch (out.type) {
      case 'data':
        this.#counters.readings++;
        this.#heard(out.aid, entry, peer, inbound.receivedAt);
        return this.#deliver(entry, {
          aid: out.aid,
          deviceId: this.#deviceIdOf(String(out.fact.id), out.aid),
          strategy: strategyOf(out.cmd),
          timestampMs: out.timestampMs,
          receivedAtMs: Math.trunc(inbound.receivedAt),
          sensors: sensorsOf(out.fact as unknown as Record<string, unknown>),
          secure: isSecureData(out.cmd),
          authenticated: isAuthData(out.cmd),
          authMode: isAuthData(out.cmd) ? authModeOf(this.node.protocol.authServer?.sessionSuite(out.aid)) : undefined,
          via: entry.name,
          peer,
          geohash: typeof out.fact.geohash === 'string' ? out.fact.geohash : undefined,
        });
      case 'control':
        this.#counters.control++;
        if (out.result.status === 'AUTH_HELLO') {
          const r = out.result;
          this.#events.emit('auth', { aid: r.assigned_id, state: r.sid === null ? 'rejected' : 'hello', via: entry.name, peer, ...(r.sid === null && out.response !== null ? { reason: authRejectReasonName(out.response[5]!) } : {}) });
        }
        this.#control(entry, inbound, out);
        break;
      case 'ignored':
        this.#count(this.#counters.ignored, out.code ?? out.reason);
        break;
      case 'error': {
        const code = (out.error as { code?: unknown }).code;
        const key = typeof code === 'string' ? code : out.error.name;
        this.#count(this.#counters.errors, key);
        const aid = frameAid(inbound.frame);
        this.#device(aid === undefined ? peer.key : String(aid)).errors++;
        this.#events.emit('frame-error', { via: entry.name, peer, code: key, error: out.error });
        if (key === 'ERR_AUTH_REQUIRED') this.#legacyRefused(aid ?? null, entry, peer);
        break;
      }
    }
    return undefined;
  }

  /** The `legacy-refused` event, at most once a minute per device (a legacy fleet must not flood it). */
  #legacyRefused(aid: number | null, entry: TransportEntry, peer: Peer): void {
    if (!this.#refused.take(aid ?? -1, this.#clock())) return;
    this.#events.emit('auth', { aid, state: 'legacy-refused', via: entry.name, peer });
  }

  /** Remembers where `aid` was heard; a run of frames from one peer costs one lookup each. */
  #heard(aid: number, entry: TransportEntry, peer: Peer, receivedAt: number): void {
    const known = this.#peers.get(aid);
    if (known !== undefined && known.peer.key === peer.key && known.entry === entry) {
      known.heardAtMs = receivedAt;
      return;
    }
    if (known !== undefined) this.#peers.delete(aid);
    else if (this.#peers.size >= this.maxDevicePeers) {
      const oldest = this.#peers.keys().next().value;
      if (oldest !== undefined) this.#peers.delete(oldest);
    }
    this.#peers.set(aid, { entry, peer, heardAtMs: receivedAt });
  }

  /** Tells the services with an `onControl` hook about a control packet the node handled. */
  #control(entry: TransportEntry, inbound: Inbound, out: Extract<ReceiveResult, { type: 'control' }>): void {
    let event: ServerControl | null = null;
    for (const hook of this.#hooks) {
      if (hook.onControl === undefined) continue;
      event ??= { cmd: out.cmd, result: out.result, frame: inbound.frame, response: out.response, via: entry.name, peer: inbound.peer, receivedAtMs: Math.trunc(inbound.receivedAt) };
      try {
        hook.onControl(event);
      } catch (error) {
        this.#events.emit('service-error', { service: hook.name, error });
      }
    }
  }

  /** Where device `aid` was last heard (its last decoded data frame), or undefined. */
  peerOf(aid: number): DevicePeer | undefined {
    const known = this.#peers.get(aid);
    return known === undefined ? undefined : { via: known.entry.name, peer: known.peer, heardAtMs: known.heardAtMs };
  }

  /**
   * Sends `packet` (a control packet, say PING or ID_ASSIGN, or any bytes) to device `aid`
   * through the transport and peer its last data frame came from. Resolves with where it went
   * once the transport took it. Rejects with `ServerError`: `ERR_SERVER_STATE` (not running),
   * `ERR_SERVER_PACKET` (not a non-empty `Uint8Array`, or a bad aid), `ERR_SERVER_PACKET_SIZE`
   * (over `maxSendBytes` or the transport's `maxFrameBytes`), `ERR_SERVER_UNKNOWN_DEVICE` (never
   * heard, or forgotten), `ERR_SERVER_TRANSPORT` (its transport stopped, or the send failed).
   */
  async sendTo(aid: number, packet: Uint8Array): Promise<DevicePeer> {
    if (this.#state !== 'running') throw new ServerError('ERR_SERVER_STATE', `sendTo() in state ${this.#state}`);
    if (!Number.isInteger(aid) || aid < 0 || aid > 0xffff_ffff) throw new ServerError('ERR_SERVER_PACKET', `aid: ${String(aid)} is not an integer in 0..4294967295`, { key: 'aid' });
    if (!(packet instanceof Uint8Array) || packet.length === 0) throw new ServerError('ERR_SERVER_PACKET', 'packet: a non-empty Uint8Array is needed', { key: 'packet' });
    if (packet.length > this.maxSendBytes) throw new ServerError('ERR_SERVER_PACKET_SIZE', `packet: ${packet.length} bytes, over maxSendBytes (${this.maxSendBytes})`, { key: 'packet' });
    const known = this.#peers.get(aid);
    if (known === undefined) throw new ServerError('ERR_SERVER_UNKNOWN_DEVICE', `aid ${aid}: no data frame of this device was heard (or it was forgotten): nowhere to send`, { key: 'aid' });
    const { entry, peer } = known;
    const transport = entry.transport;
    if (transport.state !== 'running' || this.#byName.get(entry.name) !== transport) throw new ServerError('ERR_SERVER_TRANSPORT', `aid ${aid}: transport "${entry.name}" is ${transport.state}`, { key: 'aid' });
    if (packet.length > transport.maxFrameBytes) throw new ServerError('ERR_SERVER_PACKET_SIZE', `packet: ${packet.length} bytes, over transport "${entry.name}"'s maxFrameBytes (${transport.maxFrameBytes})`, { key: 'packet' });
    try {
      await transport.send(packet, peer);
    } catch (error) {
      throw new ServerError('ERR_SERVER_TRANSPORT', `aid ${aid}: send over "${entry.name}" to ${peer.key} failed: ${error instanceof Error ? error.message : String(error)}`, { key: 'aid', cause: error });
    }
    return { via: entry.name, peer, heardAtMs: known.heardAtMs };
  }

  /** `deviceIdOf`, remembered per aid for the id it last had (a device's frames repeat it). */
  #deviceIdOf(raw: string, aid: number): string {
    const known = this.#deviceIds.get(aid);
    if (known !== undefined && known.raw === raw) return known.id;
    const id = deviceIdOf(raw, aid);
    if (this.#deviceIds.size >= DEVICE_ID_CACHE_MAX) this.#deviceIds.clear();
    this.#deviceIds.set(aid, { raw, id });
    return id;
  }

  /** Whether a DIFF or HEART must wait for its device's templates to load from the template store. */
  #mayLoadTemplates(frame: Uint8Array): boolean {
    const registry = this.node.fusion.registry;
    if (registry.store === null) return false;
    const aid = frameAid(frame);
    if (aid === undefined || registry.peek(aid) !== null) return false;
    return this.#absentTemplates.ready(aid, this.#clock());
  }

  /**
   * A DIFF or HEART of a device whose templates are not cached (evicted, or not preloaded) but
   * may be in the template store: the cache would only start a background load and refuse this
   * frame as unknown, so the server waits for the load first.
   */
  async #loadTemplates(frame: Uint8Array): Promise<void> {
    const registry = this.node.fusion.registry;
    const aid = frameAid(frame)!;
    const now = this.#clock();
    try {
      if ((await registry.preload([aid])) > 0) {
        this.#absentTemplates.forget(aid);
        return;
      }
    } catch {
      // The store failed: the frame is decoded without it (and fails as from an unknown device,
      // counted); the registry cache reports the store's failure itself.
    }
    this.#absentTemplates.mark(aid, now);
  }

  /** Secrets of a HELLO's device from the store, at most once a second per device (a HELLO flood reads no more). */
  async #reloadKeys(frame: Uint8Array): Promise<void> {
    const aid = readU32(frame, 1);
    if (!this.#keysRead.take(aid, this.#clock())) return;
    try {
      await this.node.protocol.authServer!.reloadKeys(aid);
    } catch (error) {
      // The store failed: the HELLO is answered from the secrets in memory.
      this.#events.emit('service-error', { service: 'auth', error });
    }
  }

  #count(map: Record<string, number>, key: string): void {
    map[key] = (map[key] ?? 0) + 1;
  }

  #respond(entry: TransportEntry, response: Uint8Array, peer: Peer): void {
    // Not awaited: a slow peer must not hold the loop; the transport bounds pending sends.
    let sent: Promise<void>;
    try {
      sent = entry.transport.send(response, peer);
    } catch (error) {
      this.#counters.responseErrors++;
      this.#events.emit('transport-error', { via: entry.name, error });
      return;
    }
    this.#counters.responses++;
    sent.catch((error: unknown) => {
      this.#counters.responses--;
      this.#counters.responseErrors++;
      this.#events.emit('transport-error', { via: entry.name, error });
    });
  }

  #deliver(entry: TransportEntry, reading: ServerReading): Promise<void> | undefined {
    for (const hook of this.#hooks) {
      if (hook.onReading === undefined) continue;
      try {
        hook.onReading(reading);
      } catch (error) {
        this.#events.emit('service-error', { service: hook.name, error });
      }
    }
    let k = 0;
    for (const queue of this.#iterators) {
      if (queue.push(reading)) {
        k++;
        continue;
      }
      if (this.overflow === 'drop') {
        this.#dropped('iterator');
        k++;
        continue;
      }
      // A full iterator: wait for its room, then the iterators after it and the sinks.
      return this.#deliverSlow(entry, reading, k);
    }
    return this.#toSinks(entry, reading);
  }

  async #deliverSlow(entry: TransportEntry, reading: ServerReading, from: number): Promise<void> {
    const queues = [...this.#iterators];
    for (let k = from; k < queues.length; k++) {
      const queue = queues[k]!;
      if (this.overflow === 'drop') {
        if (!queue.push(reading)) this.#dropped('iterator');
        continue;
      }
      while (!queue.push(reading)) await queue.space();
    }
    await this.#toSinks(entry, reading);
  }

  #toSinks(entry: TransportEntry, reading: ServerReading): Promise<void> | undefined {
    if (this.#sinks.length === 0) return undefined;
    entry.batch.push(reading);
    if (entry.pendingAck !== undefined) {
      entry.batchAcks.push(entry.pendingAck);
      entry.pendingAck = undefined;
    }
    if (entry.batch.length >= this.sinkBatch || (entry.queue.size === 0 && entry.transport.stats().inboundQueued === 0)) return this.#flushBatch(entry);
    return undefined;
  }

  async #flushBatch(entry: TransportEntry): Promise<void> {
    if (entry.batch.length === 0) return;
    const batch = entry.batch;
    entry.batch = [];
    const acks = entry.batchAcks;
    entry.batchAcks = [];
    const commits: Promise<boolean>[] = [];
    for (const service of this.#sinks) {
      const sink = service.sink as ReadingsSink;
      try {
        let seq = sink.tryWrite(batch);
        if (seq === false) {
          if (this.overflow === 'drop') {
            this.#dropped('sink', batch.length);
            continue;
          }
          seq = await sink.write(batch);
        }
        if (acks.length > 0 && sink.committed !== undefined) commits.push(sink.committed(seq));
      } catch (error) {
        // The sink refused the batch whole (a bad field, a closed sink): offer the readings one by
        // one, so one bad reading costs only itself; each refused one is counted, never silent.
        await this.#writeEach(service, batch, error);
      }
    }
    if (acks.length === 0) return;
    // Acknowledged once every sink committed (what was dropped or refused is counted already); a
    // batch a sink counted lost is not, so the broker sends it again after a reconnection.
    if (commits.length === 0) for (const ack of acks) ack();
    else
      void Promise.all(commits).then((oks) => {
        if (oks.every(Boolean)) for (const ack of acks) ack();
      });
  }

  async #writeEach(service: SinkService, batch: readonly ServerReading[], first: unknown): Promise<void> {
    const sink = service.sink;
    let reported = false;
    for (const reading of batch) {
      try {
        if (sink.tryWrite([reading]) !== false) continue;
        if (this.overflow === 'drop') this.#dropped('sink');
        else await sink.write([reading]);
      } catch (error) {
        this.#dropped('rejected');
        if (!reported) this.#events.emit('service-error', { service: service.name, error: batch.length === 1 ? error : (first ?? error) });
        reported = true;
      }
    }
  }

  #dropped(kind: keyof ServerCounters['dropped'], count = 1): void {
    this.#counters.dropped[kind] += count;
    if (this.#dropReport) return;
    this.#dropReport = true;
    queueMicrotask(() => {
      this.#dropReport = false;
      this.#events.emit('dropped', { ...this.#counters.dropped });
    });
  }

  /**
   * The decoded readings from now on, as an async iterator (each call: its own iterator; one
   * consumer each). It ends after the last reading once the server stopped. See `readingsBuffer`.
   */
  readings(): AsyncIterableIterator<ServerReading> {
    const queue = new BoundedQueue<ServerReading>(this.readingsBuffer);
    if (this.#state === 'stopped' || this.#state === 'destroyed') queue.end();
    else {
      this.#iterators.add(queue);
      queue.onReturn = () => this.#iterators.delete(queue);
    }
    return queue;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ServerReading> {
    return this.readings();
  }

  /** Counters, each transport's and each service's status. */
  async status(): Promise<ServerStatus> {
    const transports: ServerStatus['transports'] = {};
    for (const e of this.#entries) transports[e.name] = { ...e.transport.stats(), medium: e.transport.medium, state: e.transport.state };
    const services: Record<string, unknown> = {};
    for (const s of this.services.list()) {
      try {
        services[s.name] = s instanceof SinkService ? await s.currentStatus() : s.status?.();
      } catch (error) {
        services[s.name] = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    let queued = 0;
    for (const q of this.#iterators) queued += q.size;
    let intake = 0;
    for (const e of this.#entries) intake += e.queue.size;
    const devices: Record<string, DeviceCounters> = {};
    for (const [k, c] of this.#devices) devices[k] = { ...c };
    const a = this.node.protocol.authServer;
    const auth = a === null ? null : { ...structuredClone(a.counters), devices: a.devices, require: a.require };
    return { ...structuredClone(this.#counters), state: this.#state, auth, transports, services, queued, intake, devices };
  }

  /**
   * Drains: stops the transports (each delivers what it had received, then its loop ends), stops
   * the services in reverse order (the storage sink flushes and closes), flushes (and, when the
   * server made it, closes) the node, then ends the readings iterators after what they hold.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'destroyed') return;
    if (this.#state !== 'running') throw new ServerError('ERR_SERVER_STATE', `stop() in state ${this.#state}`);
    this.#setState('stopping');
    this.#clearSweep();
    const errors: unknown[] = [];
    await Promise.all(this.#entries.map((e) => e.transport.stop().catch((err: unknown) => errors.push(err))));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = await Promise.race([
      Promise.all(this.#entries.map((e) => e.loop)).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) errors.push(new ServerError('ERR_SERVER_STATE', `stop(): the loops did not drain within ${this.stopTimeoutMs} ms (a sink that takes no readings); what they held is counted`));
    for (const service of this.#started.reverse()) {
      try {
        await service.stop?.();
      } catch (error) {
        errors.push(error);
        this.#events.emit('service-error', { service: service.name, error });
      }
    }
    this.#started = [];
    try {
      if (this.#ownNode) await this.node.close('server stopped');
      else await this.node.flush();
    } catch (error) {
      errors.push(error);
    }
    try {
      await this.#ownedStore?.close();
    } catch (error) {
      errors.push(error);
    }
    this.#endIterators();
    this.#unsubscribe();
    this.#setState('stopped');
    if (errors.length > 0) throw new ServerError('ERR_SERVER_SERVICE', `stop(): ${errors.length} part(s) failed: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`, { cause: errors[0] });
  }

  /** Frees everything at once: transports and services destroyed, the node closed; idempotent. */
  async destroy(): Promise<void> {
    if (this.#state === 'destroyed') return;
    const wasStopped = this.#state === 'stopped';
    this.#state = 'destroyed';
    this.#clearSweep();
    await Promise.all(this.#entries.map((e) => e.transport.destroy().catch(() => undefined)));
    // Every service, started or not, stopped or not: destroy is idempotent for each.
    for (const service of this.services.list().reverse()) await Promise.resolve(service.destroy?.()).catch(() => undefined);
    this.#started = [];
    if (this.#ownNode && !wasStopped) await this.node.close('server destroyed').catch(() => undefined);
    if (!wasStopped) await this.#ownedStore?.close().catch(() => undefined);
    this.#endIterators();
    this.#unsubscribe();
    this.#events.emit('state', { state: 'destroyed' });
  }

  #clearSweep(): void {
    if (this.#sweep !== null) this.#timers.clearInterval(this.#sweep);
    this.#sweep = null;
  }

  #endIterators(): void {
    for (const q of this.#iterators) q.end();
    this.#iterators.clear();
  }

  #unsubscribe(): void {
    for (const e of this.#entries) for (const off of e.offs.splice(0)) off();
  }
}

// `await using` support as the transports have it: the method lives under the platform's
// `Symbol.asyncDispose` where there is one, typed only where the consumer's TypeScript lib has it.
export interface OpenSynapticServer extends AsyncDisposableLike {}
installAsyncDispose(OpenSynapticServer);
