/**
 * Connections, the frames stream, the lease bucket and the per-partition consumers on NATS
 * JetStream (the `nats` client). Nothing here is exposed in the public types, so a consumer of
 * this package typechecks without the client's declarations.
 */
import { AckPolicy, type ConsumerInfo, connect, DeliverPolicy, DiscardPolicy, type JetStreamManager, type KV, nanos, type NatsConnection, RetentionPolicy, StorageType } from 'nats';
import { ClusterError, intOption, messageOf, optionError } from './errors.js';
import { consumerName, framesSubject, framesWildcard, leaseBucket, streamName } from './subjects.js';

/** How to reach NATS. */
export interface NatsOptions {
  /** Server URLs (`nats://127.0.0.1:4222`); give every node of a cluster so the client fails over between them. */
  servers: string | readonly string[];
  /** Token, or user and password, when the servers require them. */
  token?: string | undefined;
  user?: string | undefined;
  pass?: string | undefined;
  /** Pause between reconnection attempts, ms (default 250; the client retries for ever). */
  reconnectWaitMs?: number | undefined;
  /** How long the first connection may take, ms (default 10000). */
  connectTimeoutMs?: number | undefined;
}

/** The frames stream's settings (used by whoever creates it first; an existing stream is left as it is). */
export interface StreamOptions {
  /** Copies of each message over the cluster's nodes (default 1; 3 on a three-node cluster survives one node's loss). */
  replicas?: number | undefined;
  /**
   * What the stream keeps (default `workqueue`): `workqueue` removes a frame once its partition's
   * receiver acknowledged it (after its commit), so `maxBytes` bounds the backlog, not the day's
   * traffic; `limits` keeps every frame for `maxAgeMs` or until `maxBytes`, acknowledged or not
   * (a log to read again, at the price of sizing `maxBytes` for `maxAgeMs` of traffic). Applies
   * when the stream is made: NATS does not change the retention of a stream that exists.
   */
  retention?: 'workqueue' | 'limits' | undefined;
  /** How long a frame is kept at most, ms (default 86,400,000: a day), acknowledged or not. */
  maxAgeMs?: number | undefined;
  /** Most bytes the stream holds (default 1 GiB); when full, publishes are refused (never silently dropped). */
  maxBytes?: number | undefined;
  /** How long JetStream remembers message ids to drop a publish retried with the same id, ms (default 120000). */
  duplicateWindowMs?: number | undefined;
}

export function checkServers(servers: unknown): string[] {
  const list = typeof servers === 'string' ? [servers] : servers;
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string' && s !== '')) throw optionError('nats.servers', 'one or more server URLs are needed');
  return [...list] as string[];
}

/** Connects with reconnection for ever (a node that dies is left for another). */
export async function connectNats(options: NatsOptions, name: string): Promise<NatsConnection> {
  const servers = checkServers(options.servers);
  const wait = intOption('nats.reconnectWaitMs', options.reconnectWaitMs, 250, 1);
  const timeout = intOption('nats.connectTimeoutMs', options.connectTimeoutMs, 10_000, 1);
  try {
    return await connect({
      servers,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: wait,
      reconnectJitter: 50,
      timeout,
      pingInterval: 2000,
      maxPingOut: 3,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.user === undefined ? {} : { user: options.user, pass: options.pass ?? '' }),
    });
  } catch (e) {
    throw new ClusterError('ERR_CLUSTER_NATS', `NATS at ${servers.join(', ')}: cannot connect: ${messageOf(e)}`, { cause: e });
  }
}

const notFound = (e: unknown) => /not found/i.test(messageOf(e));

/** Creates the frames stream of `prefix` unless it exists; resolves with its retention (an existing stream's own). */
export async function ensureFramesStream(jsm: JetStreamManager, prefix: string, options: StreamOptions = {}): Promise<'workqueue' | 'limits'> {
  const replicas = intOption('stream.replicas', options.replicas, 1, 1, 5);
  const maxAge = intOption('stream.maxAgeMs', options.maxAgeMs, 86_400_000, 1000);
  const maxBytes = intOption('stream.maxBytes', options.maxBytes, 1 << 30, 1024);
  const dup = intOption('stream.duplicateWindowMs', options.duplicateWindowMs, 120_000, 100);
  const retention = options.retention ?? 'workqueue';
  if (retention !== 'workqueue' && retention !== 'limits') throw optionError('stream.retention', `${JSON.stringify(retention)} is not 'workqueue' or 'limits'`);
  const name = streamName(prefix);
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await jsm.streams.info(name);
      return info.config.retention === RetentionPolicy.Workqueue ? 'workqueue' : 'limits';
    } catch (e) {
      if (!notFound(e) && attempt >= 20) throw new ClusterError('ERR_CLUSTER_NATS', `stream ${name}: ${messageOf(e)}`, { cause: e });
      if (!notFound(e)) {
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
    }
    try {
      await jsm.streams.add({
        name,
        subjects: [framesWildcard(prefix)],
        // One durable consumer per partition, on its own subject: what a work queue allows.
        retention: retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.New,
        num_replicas: replicas,
        max_age: nanos(maxAge),
        max_bytes: maxBytes,
        duplicate_window: nanos(dup),
      });
      return retention;
    } catch (e) {
      // Another process made it meanwhile: read it again.
      if (/already in use/i.test(messageOf(e))) continue;
      if (attempt >= 20) throw new ClusterError('ERR_CLUSTER_NATS', `stream ${name}: cannot be created: ${messageOf(e)}`, { cause: e });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Opens (creating when missing) the lease bucket of `prefix` with entries living `ttlMs`. */
export async function openLeaseBucket(nc: NatsConnection, prefix: string, ttlMs: number, replicas: number): Promise<KV> {
  const bucket = leaseBucket(prefix);
  let last: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      // A few small keys: a bounded bucket (an unbounded one reserves all of a node's storage on some setups).
      return await nc.jetstream().views.kv(bucket, { ttl: ttlMs, history: 1, replicas, max_bytes: 16 << 20 });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new ClusterError('ERR_CLUSTER_NATS', `key-value bucket ${bucket}: ${messageOf(last)}`, { cause: last });
}

/** Lists the keys of bucket `bucket` under `prefix` from the stream's subjects (a plain API request, no consumer). */
export function bucketKeyLister(jsm: JetStreamManager, bucket: string): (prefix: string) => Promise<string[]> {
  const head = `$KV.${bucket}.`;
  return async (prefix) => {
    const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${head}${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(head.length));
  };
}

/** What the consumer looked like when a receiver took its partition. */
export interface ConsumerReset {
  /** The stream sequence up to which every message was acknowledged (0: none). */
  ackFloor: number;
  /** Messages the previous owner had been given and not acknowledged. */
  ackPending: number;
  /** Messages not given to anyone yet. */
  pending: number;
  /** The highest stream sequence the previous consumer delivered: messages up to it may be stored already. */
  delivered: number;
}

/**
 * Makes partition `p`'s durable consumer start again at its ack floor: the consumer is deleted
 * and made anew from the first sequence after the floor (on a `limits` stream; a work queue
 * keeps only what was not acknowledged, so there it starts at the first message it holds, and
 * NATS allows no other start). Messages the previous owner had taken
 * and not acknowledged (it died) come again at once and in order, instead of after their ack wait
 * behind newer ones (a DIFF overtaking the FULL it depends on).
 *
 * Retried with the same `known` after a failure, a consumer found that this call's earlier
 * attempt created (same start, nothing delivered yet) is kept: a create can time out on the
 * client and still complete on the servers (a new consumer waits for its replicas to elect a
 * leader, seconds after a NATS node died), and deleting it again would start that wait over.
 */
export async function resetConsumer(
  jsm: JetStreamManager,
  prefix: string,
  p: number,
  options: { ackWaitMs: number; maxAckPending: number; workqueue: boolean; known?: (ConsumerReset & { created?: boolean }) | undefined },
): Promise<ConsumerReset> {
  const stream = streamName(prefix);
  const name = consumerName(prefix, p);
  // What an earlier attempt read before it failed (it may have deleted the consumer): kept, so a
  // retry does not start over from the stream's first message.
  let floor = options.known?.ackFloor ?? 0;
  let ackPending = options.known?.ackPending ?? 0;
  let pending = options.known?.pending ?? 0;
  let delivered = options.known?.delivered ?? 0;
  try {
    const info = await jsm.consumers.info(stream, name);
    if (options.known?.created === true && isFresh(info, options.workqueue, floor)) return { ackFloor: floor, ackPending, pending: info.num_pending, delivered };
    floor = Math.max(floor, info.ack_floor.stream_seq);
    ackPending = info.num_ack_pending;
    pending = info.num_pending;
    delivered = Math.max(delivered, info.delivered.stream_seq);
    if (options.known !== undefined) Object.assign(options.known, { ackFloor: floor, ackPending, pending, delivered });
    await jsm.consumers.delete(stream, name);
  } catch (e) {
    if (!notFound(e)) throw new ClusterError('ERR_CLUSTER_NATS', `consumer ${name}: ${messageOf(e)}`, { cause: e });
  }
  try {
    if (options.known !== undefined) options.known.created = true;
    await jsm.consumers.add(stream, {
      durable_name: name,
      filter_subject: framesSubject(prefix, p),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(options.ackWaitMs),
      max_ack_pending: options.maxAckPending,
      max_deliver: -1,
      ...(floor > 0 && !options.workqueue ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: floor + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
  } catch (e) {
    throw new ClusterError('ERR_CLUSTER_NATS', `consumer ${name}: cannot be created: ${messageOf(e)}`, { cause: e });
  }
  return { ackFloor: floor, ackPending, pending, delivered };
}

/**
 * Whether `info` is the consumer a reset from `floor` makes (after the floor; on a work queue from
 * the first message it holds) and has delivered nothing yet. (On a work queue a fresh consumer's
 * delivered stream sequence is that of the message before its first, which may be past the floor.)
 */
function isFresh(info: ConsumerInfo, workqueue: boolean, floor: number): boolean {
  if (workqueue) return info.config.deliver_policy === DeliverPolicy.All && info.delivered.consumer_seq === 0 && info.num_ack_pending === 0 && info.num_redelivered === 0;
  const start = floor > 0 ? info.config.deliver_policy === DeliverPolicy.StartSequence && info.config.opt_start_seq === floor + 1 : info.config.deliver_policy === DeliverPolicy.All;
  return start && info.delivered.stream_seq <= floor && info.num_ack_pending === 0 && info.num_redelivered === 0;
}
