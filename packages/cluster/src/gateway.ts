/**
 * A gateway: takes frames from project transports (UDP, TCP, MQTT with a shared subscription,
 * in-process...) and publishes each data frame to JetStream on its device's partition subject,
 * with a message id per frame. A frame is "acknowledged by the gateway" when JetStream's PubAck
 * for it arrived: it is then stored on the stream's replicas. Control packets (no source aid) are
 * answered by the gateway's own node, except AUTH_HELLO: it is asked of the receiver that owns
 * the device's partition (NATS request/reply), whose answer goes back to the device. Answers a
 * receiver sends on its own (SECURE_DICT_READY after a FULL, AUTH_REJECT for a lost session) come
 * on the gateway's reply subject and go to the device they name.
 */
import { createHash } from 'node:crypto';
import { ID_POOL_REQ, ID_REQUEST } from '@opensynaptic/cmd';
import { OpenSynaptic } from '@opensynaptic/core';
import { type Listener, TypedEvents } from '@opensynaptic/internal';
import { partitionOf } from '@opensynaptic/server';
import type { Inbound, Peer, Transport } from '@opensynaptic/transport';
import { headers, type JetStreamClient, type Msg, type NatsConnection, type Subscription } from 'nats';
import { ClusterError, intOption, messageOf, optionError } from './errors.js';
import { helloAid, sourceAid, sourcePartition, sourceTimestamp } from './frames.js';
import { connectNats, ensureFramesStream, type NatsOptions, type StreamOptions } from './nats.js';
import { checkMemberId, checkPartitions, checkPrefix, DEFAULT_PARTITIONS, DEFAULT_PREFIX, framesSubject, helloSubject, idsSubject, replySubject } from './subjects.js';

/** Options of {@link ClusterGateway}. */
export interface GatewayOptions {
  /** This gateway's id (1..64 characters A-Z, a-z, 0-9, _, -): the first part of its message ids. */
  id: string;
  nats: NatsOptions;
  /** The transports to take frames from (started by the gateway unless already running). */
  transports: readonly Transport[];
  /** Subject prefix (default `os`). */
  prefix?: string | undefined;
  /** Partitions of the cluster (default 64; the same on every gateway and receiver). */
  partitions?: number | undefined;
  /** The frames stream, when this gateway is the first to need it. */
  stream?: StreamOptions | undefined;
  /**
   * Frames taken off the transports and not yet acknowledged by JetStream, at most (default
   * 8192). At the bound the gateway stops reading its transports: a pausable medium (TCP, MQTT)
   * pauses, an unpausable one (UDP) fills its own queue and counts its drops.
   */
  maxQueued?: number | undefined;
  /** How long one publish waits for its PubAck, ms (default 2000). */
  publishTimeoutMs?: number | undefined;
  /**
   * Publishes of one frame before it is given up (default 10, backing off 50 ms to 2 s). A frame
   * the medium acknowledges (MQTT QoS 1, `Inbound.ack`) is never given up while the gateway runs:
   * the broker sends it again only after a reconnection, so unacknowledged it would hold a slot
   * of the broker's in-flight window for good; it is retried (every 2 s at most) until published,
   * its partition's queue waiting behind it, or until `stop()` runs out of time.
   */
  publishAttempts?: number | undefined;
  /**
   * How long `stop()` waits for the frames taken to be acknowledged, ms (default 30000). Past it
   * (NATS unreachable) the rest are given up, counted `failed` and never acknowledged to their
   * senders (an MQTT QoS 1 broker sends them again to a gateway of the group).
   */
  stopTimeoutMs?: number | undefined;
  /**
   * The node that answers control packets (time, ping), or `false` to drop them. ID requests go
   * to the cluster's allocator when receivers assign ids (`ReceiverOptions.ids`), unless this
   * node has an allocator of its own; with neither, the default node answers the NACK "no
   * allocator" (ids assigned beforehand; see the README).
   */
  controlNode?: OpenSynaptic | false | undefined;
  /**
   * Whether this gateway sees each device's frames in the order the device sent them. Default:
   * `false` when a transport subscribes with an MQTT shared subscription (`$share/...`: the broker
   * hands a device's messages to different gateways of the group, so they may reach JetStream in
   * either order), else `true`. Frames of an unordered gateway are marked (`Os-Order: shared`), and
   * receivers hold them for their `reorderWindowMs` and put each device's frames back in the order
   * of their timestamps before decoding.
   */
  ordered?: boolean | undefined;
  /** How long an AUTH_HELLO waits for the partition owner's answer, ms (default 2000); unanswered, nothing goes back (the device asks again). */
  helloTimeoutMs?: number | undefined;
  /**
   * AUTH_HELLOs and id requests waiting for a receiver's answer at once (default 1024); one
   * beyond it gets none (counted as unanswered; the device asks again).
   */
  maxRequestsInFlight?: number | undefined;
  /**
   * Devices whose address the gateway remembers for receivers' answers (default 65536, least
   * recently heard forgotten first): an answer for a device beyond it is dropped and counted.
   */
  maxPeers?: number | undefined;
}

/** One frame JetStream acknowledged. */
export interface GatewayAck {
  msgId: string;
  partition: number;
  /** Its stream sequence. */
  seq: number;
  /** JetStream had it already (a retried publish whose first PubAck was lost). */
  duplicate: boolean;
  /** The frame (a copy). */
  frame: Uint8Array;
}

/** Events of a gateway (`on`). */
export interface GatewayEvents {
  /** A frame was acknowledged by JetStream. */
  ack: GatewayAck;
  /** A frame was given up after `publishAttempts` (`ERR_CLUSTER_PUBLISH`): never acknowledged. */
  'publish-error': { msgId: string; partition: number; error: ClusterError };
  /** A transport or NATS reported an error; the gateway keeps going. */
  error: { error: Error };
}

/** `status()` of a gateway. */
export interface GatewayStatus {
  id: string;
  state: 'created' | 'running' | 'stopping' | 'stopped';
  /** Data frames taken off the transports. */
  frames: number;
  /** Frames JetStream acknowledged (of which `duplicates` it had already). */
  acked: number;
  duplicates: number;
  /** Publishes retried (a timeout, a node lost), and frames given up. */
  retries: number;
  failed: number;
  /** Control packets answered, and dropped. */
  control: number;
  controlDropped: number;
  /** Packets that are neither a data frame nor a control packet the node could read (junk; answered as the node does, an unknown command with a NACK). */
  invalid: number;
  /** AUTH_HELLOs asked of their partition's owner, and those no receiver answered in time. */
  hellos: number;
  hellosUnanswered: number;
  /**
   * ID_REQUESTs and ID_POOL_REQs asked of the cluster's allocator, and those that got no answer
   * (none in time, or over `maxRequestsInFlight`); without an allocator in the cluster (no
   * receiver with `ids`) they are answered by the gateway's own node and counted in `control`.
   */
  idRequests: number;
  idRequestsUnanswered: number;
  /** Receivers' answers sent on to their device, and those for a device this gateway no longer knows. */
  replies: number;
  repliesDropped: number;
  /**
   * Frames published without `Os-Peer`: their peer key holds what a NATS header cannot (CR, LF,
   * blanks at an end), so no answer a receiver makes on its own can reach the device. (HELLOs and
   * id requests from such a peer are asked without it too, and still answered: the gateway sends
   * the answer itself; the allocator then knows the device by its meta alone.)
   */
  peersUnnamed: number;
  /** Frames waiting or in flight now. */
  queued: number;
  /** Whether its frames are in device order (see `GatewayOptions.ordered`). */
  ordered: boolean;
}

interface Pending {
  inbound: Inbound;
  frame: Uint8Array;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether NATS carries `v` as a header value unchanged (it refuses CR and LF and trims the ends). */
function headerSafe(v: string): boolean {
  return !/[\r\n]/.test(v) && v.trim() === v;
}

/**
 * The gateway. Frames of one partition are published one at a time, in arrival order, each
 * retried (same message id) until JetStream acknowledges it before the next goes: a lost publish
 * (a node that died) never lets a device's DIFF overtake the FULL it depends on, and JetStream's
 * duplicate window drops the copy of a retry whose first attempt had landed. Partitions publish
 * concurrently, so at most `partitions` publishes are in flight.
 */
export class ClusterGateway {
  readonly id: string;
  readonly prefix: string;
  readonly partitions: number;
  readonly maxQueued: number;
  /** See `GatewayOptions.ordered`. */
  readonly ordered: boolean;
  readonly #options: GatewayOptions;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #stopTimeoutMs: number;
  /** Set when `stop()` ran out of time: what is left is given up. */
  #abandon = false;
  #setAbandoned!: () => void;
  /** Resolves when `#abandon` is set (a back-off in progress ends). */
  readonly #abandoned = new Promise<void>((r) => (this.#setAbandoned = r));
  readonly #events = new TypedEvents<GatewayEvents>();
  readonly #queues = new Map<number, Pending[]>();
  readonly #busy = new Set<number>();
  readonly #epoch: string;
  readonly #control: OpenSynaptic | null;
  #state: GatewayStatus['state'] = 'created';
  #nc: NatsConnection | null = null;
  #js: JetStreamClient | null = null;
  #seq = 0;
  #queued = 0;
  #space: (() => void)[] = [];
  #idle: (() => void)[] = [];
  #loops: Promise<void>[] = [];
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #counts = { frames: 0, acked: 0, duplicates: 0, retries: 0, failed: 0, control: 0, controlDropped: 0, invalid: 0, hellos: 0, hellosUnanswered: 0, idRequests: 0, idRequestsUnanswered: 0, replies: 0, repliesDropped: 0, peersUnnamed: 0 };
  readonly #helloTimeoutMs: number;
  readonly #maxRequests: number;
  /** Whether the cluster's allocator has answered this gateway (then "no responders" means it is moving). */
  #clusterIds = false;
  #inFlight = 0;
  readonly #maxPeers: number;
  /** Where each recently heard device is (its peer key → transport and address), for receivers' answers. */
  readonly #peers = new Map<string, { t: Transport; peer: Peer }>();
  #replies: Subscription | null = null;

  constructor(options: GatewayOptions) {
    if (typeof options !== 'object' || options === null) throw optionError('options', 'an object is needed');
    this.id = checkMemberId(options.id);
    this.prefix = checkPrefix(options.prefix ?? DEFAULT_PREFIX);
    this.partitions = checkPartitions(options.partitions ?? DEFAULT_PARTITIONS);
    this.maxQueued = intOption('maxQueued', options.maxQueued, 8192, 1);
    this.#timeoutMs = intOption('publishTimeoutMs', options.publishTimeoutMs, 2000, 10);
    this.#attempts = intOption('publishAttempts', options.publishAttempts, 10, 1, 1000);
    this.#stopTimeoutMs = intOption('stopTimeoutMs', options.stopTimeoutMs, 30_000, 0);
    this.#helloTimeoutMs = intOption('helloTimeoutMs', options.helloTimeoutMs, 2000, 10, 60_000);
    this.#maxPeers = intOption('maxPeers', options.maxPeers, 65_536, 1);
    this.#maxRequests = intOption('maxRequestsInFlight', options.maxRequestsInFlight, 1024, 1);
    if (!Array.isArray(options.transports) || options.transports.length === 0) throw optionError('transports', 'at least one transport is needed');
    if (options.ordered !== undefined && typeof options.ordered !== 'boolean') throw optionError('ordered', 'a boolean is needed');
    this.ordered = options.ordered ?? !options.transports.some(sharedSubscription);
    this.#options = options;
    // Message ids unique across restarts of a gateway with the same id: its start time in base 36.
    this.#epoch = Date.now().toString(36);
    this.#control = options.controlNode === false ? null : (options.controlNode ?? new OpenSynaptic({ assignedId: 1, deviceId: 'GATEWAY' }));
  }

  on<K extends keyof GatewayEvents>(type: K, listener: Listener<GatewayEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  /** Connects, creates the stream when missing, starts the transports and their loops. */
  start(): Promise<void> {
    if (this.#state !== 'created') return Promise.reject(new ClusterError('ERR_CLUSTER_STATE', `start() in state ${this.#state}: a gateway runs once`));
    this.#state = 'running';
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    try {
      this.#nc = await connectNats(this.#options.nats, `os-gateway-${this.id}`);
      await ensureFramesStream(await this.#nc.jetstreamManager(), this.prefix, this.#options.stream);
      this.#js = this.#nc.jetstream({ timeout: this.#timeoutMs });
      this.#replies = this.#nc.subscribe(replySubject(this.prefix, this.id), {
        callback: (err, m) => {
          if (err !== null) return this.#error(err);
          const at = this.#peers.get(m.headers?.get('Os-Peer') ?? '');
          if (at === undefined || m.data.length === 0) {
            this.#counts.repliesDropped++;
            return;
          }
          this.#counts.replies++;
          at.t.send(m.data, at.peer).catch((e: unknown) => this.#error(e));
        },
      });
      for (const t of this.#options.transports) {
        // MQTT QoS 1: the device's PUBACK waits for JetStream's (deferred acknowledgement).
        if (t.state === 'created' && typeof t.deferAcks === 'function') t.deferAcks();
        t.on('error', (e) => this.#error(e.error));
        if (t.state === 'created') await t.start();
        this.#loops.push(this.#intake(t));
      }
    } catch (e) {
      this.#state = 'stopped';
      await this.#nc?.close().catch(() => undefined);
      throw e instanceof ClusterError ? e : new ClusterError('ERR_CLUSTER_NATS', `gateway ${this.id}: start failed: ${messageOf(e)}`, { cause: e });
    }
  }

  async #intake(t: Transport): Promise<void> {
    try {
      for await (const batch of t.batches({ max: 256 })) {
        for (const inbound of batch) {
          // Past the stop timeout (#abandon) nothing waits: what is left is given up at once.
          if (this.#queued >= this.maxQueued && !this.#abandon) await new Promise<void>((r) => this.#space.push(r));
          this.#take(t, inbound);
        }
      }
    } catch (e) {
      if (this.#state === 'running') this.#error(e);
    }
  }

  #take(t: Transport, inbound: Inbound): void {
    const p = sourcePartition(inbound.frame, this.partitions);
    if (p === undefined) {
      const aid = helloAid(inbound.frame);
      const cmd = inbound.frame[0];
      if (this.#nc === null) this.#answer(t, inbound);
      else if (aid !== undefined) void this.#hello(t, inbound, partitionOf(aid, this.partitions));
      else if ((cmd === ID_REQUEST || cmd === ID_POOL_REQ) && this.#control?.protocol.allocator == null) void this.#askIds(t, inbound);
      else this.#answer(t, inbound);
      return;
    }
    this.#counts.frames++;
    this.#remember(t, inbound.peer);
    // A copy: the transport may reuse its buffer once the batch is handed over.
    const item: Pending = { inbound, frame: inbound.frame.slice() };
    let q = this.#queues.get(p);
    if (q === undefined) {
      q = [];
      this.#queues.set(p, q);
    }
    q.push(item);
    this.#queued++;
    if (!this.#busy.has(p)) void this.#drain(p, q);
  }

  #answer(t: Transport, inbound: Inbound): void {
    inbound.ack?.();
    if (this.#control === null) {
      this.#counts.controlDropped++;
      return;
    }
    const r = this.#control.receive(inbound.frame, inbound.peer.key);
    // Junk (too short, an unknown command): nothing to publish; the node's answer (the
    // reference's NACK for an unknown command) still goes back.
    if (r.type === 'error') this.#counts.invalid++;
    else this.#counts.control++;
    if (r.response !== null) t.send(r.response, inbound.peer).catch((e: unknown) => this.#error(e));
  }

  /** Keeps `peer` as the most recently heard device address (bounded: the least recent goes first). */
  #remember(t: Transport, peer: Peer): void {
    const key = peer.key;
    const at = this.#peers.get(key);
    if (at !== undefined && at.t === t) {
      // Moved to the end only now and then: a re-insert per frame costs more than it buys.
      if (this.#peers.size < this.#maxPeers) return;
      this.#peers.delete(key);
    }
    this.#peers.set(key, { t, peer });
    if (this.#peers.size > this.#maxPeers) this.#peers.delete(this.#peers.keys().next().value!);
  }

  /** Asks the receiver listening on `subject` to answer a device's packet (request/reply, `helloTimeoutMs`), naming the device and this gateway. */
  #ask(subject: string, inbound: Inbound): Promise<Msg> {
    const h = headers();
    if (headerSafe(inbound.peer.key)) h.set('Os-Peer', inbound.peer.key);
    h.set('Os-Gateway', this.id);
    return this.#nc!.request(subject, inbound.frame.slice(), { timeout: this.#helloTimeoutMs, headers: h });
  }

  /** Asks partition `p`'s owner to answer an AUTH_HELLO, and sends its answer to the device. */
  async #hello(t: Transport, inbound: Inbound, p: number): Promise<void> {
    inbound.ack?.();
    this.#counts.hellos++;
    if (this.#inFlight >= this.#maxRequests) {
      // A flood of HELLOs costs the receivers nothing beyond this bound.
      this.#counts.hellosUnanswered++;
      return;
    }
    this.#remember(t, inbound.peer);
    this.#inFlight++;
    try {
      const m = await this.#ask(helloSubject(this.prefix, p), inbound);
      if (m.data.length > 0) await t.send(m.data, inbound.peer);
    } catch (e) {
      // No owner now (a takeover in progress, no receiver): the device's HELLO times out and it asks again.
      this.#counts.hellosUnanswered++;
      if ((e as { code?: unknown }).code !== '503' && (e as { code?: unknown }).code !== 'TIMEOUT') this.#error(e);
    } finally {
      this.#inFlight--;
    }
  }

  /**
   * Asks the cluster's allocator (the owner of partition 0, when receivers assign ids) for an id
   * and sends its ID_ASSIGN / ID_POOL_RES back; with no allocator listening, the gateway's own
   * node answers (its NACK "no allocator", as without a cluster).
   */
  async #askIds(t: Transport, inbound: Inbound): Promise<void> {
    if (this.#inFlight >= this.#maxRequests) {
      inbound.ack?.();
      this.#counts.idRequests++;
      this.#counts.idRequestsUnanswered++;
      return;
    }
    this.#remember(t, inbound.peer);
    this.#inFlight++;
    try {
      let m: Msg;
      try {
        m = await this.#ask(idsSubject(this.prefix), inbound);
      } catch (e) {
        if ((e as { code?: unknown }).code === '503' && !this.#clusterIds) {
          // No allocator in the cluster (none has answered this gateway yet): answered here, as ever.
          this.#answer(t, inbound);
          return;
        }
        // The allocator answered before: it is moving (partition 0 changing hands). No answer,
        // rather than a NACK the device would take as final; it asks again.
        throw e;
      }
      inbound.ack?.();
      this.#counts.idRequests++;
      this.#clusterIds = true;
      if (m.data.length > 0) await t.send(m.data, inbound.peer);
      else this.#counts.idRequestsUnanswered++;
    } catch (e) {
      inbound.ack?.();
      this.#counts.idRequests++;
      this.#counts.idRequestsUnanswered++;
      const code = (e as { code?: unknown }).code;
      if (code !== 'TIMEOUT' && code !== '503') this.#error(e);
    } finally {
      this.#inFlight--;
    }
  }

  /** Publishes partition `p`'s frames one after the other until its queue is empty (never rejects: `#publish` counts its failures). */
  async #drain(p: number, q: Pending[]): Promise<void> {
    this.#busy.add(p);
    try {
      while (q.length > 0) {
        const item = q[0]!;
        await this.#publish(p, item);
        q.shift();
        this.#queued--;
        this.#space.shift()?.();
      }
    } finally {
      this.#busy.delete(p);
      if (this.#queued === 0) for (const w of this.#idle.splice(0)) w();
    }
  }

  async #publish(p: number, item: Pending): Promise<void> {
    const msgId = frameMessageId(item.frame) ?? `${this.id}-${this.#epoch}-${++this.#seq}`;
    const h = headers();
    // A key NATS cannot carry (CR, LF, blanks at an end: an MQTT topic may hold them) goes
    // without it: the frame is stored, and nothing the receiver answers can reach its device.
    if (headerSafe(item.inbound.peer.key)) h.set('Os-Peer', item.inbound.peer.key);
    else this.#counts.peersUnnamed++;
    h.set('Os-Received', String(item.inbound.receivedAt));
    h.set('Os-Gateway', this.id);
    if (!this.ordered) h.set('Os-Order', 'shared');
    const subject = framesSubject(this.prefix, p);
    let last: unknown;
    let final = false;
    const held = item.inbound.ack !== undefined;
    for (let attempt = 0; (attempt < this.#attempts || held) && !this.#abandon && !final; attempt++) {
      if (attempt > 0) {
        this.#counts.retries++;
        // The back-off ends early when stop() runs out of time.
        await Promise.race([sleep(Math.min(2000, 50 * 2 ** (attempt - 1))), this.#abandoned]);
        if (this.#abandon) break;
      }
      try {
        const pa = await this.#js!.publish(subject, item.frame, { msgID: msgId, headers: h, timeout: this.#timeoutMs });
        this.#counts.acked++;
        if (pa.duplicate) this.#counts.duplicates++;
        item.inbound.ack?.();
        if (this.#events.has('ack')) this.#events.emit('ack', { msgId, partition: p, seq: pa.seq, duplicate: pa.duplicate, frame: item.frame });
        return;
      } catch (e) {
        last = e;
        // Larger than the server's max_payload (headers included): no attempt can succeed.
        final = (e as { code?: unknown }).code === 'MAX_PAYLOAD_EXCEEDED';
      }
    }
    this.#counts.failed++;
    // A frame no attempt can publish is acknowledged to its medium: held, it would take a slot of
    // the broker's in-flight window for good (counted in `failed` and told as a publish-error).
    if (final) item.inbound.ack?.();
    const why = last === undefined ? 'the gateway stopped before JetStream acknowledged it' : final ? `it can never be published: ${messageOf(last)}` : `no JetStream acknowledgement after its attempts: ${messageOf(last)}`;
    const error = new ClusterError('ERR_CLUSTER_PUBLISH', `frame ${msgId} on ${subject}: ${why}`, { cause: last });
    this.#events.emit('publish-error', { msgId, partition: p, error });
  }

  #error(error: unknown): void {
    const e = error instanceof Error ? error : new Error(String(error));
    if (this.#events.has('error')) this.#events.emit('error', { error: e });
  }

  /** Resolves once every frame taken so far is acknowledged or given up. */
  async idle(): Promise<void> {
    if (this.#queued === 0) return;
    await new Promise<void>((r) => this.#idle.push(r));
  }

  status(): GatewayStatus {
    return { id: this.id, state: this.#state, ...this.#counts, queued: this.#queued, ordered: this.ordered };
  }

  /**
   * Stops the transports (what they had received is still published), waits for the publishes,
   * closes. After `stopTimeoutMs` (counted from the call, intake blocked on a full queue
   * included) what is left is given up: counted `failed`, never acknowledged.
   */
  stop(): Promise<void> {
    // One stop: a second call while the first waits (for the start, for the publishes) shares it.
    if (this.#stopping === null && this.#state === 'running') this.#stopping = this.#stop();
    return this.#stopping ?? Promise.resolve();
  }

  async #stop(): Promise<void> {
    const called = Date.now();
    // A stop during start waits for it (a start going on after the stop would start the transports again).
    await this.#starting?.catch(() => undefined);
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    const timer = setTimeout(() => {
      this.#abandon = true;
      this.#setAbandoned();
      for (const w of this.#space.splice(0)) w();
    }, Math.max(0, this.#stopTimeoutMs - (Date.now() - called)));
    await Promise.all(this.#options.transports.map((t) => t.stop().catch((e: unknown) => this.#error(e))));
    await Promise.all(this.#loops);
    await this.idle();
    clearTimeout(timer);
    this.#state = 'stopped';
    this.#replies?.unsubscribe();
    await this.#nc?.drain().catch(() => undefined);
  }
}

/** A transport that takes its frames through an MQTT shared subscription (see `GatewayOptions.ordered`). */
function sharedSubscription(t: Transport): boolean {
  const subs = (t as { subscriptions?: unknown }).subscriptions;
  return Array.isArray(subs) && subs.some((f) => typeof f === 'string' && f.startsWith('$share/'));
}

/**
 * The message id of a data frame with a device timestamp: `d<aid>-<ts>-<digest>` (aid and ts in
 * base 36; the first 96 bits of the frame's SHA-256, base64url, so two different frames of one
 * device in one millisecond still differ). It is derived from the frame alone, so every gateway that
 * publishes the same frame (an MQTT QoS 1 message the broker sent again to another gateway after
 * the first died, a device's retry) publishes it under the same id, and JetStream's duplicate
 * window keeps one copy; receivers key the stored readings by it. `undefined` for a frame without
 * a clock (ts 0: two of its frames may be byte-identical and both real), which gets the
 * gateway's own `<gateway>-<start>-<seq>` id.
 */
export function frameMessageId(frame: Uint8Array): string | undefined {
  const ts = sourceTimestamp(frame);
  const aid = sourceAid(frame);
  if (ts === undefined || ts === 0 || aid === undefined) return undefined;
  return `d${aid.toString(36)}-${ts.toString(36)}-${createHash('sha256').update(frame).digest('base64url').slice(0, 16)}`;
}
