/**
 * `OpenSynaptic`: one node of the protocol. Sending runs standardize → compress → fuse with the
 * handshake's FULL/DIFF strategy; receiving runs a frame through fusion, or through the whole
 * dispatch (control packets, secure-session replies) with `receiveViaProtocol`.
 *
 * The node owns no sockets: it returns the frame to send and the reply to a received packet, so
 * any transport (or a test) can carry them. Every clock, store and limit is injected.
 */
import { type FusionEngineOptions, type FusionFact, OSVisualFusionEngine } from '@opensynaptic/fusion';
import { DATA_FULL, type DeviceRole } from '@opensynaptic/cmd';
import { type DispatchOutcome, type HandshakeManagerOptions, OSHandshakeManager, type PeerAddress } from '@opensynaptic/handshake';
import { CMD_OFFSET, decodeFrame, parseRouteId, UNASSIGNED_AID } from '@opensynaptic/packet';
import { compressFact, type FactInput } from '@opensynaptic/packet/body';
import {
  type DroppedSensor,
  OpenSynapticStandardizer,
  type SensorTuple,
  type StandardizeExtras,
  type StandardizerOptions,
} from '@opensynaptic/standardize';
import { brandError } from '@opensynaptic/internal';

/**
 * The id that means "no id assigned yet" (as the reference reads it): `UNASSIGNED_AID` of
 * `@opensynaptic/packet`, under the name this package has always exported.
 */
export const UNASSIGNED_ID: typeof UNASSIGNED_AID = UNASSIGNED_AID;

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
  /** Clock in milliseconds; every layer reads this one. Default `Date.now`. */
  clock?: () => number;
  /** Standardizer options (units library, SensorId switch, limits), or an instance. */
  standardizer?: OpenSynapticStandardizer | Omit<StandardizerOptions, 'clockMs'>;
  /** Fusion options (registry cache and store, UTF-8 policy, precision). */
  fusion?: Omit<FusionEngineOptions, 'clock' | 'localId' | 'security' | 'skipTimestamp' | 'backend'>;
  /** Handshake options (allocator, session store, limits). */
  handshake?: Omit<HandshakeManagerOptions, 'clockMs' | 'role' | 'parser'>;
  /** Frame codec backend for this node: `'ts'` or `'native'`. Default: what `OPENSYNAPTIC_CORE` selects. */
  coreBackend?: 'ts' | 'native';
  /**
   * Largest inbound frame or control packet, in bytes (`Infinity`: no limit), for `receive` and
   * `receiveViaProtocol` alike: given to the fusion engine and the handshake manager (their own
   * `maxFrameSize` option, when set, wins). A transport passes its datagram or message limit
   * here. Default 65,507, the largest UDP payload. Body text has its own limit, the fusion
   * option `maxBodySize`.
   */
  maxFrameSize?: number;
}

/** What `transmit` returns. */
export interface TransmitResult {
  /** The frame to send. */
  frame: Uint8Array;
  /** The source AID written into it. */
  aid: number;
  /** The strategy the handshake chose (a new signature still goes out FULL under DIFF_PACKET). */
  strategy: 'FULL_PACKET' | 'DIFF_PACKET';
  /**
   * Sensors left out of the frame, each with its input index and typed error: the ones the
   * reference drops too (unknown unit, a value that is not a number, a malformed tuple).
   */
  dropped: readonly DroppedSensor[];
}

/** Options of one transmission: fact fields besides the sensors. */
export interface TransmitOptions extends StandardizeExtras {
  /** Device name for this fact (default: the node's `deviceId`). */
  deviceId?: string;
  /** Device state (default `"ONLINE"`). */
  status?: string;
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
    super(`device ${JSON.stringify(deviceId)} has no assigned id yet; request one (ID_REQUEST) before transmitting`);
  }
}

/** True when `options` has no own enumerable key but deviceId, status and t. */
function onlyTimeExtra(options: TransmitOptions): boolean {
  for (const k in options) {
    if (k !== 'deviceId' && k !== 'status' && k !== 't' && Object.hasOwn(options, k)) return false;
  }
  return true;
}

export class OpenSynaptic {
  readonly standardizer: OpenSynapticStandardizer;
  readonly fusion: OSVisualFusionEngine;
  /** The handshake manager: strategy, secure sessions, control packets. */
  readonly protocol: OSHandshakeManager;
  deviceId: string;
  readonly #clock: () => number;
  #assignedId: number;
  /** The id as written at the start of a FULL body: the digit text given, else the number. */
  #assignedIdText = '0';
  /** Reused by every transmit (see `#transmit`). */
  readonly #extras: StandardizeExtras = { t: undefined };
  readonly #compressOptions: { nowMs: () => number; sensorId: boolean } = { nowMs: () => this.#clock(), sensorId: true };

  constructor(options: OpenSynapticOptions = {}) {
    const clock = options.clock ?? Date.now;
    this.#clock = clock;
    this.deviceId = options.deviceId ?? 'UNKNOWN';
    this.standardizer =
      options.standardizer instanceof OpenSynapticStandardizer ? options.standardizer : new OpenSynapticStandardizer({ ...options.standardizer, clockMs: clock });
    const role = options.role ?? 'duplex';
    // One limit for both receive paths; each layer checks it once on arrival.
    const limit = options.maxFrameSize === undefined ? {} : { maxFrameSize: options.maxFrameSize };
    this.protocol = new OSHandshakeManager({ ...limit, ...options.handshake, clockMs: clock, role });
    this.fusion = new OSVisualFusionEngine({
      ...limit,
      ...options.fusion,
      clock,
      security: this.protocol,
      skipTimestamp: role === 'rx_only',
      ...(options.coreBackend ? { backend: options.coreBackend } : {}),
    });
    this.protocol.parser = this.fusion;
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
  }

  /** The id as the FULL body carries it (`"0042"` when given so; the header carries `assignedId`). */
  get assignedIdText(): string {
    return this.#assignedIdText;
  }

  /** True until an id other than 0 and 4294967295 is assigned. */
  get idMissing(): boolean {
    return this.#assignedId === 0 || this.#assignedId === UNASSIGNED_ID;
  }

  /**
   * Standardizes `sensors`, compresses the fact and fuses it into the next frame (FULL, DIFF or
   * HEART, secure once the session allows it). Throws `IdNotAssignedError` without an id, and
   * the standardizer's, body codec's or fusion engine's typed errors for input they refuse.
   *
   * A reading that is NaN or infinite (given, as `"nan"`/`"inf"` text, or after conversion) throws
   * its `InvalidValueError` (`ERR_STD_VALUE_RANGE`, naming the sensor's index and id) and sends
   * nothing: the reference would send it as 0, a silently wrong value. Sensors the reference drops
   * as well are left out and listed in the result's `dropped`.
   */
  transmit(sensors: readonly SensorTuple[], options: TransmitOptions = {}): TransmitResult {
    return this.#transmit(sensors, options, false);
  }

  /** `transmit` for a device without a clock: timestamp 0, which the receiver stamps. */
  transmitNoTimestamp(sensors: readonly SensorTuple[], options: TransmitOptions = {}): TransmitResult {
    return this.#transmit(sensors, options, true);
  }

  #transmit(sensors: readonly SensorTuple[], options: TransmitOptions, noTimestamp: boolean): TransmitResult {
    const { deviceId, status } = options;
    // Options that hold at most deviceId, status and t (the usual case) reuse one extras object
    // (the standardizer copies it and skips an undefined t): object rest costs a runtime call.
    let extras: StandardizeExtras;
    if (onlyTimeExtra(options)) {
      extras = this.#extras;
      extras.t = options.t;
    } else {
      const { deviceId: _id, status: _status, ...rest } = options;
      extras = rest;
    }
    if (this.idMissing) throw new IdNotAssignedError(deviceId ?? this.deviceId);
    const aid = this.#assignedId;
    const p = this.protocol;
    if (noTimestamp) extras.t = 0;
    else {
      // Time guard: a timestamp that cannot be real (before the sync threshold) is replaced by
      // the server's time when known, else by the clock, unless the session is already secure.
      // t is ms; the reference compares its seconds with the threshold, so ms compare with 1000 times it.
      const t = typeof extras.t === 'number' ? extras.t : this.#clock();
      if (t < p.timeSyncThreshold * 1000 && !p.getSession(aid)?.dictReady) {
        extras.t = p.lastServerTimeMs > 0 ? p.lastServerTimeMs : Math.trunc(this.#clock() / 1000) * 1000;
      }
    }
    const { fact, dropped } = this.standardizer.standardizeDetailed(deviceId ?? this.deviceId, status ?? 'ONLINE', sensors, extras);
    for (const d of dropped) if (d.error.code === 'ERR_STD_VALUE_RANGE') throw d.error;
    const compress = this.#compressOptions;
    compress.sensorId = this.standardizer.sensorId;
    const body = compressFact(fact as unknown as FactInput, compress);
    const strategy = p.getStrategy(aid, this.fusion.hasTemplate(aid));
    const frame = this.fusion.runEngine(`${this.#assignedIdText};${body}`, strategy === 'FULL_PACKET' ? 'FULL' : 'DIFF');
    p.commitSuccess(aid);
    if (frame[CMD_OFFSET] === DATA_FULL) p.noteLocalPlaintextSent(aid, decodeFrame(frame).timestamp);
    return { frame, aid, strategy, dropped };
  }

  /**
   * Decodes a data frame to its fact (fusion only, no handshake); throws typed errors, a
   * `FrameTooLargeError` first for a frame above `maxFrameSize`.
   */
  receive(frame: Uint8Array): FusionFact {
    return this.fusion.decompress(frame);
  }

  /**
   * Classifies and handles any inbound packet; `response` is what to send back. Never throws: a
   * packet above `maxFrameSize` comes back as `ERROR` with its `FrameTooLargeError` as `cause`.
   */
  receiveViaProtocol(packet: Uint8Array, addr?: PeerAddress | null): DispatchOutcome {
    return this.protocol.classifyAndDispatch(packet, addr);
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
}
