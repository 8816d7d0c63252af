/**
 * A receiver: owns a share of the partitions (leases in NATS KV, see leases.ts), consumes each
 * owned partition's durable consumer in order with its own node, and stores what it decodes in
 * PostgreSQL, deduplicated by message id, before it acknowledges the messages.
 */
import { AUTH_DIFF, AUTH_FULL, AUTH_HEART, DATA_DIFF, DATA_DIFF_SEC, DATA_FULL, DATA_FULL_SEC, DATA_HEART, DATA_HEART_SEC } from '@opensynaptic/cmd';
import { OpenSynaptic, type OpenSynapticOptions } from '@opensynaptic/core';
import { KeyedThrottle, type Listener, TypedEvents } from '@opensynaptic/internal';
import { AuthServer } from '@opensynaptic/handshake';
import { deviceIdOf, partitionOf, sensorsOf } from '@opensynaptic/server';
import { isPlainText } from '@opensynaptic/store';
import { type Consumer, headers as natsHeaders, type JetStreamClient, type JetStreamManager, type JsMsg, type Msg, type NatsConnection, type Subscription } from 'nats';
import { ClusterError, intOption, messageOf, optionError } from './errors.js';
import { helloAid, sourceAid as frameAid, sourceTimestamp as frameTimestamp } from './frames.js';
import { assignPartitions, PartitionLeases } from './leases.js';
import { bucketKeyLister, type ConsumerReset, connectNats, ensureFramesStream, type NatsOptions, openLeaseBucket, resetConsumer, type StreamOptions } from './nats.js';
import { checkIdOptions, ClusterIds, type ClusterIdOptions, type IdsStatus } from './ids.js';
import { PartitionSessionStore } from './partition-sessions.js';
import { PartitionTemplateStore } from './partition-templates.js';
import { ClusterDatabase, type ClusterPostgresOptions, type ClusterReadingRow, type DeviceClock, type SessionChange } from './postgres.js';
import { checkMemberId, checkPartitions, checkPrefix, consumerName, DEFAULT_PARTITIONS, DEFAULT_PREFIX, helloSubject, isMemberId, leaseBucket, replySubject, streamName } from './subjects.js';

/** Options of {@link ClusterReceiver}. */
export interface ReceiverOptions {
  /** This receiver's id, unique in the cluster (1..64 characters A-Z, a-z, 0-9, _, -). */
  id: string;
  nats: NatsOptions;
  postgres: ClusterPostgresOptions;
  /** Subject prefix (default `os`). */
  prefix?: string | undefined;
  /** Partitions of the cluster (default 64; the same on every gateway and receiver). */
  partitions?: number | undefined;
  /** The frames stream, when this receiver is the first to need it. */
  stream?: StreamOptions | undefined;
  /** Replicas of the lease bucket (default: `stream.replicas`, else 1). */
  leaseReplicas?: number | undefined;
  /**
   * How long a lease lives without renewal, ms (default 15000, at least 1000): a receiver that
   * dies loses its partitions after this long. Renewed every quarter of it; a receiver that could
   * not renew for three quarters of it stops consuming the partition itself (it may have lost it).
   * Keep it above the time a NATS cluster takes to elect a new leader for the bucket when a node
   * dies (4 to 9 s in nats-server 2.9), or a node's loss moves partitions needlessly.
   */
  leaseTtlMs?: number | undefined;
  /** Messages one fetch takes from a partition's consumer (default 256). */
  fetchBatch?: number | undefined;
  /** How long a fetch waits for its batch to fill, ms (default and least 1000, the client's minimum). */
  fetchExpiresMs?: number | undefined;
  /** JetStream's ack wait of the consumers, ms (default 60000): only a receiver that hangs this long sees its messages go to another. */
  ackWaitMs?: number | undefined;
  /** Messages a consumer hands out unacknowledged at most (default 4096). */
  maxAckPending?: number | undefined;
  /** Most templates registries one partition's node caches (default 100000). */
  maxDevicesPerPartition?: number | undefined;
  /**
   * Options of each partition's node (clock, limits, `handshake`); its fusion registry is the
   * cluster's. Secure sessions are the cluster's too: each partition's node keeps its legacy
   * secure sessions and, with `handshake.auth.server` (the authenticated mode's server options:
   * `require`, `x25519`, `graceMs`...; not an `AuthServer`, one is made per partition), its
   * authenticated sessions in the shared store, committed with the batches (see the README).
   */
  node?: Omit<OpenSynapticOptions, 'fusion'> | undefined;
  /** Devices whose undecodable frames are reported per partition in `status()` (default 64). */
  maxReportedDevices?: number | undefined;
  /**
   * Id assignment by the cluster (default none: ids assigned beforehand). Give it on every
   * receiver (the same on each): whichever owns partition 0 answers the gateways' ID_REQUEST and
   * ID_POOL_REQ from one `IdAllocator` whose leases are in the cluster's schema (`os_store` kind
   * `leases`), loaded again by the next owner. See the README, "Ids".
   */
  ids?: ClusterIdOptions | undefined;
  /**
   * How long frames of an unordered edge (marked by their gateway: an MQTT shared subscription,
   * see `GatewayOptions.ordered`) are held before decoding, ms (default 500, 0 to 60000). Each
   * device's held frames are then decoded in the order of their timestamps, so a frame that
   * reached JetStream through another gateway up to this much later than its successor still
   * decodes before it. Frames of ordered gateways are not held. Frames without a clock (ts 0)
   * cannot be put back in order and keep the stream's.
   */
  reorderWindowMs?: number | undefined;
  /**
   * A FULL older than its device's state by more than this, ms (default 600000), is taken as the
   * device's clock having gone back (a restart without a real-time clock) and starts the device's
   * state over; a less old one is refused as late, like a late DIFF or HEART.
   */
  clockResetMs?: number | undefined;
}

/** Counters of one owned partition. */
export interface PartitionStatus {
  partition: number;
  /** `starting` (loading templates, resetting the consumer) or `consuming`. */
  state: 'starting' | 'consuming';
  /** Templates loaded from the shared store when it was taken. */
  templatesLoaded: number;
  frames: number;
  readings: number;
  acked: number;
  /** Messages JetStream delivered more than once (after a failover or a lost ack). */
  redelivered: number;
  /** Reading rows a commit found stored already (the redelivered frames'). */
  duplicates: number;
  /** Frames the node refused, by code. */
  errors: Record<string, number>;
  /** Frames the node ignored, by code: replays and frames outside an authenticated session's window (`ERR_AUTH_REPLAY`...). */
  ignored: Record<string, number>;
  /** Consumer lag: messages not yet delivered (`num_pending`), when status read it. */
  lag: number | null;
  /** Delivered and not acknowledged. */
  ackPending: number | null;
  /** Times the consumer was reset to its ack floor after deliveries were lost in transit (a NATS node lost). */
  resets: number;
  /** Redelivered frames found stored already and not decoded again (their state is in the store). */
  skipped: number;
  /** Frames older than their device's state, refused (`ERR_CLUSTER_LATE`): the reorder window was too short for them. */
  late: number;
  /** Frames that were their device's last applied frame again (same message id: a copy beyond JetStream's duplicate window), not decoded twice. */
  repeated: number;
  /** Frames decoded in another order than the stream's (put back in their device's order). */
  reordered: number;
  /** Frames of unordered gateways held for the reorder window now. */
  held: number;
  /** AUTH_HELLOs answered (a WELCOME or REJECT made durable, then sent back through the asking gateway). */
  hellos: number;
  /**
   * AUTH_HELLOs not answered: one of a device of another partition, a second one of a device already waiting, more than 256 waiting
   * for the partition (a flood), one that waited more than 2 s, a session commit that failed, or
   * the partition being given up.
   */
  hellosDropped: number;
  /** Secure sessions loaded from the shared store when it was taken: legacy secure, authenticated. */
  sessionsLoaded: { secure: number; auth: number };
  /** Answers to devices (SECURE_DICT_READY, AUTH_REJECT) sent to their gateway after the commit. */
  replies: number;
}

/** `status()` of a receiver. */
export interface ReceiverStatus {
  id: string;
  state: 'created' | 'running' | 'stopping' | 'stopped';
  members: string[];
  partitions: PartitionStatus[];
  /** Partitions taken (at start and from receivers that died or left). */
  claims: number;
  /** Partitions given up gracefully (to even the load, or on stop). */
  releases: number;
  /** Partitions lost: another receiver holds the lease, or it could not be renewed in time. */
  lost: number;
  totals: { frames: number; readings: number; acked: number; redelivered: number; duplicates: number; skipped: number; resets: number; errors: number; undecodable: number; late: number; repeated: number; reordered: number; hellos: number; hellosDropped: number; replies: number; ignored: number };
  /**
   * Cost of a template change: ms from the decode of a FULL that changed a template to the commit
   * that made it durable with its batch (count, median, 95th percentile, max of the last 1024).
   */
  templateCommitMs: { count: number; median: number | null; p95: number | null; max: number | null };
  /** Batch commits (readings and state together): count and median ms of the last 1024. */
  commitMs: { count: number; median: number | null };
  /** The cluster's id allocator, while this receiver runs it (it owns partition 0 and has `ids`), else `null`. */
  ids: IdsStatus | null;
}

/** Events of a receiver (`on`). */
export interface ReceiverEvents {
  /** A partition was taken: its templates loaded, its consumer reset to its ack floor. */
  claimed: { partition: number; templates: number; ackFloor: number; ackPending: number; pending: number; ms: number };
  /** A partition was given up (`reason`: `rebalance`, `stop`) or lost (`lease-lost`, `lease-expired`). */
  released: { partition: number; reason: 'rebalance' | 'stop' | 'lease-lost' | 'lease-expired' };
  /**
   * A frame that was not stored: a DIFF or HEART whose template is unknown (a fusion code), one
   * older than its device's state (`ERR_CLUSTER_LATE`), a frame of a device of another partition
   * (`ERR_CLUSTER_PARTITION`), or one whose texts PostgreSQL cannot keep (`ERR_CLUSTER_VALUE`:
   * the frame is decoded, so its template and its device's state move on as the device's own
   * did, and only its readings are refused); `message` says which and why.
   */
  undecodable: { partition: number; aid: number; seq: number; code: string; message: string };
  /** Something failed (NATS, PostgreSQL); the receiver keeps going and retries. */
  error: { error: Error; partition?: number };
}

interface Owned {
  p: number;
  revision: number;
  /** The lease revision of the claim: the fencing token of every commit of this ownership. */
  claimRevision: number;
  renewedAt: number;
  stopping: boolean;
  reason: ReceiverEvents['released']['reason'];
  node: OpenSynaptic | null;
  templates: PartitionTemplateStore | null;
  sessions: PartitionSessionStore | null;
  loop: Promise<void> | null;
  /** The partition's node and staging are used by one task at a time (a batch, or a HELLO). */
  lock: Promise<void>;
  /** The subscription answering the partition's AUTH_HELLOs, while consuming. */
  hello: Subscription | null;
  /** When the node last expired idle sessions (`sweep`). */
  sweptAt: number;
  /** Devices with a HELLO waiting for the lock (bounded by `HELLO_QUEUE_MAX`). */
  hellosQueued: Set<number>;
  /** The cluster's id allocator, on the owner of partition `IDS_PARTITION` with `ids`, and the task that opens it. */
  ids: ClusterIds | null;
  idsTask: Promise<void> | null;
  status: PartitionStatus;
  /** Aids the store did not have, and when it was asked. */
  absent: KeyedThrottle<number>;
  /** The consumer's delivery sequence of the last message taken (a jump: deliveries lost in transit). */
  lastDelivery: number;
  /** Messages up to this stream sequence may be stored already (delivered before the last reset). */
  checkUpTo: number;
  reset: ConsumerReset | null;
  /** The last frame each device's state took (bounded by maxDevicesPerPartition, least recent out first). */
  clocks: Map<number, DeviceClock>;
  /** Every stored clock of the partition is in `clocks` (none left out by the bound): a miss is a new device. */
  clocksComplete: boolean;
  /** Frames of unordered gateways waiting out the reorder window, in stream order. */
  held: Held[];
}

interface Held {
  m: JsMsg;
  aid: number | undefined;
  /** The frame's device timestamp (0: none, or not a data frame). */
  ts: number;
  /** From an unordered gateway: held for the window. */
  shared: boolean;
  streamMs: number;
  fetchedAt: number;
}

const ABSENT_RETRY_MS = 1000;
const ABSENT_MAX = 4096;
/** The partition whose owner runs the cluster's id allocator (with `ReceiverOptions.ids`). */
const IDS_PARTITION = 0;
/** How often a partition's handshake expires idle sessions, ms (their lifetimes are minutes to days). */
const SWEEP_MS = 10_000;
/** A HELLO that waited longer than this for its partition is dropped: the asking gateway (2 s by default) gave up on it. */
const HELLO_MAX_WAIT_MS = 2000;
/** HELLOs one partition keeps waiting behind its batch in hand: a flood of them cannot grow the queue. */
const HELLO_QUEUE_MAX = 256;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The counters `status().totals` sums over partitions (all but `undecodable`, which the receiver counts itself). */
type Counts = Omit<ReceiverStatus['totals'], 'undecodable'>;
const SUMMED = ['frames', 'readings', 'acked', 'redelivered', 'duplicates', 'skipped', 'resets', 'late', 'repeated', 'reordered', 'hellos', 'hellosDropped', 'replies'] as const satisfies readonly (keyof Counts & keyof PartitionStatus)[];

/** Adds partition `s`'s counters into `into` (the totals of status(), or those of partitions no longer owned). */
function addCounts(into: Counts, s: PartitionStatus): void {
  for (const k of SUMMED) into[k] += s[k];
  for (const n of Object.values(s.errors)) into.errors += n;
  for (const n of Object.values(s.ignored)) into.ignored += n;
}

/** A bounded list of samples and its order statistics. */
class Samples {
  readonly #max: number;
  readonly #v: number[] = [];
  count = 0;
  constructor(max: number) {
    this.#max = max;
  }
  add(x: number): void {
    this.count++;
    this.#v.push(x);
    if (this.#v.length > this.#max) this.#v.shift();
  }
  quantile(q: number): number | null {
    if (this.#v.length === 0) return null;
    const s = [...this.#v].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  }
  get max(): number | null {
    return this.#v.length === 0 ? null : Math.max(...this.#v);
  }
}

const NEEDS_TEMPLATE = new Set(['ERR_FUSION_TEMPLATE_MISSING', 'ERR_FUSION_NO_VALUES']);
const NEEDS_TEMPLATE_CMD = new Set([DATA_DIFF, DATA_DIFF_SEC, DATA_HEART, DATA_HEART_SEC, AUTH_DIFF, AUTH_HEART]);

/**
 * The receiver. `start()` connects, opens the database and the lease bucket and begins taking
 * partitions; `stop()` finishes the batches in hand, releases its leases at once (the others
 * take the partitions without waiting for the TTL) and closes.
 */
export class ClusterReceiver {
  readonly id: string;
  readonly prefix: string;
  readonly partitions: number;
  readonly leaseTtlMs: number;
  readonly #options: ReceiverOptions;
  readonly #fetchBatch: number;
  readonly #fetchExpiresMs: number;
  readonly #ackWaitMs: number;
  readonly #maxAckPending: number;
  readonly #maxDevices: number;
  readonly #events = new TypedEvents<ReceiverEvents>();
  readonly #owned = new Map<number, Owned>();
  #state: ReceiverStatus['state'] = 'created';
  #nc: NatsConnection | null = null;
  #jsm: JetStreamManager | null = null;
  #js: JetStreamClient | null = null;
  #leases: PartitionLeases | null = null;
  #db: ClusterDatabase | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #ticking: Promise<void> | null = null;
  #members: string[] = [];
  #counts = { claims: 0, releases: 0, lost: 0, undecodable: 0 };
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  /** Whether the frames stream is a work queue (see `StreamOptions.retention`): read at start. */
  #workqueue = false;
  /** Totals of partitions no longer owned (their counters fold in here). */
  #past = { frames: 0, readings: 0, acked: 0, redelivered: 0, duplicates: 0, skipped: 0, resets: 0, errors: 0, late: 0, repeated: 0, reordered: 0, hellos: 0, hellosDropped: 0, replies: 0, ignored: 0 };
  readonly #reorderMs: number;
  readonly #clockResetMs: number;
  readonly #templateMs = new Samples(1024);
  readonly #commitMs = new Samples(1024);

  constructor(options: ReceiverOptions) {
    if (typeof options !== 'object' || options === null) throw optionError('options', 'an object is needed');
    this.id = checkMemberId(options.id);
    this.prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
    this.partitions = checkPartitions(options.partitions ?? DEFAULT_PARTITIONS);
    this.leaseTtlMs = intOption('leaseTtlMs', options.leaseTtlMs, 15_000, 1000);
    this.#fetchBatch = intOption('fetchBatch', options.fetchBatch, 256, 1, 10_000);
    this.#fetchExpiresMs = intOption('fetchExpiresMs', options.fetchExpiresMs, 1000, 1000);
    this.#ackWaitMs = intOption('ackWaitMs', options.ackWaitMs, 60_000, 1000);
    this.#maxAckPending = intOption('maxAckPending', options.maxAckPending, 4096, 1);
    this.#maxDevices = intOption('maxDevicesPerPartition', options.maxDevicesPerPartition, 100_000, 1);
    this.#reorderMs = intOption('reorderWindowMs', options.reorderWindowMs, 500, 0, 60_000);
    this.#clockResetMs = intOption('clockResetMs', options.clockResetMs, 600_000, 0);
    if (this.#reorderMs + this.#fetchExpiresMs >= this.#ackWaitMs) throw optionError('reorderWindowMs', `${this.#reorderMs} plus fetchExpiresMs (${this.#fetchExpiresMs}) must stay below ackWaitMs (${this.#ackWaitMs}): a held frame would be delivered again`);
    if (this.#maxAckPending < this.#fetchBatch) throw optionError('maxAckPending', `${this.#maxAckPending} is below fetchBatch (${this.#fetchBatch})`);
    const hs = options.node?.handshake;
    if (hs?.auth?.server instanceof AuthServer) throw optionError('node.handshake.auth.server', 'give the server options, not an AuthServer: each partition gets its own, over the shared session store');
    if (options.ids !== undefined) checkIdOptions(options.ids);
    if (hs?.sessionStore !== undefined) throw optionError('node.handshake.sessionStore', 'the cluster keeps the sessions (in PostgreSQL, with the batches)');
    if (hs?.auth?.server?.store !== undefined) throw optionError('node.handshake.auth.server.store', 'the cluster keeps the sessions and reads the secrets from its PostgreSQL schema');
    this.#options = options;
  }

  on<K extends keyof ReceiverEvents>(type: K, listener: Listener<ReceiverEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  get state(): ReceiverStatus['state'] {
    return this.#state;
  }

  /** The partitions owned now. */
  owned(): number[] {
    return [...this.#owned.keys()].sort((a, b) => a - b);
  }

  /** Connects to NATS and PostgreSQL and starts taking partitions (the first round runs before it resolves). */
  start(): Promise<void> {
    if (this.#state !== 'created') return Promise.reject(new ClusterError('ERR_CLUSTER_STATE', `start() in state ${this.#state}: a receiver runs once`));
    this.#state = 'running';
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    try {
      this.#db = await ClusterDatabase.open(this.#options.postgres);
      this.#nc = await connectNats(this.#options.nats, `os-receiver-${this.id}`);
      this.#jsm = await this.#nc.jetstreamManager();
      this.#js = this.#nc.jetstream();
      this.#workqueue = (await ensureFramesStream(this.#jsm, this.prefix, this.#options.stream)) === 'workqueue';
      const replicas = intOption('leaseReplicas', this.#options.leaseReplicas, this.#options.stream?.replicas ?? 1, 1, 5);
      const kv = await openLeaseBucket(this.#nc, this.prefix, this.leaseTtlMs, replicas);
      this.#leases = new PartitionLeases(kv, this.id, { listKeys: bucketKeyLister(this.#jsm, leaseBucket(this.prefix)) });
    } catch (e) {
      this.#state = 'stopped';
      await this.#closeAll();
      throw e;
    }
    // Announce first and let receivers started together see each other, so the first round
    // already aims at the shared assignment instead of taking everything and handing it back.
    await this.#leases!.heartbeat().catch((e: unknown) => this.#error(e));
    await sleep(Math.min(1000, Math.floor(this.leaseTtlMs / 4)));
    await this.#tick();
    this.#timer = setInterval(() => void this.#tick(), Math.max(250, Math.floor(this.leaseTtlMs / 4)));
  }

  /** One round: membership heartbeat, lease renewals, then claims and releases toward the balanced assignment. */
  #tick(): Promise<void> {
    if (this.#ticking !== null) return this.#ticking;
    this.#ticking = this.#round()
      .catch((error: unknown) => this.#error(error))
      .finally(() => {
        this.#ticking = null;
      });
    return this.#ticking;
  }

  async #round(): Promise<void> {
    const leases = this.#leases!;
    if (this.#state !== 'running') return;
    let beat = true;
    try {
      await leases.heartbeat();
    } catch (e) {
      beat = false;
      this.#error(e);
    }
    const now = Date.now();
    await Promise.all(
      [...this.#owned.values()].map(async (o) => {
        if (o.stopping) return;
        try {
          const rev = await leases.renew(o.p, o.revision);
          if (rev === null) this.#drop(o, 'lease-lost');
          else {
            o.revision = rev;
            o.renewedAt = Date.now();
          }
        } catch (e) {
          this.#error(e, o.p);
          // Unrenewed for most of its life: another receiver may take it any moment, so stop first.
          if (now - o.renewedAt > (this.leaseTtlMs * 3) / 4) this.#drop(o, 'lease-expired');
        }
      }),
    );
    if (!beat || this.#state !== 'running') return;
    let members: string[];
    try {
      members = await leases.members();
    } catch (e) {
      this.#error(e);
      return;
    }
    if (!members.includes(this.id)) members.push(this.id);
    this.#members = members.sort();
    const mine = new Set(assignPartitions(this.#members, this.partitions).get(this.id) ?? []);
    for (const o of this.#owned.values()) if (!mine.has(o.p) && !o.stopping) void this.#release(o, 'rebalance');
    for (const p of mine) {
      if (this.#owned.has(p) || this.#state !== 'running') continue;
      let rev: number | null;
      try {
        rev = await leases.claim(p);
      } catch (e) {
        this.#error(e, p);
        continue;
      }
      if (rev === null) continue; // still held (its owner stops soon, or its lease expires)
      this.#take(p, rev);
    }
  }

  #take(p: number, revision: number): void {
    const status: PartitionStatus = { partition: p, state: 'starting', templatesLoaded: 0, frames: 0, readings: 0, acked: 0, redelivered: 0, duplicates: 0, errors: {}, ignored: {}, lag: null, ackPending: null, resets: 0, skipped: 0, late: 0, repeated: 0, reordered: 0, held: 0, hellos: 0, hellosDropped: 0, sessionsLoaded: { secure: 0, auth: 0 }, replies: 0 };
    const o: Owned = { p, revision, claimRevision: revision, renewedAt: Date.now(), stopping: false, reason: 'stop', node: null, templates: null, sessions: null, loop: null, lock: Promise.resolve(), hello: null, sweptAt: Date.now(), hellosQueued: new Set(), ids: null, idsTask: null, status, absent: new KeyedThrottle<number>(ABSENT_RETRY_MS, ABSENT_MAX), lastDelivery: 0, checkUpTo: 0, reset: null, clocks: new Map(), clocksComplete: false, held: [] };
    this.#owned.set(p, o);
    this.#counts.claims++;
    o.loop = this.#consume(o).catch((e: unknown) => this.#error(e, p));
  }

  /** Stops consuming `o` (lease lost or expired) without waiting; its lease is not ours to release. */
  #drop(o: Owned, reason: 'lease-lost' | 'lease-expired'): void {
    if (o.stopping) return;
    o.stopping = true;
    o.reason = reason;
    this.#counts.lost++;
  }

  /** Stops consuming `o` after the batch in hand, then deletes its lease (others may take it at once). */
  async #release(o: Owned, reason: 'rebalance' | 'stop'): Promise<void> {
    if (o.stopping) {
      await o.loop;
      return;
    }
    o.stopping = true;
    o.reason = reason;
    await o.loop;
    // The acknowledgements are on the wire before the lease goes: the next owner's ack floor sees them.
    await this.#nc?.flush().catch(() => undefined);
    try {
      await this.#leases?.release(o.p, o.revision);
    } catch (e) {
      this.#error(e, o.p);
    }
    this.#counts.releases++;
  }

  #forget(o: Owned): void {
    if (this.#owned.get(o.p) !== o) return;
    this.#owned.delete(o.p);
    addCounts(this.#past, o.status);
    this.#events.emit('released', { partition: o.p, reason: o.reason });
  }

  /** Takes partition `o.p` over (templates first, then the consumer from its ack floor) and consumes it until told to stop. */
  async #consume(o: Owned): Promise<void> {
    const t0 = Date.now();
    const db = this.#db!;
    try {
      // Its templates before its first message: a DIFF of a moved device decodes at once.
      const templates = new PartitionTemplateStore(db);
      const sessions = new PartitionSessionStore(db, o.p);
      const user = this.#options.node;
      const hs = user?.handshake;
      const authServer = hs?.auth?.server as Exclude<NonNullable<NonNullable<typeof hs>['auth']>['server'], AuthServer> | undefined;
      const node = new OpenSynaptic({
        assignedId: 1,
        deviceId: 'RECEIVER',
        ...user,
        // Sessions write through to the staging (saved before every commit): an hour is "never on its own".
        handshake: { ...hs, sessionStore: sessions, ...(authServer === undefined ? {} : { auth: { ...hs!.auth, server: { ...authServer, store: sessions, saveIntervalMs: 3_600_000 } } }) },
        fusion: { registry: { store: templates, syncIntervalMs: 0, maxEntries: this.#maxDevices, ttlMs: Number.POSITIVE_INFINITY } },
      });
      for (;;) {
        try {
          // The claim fences the previous owner's commits before its state is read: one that
          // paused past its lease can no longer overwrite what this one loads.
          if (!(await this.#fence(o))) return;
          // The partition's devices are those whose state a batch of it committed (with their
          // clocks); a device with templates but no row (stored by a single server) loads on
          // demand before its first DIFF or HEART.
          const devices = await db.partitionDevices(o.p, this.#maxDevices + 1);
          o.clocksComplete = devices.length <= this.#maxDevices;
          o.clocks.clear();
          for (const d of devices.slice(0, this.#maxDevices)) o.clocks.set(d.aid, d);
          o.status.templatesLoaded = await node.fusion.registry.preload([...o.clocks.keys()]);
          // The partition's secure and authenticated sessions, with their replay state.
          await node.protocol.open();
          o.status.sessionsLoaded = { secure: node.protocol.sessionCount ?? 0, auth: node.protocol.authServer?.devices ?? 0 };
          break;
        } catch (e) {
          this.#error(e, o.p);
          if (o.stopping) return;
          await sleep(500);
        }
      }
      o.node = node;
      o.templates = templates;
      o.sessions = sessions;
      let consumer = await this.#reset(o);
      if (consumer === null) return;
      o.status.state = 'consuming';
      o.hello = this.#nc!.subscribe(helloSubject(this.prefix, o.p), { queue: 'owner', callback: (err, m) => (err === null ? this.#queueHello(o, m) : this.#error(err, o.p)) });
      if (o.p === IDS_PARTITION && this.#options.ids !== undefined) o.idsTask = this.#runIds(o);
      this.#events.emit('claimed', { partition: o.p, templates: o.status.templatesLoaded, ackFloor: o.reset!.ackFloor, ackPending: o.reset!.ackPending, pending: o.reset!.pending, ms: Date.now() - t0 });
      while (!o.stopping && this.#state === 'running') {
        const msgs: JsMsg[] = [];
        try {
          const iter = await consumer.fetch({ max_messages: this.#fetchBatch, expires: this.#fetchExpiresMs });
          for await (const m of iter) msgs.push(m);
        } catch (e) {
          if (msgs.length === 0) {
            this.#error(e, o.p);
            await sleep(200);
            continue;
          }
        }
        // Deliveries lost in transit (the connection to a node that died) show as a jump of the
        // delivery sequence, or come back later as redeliveries: left alone, they would be
        // decoded after newer frames. Take what came before the jump, then start the consumer
        // again from its ack floor.
        let cut = msgs.length;
        for (let i = 0; i < msgs.length; i++) {
          const info = msgs[i]!.info;
          if (info.deliverySequence !== o.lastDelivery + 1 || info.redeliveryCount > 1) {
            cut = i;
            break;
          }
          o.lastDelivery = info.deliverySequence;
        }
        const fetchedAt = Date.now();
        for (let i = 0; i < cut; i++) {
          const m = msgs[i]!;
          const ts = frameTimestamp(m.data) ?? 0;
          o.held.push({ m, aid: frameAid(m.data), ts, shared: m.headers?.get('Os-Order') === 'shared', streamMs: Math.floor(m.info.timestampNanos / 1e6), fetchedAt });
        }
        const reset = cut < msgs.length && !o.stopping;
        const batch = this.#ready(o, Date.now());
        if (batch.length > 0) await this.#locked(o, () => this.#handle(o, batch));
        if (reset) {
          // What is still held was not acknowledged: it comes again from the ack floor.
          o.held = [];
          o.status.held = 0;
          o.status.resets++;
          await this.#nc?.flush().catch(() => undefined);
          const again = await this.#reset(o);
          if (again === null) return;
          consumer = again;
        }
      }
    } finally {
      o.hello?.unsubscribe();
      o.hello = null;
      // The allocator's reservation given back and its leases written before the lease goes:
      // the next owner of partition 0 loads them.
      o.stopping = true;
      await o.ids?.close().catch((e: unknown) => this.#error(e, o.p));
      await o.idsTask;
      await o.lock;
      this.#forget(o);
    }
  }

  /**
   * Records this ownership's claim in PostgreSQL (`claimPartition`), which fences every commit
   * of an earlier owner. False (and the partition dropped) when a newer claim is recorded and
   * the lease is no longer this receiver's; a row from a lease bucket made anew (revisions that
   * started over) is overwritten once the lease is confirmed ours.
   */
  async #fence(o: Owned): Promise<boolean> {
    const db = this.#db!;
    if (await db.claimPartition(o.p, this.id, o.claimRevision)) return true;
    const rev = await this.#leases!.renew(o.p, o.revision);
    if (rev === null) {
      this.#drop(o, 'lease-lost');
      return false;
    }
    o.revision = rev;
    o.renewedAt = Date.now();
    return db.claimPartition(o.p, this.id, o.claimRevision, true);
  }

  /** Whether `e` is a commit refused because a newer owner claimed the partition; the partition is then dropped. */
  #fenced(o: Owned, e: unknown): boolean {
    if (!(e instanceof ClusterError && e.code === 'ERR_CLUSTER_FENCED')) return false;
    this.#error(e, o.p);
    this.#drop(o, 'lease-lost');
    return true;
  }

  /** Opens the cluster's id allocator on the owner of partition 0 (retried apart from the partition's frames, which do not wait for it) and answers id requests. */
  async #runIds(o: Owned): Promise<void> {
    const going = () => !o.stopping && this.#state === 'running';
    for (let attempt = 0; going(); attempt++) {
      let ids: ClusterIds;
      try {
        ids = await ClusterIds.open(this.#db!, this.#options.postgres, this.#options.ids!, (e) => this.#error(e, o.p));
      } catch (e) {
        // Another receiver's allocator still closing, or PostgreSQL away: partition 0's frames go on meanwhile.
        if (!(e instanceof ClusterError && e.code === 'ERR_CLUSTER_STATE')) this.#error(e, o.p);
        await sleep(Math.min(2000, 100 * 2 ** attempt));
        continue;
      }
      attempt = 0;
      o.ids = ids;
      if (going()) {
        ids.listen(this.#nc!, this.prefix);
        // Until closed (the partition given up) or its lock lost (then it starts over).
        await ids.lost;
      }
      o.ids = null;
      await ids.close().catch((e: unknown) => this.#error(e, o.p));
    }
  }

  /**
   * Runs `task` once the partition's earlier tasks (batches, HELLOs) are done. Every
   * `SWEEP_MS` the handshake first expires what is idle (secure sessions, authenticated sessions
   * and unanswered HELLOs past their lifetimes), so their deletions leave with the task's commit.
   * (The templates need no sweep: they never expire here, and every change is staged at once.)
   */
  #locked(o: Owned, task: () => Promise<void>): Promise<void> {
    const run = o.lock
      .then(() => {
        const now = Date.now();
        if (o.node !== null && now - o.sweptAt >= SWEEP_MS) {
          o.sweptAt = now;
          o.node.protocol.sweep();
        }
        return task();
      })
      .catch((e: unknown) => this.#error(e, o.p));
    o.lock = run;
    return run;
  }

  /** Queues a HELLO behind the partition's batch in hand; beyond `HELLO_QUEUE_MAX` waiting, it is dropped (the device asks again). */
  #queueHello(o: Owned, m: Msg): void {
    const aid = helloAid(m.data);
    // One waiting per device (a repeated HELLO replaces nothing: the device takes the first
    // WELCOME), and a bounded queue in all.
    // A HELLO of another partition's device (forged, or a gateway with another partition count)
    // would start its session where its frames are not decoded.
    if (aid === undefined || partitionOf(aid, this.partitions) !== o.p || o.hellosQueued.has(aid) || o.hellosQueued.size >= HELLO_QUEUE_MAX) {
      o.status.hellosDropped++;
      return;
    }
    o.hellosQueued.add(aid);
    const at = Date.now();
    void this.#locked(o, () => {
      o.hellosQueued.delete(aid);
      // Behind a long batch: the gateway gave up on it, so its WELCOME would reach no one.
      if (Date.now() - at > HELLO_MAX_WAIT_MS) {
        o.status.hellosDropped++;
        return Promise.resolve();
      }
      return this.#hello(o, m, aid);
    });
  }

  /**
   * Answers an AUTH_HELLO of a device of partition `o.p`: its secrets read from the key store,
   * the node's WELCOME (a new pending session) or REJECT, the session committed, then the answer
   * sent back. No answer (the requesting gateway times out, the device asks again) when the
   * session cannot be made durable or the partition is being given up.
   */
  async #hello(o: Owned, m: Msg, aid: number): Promise<void> {
    if (o.stopping || o.node === null) {
      o.status.hellosDropped++;
      return;
    }
    const node = o.node;
    const auth = node.protocol.authServer;
    if (auth !== null) {
      try {
        await auth.reloadKeys(aid);
      } catch (e) {
        // The key store failed: answered from the secrets in memory.
        this.#error(e, o.p);
      }
    }
    const r = await node.receiveAsync(m.data, null);
    const changes = await this.#stagedSessions(o);
    if (changes.length > 0) {
      try {
        await this.#db!.commit([], [], this.id, [], changes, { partition: o.p, revision: o.claimRevision });
      } catch (e) {
        o.sessions!.restore(changes);
        if (!this.#fenced(o, e)) this.#error(e, o.p);
        o.status.hellosDropped++;
        return;
      }
    }
    if (o.stopping) {
      o.status.hellosDropped++;
      return;
    }
    o.status.hellos++;
    m.respond(r.response ?? new Uint8Array(0));
  }

  /** The node's session changes, saved into the partition's staging and taken from it. */
  async #stagedSessions(o: Owned): Promise<SessionChange[]> {
    try {
      await o.node!.protocol.flush();
    } catch (e) {
      // The staging cannot fail; a handshake store error is reported and its changes stay pending.
      this.#error(e, o.p);
    }
    return o.sessions!.take();
  }

  /**
   * The held frames to decode now, each device's in the order of its timestamps; the rest stay
   * held. A frame of an ordered gateway is ready at once; one of an unordered gateway once the
   * stream has moved `reorderWindowMs` past it, or it has waited that long here (a quiet
   * partition), or the hold is at its bound (the consumer's `maxAckPending` less a fetch). A
   * held frame also goes now when a ready frame of its device is newer (or later in the stream,
   * for frames without a clock): it must decode first.
   */
  #ready(o: Owned, now: number): JsMsg[] {
    const held = o.held;
    if (held.length === 0) return [];
    const w = this.#reorderMs;
    const newest = held[held.length - 1]!.streamMs;
    const forced = held.length + this.#fetchBatch - this.#maxAckPending;
    const go = held.map((h, i) => !h.shared || w === 0 || i < forced || h.streamMs + w <= newest || h.fetchedAt + w <= now);
    if (!go.every(Boolean)) {
      // Per device: the newest ready timestamp and the last ready position.
      const newestTs = new Map<number, number>();
      const lastAt = new Map<number, number>();
      for (let i = 0; i < held.length; i++) {
        const h = held[i]!;
        if (!go[i] || h.aid === undefined) continue;
        newestTs.set(h.aid, Math.max(newestTs.get(h.aid) ?? 0, h.ts));
        lastAt.set(h.aid, i);
      }
      for (let i = 0; i < held.length; i++) {
        const h = held[i]!;
        if (go[i] || h.aid === undefined) continue;
        if ((h.ts > 0 && h.ts <= (newestTs.get(h.aid) ?? 0)) || i < (lastAt.get(h.aid) ?? -1)) go[i] = true;
      }
    }
    const out: Held[] = [];
    const keep: Held[] = [];
    for (let i = 0; i < held.length; i++) (go[i] ? out : keep).push(held[i]!);
    o.held = keep;
    o.status.held = keep.length;
    // Each device's frames back in the order of their timestamps, in the positions its frames
    // hold (other devices' frames stay where they are): also within one fetch when the window is 0.
    const byAid = new Map<number, number[]>();
    for (let i = 0; i < out.length; i++) {
      const h = out[i]!;
      if (h.aid === undefined) continue;
      const at = byAid.get(h.aid);
      if (at === undefined) byAid.set(h.aid, [i]);
      else at.push(i);
    }
    const sorted = out.slice();
    for (const at of byAid.values()) {
      if (at.length < 2) continue;
      const group = at.map((i) => out[i]!);
      // Only an unordered edge's frames move. Without a clock there is no order to restore, and a
      // spread past clockResetMs is a clock that went back (its FULL must stay after the older frames).
      if (group.some((h) => h.ts === 0 || !h.shared)) continue;
      let lo = group[0]!.ts;
      let hi = lo;
      for (const h of group) {
        lo = Math.min(lo, h.ts);
        hi = Math.max(hi, h.ts);
      }
      if (hi - lo > this.#clockResetMs) continue;
      group.sort((a, b) => a.ts - b.ts || a.m.seq - b.m.seq);
      for (let k = 0; k < at.length; k++) {
        if (group[k] !== out[at[k]!]) o.status.reordered++;
        sorted[at[k]!] = group[k]!;
      }
    }
    return sorted.map((h) => h.m);
  }

  /** Resets `o`'s consumer to its ack floor (retrying until it works or `o` stops) and opens it; `null` when `o` stopped first. */
  async #reset(o: Owned): Promise<Consumer | null> {
    const known: ConsumerReset = { ackFloor: 0, ackPending: 0, pending: 0, delivered: 0 };
    for (;;) {
      try {
        const reset = await resetConsumer(this.#jsm!, this.prefix, o.p, { ackWaitMs: this.#ackWaitMs, maxAckPending: this.#maxAckPending, workqueue: this.#workqueue, known });
        const consumer = await this.#js!.consumers.get(streamName(this.prefix), consumerName(this.prefix, o.p));
        o.reset = reset;
        o.lastDelivery = 0;
        o.checkUpTo = Math.max(o.checkUpTo, reset.delivered);
        return consumer;
      } catch (e) {
        this.#error(e, o.p);
        if (o.stopping) return null;
        await sleep(500);
      }
    }
  }

  /** Decodes a batch in order, commits its readings and template state in one transaction, then acknowledges it. */
  async #handle(o: Owned, msgs: JsMsg[]): Promise<void> {
    const node = o.node!;
    const registry = node.fusion.registry;
    const rows: ClusterReadingRow[] = [];
    let fullAt: number | null = null;
    const off = node.on('template-learned', () => {
      fullAt ??= Date.now();
    });
    const st = o.status;
    // Frames delivered before the last reset may be stored already (committed, their acks lost):
    // their state is in the store, so they are acknowledged, not decoded on top of it again.
    if (!o.clocksComplete) {
      // Devices whose clock left the bounded map: read theirs before deciding what is late.
      const missing = [...new Set(msgs.map((m) => frameAid(m.data)).filter((aid): aid is number => aid !== undefined && !o.clocks.has(aid)))];
      for (let attempt = 0; missing.length > 0; attempt++) {
        try {
          for (const d of await this.#db!.deviceClocks(missing)) this.#setClock(o, d);
          break;
        } catch (e) {
          this.#error(e, o.p);
          if (o.stopping) return;
          await sleep(Math.min(2000, 100 * 2 ** attempt));
        }
      }
    }
    // Frames that may be stored already, looked up in one query: those delivered before the last
    // reset (committed, their acks lost), and those not newer than their device's state (a copy
    // that came after JetStream's duplicate window; wire timestamps are whole seconds, so a copy
    // can share its second with the state). Their state is in the store: they are acknowledged,
    // not decoded on top of it again.
    const suspects: string[] = [];
    for (const m of msgs) {
      const id = msgIdOf(m);
      if (m.seq <= o.checkUpTo) {
        suspects.push(id);
        continue;
      }
      const aid = frameAid(m.data);
      const clock = aid === undefined ? undefined : o.clocks.get(aid);
      const ts = clock === undefined ? 0 : (frameTimestamp(m.data) ?? 0);
      if (clock !== undefined && ts > 0 && ts <= clock.tsMs && clock.msgId !== id) suspects.push(id);
    }
    let stored: Set<string> | null = null;
    if (suspects.length > 0) {
      stored = await this.#storedIds(o, suspects);
      if (stored === null) return;
    }
    const touched = new Map<number, DeviceClock>();
    /** Answers the node made (SECURE_DICT_READY, AUTH_REJECT), sent once the batch is durable. */
    const replies: { gateway: string; peer: string; data: Uint8Array }[] = [];
    try {
      for (const m of msgs) {
        st.frames++;
        const msgId = msgIdOf(m);
        if (stored?.has(msgId)) {
          if (m.seq <= o.checkUpTo) st.skipped++;
          else st.repeated++;
          continue;
        }
        if (m.info.redeliveryCount > 1) st.redelivered++;
        const frame = m.data;
        // The gateway's receive time, or the stream's when the header is missing or not a time
        // (the column is a bigint: a fraction would fail the commit again at every retry).
        const header = Number(m.headers?.get('Os-Received') ?? '');
        const receivedAt = Number.isSafeInteger(header) && header > 0 ? header : Math.floor(m.info.timestampNanos / 1e6);
        const aid = frameAid(frame);
        if (aid !== undefined && partitionOf(aid, this.partitions) !== o.p) {
          // Published by a gateway with another partition count (or by hand): decoding it here
          // would move the device's state away from its partition.
          this.#refuse(o, aid, m.seq, 'ERR_CLUSTER_PARTITION', `device ${aid} belongs to partition ${partitionOf(aid, this.partitions)} of ${this.partitions}, not ${o.p}: a gateway publishing with another partition count? Its frame is refused`);
          continue;
        }
        const ts = frameTimestamp(frame) ?? 0;
        const clock = aid === undefined || ts === 0 ? undefined : o.clocks.get(aid);
        if (clock !== undefined && ts <= clock.tsMs) {
          // The device's state is at a frame this one is not newer than.
          if (clock.msgId === msgId) {
            st.repeated++;
            continue;
          }
          const full = strategyOf(frame[0]!) === 'FULL';
          if (ts < clock.tsMs && !(full && clock.tsMs - ts > this.#clockResetMs)) {
            st.late++;
            const message = `device ${aid}: ${strategyOf(frame[0]!)} of ts ${ts} is older than its state (ts ${clock.tsMs}, ${clock.tsMs - ts} ms newer): it reached the stream after a newer frame, beyond the reorder window (${this.#reorderMs} ms), and is refused rather than decoded against the newer values`;
            this.#refuse(o, aid!, m.seq, 'ERR_CLUSTER_LATE', message);
            continue;
          }
          // The same second as its state (frames of one second keep the stream's order), or a
          // clock that went back by more than clockResetMs (a FULL starts the device over).
        }
        // A DIFF or HEART of a device not cached (left the cache past maxDevicesPerPartition, or
        // stored after the takeover's preload): read it before decoding, not after. A FULL needs
        // nothing: it teaches its template, and the takeover loaded every stored one.
        if (aid !== undefined && NEEDS_TEMPLATE_CMD.has(frame[0]!) && registry.peek(aid) === null) {
          if (o.absent.ready(aid, Date.now())) {
            try {
              // Bounded: a flood of unknown devices costs one read per device per second.
              if ((await registry.preload([aid])) > 0) o.absent.forget(aid);
              else o.absent.mark(aid, Date.now());
            } catch (e) {
              this.#error(e, o.p);
            }
          }
        }
        const r = await node.receiveAsync(frame, null);
        if (r.response !== null) {
          const gateway = m.headers?.get('Os-Gateway');
          const peer = m.headers?.get('Os-Peer');
          // The gateway's id becomes a subject: anything else there (spaces, wildcards) is not a gateway's.
          if (isMemberId(gateway) && peer) replies.push({ gateway, peer, data: r.response });
        }
        if (r.type === 'data' && ts > 0) {
          const d: DeviceClock = { aid: r.aid, partition: o.p, tsMs: ts, msgId };
          this.#setClock(o, d);
          touched.set(r.aid, d);
        }
        if (r.type === 'data') {
          const fact = r.fact as unknown as Record<string, unknown>;
          const deviceId = deviceIdOf(String(fact.id ?? ''), r.aid);
          const kind = strategyOf(r.cmd);
          const sensors = sensorsOf(fact);
          if (!isPlainText(deviceId) || sensors.some((x) => !isPlainText(x.id) || !isPlainText(x.state) || !isPlainText(x.unit))) {
            // PostgreSQL text keeps neither NUL nor a lone surrogate: one such reading would fail every retry of its batch.
            this.#refuse(o, r.aid, m.seq, 'ERR_CLUSTER_VALUE', `device ${r.aid}: a text of its ${kind} frame (device id, sensor id, state or unit) holds NUL or is not well-formed UTF-16, which PostgreSQL cannot store: its ${sensors.length} readings are refused`);
            continue;
          }
          for (let i = 0; i < sensors.length; i++) {
            const s = sensors[i]!;
            if (!Number.isFinite(s.value)) continue;
            rows.push({ msgId, index: i, streamSeq: m.seq, partition: o.p, aid: r.aid, deviceId, strategy: kind, sensorId: s.id, state: s.state, value: s.value, unit: s.unit, timestampMs: Math.trunc(r.timestampMs), receivedAtMs: receivedAt });
          }
          st.readings += sensors.length;
        } else if (r.type === 'ignored') {
          const code = r.code ?? 'IGNORED';
          st.ignored[code] = (st.ignored[code] ?? 0) + 1;
        } else if (r.type === 'error') {
          const code = String((r.error as { code?: unknown }).code ?? 'ERR_UNKNOWN');
          if (NEEDS_TEMPLATE.has(code)) this.#refuse(o, aid ?? -1, m.seq, code, r.error.message);
          else st.errors[code] = (st.errors[code] ?? 0) + 1;
        }
      }
    } finally {
      off();
    }
    const staged = o.templates!.take();
    const sessions = await this.#stagedSessions(o);
    const t0 = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.#db!.commit(rows, staged, this.id, [...touched.values()], sessions, { partition: o.p, revision: o.claimRevision });
        st.duplicates += rows.length - res.inserted;
        break;
      } catch (e) {
        // A newer owner has the partition: nothing of this batch is stored or acknowledged.
        if (this.#fenced(o, e)) return;
        this.#error(e, o.p);
        // Lease gone (or stopping with the database down): leave the batch unacknowledged; the
        // next owner gets it again from the ack floor.
        if (o.stopping && (o.reason === 'lease-lost' || o.reason === 'lease-expired' || attempt >= 10)) {
          o.templates!.restore(staged);
          o.sessions!.restore(sessions);
          return;
        }
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
    const done = Date.now();
    this.#commitMs.add(done - t0);
    if (fullAt !== null && staged.length > 0) this.#templateMs.add(done - fullAt);
    for (const m of msgs) m.ack();
    st.acked += msgs.length;
    for (const x of replies) {
      const h = natsHeaders();
      h.set('Os-Peer', x.peer);
      try {
        this.#nc?.publish(replySubject(this.prefix, x.gateway), x.data, { headers: h });
        st.replies++;
      } catch (e) {
        this.#error(new ClusterError('ERR_CLUSTER_NATS', `an answer to ${x.peer} through gateway ${x.gateway} cannot be sent: ${messageOf(e)}`, { cause: e }), o.p);
      }
    }
  }

  /** Which of `ids` have readings stored, retried until read; `null` when `o` stopped first. */
  async #storedIds(o: Owned, ids: string[]): Promise<Set<string> | null> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#db!.storedIds(ids);
      } catch (e) {
        this.#error(e, o.p);
        if (o.stopping) return null;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  /** A frame not stored (refused, or a DIFF or HEART without its template): counted under `code` in the partition's errors and as undecodable, and told to `undecodable` listeners. */
  #refuse(o: Owned, aid: number, seq: number, code: string, message: string): void {
    o.status.errors[code] = (o.status.errors[code] ?? 0) + 1;
    this.#counts.undecodable++;
    this.#events.emit('undecodable', { partition: o.p, aid, seq, code, message });
  }

  /** Records a device's clock, least recently set out first past the bound (then misses are read from the store). */
  #setClock(o: Owned, d: DeviceClock): void {
    o.clocks.delete(d.aid);
    o.clocks.set(d.aid, d);
    if (o.clocks.size > this.#maxDevices) {
      o.clocks.delete(o.clocks.keys().next().value!);
      o.clocksComplete = false;
    }
  }

  #error(error: unknown, partition?: number): void {
    const e = error instanceof Error ? error : new Error(String(error));
    if (this.#events.has('error')) this.#events.emit('error', partition === undefined ? { error: e } : { error: e, partition });
  }

  /** Owned partitions with their counters and consumer lag, the totals and the template-change cost. */
  async status(): Promise<ReceiverStatus> {
    const parts = [...this.#owned.values()].sort((a, b) => a.p - b.p);
    await Promise.all(
      parts.map(async (o) => {
        if (o.status.state !== 'consuming' || this.#jsm === null) return;
        try {
          const info = await this.#jsm.consumers.info(streamName(this.prefix), consumerName(this.prefix, o.p));
          o.status.lag = info.num_pending;
          o.status.ackPending = info.num_ack_pending;
        } catch {
          o.status.lag = null;
        }
      }),
    );
    const totals = { ...this.#past, undecodable: this.#counts.undecodable };
    for (const o of parts) addCounts(totals, o.status);
    return {
      id: this.id,
      state: this.#state,
      members: [...this.#members],
      partitions: parts.map((o) => structuredClone(o.status)),
      claims: this.#counts.claims,
      releases: this.#counts.releases,
      lost: this.#counts.lost,
      totals,
      templateCommitMs: { count: this.#templateMs.count, median: this.#templateMs.quantile(0.5), p95: this.#templateMs.quantile(0.95), max: this.#templateMs.max },
      commitMs: { count: this.#commitMs.count, median: this.#commitMs.quantile(0.5) },
      ids: parts.find((o) => o.ids !== null)?.ids?.status() ?? null,
    };
  }

  /** Finishes the batches in hand, releases every lease and the membership at once, and closes. */
  stop(): Promise<void> {
    // One stop: a second call while the first waits (for the start, for the publishes) shares it.
    if (this.#stopping === null && this.#state === 'running') this.#stopping = this.#stop();
    return this.#stopping ?? Promise.resolve();
  }

  async #stop(): Promise<void> {
    // A stop during start waits for it: a start going on after the stop would leave its timer
    // and connections behind.
    await this.#starting?.catch(() => undefined);
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#ticking;
    await Promise.all([...this.#owned.values()].map((o) => this.#release(o, 'stop')));
    await this.#leases?.leave().catch((e: unknown) => this.#error(e));
    this.#state = 'stopped';
    await this.#closeAll();
  }

  async #closeAll(): Promise<void> {
    const nc = this.#nc;
    this.#nc = null;
    await nc?.drain().catch(() => nc.close().catch(() => undefined));
    await this.#db?.close().catch(() => undefined);
  }
}

/**
 * The frame's message id (its readings' key), or `<stream>-<stream seq>` when it has none
 * PostgreSQL can keep (none, NUL, over 256 characters): the stream's name in it, since streams of
 * other prefixes may share the schema.
 */
function msgIdOf(m: JsMsg): string {
  const id = m.headers?.get('Nats-Msg-Id');
  return id && id.length <= 256 && isPlainText(id) ? id : `${m.info.stream}-${m.seq}`;
}

function strategyOf(cmd: number): 'FULL' | 'DIFF' | 'HEART' {
  if (cmd === DATA_FULL || cmd === DATA_FULL_SEC || cmd === AUTH_FULL) return 'FULL';
  if (cmd === DATA_DIFF || cmd === DATA_DIFF_SEC || cmd === AUTH_DIFF) return 'DIFF';
  return 'HEART';
}
