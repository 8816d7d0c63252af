/**
 * The readings sink: where a server puts the decoded readings of its devices, and what `os-node
 * db status` and `db query` read back. One interface ({@link ReadingsSink}) for every database,
 * and one buffering core ({@link BufferedReadingsSink}) that each database plugs a small
 * {@link ReadingsBackend} into, so SQLite, PostgreSQL and memory share the same batching,
 * backpressure, retry and loss accounting, and run the same abstract suite
 * (`abstractReadingsSinkSuite` in `@opensynaptic/store/testing`).
 *
 * What is promised: a frame `write` accepted is committed in a later batch or, only when its
 * batch failed `maxAttempts` times or `close` gave up on it, counted in `status().lost` and
 * told to `onLost`; never dropped without a count. `flush()` resolves when every frame accepted
 * before it is committed (as durable as `durability` says).
 */
import type { StoreDurability } from './contract.js';
import { isStoreError, StoreError } from './errors.js';
import { isPlainText } from './batched-store.js';
import { mergePacked, type PackedReadings, packedDeviceDeltas, packReadings, unpackReadings } from './packed.js';

/** How the frame that carried a reading was sent. */
export type FrameStrategy = 'FULL' | 'DIFF' | 'HEART';

/** One sensor of a decoded frame. */
export interface SensorReading {
  /** Sensor id (`s<i>_id`), at most {@link MAX_TEXT_LENGTH} characters. */
  readonly id: string;
  /** Sensor state (`s<i>_s`). */
  readonly state: string;
  /** Value in the standard unit (a finite number). */
  readonly value: number;
  /** Standard unit (`s<i>_u`). */
  readonly unit: string;
}

/** One decoded data frame as a server hands it to a sink: a device row update and one reading per sensor. */
export interface ReadingFrame {
  /** The device's AID (0..4294967295). */
  readonly aid: number;
  /** The device id of the fact (`id`), 1..{@link MAX_TEXT_LENGTH} characters. */
  readonly deviceId: string;
  readonly strategy: FrameStrategy;
  /** The fact's timestamp, Unix ms (an integer >= 0). */
  readonly timestampMs: number;
  /** When the server received the frame, Unix ms (an integer >= 0). */
  readonly receivedAtMs: number;
  /** How many templates the server holds for the device, when it knows (kept in the device row). */
  readonly templates?: number | undefined;
  /** At most {@link MAX_SENSORS}. */
  readonly sensors: readonly SensorReading[];
}

/** A stored reading. */
export interface Reading {
  readonly aid: number;
  readonly deviceId: string;
  readonly sensorId: string;
  readonly state: string;
  readonly value: number;
  readonly unit: string;
  readonly timestampMs: number;
  readonly receivedAtMs: number;
}

/** A stored device row. */
export interface DeviceSummary {
  readonly aid: number;
  readonly deviceId: string;
  /** Receive time (Unix ms) of its first and its latest frame. */
  readonly firstSeenMs: number;
  readonly lastSeenMs: number;
  /** The latest template count a frame carried, `null` when none did. */
  readonly templates: number | null;
  /** Frames received per strategy. */
  readonly frames: { readonly FULL: number; readonly DIFF: number; readonly HEART: number };
  /** Readings stored. */
  readonly readings: number;
}

/**
 * A reading as the SQL backends store it (`os_readings`, snake_case columns): one row type and
 * one conversion for SQLite and PostgreSQL, so the two cannot drift apart.
 */
export interface ReadingRow {
  aid: number;
  device_id: string;
  sensor_id: string;
  state: string;
  value: number;
  unit: string;
  ts_ms: number;
  received_ms: number;
}

/** A device as the SQL backends store it (`os_devices`). */
export interface DeviceRow {
  aid: number;
  device_id: string;
  first_seen_ms: number;
  last_seen_ms: number;
  templates: number | null;
  full_frames: number;
  diff_frames: number;
  heart_frames: number;
  readings: number;
}

/** A stored row as a {@link Reading}. */
export function readingFromRow(r: ReadingRow): Reading {
  return { aid: r.aid, deviceId: r.device_id, sensorId: r.sensor_id, state: r.state, value: r.value, unit: r.unit, timestampMs: r.ts_ms, receivedAtMs: r.received_ms };
}

/** A stored row as a {@link DeviceSummary}. */
export function deviceFromRow(r: DeviceRow): DeviceSummary {
  return {
    aid: r.aid,
    deviceId: r.device_id,
    firstSeenMs: r.first_seen_ms,
    lastSeenMs: r.last_seen_ms,
    templates: r.templates,
    frames: { FULL: r.full_frames, DIFF: r.diff_frames, HEART: r.heart_frames },
    readings: r.readings,
  };
}

/** A query of readings: every given field must match; readings come ordered by timestamp (then insertion). */
export interface ReadingQuery {
  aid?: number | undefined;
  deviceId?: string | undefined;
  sensorId?: string | undefined;
  /** Earliest `timestampMs`, inclusive. */
  fromMs?: number | undefined;
  /** Latest `timestampMs`, exclusive. */
  toMs?: number | undefined;
  /** Most readings returned: 1..{@link MAX_QUERY_LIMIT}, default {@link DEFAULT_QUERY_LIMIT}. */
  limit?: number | undefined;
  /** `asc` (default: oldest first) or `desc` (newest first). */
  order?: 'asc' | 'desc' | undefined;
}

/** A query of devices (ordered by AID, then device id). */
export interface DeviceQuery {
  aid?: number | undefined;
  deviceId?: string | undefined;
  /** 1..{@link MAX_QUERY_LIMIT}, default {@link DEFAULT_QUERY_LIMIT}. */
  limit?: number | undefined;
}

/** A {@link ReadingQuery} after its checks: limit and order filled in. */
export interface CheckedReadingQuery extends ReadingQuery {
  limit: number;
  order: 'asc' | 'desc';
}

/** A {@link DeviceQuery} after its checks. */
export interface CheckedDeviceQuery extends DeviceQuery {
  limit: number;
}

/** What the database holds, as a backend reports it. */
export interface StoredStatus {
  readonly readings: number;
  readonly devices: number;
  /** Bytes the data takes on disk (database and log files, or the relations), `null` when not known. */
  readonly sizeBytes: number | null;
  /** When the latest batch was committed (Unix ms, by this or an earlier process), `null` before the first. */
  readonly lastWriteMs: number | null;
}

/** `status()` of a sink: what is stored, and what this sink did since it opened (counts are readings). */
export interface ReadingsSinkStatus {
  /** `sqlite`, `postgres`, `memory`... */
  readonly backend: string;
  /** The file, or the database and schema. */
  readonly location: string;
  readonly durability: StoreDurability;
  readonly stored: StoredStatus;
  /** Accepted and not yet committed (nor lost). */
  readonly buffered: number;
  readonly maxBuffered: number;
  readonly accepted: number;
  readonly committed: number;
  /** Accepted and given up on (see {@link ReadingsSinkOptions.maxAttempts}); told to `onLost`. */
  readonly lost: number;
  readonly batches: number;
  /** Commit attempts that failed (each is retried or, at the last attempt, counted lost). */
  readonly failedAttempts: number;
  readonly lastError: { readonly code: string; readonly message: string; readonly atMs: number } | null;
}

/** A committed batch, as told to {@link ReadingsSinkOptions.onCommit}. */
export interface CommitEvent {
  readonly frames: number;
  readonly readings: number;
  /** Every frame whose `write` sequence number is at most this is now committed or lost (frames settle in order). */
  readonly throughSeq: number;
}

/** A batch given up on, as told to {@link ReadingsSinkOptions.onLost}. */
export interface LostEvent extends CommitEvent {
  readonly error: StoreError;
  /** The frames themselves, so a caller can keep them elsewhere. */
  readonly lostFrames: readonly ReadingFrame[];
}

/** The sink interface every database implements. */
export interface ReadingsSink {
  /** What a resolved `flush()` promises. */
  readonly durability: StoreDurability;
  /**
   * Accepts the frames whole (checked first: a bad field rejects the call with `ERR_STORE_VALUE`,
   * accepting none) once the buffer has room for their readings: the returned promise waits
   * while it is full (backpressure). Resolves to the sequence number of the last frame (frames
   * are numbered from 1 in accept order), which {@link CommitEvent.throughSeq} refers to.
   */
  write(frames: readonly ReadingFrame[]): Promise<number>;
  /** As `write`, but never waits: the sequence number, or `false` (nothing accepted) when the buffer has no room. */
  tryWrite(frames: readonly ReadingFrame[]): number | false;
  /** Resolves when every frame accepted before the call is committed; rejects (`ERR_STORE_WRITE`) when a batch of them failed (it is retried in the background). */
  flush(): Promise<void>;
  /**
   * Resolves once the frame numbered `seq` (what `write` / `tryWrite` returned) is settled: `true`
   * when it is committed, `false` when it was counted lost or the sink closed first. Never
   * rejects, asks for no early commit: for a caller that acknowledges what is durable (the
   * server's MQTT QoS 1 PUBACK). Optional for third-party sinks.
   */
  committed?(seq: number): Promise<boolean>;
  query(query?: ReadingQuery): Promise<Reading[]>;
  devices(query?: DeviceQuery): Promise<DeviceSummary[]>;
  status(): Promise<ReadingsSinkStatus>;
  /**
   * Flushes (retrying failed batches for up to `closeTimeoutMs`), then releases the database.
   * What could not be committed by then is counted lost, told to `onLost`, and `close` rejects
   * with `ERR_STORE_WRITE` saying how many readings. Every later call rejects with `ERR_STORE_CLOSED`.
   */
  close(): Promise<void>;
}

/** Longest device id, sensor id, state or unit (characters). */
export const MAX_TEXT_LENGTH = 256;
/** Most sensors of one frame. */
export const MAX_SENSORS = 4096;
export const DEFAULT_QUERY_LIMIT = 1000;
export const MAX_QUERY_LIMIT = 1_000_000;
const MAX_AID = 0xffff_ffff;

/** A device's change within one batch, summed by the core for the backend. */
export interface DeviceDelta {
  readonly aid: number;
  readonly deviceId: string;
  firstSeenMs: number;
  lastSeenMs: number;
  /** The batch's latest template count, `null` when no frame carried one. */
  templates: number | null;
  full: number;
  diff: number;
  heart: number;
  readings: number;
}

/** One transaction's worth, as the core hands it to a backend. */
export interface ReadingsBatch {
  /** Unique per batch (and stays the same across retries): lets a backend tell a retry of a commit that did land. */
  readonly id: string;
  /** The frames (empty for a backend that takes them `packed`). */
  readonly frames: readonly ReadingFrame[];
  /** The frames as numbers, for a backend that sets `packed` (see `PackedReadings`). */
  readonly packed?: PackedReadings | undefined;
  readonly readings: number;
  readonly devices: readonly DeviceDelta[];
  /** Wall-clock time of this attempt (Unix ms): the backend stores it as the last write. */
  readonly atMs: number;
}

/** What a database offers {@link BufferedReadingsSink}. */
export interface ReadingsBackend {
  readonly name: string;
  readonly location: string;
  readonly durability: StoreDurability;
  /** A backend opened for queries only: the core refuses every write up front (`ERR_STORE_WRITE`). */
  readonly readonly?: boolean | undefined;
  /**
   * Take the readings packed (`batch.packed`; `batch.frames` is then empty): the core packs each
   * accepted write at once, so its buffer holds numbers instead of objects (see `PackedReadings`).
   */
  readonly packed?: boolean | undefined;
  /** Stores the batch's readings and device changes in one transaction, all or nothing. */
  commit(batch: ReadingsBatch): Promise<void>;
  query(query: CheckedReadingQuery): Promise<Reading[]>;
  devices(query: CheckedDeviceQuery): Promise<DeviceSummary[]>;
  status(): Promise<StoredStatus>;
  close(): Promise<void>;
}

/** Options of every sink (the buffering core's). */
export interface ReadingsSinkOptions {
  /** Most readings accepted and not yet committed (integer >= 1, default 100000; a frame without sensors counts as one). */
  maxBuffered?: number | undefined;
  /** Readings per transaction: a batch is committed as soon as this many wait (integer >= 1, default 1000). */
  batchSize?: number | undefined;
  /** How long a partial batch waits for more before it is committed anyway (ms >= 0, default 20). */
  flushIntervalMs?: number | undefined;
  /** Commit attempts per batch before its readings are counted lost (integer >= 1 or `Infinity`, the default: retried until committed or closed). */
  maxAttempts?: number | undefined;
  /** First wait before a retry (ms, default 100); doubled per failure up to `retryMaxMs` (default 5000). */
  retryMinMs?: number | undefined;
  retryMaxMs?: number | undefined;
  /** How long `close` keeps retrying failed batches before it counts them lost (ms, default 10000). */
  closeTimeoutMs?: number | undefined;
  /**
   * Batches committed at once (integer >= 1, default 1). Above 1 (a database with a pool, e.g.
   * PostgreSQL), the next batch is sent while earlier ones are in flight, so the network and the
   * server's work overlap; the batches may then land in the database out of order (their rows'
   * insertion order differs from the accept order), but they settle in order: `onCommit`,
   * `onLost` and `flush` still see every frame up to `throughSeq` committed or lost.
   */
  concurrency?: number | undefined;
  /** Each committed batch. */
  onCommit?: ((event: CommitEvent) => void) | undefined;
  /** Each batch given up on. */
  onLost?: ((event: LostEvent) => void) | undefined;
  /** Each failed commit attempt (the batch is retried unless it was the last attempt). */
  onError?: ((error: StoreError, attempt: number) => void) | undefined;
}

function fail(field: string, detail: string): never {
  throw new StoreError('ERR_STORE_VALUE', `${field} ${detail}`);
}

function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return typeof v;
}

function checkText(field: string, v: unknown, allowEmpty: boolean): void {
  if (typeof v !== 'string' || (!allowEmpty && v === '') || v.length > MAX_TEXT_LENGTH || !isPlainText(v)) {
    fail(field, `must be a${allowEmpty ? '' : ' non-empty'} string of at most ${MAX_TEXT_LENGTH} characters (well-formed, no NUL), got ${shown(v)}`);
  }
}

function checkMs(field: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, `must be an integer number of ms >= 0, got ${shown(v)}`);
}

function checkAid(field: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_AID) fail(field, `must be an integer 0..${MAX_AID}, got ${shown(v)}`);
}

/** Checks frames before any is accepted (`ERR_STORE_VALUE` naming the field); returns their reading count. */
export function checkFrames(frames: unknown): number {
  if (!Array.isArray(frames)) throw new StoreError('ERR_STORE_BATCH', `frames must be a list, got ${frames === null ? 'null' : typeof frames}`);
  let readings = 0;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i] as Partial<ReadingFrame> | null;
    const at = `frames[${i}]`;
    if (typeof f !== 'object' || f === null) fail(at, 'must be an object');
    checkAid(`${at}.aid`, f.aid);
    checkText(`${at}.deviceId`, f.deviceId, false);
    if (f.strategy !== 'FULL' && f.strategy !== 'DIFF' && f.strategy !== 'HEART') fail(`${at}.strategy`, `must be "FULL", "DIFF" or "HEART", got ${shown(f.strategy)}`);
    checkMs(`${at}.timestampMs`, f.timestampMs);
    checkMs(`${at}.receivedAtMs`, f.receivedAtMs);
    if (f.templates !== undefined && (typeof f.templates !== 'number' || !Number.isSafeInteger(f.templates) || f.templates < 0)) {
      fail(`${at}.templates`, `must be an integer >= 0 when given, got ${shown(f.templates)}`);
    }
    const sensors = f.sensors;
    if (!Array.isArray(sensors) || sensors.length > MAX_SENSORS) fail(`${at}.sensors`, `must be a list of at most ${MAX_SENSORS} sensors`);
    for (let j = 0; j < sensors.length; j++) {
      const s = sensors[j] as Partial<SensorReading> | null;
      const sat = `${at}.sensors[${j}]`;
      if (typeof s !== 'object' || s === null) fail(sat, 'must be an object');
      checkText(`${sat}.id`, s.id, true);
      checkText(`${sat}.state`, s.state, true);
      checkText(`${sat}.unit`, s.unit, true);
      if (typeof s.value !== 'number' || !Number.isFinite(s.value)) fail(`${sat}.value`, `must be a finite number, got ${shown(s.value)}`);
    }
    readings += sensors.length;
  }
  return readings;
}

function checkLimit(v: unknown): number {
  if (v === undefined) return DEFAULT_QUERY_LIMIT;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_QUERY_LIMIT) {
    throw new StoreError('ERR_STORE_QUERY', `limit must be an integer 1..${MAX_QUERY_LIMIT}, got ${shown(v)}`);
  }
  return v;
}

function queryField(check: (field: string, v: unknown) => void, field: string, v: unknown): void {
  if (v === undefined) return;
  try {
    check(field, v);
  } catch (e) {
    throw new StoreError('ERR_STORE_QUERY', (e as Error).message);
  }
}

/** Checks a reading query (`ERR_STORE_QUERY` naming the field) and fills in its defaults. */
export function checkReadingQuery(query: unknown = {}): CheckedReadingQuery {
  if (typeof query !== 'object' || query === null) throw new StoreError('ERR_STORE_QUERY', 'a query must be an object');
  const q = query as ReadingQuery;
  queryField(checkAid, 'aid', q.aid);
  queryField((f, v) => checkText(f, v, false), 'deviceId', q.deviceId);
  queryField((f, v) => checkText(f, v, true), 'sensorId', q.sensorId);
  queryField(checkMs, 'fromMs', q.fromMs);
  queryField(checkMs, 'toMs', q.toMs);
  if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc') throw new StoreError('ERR_STORE_QUERY', `order must be "asc" or "desc", got ${shown(q.order)}`);
  const out: CheckedReadingQuery = { limit: checkLimit(q.limit), order: q.order ?? 'asc' };
  if (q.aid !== undefined) out.aid = q.aid;
  if (q.deviceId !== undefined) out.deviceId = q.deviceId;
  if (q.sensorId !== undefined) out.sensorId = q.sensorId;
  if (q.fromMs !== undefined) out.fromMs = q.fromMs;
  if (q.toMs !== undefined) out.toMs = q.toMs;
  return out;
}

/** Checks a device query (`ERR_STORE_QUERY`). */
export function checkDeviceQuery(query: unknown = {}): CheckedDeviceQuery {
  if (typeof query !== 'object' || query === null) throw new StoreError('ERR_STORE_QUERY', 'a query must be an object');
  const q = query as DeviceQuery;
  queryField(checkAid, 'aid', q.aid);
  queryField((f, v) => checkText(f, v, false), 'deviceId', q.deviceId);
  const out: CheckedDeviceQuery = { limit: checkLimit(q.limit) };
  if (q.aid !== undefined) out.aid = q.aid;
  if (q.deviceId !== undefined) out.deviceId = q.deviceId;
  return out;
}

/** The device changes of `frames`, one per (aid, device id). */
export function deviceDeltas(frames: readonly ReadingFrame[]): DeviceDelta[] {
  const byKey = new Map<string, DeviceDelta>();
  for (const f of frames) {
    const key = `${f.aid}\u0000${f.deviceId}`;
    let d = byKey.get(key);
    if (d === undefined) {
      d = { aid: f.aid, deviceId: f.deviceId, firstSeenMs: f.receivedAtMs, lastSeenMs: f.receivedAtMs, templates: null, full: 0, diff: 0, heart: 0, readings: 0 };
      byKey.set(key, d);
    }
    if (f.receivedAtMs < d.firstSeenMs) d.firstSeenMs = f.receivedAtMs;
    if (f.receivedAtMs >= d.lastSeenMs) {
      d.lastSeenMs = f.receivedAtMs;
      if (f.templates !== undefined) d.templates = f.templates;
    } else if (d.templates === null && f.templates !== undefined) d.templates = f.templates;
    if (f.strategy === 'FULL') d.full++;
    else if (f.strategy === 'DIFF') d.diff++;
    else d.heart++;
    d.readings += f.sensors.length;
  }
  return [...byKey.values()];
}

function checkOption(name: string, v: unknown, def: number, min: number, allowInfinity = false): number {
  if (v === undefined) return def;
  const ok = typeof v === 'number' && v >= min && (Number.isSafeInteger(v) || (allowInfinity && v === Number.POSITIVE_INFINITY));
  if (!ok) throw new StoreError('ERR_STORE_OPTION', `${name} must be an integer >= ${min}${allowInfinity ? ' or Infinity' : ''}, got ${shown(v)}`);
  return v as number;
}

interface Entry {
  /** The frames, or (a packing backend) empty and `packed` holds them. */
  readonly frames: readonly ReadingFrame[];
  readonly packed: PackedReadings | undefined;
  readonly frameCount: number;
  readonly readings: number;
  /** Buffer room taken: its readings, and one for each frame without sensors (it still updates a device row). */
  readonly units: number;
  readonly seq: number;
}

/** A batch being committed: its outcome is set when it lands (or is given up on), then it settles in order. */
interface InFlight {
  readonly frames: readonly ReadingFrame[];
  readonly packed: PackedReadings | undefined;
  readonly frameCount: number;
  readonly readings: number;
  readonly units: number;
  readonly throughSeq: number;
  outcome: 'committed' | StoreError | null;
}

interface Waiter {
  readonly frames: readonly ReadingFrame[];
  readonly readings: number;
  readonly units: number;
  resolve(seq: number): void;
  reject(error: unknown): void;
}

interface FlushWaiter {
  readonly seq: number;
  resolve(): void;
  reject(error: unknown): void;
}

/** The `frames` of an entry whose readings are packed. */
const NO_FRAMES: readonly ReadingFrame[] = Object.freeze([]);

let sinkCounter = 0;
const randomTag = (): string => {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
};

/** The buffering core (see the module comment): a {@link ReadingsSink} over any {@link ReadingsBackend}. */
export class BufferedReadingsSink implements ReadingsSink {
  readonly durability: StoreDurability;
  readonly #backend: ReadingsBackend;
  readonly #maxBuffered: number;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  readonly #maxAttempts: number;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #closeTimeoutMs: number;
  readonly #concurrency: number;
  readonly #onCommit: ((event: CommitEvent) => void) | undefined;
  readonly #onLost: ((event: LostEvent) => void) | undefined;
  readonly #onError: ((error: StoreError, attempt: number) => void) | undefined;
  readonly #tag = `${randomTag()}-${++sinkCounter}`;
  #queue: Entry[] = [];
  #queueHead = 0;
  /** Units (see `Entry`) in `#queue` plus those of the batch being committed. */
  #buffered = 0;
  #queued = 0;
  #seq = 0;
  #settledSeq = 0;
  #batchNo = 0;
  #waiters: Waiter[] = [];
  #flushWaiters: FlushWaiter[] = [];
  /** `committed(seq)` callers, in `seq` order (sequence numbers only grow). */
  #commitWaiters: { seq: number; resolve(ok: boolean): void }[] = [];
  #commitHead = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  /** Batches taken and not yet settled, in take order (they settle from the front). */
  #inflight: InFlight[] = [];
  #committing = 0;
  #signal: (() => void) | undefined;
  #urgent = false;
  #closing = false;
  #closed = false;
  #closeDeadline = 0;
  /** Retry waits to cut short when a close's deadline comes (one per batch waiting to retry). */
  readonly #wakers = new Set<() => void>();
  #stats = { accepted: 0, committed: 0, lost: 0, batches: 0, failedAttempts: 0 };
  /** The last sequence number of the last batch counted lost, for a late `committed` call. */
  #lostUpTo = 0;
  #lastError: { code: string; message: string; atMs: number } | null = null;
  #closingPromise: Promise<void> = Promise.resolve();

  constructor(backend: ReadingsBackend, options: ReadingsSinkOptions = {}) {
    this.#backend = backend;
    this.durability = backend.durability;
    this.#maxBuffered = checkOption('maxBuffered', options.maxBuffered, 100_000, 1);
    this.#batchSize = checkOption('batchSize', options.batchSize, 1000, 1);
    this.#intervalMs = checkOption('flushIntervalMs', options.flushIntervalMs, 20, 0);
    this.#maxAttempts = checkOption('maxAttempts', options.maxAttempts, Number.POSITIVE_INFINITY, 1, true);
    this.#retryMinMs = checkOption('retryMinMs', options.retryMinMs, 100, 0);
    this.#retryMaxMs = checkOption('retryMaxMs', options.retryMaxMs, 5000, 0);
    this.#closeTimeoutMs = checkOption('closeTimeoutMs', options.closeTimeoutMs, 10_000, 0);
    this.#concurrency = checkOption('concurrency', options.concurrency, 1, 1);
    this.#onCommit = options.onCommit;
    this.#onLost = options.onLost;
    this.#onError = options.onError;
  }

  write(frames: readonly ReadingFrame[]): Promise<number> {
    try {
      this.#checkWritable();
      const readings = checkFrames(frames);
      const units = this.#units(frames, readings);
      // FIFO: a write never overtakes one that waits for room.
      if (this.#waiters.length === 0 && this.#buffered + units <= this.#maxBuffered) return Promise.resolve(this.#accept(frames, readings, units));
      return new Promise((resolve, reject) => this.#waiters.push({ frames, readings, units, resolve, reject }));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  tryWrite(frames: readonly ReadingFrame[]): number | false {
    this.#checkWritable();
    const readings = checkFrames(frames);
    const units = this.#units(frames, readings);
    if (this.#waiters.length > 0 || this.#buffered + units > this.#maxBuffered) return false;
    return this.#accept(frames, readings, units);
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    // Frames still waiting for room were accepted by no one yet: not this flush's concern.
    if (this.#settledSeq >= this.#seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#flushWaiters.push({ seq: this.#seq, resolve, reject });
      this.#urgent = true;
      this.#kick();
    });
  }

  committed(seq: number): Promise<boolean> {
    if (seq <= this.#settledSeq) return Promise.resolve(this.#lastOutcome(seq));
    if (this.#closed || seq > this.#seq) return Promise.resolve(false);
    return new Promise((resolve) => this.#commitWaiters.push({ seq, resolve }));
  }

  /** The outcome of an already settled `seq`, erring on "not committed": false at or below the last frame ever counted lost. */
  #lastOutcome(seq: number): boolean {
    return seq > this.#lostUpTo;
  }

  async query(query?: ReadingQuery): Promise<Reading[]> {
    this.#checkOpen();
    const q = checkReadingQuery(query);
    return this.#read(() => this.#backend.query(q));
  }

  async devices(query?: DeviceQuery): Promise<DeviceSummary[]> {
    this.#checkOpen();
    const q = checkDeviceQuery(query);
    return this.#read(() => this.#backend.devices(q));
  }

  async status(): Promise<ReadingsSinkStatus> {
    this.#checkOpen();
    const stored = await this.#read(() => this.#backend.status());
    return {
      backend: this.#backend.name,
      location: this.#backend.location,
      durability: this.durability,
      stored,
      buffered: this.#buffered,
      maxBuffered: this.#maxBuffered,
      ...this.#stats,
      lastError: this.#lastError,
    };
  }

  /**
   * This sink's own counters, read without the database (so also after `close`, when `status`
   * rejects): what a caller needs to report the final accepted / committed / lost figures.
   */
  get counts(): { readonly accepted: number; readonly committed: number; readonly lost: number; readonly buffered: number; readonly batches: number; readonly failedAttempts: number } {
    return { ...this.#stats, buffered: this.#buffered };
  }

  async close(): Promise<void> {
    if (this.#closed || this.#closing) return this.#closingPromise;
    this.#closing = true;
    this.#closeDeadline = Date.now() + this.#closeTimeoutMs;
    this.#closingPromise = this.#close();
    return this.#closingPromise;
  }

  async #close(): Promise<void> {
    const lostBefore = this.#stats.lost;
    // Writes still waiting for room get it as the buffer drains; the close waits for them too.
    while (this.#settledSeq < this.#seq || this.#waiters.length > 0) {
      this.#urgent = true;
      this.#kick();
      await new Promise<void>((resolve) => {
        this.#flushWaiters.push({ seq: this.#seq, resolve, reject: () => resolve() });
      });
    }
    this.#closed = true;
    for (let k = this.#commitHead; k < this.#commitWaiters.length; k++) this.#commitWaiters[k]!.resolve(false);
    this.#commitWaiters = [];
    this.#commitHead = 0;
    await this.#backend.close();
    const lost = this.#stats.lost - lostBefore;
    if (lost > 0) throw new StoreError('ERR_STORE_WRITE', `${lost} readings could not be committed to ${this.#backend.location} before the close gave up; they are counted lost`);
  }

  #units(frames: readonly ReadingFrame[], readings: number): number {
    let units = readings;
    for (const f of frames) if (f.sensors.length === 0) units++;
    if (units > this.#maxBuffered) throw new StoreError('ERR_STORE_BATCH', `one write of ${readings} readings in ${frames.length} frames exceeds maxBuffered (${this.#maxBuffered}); split it`);
    return units;
  }

  #accept(frames: readonly ReadingFrame[], readings: number, units: number): number {
    this.#seq += frames.length;
    if (this.#backend.packed === true) this.#queue.push({ frames: NO_FRAMES, packed: packReadings(frames, readings), frameCount: frames.length, readings, units, seq: this.#seq });
    else this.#queue.push({ frames, packed: undefined, frameCount: frames.length, readings, units, seq: this.#seq });
    this.#buffered += units;
    this.#queued += units;
    this.#stats.accepted += readings;
    this.#kick();
    return this.#seq;
  }

  #kick(): void {
    if (this.#running) {
      for (const w of this.#wakers) w();
      this.#notify();
      return;
    }
    if (this.#queueHead >= this.#queue.length) return;
    if (this.#urgent || this.#closing || this.#queued >= this.#batchSize || this.#intervalMs === 0) {
      if (this.#timer !== undefined) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
      }
      this.#running = true;
      void this.#pump();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#urgent = true;
        this.#kick();
      }, this.#intervalMs);
    }
  }

  #notify(): void {
    const signal = this.#signal;
    this.#signal = undefined;
    signal?.();
  }

  /** Commits batches, up to `concurrency` at once, while there is a reason to. */
  async #pump(): Promise<void> {
    try {
      for (;;) {
        const due = this.#queueHead < this.#queue.length && (this.#urgent || this.#closing || this.#queued >= this.#batchSize);
        if (due && this.#committing < this.#concurrency) {
          this.#start(this.#takeBatch());
          continue;
        }
        if (this.#committing === 0) break;
        // A batch settled, or new frames came: look again.
        await new Promise<void>((resolve) => {
          this.#signal = resolve;
        });
      }
    } finally {
      this.#running = false;
    }
    // Anything left that is not due yet waits for the timer.
    this.#kick();
  }

  #start(entries: Entry[]): void {
    const packed = this.#backend.packed === true ? mergePacked(entries.map((e) => e.packed!)) : undefined;
    const job: InFlight = {
      frames: packed !== undefined ? NO_FRAMES : entries.length === 1 ? entries[0]!.frames : entries.flatMap((e) => e.frames),
      packed,
      frameCount: entries.reduce((n, e) => n + e.frameCount, 0),
      readings: entries.reduce((n, e) => n + e.readings, 0),
      units: entries.reduce((n, e) => n + e.units, 0),
      throughSeq: entries[entries.length - 1]!.seq,
      outcome: null,
    };
    this.#inflight.push(job);
    this.#committing++;
    void this.#commit(job).then(() => {
      this.#committing--;
      this.#settleInOrder();
      if (this.#queueHead >= this.#queue.length) this.#urgent = false;
      this.#notify();
    });
  }

  /** Settles the batches at the front that are done, in order. */
  #settleInOrder(): void {
    while (this.#inflight.length > 0 && this.#inflight[0]!.outcome !== null) {
      const job = this.#inflight.shift()!;
      const { frameCount, readings, units, throughSeq } = job;
      const outcome = job.outcome!;
      if (outcome === 'committed') {
        this.#stats.committed += readings;
        this.#stats.batches++;
        this.#settle(units, throughSeq, true);
        this.#onCommit?.({ frames: frameCount, readings, throughSeq });
      } else {
        this.#stats.lost += readings;
        this.#lostUpTo = throughSeq;
        this.#settle(units, throughSeq, false);
        if (this.#onLost !== undefined) {
          const lostFrames = job.packed !== undefined ? unpackReadings(job.packed) : job.frames;
          this.#onLost({ frames: frameCount, readings, throughSeq, error: outcome, lostFrames });
        }
      }
    }
  }

  #takeBatch(): Entry[] {
    const out: Entry[] = [];
    let units = 0;
    while (this.#queueHead < this.#queue.length && (out.length === 0 || units + this.#queue[this.#queueHead]!.units <= this.#batchSize)) {
      const e = this.#queue[this.#queueHead++]!;
      out.push(e);
      units += e.units;
    }
    this.#queued -= units;
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    return out;
  }

  /** Commits one batch, retrying with backoff, until it lands or is given up on; the outcome is settled in order by the caller. */
  async #commit(job: InFlight): Promise<void> {
    const { frames, packed, readings } = job;
    const id = `${this.#tag}-${++this.#batchNo}`;
    const devices = packed !== undefined ? packedDeviceDeltas(packed) : deviceDeltas(frames);
    let delay = this.#retryMinMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#backend.commit({ id, frames, packed, readings, devices, atMs: Date.now() });
        job.outcome = 'committed';
        return;
      } catch (e) {
        const error = isStoreError(e) ? e : new StoreError('ERR_STORE_WRITE', `a batch of ${readings} readings cannot be committed to ${this.#backend.location}`, { cause: e });
        this.#stats.failedAttempts++;
        this.#lastError = { code: error.code, message: error.message, atMs: Date.now() };
        this.#onError?.(error, attempt);
        // The flushes waiting for this batch learn of the failure now; the batch is retried.
        for (const w of this.#flushWaiters.splice(0)) w.reject(error);
        const giveUp = attempt >= this.#maxAttempts || (this.#closing && Date.now() + delay > this.#closeDeadline);
        if (giveUp) {
          job.outcome = error;
          return;
        }
        await new Promise<void>((resolve) => {
          const wake = () => {
            // A close cuts the wait short so its deadline is kept.
            if (this.#closing && Date.now() + delay > this.#closeDeadline) {
              clearTimeout(t);
              this.#wakers.delete(wake);
              resolve();
            }
          };
          const t = setTimeout(() => {
            this.#wakers.delete(wake);
            resolve();
          }, delay);
          this.#wakers.add(wake);
        });
        delay = Math.min(this.#retryMaxMs, Math.max(1, delay * 2));
      }
    }
  }

  #settle(units: number, throughSeq: number, ok: boolean): void {
    this.#buffered -= units;
    this.#settledSeq = throughSeq;
    const cw = this.#commitWaiters;
    while (this.#commitHead < cw.length && cw[this.#commitHead]!.seq <= throughSeq) cw[this.#commitHead++]!.resolve(ok);
    if (this.#commitHead > 1024 && this.#commitHead * 2 > cw.length) {
      this.#commitWaiters = cw.slice(this.#commitHead);
      this.#commitHead = 0;
    }
    const done = this.#flushWaiters.filter((w) => w.seq <= throughSeq);
    if (done.length > 0) {
      this.#flushWaiters = this.#flushWaiters.filter((w) => w.seq > throughSeq);
      for (const w of done) w.resolve();
    }
    // Room for waiting writes, in order.
    while (this.#waiters.length > 0 && this.#buffered + this.#waiters[0]!.units <= this.#maxBuffered) {
      const w = this.#waiters.shift()!;
      w.resolve(this.#accept(w.frames, w.readings, w.units));
    }
  }

  async #read<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw isStoreError(e) ? e : new StoreError('ERR_STORE_READ', `cannot be read from ${this.#backend.location}`, { cause: e });
    }
  }

  #closedError(): StoreError {
    return new StoreError('ERR_STORE_CLOSED', `the sink (${this.#backend.location}) is closed`);
  }

  #checkOpen(): void {
    if (this.#closed || this.#closing) throw this.#closedError();
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#backend.readonly === true) throw new StoreError('ERR_STORE_WRITE', `the sink (${this.#backend.location}) was opened read-only`);
  }
}

/** A backend in memory: the readings sink where nothing needs to survive a restart, and the suite's reference. */
export class MemoryReadingsBackend implements ReadingsBackend {
  readonly name = 'memory';
  readonly location = 'memory';
  readonly durability: StoreDurability = 'none';
  readonly readings: Reading[] = [];
  readonly #devices = new Map<string, DeviceSummary & { frames: { FULL: number; DIFF: number; HEART: number } }>();
  #lastWriteMs: number | null = null;
  /** Set to make the next commits fail (to test the core's retries); counts down to 0. */
  failNext = 0;

  async commit(batch: ReadingsBatch): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new StoreError('ERR_STORE_WRITE', 'the memory backend was told to fail this commit');
    }
    for (const f of batch.frames) {
      for (const s of f.sensors) {
        this.readings.push({ aid: f.aid, deviceId: f.deviceId, sensorId: s.id, state: s.state, value: s.value, unit: s.unit, timestampMs: f.timestampMs, receivedAtMs: f.receivedAtMs });
      }
    }
    for (const d of batch.devices) {
      const key = `${d.aid}\u0000${d.deviceId}`;
      const old = this.#devices.get(key);
      this.#devices.set(key, {
        aid: d.aid,
        deviceId: d.deviceId,
        firstSeenMs: old === undefined ? d.firstSeenMs : Math.min(old.firstSeenMs, d.firstSeenMs),
        lastSeenMs: old === undefined ? d.lastSeenMs : Math.max(old.lastSeenMs, d.lastSeenMs),
        templates: d.templates ?? old?.templates ?? null,
        frames: { FULL: (old?.frames.FULL ?? 0) + d.full, DIFF: (old?.frames.DIFF ?? 0) + d.diff, HEART: (old?.frames.HEART ?? 0) + d.heart },
        readings: (old?.readings ?? 0) + d.readings,
      });
    }
    this.#lastWriteMs = batch.atMs;
  }

  async query(q: CheckedReadingQuery): Promise<Reading[]> {
    const hits = this.readings
      .map((r, i) => [r, i] as const)
      .filter(
        ([r]) =>
          (q.aid === undefined || r.aid === q.aid) &&
          (q.deviceId === undefined || r.deviceId === q.deviceId) &&
          (q.sensorId === undefined || r.sensorId === q.sensorId) &&
          (q.fromMs === undefined || r.timestampMs >= q.fromMs) &&
          (q.toMs === undefined || r.timestampMs < q.toMs),
      );
    const dir = q.order === 'asc' ? 1 : -1;
    hits.sort(([a, i], [b, j]) => dir * (a.timestampMs - b.timestampMs || i - j));
    return hits.slice(0, q.limit).map(([r]) => ({ ...r }));
  }

  async devices(q: CheckedDeviceQuery): Promise<DeviceSummary[]> {
    return [...this.#devices.values()]
      .filter((d) => (q.aid === undefined || d.aid === q.aid) && (q.deviceId === undefined || d.deviceId === q.deviceId))
      .sort((a, b) => a.aid - b.aid || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0))
      .slice(0, q.limit)
      .map((d) => ({ ...d, frames: { ...d.frames } }));
  }

  async status(): Promise<StoredStatus> {
    return { readings: this.readings.length, devices: this.#devices.size, sizeBytes: null, lastWriteMs: this.#lastWriteMs };
  }

  async close(): Promise<void> {}
}

/** A sink in memory (`durability: 'none'`): for tests, demos and servers that keep nothing. */
export class MemoryReadingsSink extends BufferedReadingsSink {
  readonly backend: MemoryReadingsBackend;
  constructor(options: ReadingsSinkOptions = {}, backend = new MemoryReadingsBackend()) {
    super(backend, options);
    this.backend = backend;
  }
}
