/**
 * `OSHandshakeManager`: classifies every inbound packet, answers control packets, and keeps the
 * per-AID state of a node: secure sessions (established and pending, see sessions.ts), the
 * FULL→DIFF strategy counters, anti-replay watermarks and the last server time.
 *
 * Unsolicited packets create no state: SECURE_DICT_READY is taken only as the answer to this
 * node's own plaintext FULL, SECURE_CHANNEL_ACK only for a sender session.
 *
 * `classifyAndDispatch` never throws. Its `result` records use the reference's field names
 * (`assigned_id`, `server_time`, `timestamp_raw`...) so logs and golden vectors compare directly.
 */
import {
  type DeviceRole,
  HANDSHAKE_ACK,
  HANDSHAKE_NACK,
  ID_ASSIGN,
  ID_POOL_REQ,
  ID_POOL_RES,
  ID_REQUEST,
  isData,
  PING,
  PONG,
  AUTH_HELLO,
  AUTH_REJECT,
  AUTH_WELCOME,
  isAuthData,
  roleAccepts,
  SECURE_CHANNEL_ACK,
  SECURE_DICT_READY,
  TIME_REQUEST,
  TIME_RESPONSE,
} from '@opensynaptic/cmd';
import { deriveSessionKey } from '@opensynaptic/crc';
import { checkFrameSize, DEFAULT_MAX_FRAME_SIZE, type KeyLookup, sizeLimit } from '@opensynaptic/packet';
import type { Store } from '@opensynaptic/store';
import { AuthClient, type AuthClientOptions, AuthServer, type AuthServerOptions } from './auth.js';
import { AuthError, HandshakeFieldError, MetaTooLargeError, StoreError, TruncatedPacketError } from './errors.js';
import { refuseRenamed } from './options.js';
import type { DataFrameParser, DataParseResult } from './frame-parser.js';
import { toHex } from './hex.js';
import { type AllocateFailure, deviceKey, type IdAllocator, type PeerAddress } from './id-allocator.js';
import type { JsonInput } from './json.js';
import {
  buildAck,
  buildIdAssign,
  buildIdPoolRequest,
  buildIdPoolResponse,
  buildIdRequest,
  buildNack,
  buildPing,
  buildPong,
  buildSecureChannelAck,
  buildSecureDictReady,
  buildTimeRequest,
  buildTimeResponse,
  DEFAULT_MAX_META_BYTES,
  DEFAULT_POOL_COUNT,
  MAX_POOL_COUNT,
  parseMeta,
  readU16,
  readU32,
  readU64,
  SeqCounter,
  type U64,
} from './packets.js';
import { LruMap, MAX_SECURE_TAGS, type SecureSession, type SessionKinds, SessionTable } from './sessions.js';
import { utf8DecodeIgnore } from './utf8.js';

/**
 * Wire timestamps at or below this are "no real clock" (1e6: seconds or ms since 1970 never are).
 * Compared, as by the reference, with the raw wire values: a frame's or SECURE_DICT_READY's
 * timestamp (ms) and a server time of ID_ASSIGN / TIME_RESPONSE (seconds).
 */
export const DEFAULT_TIME_SYNC_THRESHOLD = 1e6;
/** Sessions and strategy counters are forgotten after this long without traffic, in ms (a day). */
export const DEFAULT_SESSION_EXPIRE_MS = 86_400_000;
/** Sessions are written at most this often, in ms. */
export const DEFAULT_SESSION_SAVE_INTERVAL_MS = 5000;
/** Most established secure sessions kept at once; when full, new ones are refused, none evicted. */
export const DEFAULT_MAX_SESSIONS = 65536;
/**
 * Most pending sessions (opened by a plain FULL, no secure frame decoded yet). Anyone can open
 * one, so this budget is small and apart from the established sessions; when full, a plain FULL
 * of a new AID is still decoded but not answered SECURE_DICT_READY (that device stays plaintext).
 */
export const DEFAULT_MAX_PENDING_SESSIONS = 1024;
/** Most AIDs tracked for strategy counters and plain-frame anti-replay timestamps (LRU). */
export const DEFAULT_MAX_TRACKED_AIDS = 65536;
/** FULL frames sent before DIFF (the reference's threshold). */
export const FULL_COMMITS_BEFORE_DIFF = 3;

/**
 * What to do with a data frame whose timestamp is not newer than the last one of its AID.
 * - `off`: accept everything (the reference's behaviour).
 * - `reject-old`: drop OUT_OF_ORDER frames but accept REPLAY (equal) ones, since the
 *   standardizer truncates t to whole seconds and a sender transmitting faster repeats a ts.
 * - `strict`: drop REPLAY and OUT_OF_ORDER.
 * Dropped frames come back as `IGNORED` (with `code`) and change no state. Two settings use it:
 * `secureAntiReplay` for secure frames (default `reject-old`, state kept in the session) and
 * `antiReplay` for plain frames (default `off`, state in an LRU table of `maxTrackedAids`).
 */
export type AntiReplayPolicy = 'off' | 'reject-old' | 'strict';

/**
 * Why a packet was `IGNORED` (beside the role filter, which carries only a reason):
 * - `ERR_HANDSHAKE_REPLAY` / `ERR_HANDSHAKE_OUT_OF_ORDER`: anti-replay dropped a data frame whose
 *   timestamp equals / is older than the last accepted one of its AID.
 * - `ERR_HANDSHAKE_UNSOLICITED`: a SECURE_DICT_READY this node did not ask for (no plaintext FULL
 *   of its own pending for that AID); it changes no session and creates none.
 * - `ERR_AUTH_REPLAY`: an authenticated frame whose seq its session's replay window has seen, or
 *   that is older than the window.
 */
export type IgnoreCode = 'ERR_HANDSHAKE_REPLAY' | 'ERR_HANDSHAKE_OUT_OF_ORDER' | 'ERR_HANDSHAKE_UNSOLICITED' | 'ERR_AUTH_REPLAY';

export type TimestampCheck = 'ACCEPT' | 'REPLAY' | 'OUT_OF_ORDER';

// The authenticated-mode command bytes (0xC1..0xCA), checked with one range test on the hot path.
const AUTH_FIRST_CMD = 0xc1;
const AUTH_LAST_CMD = 0xca;
/** A legacy server's NACK of an AUTH_HELLO (the reference's "Unknown CMD 0xc8"). */
const LEGACY_HELLO_NACK = /^Unknown CMD 0x0*c8$/i;

export type Strategy = 'FULL_PACKET' | 'DIFF_PACKET';

export interface HandshakeManagerOptions {
  /** `duplex` (default), `tx_only` or `rx_only`. */
  role?: DeviceRole;
  /**
   * The clock, in ms since the epoch (default `Date.now`). Replaces `clock` (seconds), which is
   * refused (`HandshakeFieldError`) so that a seconds clock is never read as ms. Converted to
   * seconds only where the wire carries seconds (ID_ASSIGN and TIME_RESPONSE server times, the
   * stamp of a frame without a timestamp).
   */
  clockMs?: () => number;
  /** Id allocator for servers; without one, ID requests are answered NACK `NO_ALLOCATOR`. */
  allocator?: IdAllocator | null;
  /** Data-frame parser; without one, data frames report "No parser attached". */
  parser?: DataFrameParser | null;
  /**
   * Default 1e6: wire timestamps at or below it are "no real clock" (see
   * `DEFAULT_TIME_SYNC_THRESHOLD`; a raw wire value, as the reference compares it).
   */
  timeSyncThreshold?: number;
  /** JSON meta above this many bytes is refused with NACK `META_TOO_LARGE` (default 4096). */
  maxMetaBytes?: number;
  /**
   * Largest inbound packet (control packet or data frame), in bytes (`Infinity`: no limit). A
   * longer one comes back from `classifyAndDispatch` as `ERROR` with a `FrameTooLargeError`
   * (`ERR_FRAME_TOO_LARGE`) as `cause`, before anything reads it. Default 65,507 (the largest
   * UDP payload, `DEFAULT_MAX_FRAME_SIZE` of `@opensynaptic/packet`).
   */
  maxFrameSize?: number;
  /** Sessions and strategy counters unused this long are forgotten, in ms (default 86,400,000: a day). Replaces `sessionExpireSeconds`. */
  sessionExpireMs?: number;
  /** Established sessions (own ones and receiver ones that decoded a secure frame); default 65536, refused beyond. */
  maxSessions?: number;
  /** Pending receiver sessions (plain FULL seen, no secure frame yet); default 1024, refused beyond. */
  maxPendingSessions?: number;
  /** Strategy counters and plain-frame anti-replay timestamps; default 65536, least recently used forgotten. */
  maxTrackedAids?: number;
  /**
   * Where sessions persist: a store of the asynchronous contract (`@opensynaptic/store`) that
   * keeps the `sessions` kind, one record per session; `open()` must be awaited before use.
   * Writes are write-behind (throttled by `sessionSaveIntervalMs`, flushed in the background);
   * `flush()` resolving means durable as the store says. Default none: sessions live in memory.
   */
  sessionStore?: Store<SessionKinds>;
  /** Sessions are written at most this often, in ms (default 5000). Replaces `sessionSaveIntervalSeconds`. */
  sessionSaveIntervalMs?: number;
  /**
   * Anti-replay for plain frames and frames without a session, default `off` as the reference
   * (plain frames carry no key, and a sender that restarted with its clock behind would be cut off).
   */
  antiReplay?: AntiReplayPolicy;
  /**
   * Anti-replay for secure frames, checked against the watermark kept in their session (it lives
   * and persists with the key; no other traffic can evict it); `reject-old` here also drops an exact
   * copy of a frame already accepted with the latest timestamp. Default `reject-old`, or `strict`
   * when `antiReplay` is `strict`. `off` is the reference's behaviour: choose it only to match the
   * reference exactly, e.g. when replaying recorded traffic; `strict` when every sender transmits
   * at most once per timestamp (the standardizer's clock is truncated to whole seconds).
   */
  secureAntiReplay?: AntiReplayPolicy;
  /** Last sequence number handed out (default 0: the first packet has seq 1). */
  seq?: number;
  /**
   * Authenticated mode (this project's extension, see `auth.ts`): `server` answers AUTH_HELLO and
   * opens authenticated frames (its secrets and sessions in `server.store`, kinds `keys` and
   * `auth`; `server.require` refuses legacy data frames); `client` is this node's own session
   * with its server (`OpenSynaptic.authenticate`). Without `server`, the authenticated commands
   * get the reference's "Unknown CMD" NACK, which tells a device this is a legacy server.
   */
  auth?: { server?: AuthServerOptions | AuthServer | undefined; client?: AuthClientOptions | AuthClient | undefined } | undefined;
}

export type CtrlResult =
  | { status: 'ASSIGNED'; assigned_id: number; addr: PeerAddress | null }
  | { status: 'REJECTED'; reason: string }
  | { status: 'RECEIVED'; assigned_id: number; seq: number; server_time: U64 | null }
  | { status: 'INVALID'; raw: Uint8Array; seq: number }
  | { status: 'POOL_ASSIGNED'; pool: number[]; count: number }
  | { status: 'POOL_RECEIVED'; pool: number[] }
  | { status: 'EMPTY_POOL' }
  | { status: 'ACK_RECEIVED'; seq: number }
  | { status: 'NACK_RECEIVED'; seq: number; reason: string }
  | { status: 'PING'; seq: number }
  | { status: 'PONG'; seq: number }
  | { status: 'TIME_REQUEST'; seq: number; server_time: number }
  | { status: 'TIME_RESPONSE'; seq: number; server_time: U64 }
  | { status: 'DICT_READY'; assigned_id: number; timestamp_raw: U64 | null }
  | { status: 'SECURE_CHANNEL_ACK'; assigned_id: number }
  | { status: 'AUTH_HELLO'; assigned_id: number; sid: number | null }
  | { status: 'AUTH_WELCOME'; assigned_id: number; established: boolean }
  | { status: 'AUTH_REJECT'; assigned_id: number; reason: string; effect: 'session-lost' | 'refused' | 'ignored' };

/** `response` is the packet to send back to the sender, or `null`. */
export type DispatchOutcome =
  | { type: 'CTRL'; cmd: number; result: CtrlResult; response: Uint8Array | null }
  | { type: 'DATA'; cmd: number; result: DataParseResult; response: Uint8Array | null }
  | { type: 'IGNORED'; cmd: number; result: { reason: string; code?: IgnoreCode }; response: null }
  /** `error` is the reference's text; `cause` the typed error (a store's or clock's own error passes through as thrown). */
  | { type: 'ERROR'; cmd: number; result: { error: string; cause: Error }; response: null }
  | { type: 'UNKNOWN'; cmd: number; result: { error: string }; response: Uint8Array };

export type DispatchType = DispatchOutcome['type'];

/** NACK reasons on the wire. The last two are ours (the reference has no such limits). */
export const NACK_REASONS = Object.freeze({
  INVALID_ID: 'INVALID_ID',
  NO_ALLOCATOR: 'NO_ALLOCATOR',
  POOL_ALLOC_FAILED: 'POOL_ALLOC_FAILED',
  ID_POOL_EXHAUSTED: 'ID_POOL_EXHAUSTED',
  META_TOO_LARGE: 'META_TOO_LARGE',
  ID_RATE_LIMITED: 'ID_RATE_LIMITED',
} as const);

/** A read-only copy of a session, for inspection. */
export type SessionView = Readonly<SecureSession>;

interface StrategyStatus {
  count: number;
  lastSeen: number;
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}


function seqOf(p: Uint8Array): number {
  return p.length >= 3 ? readU16(p, 1) : 0;
}

function policy(name: string, v: AntiReplayPolicy): AntiReplayPolicy {
  if (v !== 'off' && v !== 'reject-old' && v !== 'strict') throw new HandshakeFieldError(name, `${String(v)} is not off, reject-old or strict`);
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new HandshakeFieldError(name, `${String(v)} is not a finite number >= 0`);
  return v;
}

function positive(name: string, v: number): number {
  if (!(typeof v === 'number' && v > 0)) throw new HandshakeFieldError(name, `${String(v)} is not a positive number`);
  return v;
}

/** Options of earlier versions whose unit changed: given, they are refused rather than misread. */
const RENAMED_MANAGER_OPTIONS = {
  clock: 'clockMs (a clock in ms; the old one returned seconds)',
  sessionExpireSeconds: 'sessionExpireMs (ms)',
  sessionSaveIntervalSeconds: 'sessionSaveIntervalMs (ms)',
} as const;

export class OSHandshakeManager {
  readonly role: DeviceRole;
  /** The sequence counter of the packets this node originates. */
  readonly seq: SeqCounter;
  readonly allocator: IdAllocator | null;
  parser: DataFrameParser | null;
  readonly timeSyncThreshold: number;
  readonly maxMetaBytes: number;
  /** Largest inbound packet in bytes (see `HandshakeManagerOptions.maxFrameSize`). */
  readonly maxFrameSize: number;
  /** See `HandshakeManagerOptions.sessionExpireMs`. */
  readonly sessionExpireMs: number;
  readonly antiReplay: AntiReplayPolicy;
  readonly secureAntiReplay: AntiReplayPolicy;
  /**
   * The last server time learned from ID_ASSIGN or TIME_RESPONSE, in ms since the epoch (0: none
   * yet; the wire carries whole seconds). Only times above `timeSyncThreshold` seconds are learned.
   */
  lastServerTimeMs = 0;
  readonly #clock: () => number;
  readonly #sessions: SessionTable;
  #opening: Promise<void> | null = null;
  /** True once no store needs loading (checked on every packet and transmit, so a plain field). */
  #ready: boolean;
  readonly #strategy: LruMap<number, StrategyStatus>;
  readonly #timestamps: LruMap<string, U64>;
  readonly #cleanupInterval: number;
  #lastCleanup: number;
  /** Session keys by AID, for parsers decoding secure frames. */
  readonly keys: KeyLookup;
  /** The server half of the authenticated mode, or `null` (see `HandshakeManagerOptions.auth`). */
  readonly authServer: AuthServer | null;
  /** This node's own authenticated session with its server, or `null`. */
  readonly authClient: AuthClient | null;

  constructor(options: HandshakeManagerOptions = {}) {
    this.role = options.role ?? 'duplex';
    if (this.role !== 'duplex' && this.role !== 'tx_only' && this.role !== 'rx_only') {
      throw new HandshakeFieldError('role', `${String(this.role)} is not duplex, tx_only or rx_only`);
    }
    refuseRenamed(options, RENAMED_MANAGER_OPTIONS);
    if (options.clockMs !== undefined && typeof options.clockMs !== 'function') throw new HandshakeFieldError('clockMs', 'expected a function returning ms');
    this.#clock = options.clockMs ?? Date.now;
    this.seq = new SeqCounter(options.seq ?? 0);
    this.allocator = options.allocator ?? null;
    this.parser = options.parser ?? null;
    this.timeSyncThreshold = options.timeSyncThreshold ?? DEFAULT_TIME_SYNC_THRESHOLD;
    this.maxMetaBytes = options.maxMetaBytes ?? DEFAULT_MAX_META_BYTES;
    this.maxFrameSize = sizeLimit('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE);
    this.sessionExpireMs = positive('sessionExpireMs', options.sessionExpireMs ?? DEFAULT_SESSION_EXPIRE_MS);
    this.antiReplay = policy('antiReplay', options.antiReplay ?? 'off');
    this.secureAntiReplay = policy('secureAntiReplay', options.secureAntiReplay ?? (this.antiReplay === 'strict' ? 'strict' : 'reject-old'));
    const sessionStore = options.sessionStore;
    if (sessionStore !== undefined && (typeof sessionStore?.getMany !== 'function' || typeof sessionStore.write !== 'function' || typeof sessionStore.flush !== 'function')) {
      throw new HandshakeFieldError('sessionStore', 'expected a store of the @opensynaptic/store contract (keys, getMany, write, flush)');
    }
    this.#sessions = new SessionTable(
      positive('maxSessions', options.maxSessions ?? DEFAULT_MAX_SESSIONS),
      positive('maxPendingSessions', options.maxPendingSessions ?? DEFAULT_MAX_PENDING_SESSIONS),
      sessionStore,
      nonNegative('sessionSaveIntervalMs', options.sessionSaveIntervalMs ?? DEFAULT_SESSION_SAVE_INTERVAL_MS),
    );
    const auth = options.auth;
    this.authServer = auth?.server === undefined ? null : auth.server instanceof AuthServer ? auth.server : new AuthServer(auth.server);
    this.authClient = auth?.client === undefined ? null : auth.client instanceof AuthClient ? auth.client : new AuthClient(auth.client);
    this.#ready = sessionStore === undefined && (this.allocator?.opened ?? true) && (this.authServer?.opened ?? true);
    const maxAids = positive('maxTrackedAids', options.maxTrackedAids ?? DEFAULT_MAX_TRACKED_AIDS);
    this.#strategy = new LruMap(maxAids);
    this.#timestamps = new LruMap(maxAids);
    this.#cleanupInterval = Math.min(this.sessionExpireMs, 300_000);
    this.#lastCleanup = this.#clock();
    const sessions = this.#sessions;
    const clock = this.#clock;
    this.keys = {
      get: (aid: number) => {
        if (!this.#ready) this.#requireOpen();
        return sessions.get(aid, clock())?.key ?? null;
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Outbound packets that take the next sequence number

  /** ID_REQUEST with the next seq. Throws `MetaTooLargeError` above `maxMetaBytes`. */
  buildIdRequest(meta?: JsonInput | null): Uint8Array {
    return buildIdRequest(this.seq.next(), meta, { maxMetaBytes: this.maxMetaBytes });
  }

  /** ID_POOL_REQ with the next seq (count default 10, written as given: 0..65535; a server grants at most 256). */
  buildIdPoolRequest(count: number = DEFAULT_POOL_COUNT, meta?: JsonInput | null): Uint8Array {
    return buildIdPoolRequest(this.seq.next(), count, meta, { maxMetaBytes: this.maxMetaBytes });
  }

  buildPing(): Uint8Array {
    return buildPing(this.seq.next());
  }

  buildTimeRequest(): Uint8Array {
    return buildTimeRequest(this.seq.next());
  }

  // -------------------------------------------------------------------------------------------
  // Dispatch

  /**
   * Classifies one inbound packet and handles it. `addr` identifies the sender (it takes part in
   * the identity of devices that send an ID request without meta). Never throws: malformed input
   * comes back as NACK, IGNORED or ERROR like the reference answers it.
   */
  classifyAndDispatch(packet: Uint8Array, addr?: PeerAddress | null): DispatchOutcome {
    if (!(packet instanceof Uint8Array)) {
      return { type: 'ERROR', cmd: 0, result: { error: 'Packet is not a Uint8Array', cause: new HandshakeFieldError('packet', `expected a Uint8Array, got ${typeof packet}`) }, response: null };
    }
    if (packet.length === 0) return { type: 'ERROR', cmd: 0, result: { error: 'Empty packet', cause: new TruncatedPacketError('packet', 0, 1) }, response: null };
    const cmd = packet[0]!;
    try {
      checkFrameSize(packet, this.maxFrameSize);
      if (!this.#ready) this.#requireOpen();
      const now = this.#clock();
      this.#maybeCleanup(now);
      if (cmd >= AUTH_FIRST_CMD && cmd <= AUTH_LAST_CMD) {
        const out = this.#onAuth(packet, cmd, now);
        if (out !== null) return out;
      }
      if (!roleAccepts(this.role, cmd)) {
        const reason = isData(cmd) ? `${this.role}: inbound DATA ignored` : `${this.role}: CTRL 0x${hex2(cmd)} ignored`;
        return { type: 'IGNORED', cmd, result: { reason }, response: null };
      }
      if (isData(cmd)) {
        if (this.authServer?.require === true) return this.#legacyRefused(packet, cmd);
        return this.#onData(packet, cmd, now);
      }
      return this.#onCtrl(packet, cmd, now, addr ?? null);
    } catch (e) {
      const cause = asError(e);
      return { type: 'ERROR', cmd, result: { error: cause.message, cause }, response: null };
    }
  }

  #onCtrl(p: Uint8Array, cmd: number, now: number, addr: PeerAddress | null): DispatchOutcome {
    const ctrl = (result: CtrlResult, response: Uint8Array | null = null): DispatchOutcome => ({ type: 'CTRL', cmd, result, response });
    switch (cmd) {
      case ID_REQUEST:
        return ctrl(...this.#onIdRequest(p, now, addr));
      case ID_ASSIGN: {
        const seq = seqOf(p);
        const aid = p.length >= 7 ? readU32(p, 3) : 0;
        if (aid === 0) return ctrl({ status: 'INVALID', raw: p.slice(), seq }, buildNack(seq, NACK_REASONS.INVALID_ID));
        const serverTime = p.length >= 15 ? readU64(p, 7) : null;
        this.#learnServerTime(serverTime);
        return ctrl({ status: 'RECEIVED', assigned_id: aid, seq, server_time: serverTime }, buildAck(seq));
      }
      case ID_POOL_REQ:
        return ctrl(...this.#onPoolRequest(p, now, addr));
      case ID_POOL_RES: {
        const seq = seqOf(p);
        const declared = p.length >= 5 ? readU16(p, 3) : 0;
        // A truncated list keeps only its complete ids.
        const n = Math.min(declared, Math.floor(Math.max(0, p.length - 5) / 4));
        if (n === 0) return ctrl({ status: 'EMPTY_POOL' });
        const pool = new Array<number>(n);
        for (let i = 0; i < n; i++) pool[i] = readU32(p, 5 + 4 * i);
        return ctrl({ status: 'POOL_RECEIVED', pool }, buildAck(seq));
      }
      case HANDSHAKE_ACK:
        return ctrl({ status: 'ACK_RECEIVED', seq: seqOf(p) });
      case HANDSHAKE_NACK: {
        const reason = utf8DecodeIgnore(p, 3);
        // A legacy server's answer to our AUTH_HELLO: it does not know the command.
        if (this.authClient !== null && LEGACY_HELLO_NACK.test(reason)) this.authClient.onLegacyServer();
        return ctrl({ status: 'NACK_RECEIVED', seq: seqOf(p), reason });
      }
      case PING: {
        const seq = seqOf(p);
        return ctrl({ status: 'PING', seq }, buildPong(seq));
      }
      case PONG:
        return ctrl({ status: 'PONG', seq: seqOf(p) });
      case TIME_REQUEST: {
        const seq = seqOf(p);
        // The wire (and the reference's record) carries whole seconds.
        const t = Math.floor(now / 1000);
        return ctrl({ status: 'TIME_REQUEST', seq, server_time: t }, buildTimeResponse(seq, t));
      }
      case TIME_RESPONSE: {
        const serverTime = p.length >= 11 ? readU64(p, 3) : 0;
        this.#learnServerTime(serverTime);
        return ctrl({ status: 'TIME_RESPONSE', seq: seqOf(p), server_time: serverTime });
      }
      case SECURE_DICT_READY: {
        if (p.length < 5) return { type: 'ERROR', cmd, result: { error: 'Truncated SECURE_DICT_READY', cause: new TruncatedPacketError('SECURE_DICT_READY', p.length, 5) }, response: null };
        const aid = readU32(p, 1);
        const ts = p.length >= 13 ? readU64(p, 5) : null;
        const unsolicited = this.#onDictReady(aid, now);
        if (unsolicited) return { type: 'IGNORED', cmd, result: { reason: unsolicited, code: 'ERR_HANDSHAKE_UNSOLICITED' }, response: null };
        return ctrl({ status: 'DICT_READY', assigned_id: aid, timestamp_raw: ts });
      }
      case SECURE_CHANNEL_ACK: {
        if (p.length < 5) return { type: 'ERROR', cmd, result: { error: 'Truncated SECURE_CHANNEL_ACK', cause: new TruncatedPacketError('SECURE_CHANNEL_ACK', p.length, 5) }, response: null };
        const aid = readU32(p, 1);
        const s = this.#sessions.peek(aid);
        // Only a sender session (its own plaintext FULL, key agreed) can be confirmed; an ACK for
        // anything else, a receiver's pending session included, changes and creates nothing.
        if (s?.pendingKey && s.dictReady && s.key && !(s.state === 'SECURE' && s.decryptConfirmed)) {
          s.lastSeenMs = now;
          s.state = 'SECURE';
          s.decryptConfirmed = true;
          this.#sessions.changed(aid, now);
        }
        return ctrl({ status: 'SECURE_CHANNEL_ACK', assigned_id: aid });
      }
      default: {
        const name = `0x${hex2(cmd)}`;
        return { type: 'UNKNOWN', cmd, result: { error: `Unknown command ${name}` }, response: buildNack(0, `Unknown CMD ${name}`) };
      }
    }
  }

  #readMeta(p: Uint8Array, start: number): { ok: true; meta: unknown } | { ok: false } {
    try {
      return { ok: true, meta: parseMeta(p, start, p.length, { maxMetaBytes: this.maxMetaBytes }).value };
    } catch (e) {
      if (e instanceof MetaTooLargeError) return { ok: false };
      throw e;
    }
  }

  #onIdRequest(p: Uint8Array, now: number, addr: PeerAddress | null): [CtrlResult, Uint8Array] {
    const seq = seqOf(p);
    if (!this.allocator) return [{ status: 'REJECTED', reason: 'No allocator' }, buildNack(seq, NACK_REASONS.NO_ALLOCATOR)];
    const m = this.#readMeta(p, 3);
    if (!m.ok) return [{ status: 'REJECTED', reason: 'Meta too large' }, buildNack(seq, NACK_REASONS.META_TOO_LARGE)];
    const r = this.allocator.allocate(deviceKey(m.meta, addr, now));
    if (!r.ok) return rejectFor(r.reason, seq, 'ID pool exhausted', NACK_REASONS.ID_POOL_EXHAUSTED);
    return [{ status: 'ASSIGNED', assigned_id: r.id, addr }, buildIdAssign(seq, r.id, Math.floor(now / 1000))];
  }

  #onPoolRequest(p: Uint8Array, now: number, addr: PeerAddress | null): [CtrlResult, Uint8Array] {
    const seq = seqOf(p);
    const failed = (): [CtrlResult, Uint8Array] => [{ status: 'REJECTED', reason: 'Cannot allocate pool' }, buildNack(seq, NACK_REASONS.POOL_ALLOC_FAILED)];
    if (!this.allocator) return failed();
    const count = p.length >= 5 ? Math.min(readU16(p, 3), MAX_POOL_COUNT) : 0;
    if (count === 0) return failed();
    const m = this.#readMeta(p, 5);
    if (!m.ok) return [{ status: 'REJECTED', reason: 'Meta too large' }, buildNack(seq, NACK_REASONS.META_TOO_LARGE)];
    const r = this.allocator.allocatePool(deviceKey(m.meta, addr, now), count);
    if (r.ids.length === 0) return rejectFor(r.shortBy ?? 'EXHAUSTED', seq, 'Cannot allocate pool', NACK_REASONS.POOL_ALLOC_FAILED);
    return [{ status: 'POOL_ASSIGNED', pool: r.ids, count: r.ids.length }, buildIdPoolResponse(seq, r.ids)];
  }

  /** `t`: whole seconds from the wire. A bigint (beyond 2^53 s) is no real time and is not learned. */
  #learnServerTime(t: U64 | null): void {
    if (typeof t === 'number' && t > this.timeSyncThreshold) this.lastServerTimeMs = t * 1000;
  }

  /**
   * SECURE_DICT_READY is the receiver's answer to this node's first plaintext FULL for `aid`:
   * only a session holding the pending key of that FULL takes it, and the key is always that one
   * (the packet's timestamp is not trusted). Anything else is unsolicited: ignored without touching
   * or creating state (the reference would derive a new key from the packet's timestamp, which
   * lets anyone replace a live session's key). Returns the reason when ignored.
   */
  #onDictReady(aid: number, now: number): string | null {
    const s = this.#sessions.peek(aid);
    if (!s?.pendingKey) {
      const why = s ? `its session (${s.state}) has no plaintext FULL of ours pending` : 'no plaintext FULL of ours is pending for it';
      return `unsolicited SECURE_DICT_READY for aid ${aid}: ${why}`;
    }
    s.lastSeenMs = now;
    const key = s.pendingKey;
    const same = s.key !== null && equalBytes(s.key, key);
    s.key = key;
    s.firstPlaintextTs = s.pendingTimestamp;
    s.dictReady = true;
    if (!(same && s.state === 'SECURE')) {
      s.state = 'DICT_READY';
      s.decryptConfirmed = false;
    }
    this.#sessions.changed(aid, now);
    return null;
  }

  /** The outcome of a data frame that anti-replay drops. */
  #replayIgnored(check: 'REPLAY' | 'OUT_OF_ORDER', aid: number, ts: U64, cmd: number): DispatchOutcome {
    const code: IgnoreCode = check === 'REPLAY' ? 'ERR_HANDSHAKE_REPLAY' : 'ERR_HANDSHAKE_OUT_OF_ORDER';
    return { type: 'IGNORED', cmd, result: { reason: `anti-replay: ${check} timestamp ${ts} from aid ${aid}`, code }, response: null };
  }

  /**
   * The authenticated-mode commands; `null` when this node has no part for them (they are then
   * answered as any unknown command is, which is how a device learns a server is legacy).
   */
  #onAuth(p: Uint8Array, cmd: number, now: number): DispatchOutcome | null {
    const server = this.authServer;
    const client = this.authClient;
    if (isAuthData(cmd)) {
      if (server === null) return null;
      if (this.role === 'tx_only') return { type: 'IGNORED', cmd, result: { reason: 'tx_only: inbound DATA ignored' }, response: null };
      const opened = server.open(p, now);
      if (!opened.ok) {
        const error = opened.error;
        if (error.code === 'ERR_AUTH_REPLAY') return { type: 'IGNORED', cmd, result: { reason: error.message, code: 'ERR_AUTH_REPLAY' }, response: null };
        return { type: 'DATA', cmd, result: { error: error.message, cause: error }, response: opened.response };
      }
      if (!this.parser) return { type: 'DATA', cmd, result: { error: 'No parser attached', raw_hex: toHex(p) }, response: null };
      let result: DataParseResult;
      try {
        result = this.parser.parse(opened.plain, { keys: this.keys, nowMs: now });
      } catch (e) {
        const cause = asError(e);
        return { type: 'DATA', cmd, result: { error: cause.message, cause }, response: null };
      }
      if (result.error === undefined) this.allocator?.touch(opened.aid);
      return { type: 'DATA', cmd, result, response: null };
    }
    const ctrl = (result: CtrlResult, response: Uint8Array | null = null): DispatchOutcome => ({ type: 'CTRL', cmd, result, response });
    if (cmd === AUTH_HELLO) {
      if (server === null) return null;
      if (this.role === 'tx_only') return { type: 'IGNORED', cmd, result: { reason: 'tx_only: CTRL 0xc8 ignored' }, response: null };
      const r = server.onHello(p, now);
      return ctrl({ status: 'AUTH_HELLO', assigned_id: r.aid, sid: r.sid }, r.response);
    }
    if (cmd === AUTH_WELCOME || cmd === AUTH_REJECT) {
      if (client === null) return null;
      if (this.role === 'rx_only') return { type: 'IGNORED', cmd, result: { reason: `rx_only: CTRL 0x${hex2(cmd)} ignored` }, response: null };
      const aid = p.length >= 5 ? readU32(p, 1) : 0;
      if (cmd === AUTH_WELCOME) {
        const established = client.onWelcome(p) === 'established';
        if (established) {
          // Frames now go sealed and plain inside: the legacy XOR session must not apply to them.
          this.#sessions.delete(aid);
          // A new session may be with a server that lost this device's state (it rejected the
          // old session): FULLs first again, as after a start, so its templates come back.
          this.#strategy.set(aid, { count: 0, lastSeen: now });
        }
        return ctrl({ status: 'AUTH_WELCOME', assigned_id: aid, established });
      }
      const effect = client.onReject(p);
      return ctrl({ status: 'AUTH_REJECT', assigned_id: aid, reason: p.length >= 6 ? String(p[5]) : '', effect });
    }
    return null;
  }

  /** A legacy data frame at a server that requires authentication: refused, typed and counted. */
  #legacyRefused(p: Uint8Array, cmd: number): DispatchOutcome {
    this.authServer!.counters.legacyRefused++;
    const aid = p.length >= 6 && p[1]! > 0 && p.length >= 2 + 4 * p[1]! ? readU32(p, 2 + 4 * (p[1]! - 1)) : null;
    const cause = new AuthError('ERR_AUTH_REQUIRED', `${aid === null ? 'a device' : `aid ${aid}`} sent a legacy data frame (0x${hex2(cmd)}); this server requires authentication (auth.require)`, aid);
    return { type: 'ERROR', cmd, result: { error: cause.message, cause }, response: null };
  }

  #onData(p: Uint8Array, cmd: number, now: number): DispatchOutcome {
    const data = (result: DataParseResult, response: Uint8Array | null = null): DispatchOutcome => ({ type: 'DATA', cmd, result, response });
    if (!this.parser) return data({ error: 'No parser attached', raw_hex: toHex(p) });
    let result: DataParseResult;
    try {
      result = this.parser.parse(p, { keys: this.keys, nowMs: now });
    } catch (e) {
      const cause = asError(e);
      return data({ error: cause.message, cause });
    }
    const meta = result?.__packet_meta__;
    if (!meta || result.error !== undefined || meta.crc16_ok !== true) return data(result);
    const aid = meta.source_aid;
    if (typeof aid !== 'number') return data(result);
    const ts = meta.timestamp_raw ?? 0;
    const stamped = meta.server_stamped === true;
    const checked = !stamped && ts > 0;
    if (meta.secure) {
      // A secure frame only decodes with a session's key, so its session holds the watermark.
      const s = this.#sessions.get(aid, now);
      const guard = s && checked && this.secureAntiReplay !== 'off';
      const tag = guard ? frameTag(p) : 0;
      if (s && guard) {
        const last = s.lastSecureTs;
        const check: TimestampCheck = last === null || ts > last ? 'ACCEPT' : ts < last ? 'OUT_OF_ORDER' : 'REPLAY';
        // Under reject-old an equal timestamp is a new frame unless it is an exact copy of one
        // already accepted with it: a verbatim replay of the latest frame is dropped too.
        if (check === 'OUT_OF_ORDER' || (check === 'REPLAY' && (this.secureAntiReplay === 'strict' || s.lastSecureTags.includes(tag)))) {
          return this.#replayIgnored(check, aid, ts, cmd);
        }
      }
      this.allocator?.touch(aid);
      if (!s) return data(result);
      let changed = false;
      if (checked && (s.lastSecureTs === null || ts > s.lastSecureTs)) {
        s.lastSecureTs = ts;
        s.lastSecureTags = guard ? [tag] : [];
        changed = true;
      } else if (guard) {
        // Same timestamp again (a sender faster than the clock's whole seconds): remember it too.
        if (s.lastSecureTags.length >= MAX_SECURE_TAGS) s.lastSecureTags.shift();
        s.lastSecureTags.push(tag);
        changed = true;
      }
      // The first secure frame decoded moves a pending session to the established table; when
      // that is full it stays pending (still decoding) and is promoted once there is room.
      if (!s.decryptConfirmed && this.#sessions.promote(aid)) {
        s.state = 'SECURE';
        s.decryptConfirmed = true;
        this.#sessions.changed(aid, now);
        return data(result, buildSecureChannelAck(aid));
      }
      if (changed) this.#sessions.changed(aid, now);
      return data(result);
    }
    if (this.antiReplay !== 'off' && checked) {
      const check = this.checkTimestamp(aid, ts);
      if (check === 'OUT_OF_ORDER' || (check === 'REPLAY' && this.antiReplay === 'strict')) return this.#replayIgnored(check, aid, ts, cmd);
    }
    this.allocator?.touch(aid);
    const existing = this.#sessions.get(aid, now);
    if (existing?.dictReady) return data(result);
    // A new receiver session is pending until a secure frame decodes; none when that budget is spent.
    const s = existing ?? this.#sessions.create(aid, 'pending', now);
    if (!s) return data(result);
    s.dictReady = true;
    s.state = 'DICT_READY';
    if (ts > this.timeSyncThreshold && !s.key) {
      s.key = deriveSessionKey(aid, ts);
      s.firstPlaintextTs = ts;
    }
    this.#sessions.changed(aid, now);
    // A frame without a clock is answered with the time it was stamped with, so the sender can sync.
    return data(result, stamped ? buildTimeResponse(0, ts) : buildSecureDictReady(aid, ts));
  }

  // -------------------------------------------------------------------------------------------
  // Sender side

  /**
   * Records that this node sent its first plaintext FULL frame for `aid` with timestamp `ts`:
   * the session becomes PLAINTEXT_SENT with the pending key derive(aid, ts), which a later
   * SECURE_DICT_READY promotes. Later calls change nothing until the session resets. The session
   * is established at once (no inbound traffic can push it out); when `maxSessions` is reached
   * nothing is recorded and `aid` stays plaintext.
   */
  noteLocalPlaintextSent(aid: number, ts: U64): void {
    if (!this.#ready) this.#requireOpen();
    const now = this.#clock();
    // Our own sessions are established from the start: no inbound traffic can push them out.
    const s = this.#sessions.get(aid, now) ?? this.#sessions.create(aid, 'established', now);
    if (!s || s.dictReady || s.pendingKey) return;
    s.pendingKey = deriveSessionKey(aid, ts);
    s.pendingTimestamp = ts;
    s.state = 'PLAINTEXT_SENT';
    this.#sessions.changed(aid, now);
  }

  /** The key to encrypt outbound frames for `aid`, once the dictionary is ready (shared: do not modify). */
  getTxKey(aid: number): Uint8Array | null {
    if (!this.#ready) this.#requireOpen();
    const s = this.#sessions.get(aid, this.#clock());
    return s?.dictReady && s.key ? s.key : null;
  }

  /** True once outbound frames for `aid` go secure. */
  shouldEncrypt(aid: number): boolean {
    return this.getTxKey(aid) !== null;
  }

  /**
   * FULL until `aid` has 3 committed transmissions (or when the receiver cannot have its
   * template), then DIFF; DIFF at once when the secure dictionary is ready. After a restart with
   * a persisted template (`hasTemplate` true and no counter yet) the count starts at 3.
   */
  getStrategy(aid: number, hasTemplate: boolean): Strategy {
    if (!this.#ready) this.#requireOpen();
    const now = this.#clock();
    this.#maybeCleanup(now);
    let st = this.#strategy.get(aid);
    if (!st) {
      st = { count: hasTemplate ? FULL_COMMITS_BEFORE_DIFF : 0, lastSeen: now };
      this.#strategy.set(aid, st);
    } else st.lastSeen = now;
    if (!hasTemplate) return 'FULL_PACKET';
    if (this.#sessions.get(aid, now)?.dictReady) return 'DIFF_PACKET';
    return st.count >= FULL_COMMITS_BEFORE_DIFF ? 'DIFF_PACKET' : 'FULL_PACKET';
  }

  /** Counts one successful transmission for `aid`; returns the new count. */
  commitSuccess(aid: number): number {
    const now = this.#clock();
    const st = this.#strategy.get(aid) ?? { count: 0, lastSeen: now };
    // Past the threshold the exact count no longer matters; capping keeps it a small integer.
    st.count = Math.min(st.count + 1, 0x7fffffff);
    st.lastSeen = now;
    this.#strategy.set(aid, st);
    return st.count;
  }

  // -------------------------------------------------------------------------------------------
  // Anti-replay

  /**
   * ACCEPT when `ts` is the first or strictly newer for `aid` (and remembers it), REPLAY when
   * equal, OUT_OF_ORDER when older. A missing ts counts as 0; `42` and `"42"` are the same aid.
   */
  checkTimestamp(aid: number | string, ts: U64 | null | undefined): TimestampCheck {
    const key = String(aid);
    const t = ts ?? 0;
    const last = this.#timestamps.get(key);
    if (last === undefined || t > last) {
      this.#timestamps.set(key, t);
      return 'ACCEPT';
    }
    return t < last ? 'OUT_OF_ORDER' : 'REPLAY';
  }

  // -------------------------------------------------------------------------------------------
  // Inspection and lifecycle

  /** A copy of the session of `aid` (does not refresh it), or `null`. */
  getSession(aid: number): SessionView | null {
    const s = this.#sessions.peek(aid);
    return s ? { ...s, key: s.key?.slice() ?? null, pendingKey: s.pendingKey?.slice() ?? null, lastSecureTags: s.lastSecureTags.slice() } : null;
  }

  /** Number of sessions held, established and pending. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Number of pending receiver sessions (plain FULL seen, no secure frame decoded yet). */
  get pendingSessionCount(): number {
    return this.#sessions.pendingSize;
  }

  /** Number of AIDs with a strategy counter or an anti-replay timestamp. */
  get trackedAidCount(): number {
    return Math.max(this.#strategy.size, this.#timestamps.size);
  }

  /** Forgets the session of `aid` (e.g. after the peer restarted); false when there was none. */
  resetSession(aid: number): boolean {
    if (!this.#ready) this.#requireOpen();
    const now = this.#clock();
    const gone = this.#sessions.delete(aid);
    if (gone) this.#sessions.changed(aid, now);
    return gone;
  }

  /** Whether the manager is ready: no store is given, or `open()` resolved. */
  get opened(): boolean {
    return this.#sessions.opened && (this.allocator?.opened ?? true) && (this.authServer?.opened ?? true);
  }

  /**
   * Loads the sessions from `sessionStore` and opens the allocator (its leases), once; resolves
   * at once when there is nothing to load. Until it resolves, a manager with a store answers
   * every packet `ERROR` (`ERR_HANDSHAKE_NOT_OPEN` as `cause`) and its sender-side calls throw
   * that `StoreError`. Rejects with `StoreError` when a store cannot be read or holds records
   * that are not sessions or leases.
   */
  open(): Promise<void> {
    if (this.opened) return Promise.resolve();
    this.#opening ??= Promise.all([this.#sessions.open(), this.allocator?.open(), this.authServer?.load(this.#clock())]).then(
      () => undefined,
      (e: unknown) => {
        this.#opening = null;
        throw e;
      },
    );
    return this.#opening;
  }

  /**
   * Housekeeping for a timer (the manager runs none): expires idle sessions and strategy
   * counters, writes the session changes the save throttle held back once its interval has
   * passed (flushed in the background), and sweeps the allocator (`IdAllocator.sweep`). `now`
   * defaults to the clock. Without a call, held-back changes go out with the next packet.
   */
  sweep(now: number = this.#clock()): void {
    if (!this.opened) return;
    this.#lastCleanup = now;
    const expire = this.sessionExpireMs;
    this.#sessions.expire(now, expire);
    for (const [aid, st] of this.#strategy.entries()) if (now - st.lastSeen >= expire) this.#strategy.delete(aid);
    this.#sessions.maybeSave(now);
    this.allocator?.sweep(now);
    this.authServer?.sweep(now);
  }

  /**
   * Writes every pending session and lease change and resolves when the stores hold them as
   * durably as their `durability` says (at once without stores). Rejects with `StoreError` when
   * a store cannot write or flush; the changes stay pending and the next call retries them.
   */
  async flush(): Promise<void> {
    await Promise.all([this.#sessions.flush(this.#clock()), this.allocator?.flush(), this.authServer?.flush(this.#clock())]);
  }

  /** `flush()`, then the allocator's `close()` (its reservation given back); waits for background flushes. */
  async close(): Promise<void> {
    await this.flush();
    await this.allocator?.close();
    await this.#sessions.idle();
  }

  /** Throws `ERR_HANDSHAKE_NOT_OPEN` until the stores are loaded; then remembers they are. */
  #requireOpen(): void {
    if (!this.opened) throw new StoreError('handshake stores', 'not open: await open() before use', { code: 'ERR_HANDSHAKE_NOT_OPEN' });
    this.#ready = true;
  }

  /**
   * `classifyAndDispatch` for allocators with a store: an ID_REQUEST or ID_POOL_REQ whose ids
   * are not reserved durably yet first awaits the reservation (`IdAllocator.reserveAhead`), so
   * no ID_ASSIGN leaves before its id survives a kill -9 (as far as the store's durability goes). Every
   * other packet, and ID requests whose ids are reserved (the allocator keeps a block ahead), is
   * handled synchronously and comes back in a resolved promise. Never rejects: a store that
   * cannot flush gives an ERROR outcome with no response.
   */
  async classifyAndDispatchAsync(packet: Uint8Array, addr?: PeerAddress | null): Promise<DispatchOutcome> {
    const allocator = this.allocator;
    if (allocator !== null && packet instanceof Uint8Array && (packet[0] === ID_REQUEST || packet[0] === ID_POOL_REQ)) {
      const count = packet[0] === ID_POOL_REQ ? (packet.length >= 5 ? Math.min(readU16(packet, 3), MAX_POOL_COUNT) : 0) : 1;
      if (count > 0 && allocator.needsReservation(count)) {
        try {
          await allocator.reserveAhead(count);
        } catch (e) {
          const cause = asError(e);
          return { type: 'ERROR', cmd: packet[0]!, result: { error: cause.message, cause }, response: null };
        }
      }
    }
    return this.classifyAndDispatch(packet, addr);
  }

  #maybeCleanup(now: number): void {
    if (now - this.#lastCleanup < this.#cleanupInterval && now >= this.#lastCleanup) {
      // Throttled session changes still go out once their interval has passed.
      this.#sessions.maybeSave(now);
      return;
    }
    this.#lastCleanup = now;
    const expire = this.sessionExpireMs;
    this.#sessions.expire(now, expire);
    for (const [aid, st] of this.#strategy.entries()) if (now - st.lastSeen >= expire) this.#strategy.delete(aid);
    this.#sessions.maybeSave(now);
  }
}

function rejectFor(reason: AllocateFailure, seq: number, exhaustedText: string, exhaustedNack: string): [CtrlResult, Uint8Array] {
  if (reason === 'RATE_LIMITED') return [{ status: 'REJECTED', reason: 'Rate limited' }, buildNack(seq, NACK_REASONS.ID_RATE_LIMITED)];
  return [{ status: 'REJECTED', reason: exhaustedText }, buildNack(seq, exhaustedNack)];
}

/** FNV-1a (32 bits) of a whole frame: tells an exact copy from another frame with the same timestamp. */
function frameTag(p: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p[i]!, 0x01000193);
  return h >>> 0;
}

/** What was thrown, as an Error (a store or clock may throw anything). */
function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
