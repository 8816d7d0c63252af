/**
 * `OpenSynaptic`: one node of the protocol, a small composition of the layers below it.
 *
 * - Send path, `transmit`: standardize → compress → fuse, with the handshake's FULL/DIFF
 *   strategy. Throws typed errors: its input comes from the caller.
 * - Receive path, `receive`: every inbound packet (data frames, control packets, secure-session
 *   replies, answers to the node's own requests). Never throws: its input comes from the
 *   network, and each failure is a typed error inside the result.
 * - Requests, `requestId`, `syncTime`, `ping`: the device side of the control exchanges, sent
 *   through the `send` function a transport provides and answered through `receive`.
 * - State changes (id assigned, session secure, template learned) as typed events, `on`.
 *
 * The node owns no sockets: it returns the frame to send and the reply to a received packet, so
 * any transport (or a test) can carry them. Every clock, timer, store and limit is injected.
 */
import { type FusionEngineOptions, type FusionFact, type FusionTemplate, OSVisualFusionEngine } from '@opensynaptic/fusion';
import {
  DATA_DIFF,
  DATA_DIFF_SEC,
  DATA_FULL,
  DATA_FULL_SEC,
  DATA_HEART,
  DATA_HEART_SEC,
  type DeviceRole,
  HANDSHAKE_NACK,
  ID_ASSIGN,
  ID_POOL_RES,
  isData,
  PONG,
  SECURE_CHANNEL_ACK,
  SECURE_DICT_READY,
  TIME_RESPONSE,
} from '@opensynaptic/cmd';
import {
  AUTH_MAX_SEQ,
  type AuthClientOptions,
  AuthError,
  type CtrlResult,
  type DataParseResult,
  type DispatchOutcome,
  HandshakeRequester,
  type HandshakeManagerOptions,
  type JsonInput,
  OSHandshakeManager,
  type PeerAddress,
  type RequesterTimers,
  type RequestOptions,
} from '@opensynaptic/handshake';
import { CMD_OFFSET, decodeTimestampToken, parseRouteId, readU32, readU48, ROUTE_COUNT_OFFSET, ROUTES_OFFSET, UNASSIGNED_AID } from '@opensynaptic/packet';
import { compressFact, DEFAULT_BODY_PRECISION, encodeValue, timestampToken } from '@opensynaptic/packet/body';
import {
  type DroppedSensor,
  OpenSynapticStandardizer,
  type ResolvedUnit,
  type SensorTuple,
  type StandardizedFact,
  type StandardizeExtras,
  type StandardizerOptions,
  standardValue,
} from '@opensynaptic/standardize';
import { brandError, type Listener, TypedEvents } from '@opensynaptic/internal';

/**
 * The id that means "no id assigned yet" (as the reference reads it): `UNASSIGNED_AID` of
 * `@opensynaptic/packet`, under the name this package has always exported.
 */
export const UNASSIGNED_ID: typeof UNASSIGNED_AID = UNASSIGNED_AID;

/** Puts one packet the node starts itself (ID_REQUEST, TIME_REQUEST, PING) on the wire. */
export type SendPacket = (packet: Uint8Array) => void | Promise<void>;

export interface OpenSynapticOptions {
  /**
   * This node's device id on the wire (route id); unset, 0 or 4294967295 mean "not assigned yet".
   * Digit text is kept as given at the start of the FULL body (`"0042"` sends `0042;…`, as the
   * reference does), while the frame header carries the number (42).
   */
  assignedId?: number | string | null | undefined;
  /** The device name written into facts (`id`). Default `"UNKNOWN"`. */
  deviceId?: string;
  /** `duplex` (default), `tx_only` or `rx_only`. */
  role?: DeviceRole;
  /** Clock in milliseconds since 1970; every layer reads this one. Default `Date.now`. */
  clock?: () => number;
  /** Standardizer options (units library, SensorId switch, limits), or an instance. */
  standardizer?: OpenSynapticStandardizer | Omit<StandardizerOptions, 'clockMs'>;
  /** Fusion options (registry cache and store, UTF-8 policy, precision). */
  fusion?: Omit<FusionEngineOptions, 'clock' | 'localId' | 'security' | 'skipTimestamp' | 'backend'>;
  /** Handshake options (allocator, session store, limits). */
  handshake?: Omit<HandshakeManagerOptions, 'clockMs' | 'role' | 'parser'>;
  /**
   * Backend of this node's frame codec and fusion batches: `'ts'` or `'native'`. Default: what
   * `OPENSYNAPTIC_CORE` selects. The standardizer, body text, Base62 and handshake have one
   * implementation (TypeScript). The one shared piece is the session-key SHA-256 of
   * `@opensynaptic/crc`, which follows `OPENSYNAPTIC_CORE` for the whole process; both of its
   * backends give the same key.
   */
  coreBackend?: 'ts' | 'native';
  /**
   * Largest inbound frame or control packet, in bytes (`Infinity`: no limit), for `receive`:
   * given to the fusion engine and the handshake manager (their own `maxFrameSize` option, when
   * set, wins). A transport passes its datagram or message limit here. Default 65,507, the
   * largest UDP payload. Body text has its own limit, the fusion option `maxBodySize`.
   */
  maxFrameSize?: number;
  /** Where `requestId`, `syncTime` and `ping` send their packets (also `connect`). Default: none; they then fail with `NoSendError`. */
  send?: SendPacket;
  /** Timers of those requests (resends, timeouts). Default: the global `setTimeout` and `performance.now`. */
  timers?: RequesterTimers;
  /** Default timeout of each request, ms. Default 5000. */
  requestTimeoutMs?: number;
  /** Most requests waiting for an answer at once. Default 256. */
  maxInFlight?: number;
  /**
   * Authenticated mode with this node's server (this project's extension; `authenticate()` sets
   * the session up): the pre-shared `secret` (16..64 bytes) of this device and its `kid` (suite
   * 1), or the server's pinned X25519 `serverPublicKey` and the `kid` of that key pair (suite 2,
   * no secret on the device), and `mode` `prefer` (default: legacy frames to a legacy server) or
   * `require`. A server's half is `handshake.auth.server`.
   */
  auth?: AuthClientOptions;
}

/** What a frame sent: the whole body, the changed values, or only a timestamp. */
export type FrameKind = 'FULL' | 'DIFF' | 'HEART';

/** What `transmit` returns. */
export interface TransmitResult {
  /** The frame to send. */
  frame: Uint8Array;
  /** The source AID written into it. */
  aid: number;
  /** The strategy the handshake chose (a new signature still goes out FULL under DIFF_PACKET). */
  strategy: 'FULL_PACKET' | 'DIFF_PACKET';
  /** What the frame carries: FULL, DIFF or HEART. */
  kind: FrameKind;
  /** Whether the frame is encrypted (the session with the receiver is secure). */
  secure: boolean;
  /** Whether the frame is authenticated (sealed under the node's authenticated session: AUTH_FULL / DIFF / HEART). */
  authenticated: boolean;
  /** The frame's timestamp, ms since 1970 (its low 48 bits, as the wire carries them); 0 without a clock. */
  timestampMs: number;
  /**
   * Sensors left out of the frame, each with its input index and typed error: the ones the
   * reference drops too (unknown unit, a value that is not a number, a malformed tuple).
   */
  dropped: readonly DroppedSensor[];
  /** With `detail: true`: the standardized fact the frame carries. */
  fact?: StandardizedFact;
  /** With `detail: true`: the body text (`{aid};{id}.{state}.{ts}|…`) before fusion. */
  body?: string;
}

/** Options of one transmission: fact fields besides the sensors. */
export interface TransmitOptions extends StandardizeExtras {
  /** Device name for this fact (default: the node's `deviceId`). */
  deviceId?: string;
  /** Device state (default `"ONLINE"`). */
  status?: string;
  /** Also return the standardized fact and the body text (for tools; costs a little). Default false. */
  detail?: boolean;
}

/**
 * What `receive` returns, by `type`:
 * - `data`: a data frame decoded to its fact;
 * - `control`: a control packet handled (`result` as the handshake reports it);
 * - `ignored`: a packet dropped on purpose (role, replay, unsolicited), with why;
 * - `error`: a packet that could not be handled, with its typed error.
 *
 * `response` is the packet to send back to the sender, or `null`.
 */
export type ReceiveResult =
  | {
      type: 'data';
      cmd: number;
      /** The sender's aid. */
      aid: number;
      fact: FusionFact;
      /**
       * The reading's time, ms since 1970 (`fact.__packet_meta__.timestampMs`): the frame's
       * timestamp, or the receiver's clock to the ms when the sender had none
       * (`__packet_meta__.receiverStamped`). An `rx_only` node, whose facts carry no timestamp
       * (`timestamp_raw` 0), still gives the frame's time here.
       */
      timestampMs: number;
      response: Uint8Array | null;
    }
  | { type: 'control'; cmd: number; result: CtrlResult; response: Uint8Array | null }
  | { type: 'ignored'; cmd: number; reason: string; code: string | null; response: null }
  | {
      type: 'error';
      cmd: number;
      /** A typed error with a `code` (test it with `isOpenSynapticError`); an injected store's or clock's own error passes through as thrown. */
      error: Error;
      response: Uint8Array | null;
    };

/** Events of a node (`on`). */
export interface OpenSynapticEvents {
  /** An ID_ASSIGN answering this node's `requestId` gave it `aid` (it replaced `previous`). */
  'id-assigned': { aid: number; previous: number; serverTimeMs: number | null };
  /** Frames with `aid` are now encrypted: `role` `sender` for ours to it, `receiver` for its to us. */
  'session-secure': { aid: number; role: 'sender' | 'receiver' };
  /** A FULL frame taught this node template `tid` of `aid` (a new one, or a new signature under that tid). */
  'template-learned': { aid: number; tid: number };
  /** A `syncTime` answer arrived. */
  'time-synced': TimeSync;
  /**
   * The authenticated session changed: `established` (a WELCOME verified), `legacy` (the server
   * cannot: legacy frames from now on, mode `prefer`), `lost` (the server no longer knows the
   * session; `authenticate()` again, which the node starts itself when it can send), `failed`
   * (a background `authenticate()` failed: `error`).
   */
  auth: { aid: number; state: 'established' | 'legacy' | 'lost' | 'failed'; sid: number | null; error?: Error };
}

/** What `syncTime` resolves to. */
export interface TimeSync {
  /** The server's time, ms since 1970 (the wire carries whole seconds). */
  serverTimeMs: number;
  /** Server time minus this node's clock half a round trip before the answer arrived, ms (±500 ms: the wire carries whole seconds). */
  offsetMs: number;
  /** Round trip, ms, by this node's clock. */
  rttMs: number;
}

/** Thrown by `transmit` before an id is assigned. */
export class IdNotAssignedError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name = 'IdNotAssignedError';
  readonly code = 'ERR_NODE_ID_NOT_ASSIGNED';
  constructor(deviceId: string) {
    super(`device ${JSON.stringify(deviceId)} has no assigned id yet; request one (requestId) before transmitting`);
  }
}

/** A request (`requestId`, `syncTime`, `ping`) on a node that has no `send` function. */
export class NoSendError extends Error {
  static {
    brandError(this);
  }
  override readonly name = 'NoSendError';
  readonly code = 'ERR_NODE_NO_SEND';
  constructor() {
    super('the node has nowhere to send requests: pass `send` in its options or call connect(send)');
  }
}

/** Keys `TransmitOptions` may hold besides fact extras. */
function onlyTimeExtra(options: TransmitOptions): boolean {
  for (const k in options) {
    if (k !== 'deviceId' && k !== 'status' && k !== 't' && k !== 'detail' && Object.hasOwn(options, k)) return false;
  }
  return true;
}

const SECURE_FOR: Record<number, boolean> = { [DATA_FULL_SEC]: true, [DATA_DIFF_SEC]: true, [DATA_HEART_SEC]: true };
const KIND: Record<number, FrameKind> = {
  [DATA_FULL]: 'FULL',
  [DATA_FULL_SEC]: 'FULL',
  [DATA_DIFF]: 'DIFF',
  [DATA_DIFF_SEC]: 'DIFF',
  [DATA_HEART]: 'HEART',
  [DATA_HEART_SEC]: 'HEART',
};

/** `dropped` of a reading that lost no sensor (shared: one array less per frame). */
const NOTHING_DROPPED: readonly DroppedSensor[] = Object.freeze([]);

/** A data outcome that decoded: fusion's fact (the node's parser is its fusion engine). */
function isFact(r: DataParseResult): r is DataParseResult & FusionFact {
  return r.error === undefined && r.__packet_meta__ !== undefined;
}

/** Where a frame's timestamp starts (after its routes and tid). */
function timestampOffset(frame: Uint8Array): number {
  return ROUTES_OFFSET + 4 * frame[ROUTE_COUNT_OFFSET]! + 1;
}

/** The source aid of a data frame (its last route), or -1 when it is too short to say. */
function sourceAid(p: Uint8Array): number {
  const rc = p.length > ROUTE_COUNT_OFFSET ? p[ROUTE_COUNT_OFFSET]! : 0;
  const at = ROUTES_OFFSET + 4 * (rc - 1);
  return rc === 0 || p.length < at + 4 ? -1 : readU32(p, at);
}

/**
 * A steady-state sender's shortcut: what the last transmit's input turned into, so that the same
 * sensors (ids, states, units, in order) with new values go from numbers to the DIFF or HEART
 * frame without building a fact, writing body text and cutting it up again. Every check that
 * could make the full path decide differently sends the reading down it instead (which then
 * gives the exact frame or error): the plan is only a cache of the full path's decisions.
 */
interface TransmitPlan {
  readonly aid: number;
  readonly device: string;
  readonly status: string;
  readonly ids: readonly unknown[];
  readonly states: readonly unknown[];
  readonly units: readonly string[];
  readonly resolved: readonly ResolvedUnit[];
  /** Per sensor the `{state}.{unit}` value the body carries before its number. */
  readonly meta: readonly string[];
  /** The values of the next frame, reused (fusion copies what it keeps). */
  readonly values: string[];
  /** Per sensor the last reading taken through the plan and its Base62 text (a repeated reading is not converted again). */
  readonly lastX: number[];
  readonly lastText: string[];
  readonly template: FusionTemplate;
  readonly libraryVersion: number;
  readonly precision: number;
  /** Last `t` turned into a frame timestamp, and that timestamp. */
  lastT: number;
  lastTimestamp: number;
}

export class OpenSynaptic {
  readonly standardizer: OpenSynapticStandardizer;
  readonly fusion: OSVisualFusionEngine;
  /** The handshake manager: strategy, secure sessions, control packets. */
  readonly protocol: OSHandshakeManager;
  /** The device side of the control exchanges (`requestId`, `syncTime`, `ping` use it). */
  readonly requester: HandshakeRequester;
  deviceId: string;
  readonly #clock: () => number;
  readonly #events = new TypedEvents<OpenSynapticEvents>();
  #send: SendPacket | null;
  #assignedId: number;
  /** The id as written at the start of a FULL body: the digit text given, else the number. */
  #assignedIdText = '0';
  #plan: TransmitPlan | null = null;
  /** Reused by every transmit (see `#transmit`). */
  readonly #extras: StandardizeExtras = { t: undefined };
  readonly #timers: RequesterTimers;
  readonly #requestTimeoutMs: number;
  /** Woken on every authenticated-mode answer (WELCOME, REJECT, a legacy NACK). */
  readonly #authWaiters = new Set<() => void>();
  #authInFlight: Promise<'authenticated' | 'legacy'> | null = null;
  readonly #compressOptions: { nowMs: () => number; sensorId: boolean } = { nowMs: () => this.#clock(), sensorId: true };

  constructor(options: OpenSynapticOptions = {}) {
    const clock = options.clock ?? Date.now;
    this.#clock = clock;
    this.deviceId = options.deviceId ?? 'UNKNOWN';
    this.standardizer =
      options.standardizer instanceof OpenSynapticStandardizer ? options.standardizer : new OpenSynapticStandardizer({ ...options.standardizer, clockMs: clock });
    const role = options.role ?? 'duplex';
    // One limit for both layers that read inbound packets; each checks it once on arrival.
    const limit = options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize };
    const handshake = options.auth === undefined ? options.handshake : { ...options.handshake, auth: { ...options.handshake?.auth, client: options.auth } };
    this.protocol = new OSHandshakeManager({ ...limit, ...handshake, clockMs: clock, role });
    this.#timers = options.timers ?? { setTimeout: (cb, ms) => setTimeout(cb, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>), now: () => performance.now() };
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.fusion = new OSVisualFusionEngine({
      ...limit,
      ...options.fusion,
      clock,
      security: this.protocol,
      skipTimestamp: role === 'rx_only',
      ...(options.coreBackend ? { backend: options.coreBackend } : {}),
    });
    this.protocol.parser = this.fusion;
    this.#send = options.send ?? null;
    this.requester = new HandshakeRequester({
      send: (packet) => {
        if (this.#send === null) throw new NoSendError();
        return this.#send(packet);
      },
      // One sequence counter for the node's requests and the manager's own packets.
      seq: this.protocol.seq,
      ...(options.timers ? { timers: options.timers } : {}),
      ...(options.requestTimeoutMs === undefined ? {} : { timeoutMs: options.requestTimeoutMs }),
      ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
    });
    this.#assignedId = 0;
    this.assignedId = options.assignedId ?? 0;
  }

  /** The node's wire id (0 when none is assigned). */
  get assignedId(): number {
    return this.#assignedId;
  }

  set assignedId(id: number | string | null) {
    const aid = id === null || id === '' || id === 'UNKNOWN' ? 0 : parseRouteId(id);
    this.#assignedId = aid;
    // The reference writes the id into the body as it was given: digit text keeps its leading zeros.
    this.#assignedIdText = typeof id === 'string' && /^[0-9]+$/.test(id) ? id : String(aid);
    this.fusion.localId = aid;
    this.#plan = null;
  }

  /** The id as the FULL body carries it (`"0042"` when given so; the header carries `assignedId`). */
  get assignedIdText(): string {
    return this.#assignedIdText;
  }

  /** True until an id other than 0 and 4294967295 is assigned. */
  get idMissing(): boolean {
    return this.#assignedId === 0 || this.#assignedId === UNASSIGNED_ID;
  }

  /** Subscribes to a node event; returns the function that unsubscribes. */
  on<K extends keyof OpenSynapticEvents>(name: K, listener: Listener<OpenSynapticEvents[K]>): () => void {
    return this.#events.on(name, listener);
  }

  /** Subscribes to the next `name` event only. */
  once<K extends keyof OpenSynapticEvents>(name: K, listener: Listener<OpenSynapticEvents[K]>): () => void {
    return this.#events.once(name, listener);
  }

  off<K extends keyof OpenSynapticEvents>(name: K, listener: Listener<OpenSynapticEvents[K]>): void {
    this.#events.off(name, listener);
  }

  /** Sets (or with `null` clears) where the node's own requests go; a transport calls this. */
  connect(send: SendPacket | null): void {
    this.#send = send;
  }

  // ------------------------------------------------------------------------------------ send

  /**
   * Standardizes `sensors`, compresses the fact and fuses it into the next frame (FULL, DIFF or
   * HEART, secure once the session allows it). Throws `IdNotAssignedError` without an id, and
   * the standardizer's, body codec's or fusion engine's typed errors for input they refuse.
   *
   * A reading that is NaN or infinite (given, as `"nan"`/`"inf"` text, or after conversion) throws
   * its `InvalidValueError` (`ERR_STD_VALUE_RANGE`, naming the sensor's index and id) and sends
   * nothing: the reference would send it as 0, a silently wrong value. Sensors the reference drops
   * as well are left out and listed in the result's `dropped`.
   *
   * `options.t` is the reading's time in ms since 1970. Default: the node's clock, in whole
   * seconds (as the reference's `int(time.time())`).
   */
  transmit(sensors: readonly SensorTuple[], options: TransmitOptions = {}): TransmitResult {
    if (this.idMissing) throw new IdNotAssignedError(options.deviceId ?? this.deviceId);
    // Refused before the template state moves, so a refused frame leaves no DIFF base behind.
    if (this.protocol.authClient !== null) this.#checkAuth();
    const plan = this.#plan;
    if (plan !== null && options.detail !== true) {
      const fast = this.#transmitPlanned(plan, sensors, options);
      if (fast !== null) return this.#sealed(fast);
    }
    return this.#sealed(this.#transmit(sensors, options, false));
  }

  /** `transmit` for a device without a clock: timestamp 0, which the receiver stamps. */
  transmitNoTimestamp(sensors: readonly SensorTuple[], options: TransmitOptions = {}): TransmitResult {
    if (this.idMissing) throw new IdNotAssignedError(options.deviceId ?? this.deviceId);
    if (this.protocol.authClient !== null) this.#checkAuth();
    return this.#sealed(this.#transmit(sensors, options, true));
  }

  /** `require` mode without a session: the typed refusal (nothing is built). */
  #checkAuth(): void {
    const client = this.protocol.authClient!;
    if (client.mode === 'require' && (client.state !== 'established' || client.seq >= AUTH_MAX_SEQ)) {
      throw new AuthError(client.state === 'established' ? 'ERR_AUTH_SEQ_EXHAUSTED' : 'ERR_AUTH_REQUIRED', `aid ${this.#assignedId} has no authenticated session${client.state === 'established' ? ' with sequence numbers left' : ''} (auth mode require): await authenticate() first`, this.#assignedId);
    }
  }

  /** The frame sealed under the authenticated session, when there is one. */
  #sealed(result: TransmitResult): TransmitResult {
    const client = this.protocol.authClient;
    if (client === null) return result;
    const { frame, authenticated } = client.seal(result.frame, result.aid);
    result.frame = frame;
    result.authenticated = authenticated;
    if (client.rotationDue) this.#authenticateInBackground();
    return result;
  }

  // -------------------------------------------------------------------------- authenticated mode

  /**
   * Sets up an authenticated session with the server (AUTH_HELLO → AUTH_WELCOME, the node's
   * `send`), resending the same HELLO up to `attempts` times (default 3) within `timeoutMs`
   * (default the node's request timeout). Resolves `'authenticated'` (later transmits are
   * sealed) or, in mode `prefer`, `'legacy'` when the server cannot (legacy frames from now on).
   * Rejects with `AuthError`: `ERR_AUTH_UNSUPPORTED` (no `auth` option), `ERR_AUTH_REJECTED`
   * (mode `require` and the server refused or is legacy; or no answer in time), and
   * `IdNotAssignedError` / `NoSendError`. A session in use keeps sealing until the new one is up,
   * so a rotation loses no frame.
   */
  authenticate(options: { timeoutMs?: number; attempts?: number } = {}): Promise<'authenticated' | 'legacy'> {
    this.#authInFlight ??= this.#authenticate(options).finally(() => {
      this.#authInFlight = null;
    });
    return this.#authInFlight;
  }

  async #authenticate(options: { timeoutMs?: number; attempts?: number }): Promise<'authenticated' | 'legacy'> {
    const client = this.protocol.authClient;
    if (client === null) throw new AuthError('ERR_AUTH_UNSUPPORTED', 'this node has no authenticated mode: give OpenSynapticOptions.auth (secret or serverPublicKey, kid, mode)');
    if (this.idMissing) throw new IdNotAssignedError(this.deviceId);
    const send = this.#send;
    if (send === null) throw new NoSendError();
    const aid = this.#assignedId;
    const attempts = Math.max(1, Math.floor(options.attempts ?? 3));
    const each = Math.max(1, (options.timeoutMs ?? this.#requestTimeoutMs) / attempts);
    const hello = client.hello(aid);
    const before = client.sid;
    for (let i = 0; i < attempts; i++) {
      await send(hello);
      const done = await this.#authAnswer(each, () => (client.state === 'established' && client.sid !== before) || client.state === 'legacy' || client.lastRefusal !== null);
      if (!done) continue;
      if (client.state === 'legacy') {
        this.#events.emit('auth', { aid, state: 'legacy', sid: null });
        return 'legacy';
      }
      if (client.lastRefusal !== null && (client.state !== 'established' || client.sid === before)) {
        throw new AuthError('ERR_AUTH_REJECTED', `aid ${aid}: ${client.lastRefusal} (auth mode ${client.mode})`, aid);
      }
      this.#events.emit('auth', { aid, state: 'established', sid: client.sid });
      return 'authenticated';
    }
    // A WELCOME that came but did not verify (another server key than the pinned one) says more than a timeout.
    const welcome = client.lastWelcomeError === null ? '' : ` that verifies (${client.lastWelcomeError.message})`;
    throw new AuthError('ERR_AUTH_REJECTED', `aid ${aid}: no AUTH_WELCOME${welcome} after ${attempts} HELLO(s) in ${Math.round(each * attempts)} ms`, aid);
  }

  /** Resolves true once `done()` holds after an authenticated-mode answer, false after `ms`. */
  #authAnswer(ms: number, done: () => boolean): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timers = this.#timers;
      const wake = () => {
        if (!done()) return;
        this.#authWaiters.delete(wake);
        timers.clearTimeout(handle);
        resolve(true);
      };
      const handle = timers.setTimeout(() => {
        this.#authWaiters.delete(wake);
        resolve(false);
      }, ms);
      this.#authWaiters.add(wake);
    });
  }

  #authenticateInBackground(): void {
    if (this.#authInFlight !== null || this.#send === null) return;
    const aid = this.#assignedId;
    this.authenticate().catch((error: unknown) => this.#events.emit('auth', { aid, state: 'failed', sid: null, error: error instanceof Error ? error : new Error(String(error)) }));
  }

  /**
   * The reading's `t` (ms) after the time guard: a time before the sync threshold is not real.
   * The reference compares its whole seconds with the threshold (1e6 s), so ms compare with 1000 times it.
   */
  #guardTime<T extends number | null | undefined>(t: T): T | number {
    const p = this.protocol;
    const ms = typeof t === 'number' ? t : this.#clock();
    // Replaced by the server's time when known, else by the clock, unless the session is already secure.
    if (ms < p.timeSyncThreshold * 1000 && !p.getSession(this.#assignedId)?.dictReady) {
      return p.lastServerTimeMs > 0 ? p.lastServerTimeMs : Math.trunc(this.#clock() / 1000) * 1000;
    }
    return t;
  }

  #transmit(sensors: readonly SensorTuple[], options: TransmitOptions, noTimestamp: boolean): TransmitResult {
    const { deviceId, status } = options;
    // Options that hold at most deviceId, status, t and detail (the usual case) reuse one extras
    // object (the standardizer copies it and skips an undefined t): object rest costs a runtime call.
    let extras: StandardizeExtras;
    const plain = onlyTimeExtra(options);
    if (plain) {
      extras = this.#extras;
      extras.t = options.t;
    } else {
      const { deviceId: _id, status: _status, detail: _detail, ...rest } = options;
      extras = rest;
    }
    const aid = this.#assignedId;
    const p = this.protocol;
    extras.t = noTimestamp ? 0 : this.#guardTime(extras.t);
    const device = deviceId ?? this.deviceId;
    const state = status ?? 'ONLINE';
    const std = this.standardizer;
    const { fact, dropped, sensors: kept } = std.standardizeDetailed(device, state, sensors, extras);
    for (const d of dropped) if (d.error.code === 'ERR_STD_VALUE_RANGE') throw d.error;
    const compress = this.#compressOptions;
    compress.sensorId = std.sensorId;
    const body = `${this.#assignedIdText};${compressFact(fact, compress)}`;
    const strategy = p.getStrategy(aid, this.fusion.hasTemplate(aid));
    const frame = this.fusion.runEngine(body, strategy === 'FULL_PACKET' ? 'FULL' : 'DIFF');
    p.commitSuccess(aid);
    const cmd = frame[CMD_OFFSET]!;
    const timestampMs = readU48(frame, timestampOffset(frame));
    if (cmd === DATA_FULL) p.noteLocalPlaintextSent(aid, timestampMs);
    // The shortcut for the next reading, when this one was a plain list of sensors: nothing
    // dropped, only ids, states and unit labels the plan can compare, no extras but t.
    this.#plan =
      plain && !noTimestamp && dropped.length === 0 && std.sensorId && kept.length === sensors.length && typeof device === 'string' && typeof state === 'string'
        ? this.#makePlan(sensors, kept, device, state, cmd)
        : null;
    const result: TransmitResult = { frame, aid, strategy, kind: KIND[cmd]!, secure: SECURE_FOR[cmd] === true, authenticated: false, timestampMs, dropped };
    if (options.detail === true) {
      result.fact = fact;
      result.body = body;
    }
    return result;
  }

  #makePlan(sensors: readonly SensorTuple[], kept: readonly { units: readonly ResolvedUnit[] }[], device: string, status: string, cmd: number): TransmitPlan | null {
    const template = this.fusion.recentTemplate();
    const n = sensors.length;
    // Only a body that is the sensors alone (no geohash, url or msg) has 2 values per sensor.
    if (template === null || template.values === null || template.values.length !== 2 * n || KIND[cmd] === undefined) return null;
    const ids: unknown[] = [];
    const states: unknown[] = [];
    const units: string[] = [];
    const resolved: ResolvedUnit[] = [];
    const meta: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = sensors[i]!;
      const unit = s[3];
      if (typeof unit !== 'string' || kept[i]!.units.length !== 1) return null;
      ids.push(s[0]);
      states.push(s[1]);
      units.push(unit);
      resolved.push(kept[i]!.units[0]!);
      meta.push(template.values[2 * i]!);
    }
    return {
      aid: this.#assignedId,
      device,
      status,
      ids,
      states,
      units,
      resolved,
      meta,
      values: [...template.values],
      lastX: new Array<number>(n).fill(Number.NaN),
      lastText: new Array<string>(n).fill(''),
      template,
      libraryVersion: this.standardizer.library.version,
      precision: this.standardizer.precision,
      lastT: Number.NaN,
      lastTimestamp: 0,
    };
  }

  /** The planned reading's frame, or `null` when anything differs from the plan (the full path then runs). */
  #transmitPlanned(plan: TransmitPlan, sensors: readonly SensorTuple[], options: TransmitOptions): TransmitResult | null {
    const aid = this.#assignedId;
    const std = this.standardizer;
    if (
      plan.aid !== aid ||
      (options.deviceId ?? this.deviceId) !== plan.device ||
      (options.status ?? 'ONLINE') !== plan.status ||
      sensors.length !== plan.ids.length ||
      std.library.version !== plan.libraryVersion ||
      !std.sensorId ||
      !onlyTimeExtra(options)
    ) {
      return null;
    }
    const tIn = options.t;
    if (tIn !== undefined && !(typeof tIn === 'number' && Number.isFinite(tIn))) return null;
    const precision = plan.precision;
    const values = plan.values;
    try {
      for (let i = 0; i < sensors.length; i++) {
        const s = sensors[i];
        if (!Array.isArray(s) || s.length !== 4 || s[0] !== plan.ids[i] || s[1] !== plan.states[i] || s[3] !== plan.units[i]) return null;
        const x = s[2];
        values[2 * i] = plan.meta[i]!;
        // NaN never equals itself, so the first reading and a refused one are always converted.
        if (x === plan.lastX[i]) {
          values[2 * i + 1] = plan.lastText[i]!;
          continue;
        }
        if (typeof x !== 'number' || !Number.isFinite(x)) return null;
        const v = standardValue(x, plan.resolved[i]!, precision);
        if (!Number.isFinite(v)) return null;
        // The node's body codec writes values at its default precision.
        const text = encodeValue(v, DEFAULT_BODY_PRECISION, 'v');
        values[2 * i + 1] = text;
        plan.lastX[i] = x;
        plan.lastText[i] = text;
      }
    } catch {
      // A value the body codec refuses: the full path throws its exact error.
      return null;
    }
    // The time exactly as the full path takes it: the guard, then the standardizer's clock.
    const guarded = this.#guardTime(tIn);
    // The standardizer's clock: whole seconds, as the reference's int(time.time()).
    const t = guarded ?? Math.trunc(this.#clock() / 1000) * 1000;
    let timestamp: number;
    if (t === plan.lastT) timestamp = plan.lastTimestamp;
    else {
      try {
        timestamp = decodeTimestampToken(timestampToken(t));
      } catch {
        return null;
      }
      plan.lastT = t;
      plan.lastTimestamp = timestamp;
    }
    const p = this.protocol;
    if (p.getStrategy(aid, this.fusion.hasTemplate(aid)) !== 'DIFF_PACKET') return null;
    const frame = this.fusion.runEngineValues(plan.template, values, timestamp);
    if (frame === null) return null;
    p.commitSuccess(aid);
    const cmd = frame[CMD_OFFSET]!;
    return { frame, aid, strategy: 'DIFF_PACKET', kind: KIND[cmd]!, secure: SECURE_FOR[cmd] === true, authenticated: false, timestampMs: timestamp, dropped: NOTHING_DROPPED };
  }

  // --------------------------------------------------------------------------------- receive

  /**
   * Handles any inbound packet: a data frame (decoded through fusion, with the secure session's
   * key and anti-replay), a control packet, or the answer to one of this node's requests.
   * `peer` is where it came from (the id allocator keys devices by it). Never throws.
   */
  receive(packet: Uint8Array, peer?: PeerAddress | null): ReceiveResult {
    const watch = this.#watch(packet);
    return this.#result(packet, this.protocol.classifyAndDispatch(packet, peer), watch);
  }

  /**
   * `receive` for a server whose id allocator keeps its leases in a write-behind store: an
   * ID_REQUEST waits until the id it is given is durable, so no ID_ASSIGN leaves before a
   * kill -9 could lose it. Other packets are handled as `receive` does. Never rejects.
   */
  async receiveAsync(packet: Uint8Array, peer?: PeerAddress | null): Promise<ReceiveResult> {
    const watch = this.#watch(packet);
    return this.#result(packet, await this.protocol.classifyAndDispatchAsync(packet, peer), watch);
  }

  /** What to compare after dispatch for events, or `null` (no listener, or nothing to watch). */
  #watch(packet: Uint8Array): { aid: number; tid: number; sig: string | null; secure: boolean } | null {
    if (!(packet instanceof Uint8Array) || packet.length === 0) return null;
    const cmd = packet[0]!;
    const ev = this.#events;
    const learn = (cmd === DATA_FULL || cmd === DATA_FULL_SEC) && ev.has('template-learned');
    const secure = (isData(cmd) || cmd === SECURE_DICT_READY || cmd === SECURE_CHANNEL_ACK) && ev.has('session-secure');
    if (!learn && !secure) return null;
    const aid = isData(cmd) ? sourceAid(packet) : packet.length >= 5 ? readU32(packet, 1) : -1;
    if (aid < 0) return null;
    let tid = -1;
    let sig: string | null = null;
    if (learn) {
      const at = ROUTES_OFFSET + 4 * packet[ROUTE_COUNT_OFFSET]!;
      tid = at < packet.length ? packet[at]! : -1;
      sig = this.fusion.registry.peek(aid)?.templates.get(tid)?.sig ?? null;
    }
    return { aid, tid, sig, secure: secure ? this.#isSecure(aid, cmd) : true };
  }

  #isSecure(aid: number, cmd: number): boolean {
    const s = this.protocol.getSession(aid);
    if (s === null) return false;
    // Ours to it: encrypted once the dictionary is ready; its to us: once we decoded a secure frame.
    return isData(cmd) ? s.state === 'SECURE' && s.decryptConfirmed : s.dictReady;
  }

  #result(packet: Uint8Array, out: DispatchOutcome, watch: { aid: number; tid: number; sig: string | null; secure: boolean } | null): ReceiveResult {
    const cmd = out.cmd;
    let result: ReceiveResult;
    switch (out.type) {
      case 'DATA': {
        const r = out.result;
        if (!isFact(r)) {
          const cause = r.cause instanceof Error ? r.cause : new Error(String(r.error));
          result = { type: 'error', cmd, error: cause, response: out.response };
        } else {
          const meta = r.__packet_meta__;
          // Not timestamp_raw: seconds where the receiver stamped the frame (losing its ms), 0 on rx_only.
          const timestampMs = meta.timestampMs ?? 0;
          result = { type: 'data', cmd, aid: meta.source_aid ?? 0, fact: r, timestampMs, response: out.response };
        }
        break;
      }
      case 'CTRL':
        result = { type: 'control', cmd, result: out.result, response: out.response };
        this.#answer(packet, out.result);
        if (this.#authWaiters.size > 0 || out.result.status === 'AUTH_REJECT') this.#authChanged(out.result);
        break;
      case 'IGNORED':
        result = { type: 'ignored', cmd, reason: out.result.reason, code: out.result.code ?? null, response: null };
        break;
      case 'ERROR':
        result = { type: 'error', cmd, error: out.result.cause, response: null };
        break;
      default:
        result = { type: 'error', cmd, error: new UnknownCommandError(cmd, out.result.error), response: out.response };
    }
    if (watch !== null) this.#emitChanges(watch, cmd);
    return result;
  }

  /** An authenticated-mode answer (or a NACK that may be one): wake `authenticate()`, restart a lost session. */
  #authChanged(ctrl: CtrlResult): void {
    for (const wake of [...this.#authWaiters]) wake();
    if (ctrl.status === 'AUTH_REJECT' && ctrl.effect === 'session-lost') {
      this.#events.emit('auth', { aid: ctrl.assigned_id, state: 'lost', sid: null });
      this.#authenticateInBackground();
    }
  }

  /** Feeds an answer to the requester; an ID_ASSIGN answering `requestId` sets the node's id now, before the next transmit. */
  #answer(packet: Uint8Array, ctrl: CtrlResult): void {
    const cmd = packet[0];
    if (cmd !== ID_ASSIGN && cmd !== ID_POOL_RES && cmd !== PONG && cmd !== TIME_RESPONSE && cmd !== HANDSHAKE_NACK) return;
    if (!this.requester.handle(packet) || cmd !== ID_ASSIGN || ctrl.status !== 'RECEIVED') return;
    const previous = this.#assignedId;
    this.assignedId = ctrl.assigned_id;
    const t = ctrl.server_time;
    const serverTimeMs = t === null ? null : Number(t) * 1000;
    this.#events.emit('id-assigned', { aid: ctrl.assigned_id, previous, serverTimeMs });
  }

  #emitChanges(w: { aid: number; tid: number; sig: string | null; secure: boolean }, cmd: number): void {
    if (w.tid >= 0) {
      const sig = this.fusion.registry.peek(w.aid)?.templates.get(w.tid)?.sig ?? null;
      if (sig !== null && sig !== w.sig) this.#events.emit('template-learned', { aid: w.aid, tid: w.tid });
    }
    if (!w.secure && this.#isSecure(w.aid, cmd)) this.#events.emit('session-secure', { aid: w.aid, role: isData(cmd) ? 'receiver' : 'sender' });
  }

  // -------------------------------------------------------------------------------- requests

  /**
   * Asks the server for an id (ID_REQUEST → ID_ASSIGN) and takes it: `assignedId` is set as the
   * answer is received, and `id-assigned` emitted. Resends until answered; rejects with the
   * requester's typed errors (`RequestTimeoutError`, `RequestNackError`, the signal's reason) or
   * `NoSendError`.
   */
  async requestId(options: RequestOptions & { meta?: JsonInput | null } = {}): Promise<number> {
    const { meta, ...rest } = options;
    const a = await this.requester.requestId(meta ?? null, rest);
    return a.aid;
  }

  /**
   * Asks the server for its time (TIME_REQUEST → TIME_RESPONSE). The handshake then uses it for
   * readings stamped before the sync threshold; `time-synced` is emitted.
   */
  async syncTime(options: RequestOptions = {}): Promise<TimeSync> {
    const { serverTimeMs, rttMs } = await this.requester.requestTime(options);
    // The answer left the server about half a round trip ago.
    const sync: TimeSync = { serverTimeMs, offsetMs: serverTimeMs - (this.#clock() - rttMs / 2), rttMs };
    this.#events.emit('time-synced', sync);
    return sync;
  }

  /** PING → PONG: the round trip in ms. */
  ping(options: RequestOptions = {}): Promise<number> {
    return this.requester.ping(options);
  }

  /**
   * Loads what the stores given in the options hold (the handshake's sessions and leases, the
   * fusion registry's templates) before the node is used; resolves at once without stores.
   */
  async open(): Promise<void> {
    await Promise.all([this.protocol.open(), this.fusion.registry.preload()]);
  }

  /** Writes changed registries, sessions and leases to their stores and waits until they are as durable as the stores say. */
  async flush(): Promise<void> {
    await Promise.all([this.fusion.flush(), this.protocol.flush()]);
  }

  /**
   * Writes behind what changed (registries that aged, sessions, leases) and expires what is old:
   * the node owns no timer, so whoever drives it (a server, a transport loop) calls this about
   * once a second. `flush()` is the call that waits for the stores.
   */
  sweep(): void {
    this.fusion.registry.sweep();
    this.protocol.sweep();
  }

  /** Fails every request still waiting (with `reason`, default `RequestAbortedError`) and flushes the stores. */
  async close(reason?: unknown): Promise<void> {
    this.requester.cancelAll(reason);
    await this.flush();
  }
}

/** A packet whose command the node does not know (the reference answers it with a NACK, in `response`). */
export class UnknownCommandError extends Error {
  static {
    brandError(this);
  }
  override readonly name = 'UnknownCommandError';
  readonly code = 'ERR_NODE_UNKNOWN_CMD';
  constructor(
    readonly cmd: number,
    detail: string,
  ) {
    super(`command ${cmd} is not part of the protocol: ${detail}`);
  }
}
