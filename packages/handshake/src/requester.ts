/**
 * `HandshakeRequester`: the device side of the control exchanges (ID_REQUEST → ID_ASSIGN,
 * ID_POOL_REQ → ID_POOL_RES, PING → PONG, TIME_REQUEST → TIME_RESPONSE) over any send/receive
 * pair. It sends through an injected `send` and is fed inbound packets through `handle`; it owns no
 * socket, so the transport layer (or a test) decides where packets go.
 *
 * - Answers are matched by `seq`, so any number of requests (up to `maxInFlight`) run at once.
 * - The same packet (same seq) is resent every max(1000 ms, timeoutMs / 2) until answered: the
 *   protocol runs over lossy links and the server answers repeats idempotently.
 * - A NACK with the pending seq fails the request (`RequestNackError`); the timeout fails it with
 *   `RequestTimeoutError`; an `AbortSignal` fails it with the signal's reason. Every way out removes
 *   the pending entry and its timers.
 * - The requester never sends the ACK of an ID_ASSIGN / ID_POOL_RES (the protocol leaves that to
 *   the node's dispatch), and `handle` answers nothing.
 */
import { HANDSHAKE_NACK, ID_ASSIGN, ID_POOL_RES, PONG, TIME_RESPONSE } from '@opensynaptic/cmd';
import {
  HandshakeFieldError,
  InvalidAnswerError,
  RequestAbortedError,
  RequestNackError,
  RequestTimeoutError,
  TooManyRequestsError,
} from './errors.js';
import type { JsonInput } from './json.js';
import {
  buildIdPoolRequest,
  buildIdRequest,
  buildPing,
  buildTimeRequest,
  DEFAULT_MAX_META_BYTES,
  DEFAULT_POOL_COUNT,
  MAX_NACK_REASON_BYTES,
  parseIdAssign,
  parseIdPoolResponse,
  parsePong,
  parseTimeResponse,
  readU16,
  SeqCounter,
  type U64,
} from './packets.js';
import { utf8DecodeIgnore } from './utf8.js';

/** Most requests in flight at once when `maxInFlight` is not given. */
export const DEFAULT_MAX_IN_FLIGHT = 256;
/** Timeout of a request when neither the call nor the requester gives one, in ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
/** Shortest resend interval, in ms (the interval is max(this, timeoutMs / 2)). */
export const MIN_RESEND_INTERVAL_MS = 1000;

/** Timer functions, injectable so tests and event loops other than Node's can drive the requester. */
export interface RequesterTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** A monotonic clock in ms (for `ping` round trips). */
  now(): number;
}

export interface HandshakeRequesterOptions {
  /** Puts one packet on the wire. A throw or a rejected promise fails the request it belongs to. */
  send(packet: Uint8Array): void | Promise<void>;
  /** Default: the global `setTimeout` / `clearTimeout` (looked up at each call) and `performance.now`. */
  timers?: RequesterTimers;
  /** Sequence numbers; pass the node's `OSHandshakeManager.seq` to share one counter. Default a new one. */
  seq?: SeqCounter;
  /** Most requests pending at once (default 256, at most 65535); beyond it `TooManyRequestsError`. */
  maxInFlight?: number;
  /** Default timeout of each request in ms (default 5000). */
  timeoutMs?: number;
  /** Largest JSON meta sent, in UTF-8 bytes (default 4096). */
  maxMetaBytes?: number;
}

export interface RequestOptions {
  /** Give up after this many ms (default: the requester's `timeoutMs`). */
  timeoutMs?: number;
  /** Cancels the request; it rejects with `signal.reason` (or `RequestAbortedError`). */
  signal?: AbortSignal;
}

export interface IdAssignment {
  aid: number;
  /**
   * The server's time, in ms since the epoch, when the ID_ASSIGN carried one (the wire carries
   * whole seconds; a value beyond 2^53 ms is left out). Replaces `serverTime` (seconds).
   */
  serverTimeMs?: number;
}

/** What `requestTime` resolves to. */
export interface ServerTime {
  /** The server's time, in ms since the epoch (the wire carries whole seconds). */
  serverTimeMs: number;
  /** The round trip in ms, counted from the first send (resends included). */
  rttMs: number;
}

/** Whole seconds from the wire → ms, or `undefined` beyond what a number holds exactly. */
function secondsToMs(seconds: U64): number | undefined {
  const ms = Number(seconds) * 1000;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

const defaultTimers: RequesterTimers = {
  // Looked up at each call so fake timers installed after construction still apply.
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
};

/** Reads the answer; a throw means "not a usable answer" and the packet is ignored. */
type Decoder<T> = (packet: Uint8Array, entry: Pending) => T;

interface Pending {
  readonly seq: number;
  readonly name: string;
  readonly answerCmd: number;
  readonly packet: Uint8Array;
  readonly timeoutMs: number;
  readonly sentAt: number;
  readonly decode: Decoder<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  attempts: number;
  timer: unknown;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

function checkTimeout(ms: number): number {
  if (!(typeof ms === 'number' && ms > 0 && Number.isFinite(ms))) {
    throw new HandshakeFieldError('timeoutMs', `${String(ms)} is not a positive finite number`);
  }
  return ms;
}

export class HandshakeRequester {
  readonly seq: SeqCounter;
  readonly maxInFlight: number;
  readonly timeoutMs: number;
  readonly maxMetaBytes: number;
  readonly #send: (packet: Uint8Array) => void | Promise<void>;
  readonly #timers: RequesterTimers;
  readonly #pending = new Map<number, Pending>();

  constructor(options: HandshakeRequesterOptions) {
    if (typeof options?.send !== 'function') throw new HandshakeFieldError('send', 'a send function is required');
    this.#send = options.send;
    this.#timers = options.timers ?? defaultTimers;
    this.seq = options.seq ?? new SeqCounter();
    const max = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    // Seqs are 16 bits and must stay unique among pending requests.
    if (!(Number.isInteger(max) && max >= 1 && max <= 0xffff)) {
      throw new HandshakeFieldError('maxInFlight', `${String(max)} is not an integer in 1..65535`);
    }
    this.maxInFlight = max;
    this.timeoutMs = checkTimeout(options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.maxMetaBytes = options.maxMetaBytes ?? DEFAULT_MAX_META_BYTES;
  }

  /** Requests waiting for an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  /** ID_REQUEST → ID_ASSIGN. An aid of 0 fails with `InvalidAnswerError`. */
  requestId(meta?: JsonInput | null, options?: RequestOptions): Promise<IdAssignment> {
    return this.#request(
      'ID_REQUEST',
      ID_ASSIGN,
      (seq) => buildIdRequest(seq, meta, { maxMetaBytes: this.maxMetaBytes }),
      (p, e): IdAssignment => {
        const a = parseIdAssign(p);
        if (a.aid === 0) throw new InvalidAnswerError(e.name, e.seq, 'assigned id 0');
        const serverTimeMs = a.serverTime === null ? undefined : secondsToMs(a.serverTime);
        return serverTimeMs === undefined ? { aid: a.aid } : { aid: a.aid, serverTimeMs };
      },
      options,
    );
  }

  /** ID_POOL_REQ → ID_POOL_RES: up to `count` ids (0..65535; a server grants at most 256 and may send fewer). */
  requestIdPool(count: number = DEFAULT_POOL_COUNT, meta?: JsonInput | null, options?: RequestOptions): Promise<number[]> {
    return this.#request(
      'ID_POOL_REQ',
      ID_POOL_RES,
      (seq) => buildIdPoolRequest(seq, count, meta, { maxMetaBytes: this.maxMetaBytes }),
      (p, e) => {
        const { ids } = parseIdPoolResponse(p);
        if (ids.length === 0) throw new InvalidAnswerError(e.name, e.seq, 'empty pool');
        return ids;
      },
      options,
    );
  }

  /** PING → PONG: the round trip in ms, counted from the first send (resends included). */
  ping(options?: RequestOptions): Promise<number> {
    return this.#request(
      'PING',
      PONG,
      buildPing,
      (p, e) => {
        parsePong(p);
        return this.#timers.now() - e.sentAt;
      },
      options,
    );
  }

  /**
   * TIME_REQUEST → TIME_RESPONSE: the server's time in ms (from the whole seconds on the wire) and
   * the round trip. A time beyond 2^53 ms fails with `InvalidAnswerError`. (It resolved to the
   * seconds themselves before; now to `{ serverTimeMs, rttMs }`.)
   */
  requestTime(options?: RequestOptions): Promise<ServerTime> {
    return this.#request(
      'TIME_REQUEST',
      TIME_RESPONSE,
      buildTimeRequest,
      (p, e): ServerTime => {
        const serverTimeMs = secondsToMs(parseTimeResponse(p).serverTime);
        if (serverTimeMs === undefined) throw new InvalidAnswerError(e.name, e.seq, 'a server time beyond 2^53 ms');
        return { serverTimeMs, rttMs: this.#timers.now() - e.sentAt };
      },
      options,
    );
  }

  /**
   * Feeds one inbound packet. Returns true when it settled a pending request (its answer, or a
   * NACK with its seq); anything else (late duplicates, unrelated or malformed packets) returns
   * false and changes nothing. Never throws.
   */
  handle(packet: Uint8Array): boolean {
    if (!(packet instanceof Uint8Array) || packet.length < 3 || this.#pending.size === 0) return false;
    const entry = this.#pending.get(readU16(packet, 1));
    if (!entry) return false;
    const cmd = packet[0];
    if (cmd === HANDSHAKE_NACK) {
      // Bounded like the strict parser, but a long reason still fails the request.
      const reason = utf8DecodeIgnore(packet, 3, Math.min(packet.length, 3 + MAX_NACK_REASON_BYTES));
      this.#settle(entry);
      entry.reject(new RequestNackError(entry.name, entry.seq, reason));
      return true;
    }
    if (cmd !== entry.answerCmd) return false;
    let value: unknown;
    try {
      value = entry.decode(packet, entry);
    } catch (e) {
      if (!(e instanceof InvalidAnswerError)) return false;
      this.#settle(entry);
      entry.reject(e);
      return true;
    }
    this.#settle(entry);
    entry.resolve(value);
    return true;
  }

  /** Rejects every pending request (e.g. when the transport closes) with `reason` or `RequestAbortedError`. */
  cancelAll(reason?: unknown): void {
    for (const entry of [...this.#pending.values()]) {
      this.#settle(entry);
      entry.reject(reason ?? new RequestAbortedError('requester cancelled'));
    }
  }

  #request<T>(
    name: string,
    answerCmd: number,
    build: (seq: number) => Uint8Array,
    decode: Decoder<T>,
    options: RequestOptions | undefined,
  ): Promise<T> {
    const signal = options?.signal;
    let timeoutMs: number;
    try {
      timeoutMs = checkTimeout(options?.timeoutMs ?? this.timeoutMs);
      if (signal?.aborted) throw signal.reason ?? new RequestAbortedError();
      if (this.#pending.size >= this.maxInFlight) throw new TooManyRequestsError(this.maxInFlight);
    } catch (e) {
      return Promise.reject(e);
    }
    // Skipping seqs still pending keeps matching unambiguous after the counter wraps.
    let seq = this.seq.next();
    while (this.#pending.has(seq)) seq = this.seq.next();
    let packet: Uint8Array;
    try {
      packet = build(seq);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<T>((resolve, reject) => {
      const timers = this.#timers;
      const entry: Pending = {
        seq,
        name,
        answerCmd,
        packet,
        timeoutMs,
        sentAt: timers.now(),
        decode,
        resolve: resolve as (value: unknown) => void,
        reject,
        attempts: 0,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      // Registered before the first send: an in-process peer may answer inside `send`.
      this.#pending.set(seq, entry);
      const interval = Math.max(MIN_RESEND_INTERVAL_MS, timeoutMs / 2);
      // One timer per request, armed for the next resend or the deadline, whichever comes first
      // (a resend due at the deadline would be wasted).
      const arm = (at: number): void => {
        const next = Math.min(at + interval, timeoutMs);
        entry.timer = timers.setTimeout(() => {
          if (this.#pending.get(seq) !== entry) return;
          if (next >= timeoutMs) {
            this.#settle(entry);
            reject(new RequestTimeoutError(name, seq, timeoutMs, entry.attempts));
            return;
          }
          this.#transmit(entry);
          arm(next);
        }, next - at);
      };
      arm(0);
      if (signal) {
        entry.onAbort = () => {
          if (this.#pending.get(seq) !== entry) return;
          this.#settle(entry);
          reject(signal.reason ?? new RequestAbortedError());
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.#transmit(entry);
    });
  }

  #transmit(entry: Pending): void {
    entry.attempts++;
    const fail = (e: unknown): void => {
      if (this.#pending.get(entry.seq) !== entry) return;
      this.#settle(entry);
      entry.reject(e);
    };
    try {
      const r = this.#send(entry.packet);
      if (r && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).then(undefined, fail);
    } catch (e) {
      fail(e);
    }
  }

  /** Removes the entry and everything that could still fire for it. */
  #settle(entry: Pending): void {
    this.#pending.delete(entry.seq);
    this.#timers.clearTimeout(entry.timer);
    if (entry.signal && entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
  }
}
