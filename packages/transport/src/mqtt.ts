/**
 * MQTT through a broker, with mqtt.js (an optional peer dependency: `npm install mqtt`, loaded
 * when the transport starts). By default the reference's topics: frames are published to
 * `os/sensors/raw` and received from `os/sensors/#`. MQTT 5 by default (3.1.1 with
 * `protocolVersion: 4`), where `noLocal` keeps a client from receiving its own frames. QoS 0 (the
 * reference's) or 1; with QoS 1 a send resolves on the broker's PUBACK. A lost connection is
 * retried with exponential back-off and jitter (`reconnect`), and mqtt.js restores the
 * subscriptions and resends unacknowledged QoS 1 frames; frames published while the broker is away wait in its queue and
 * go out on reconnection, and with `clean: false` the broker keeps QoS 1 frames for this client
 * while it is away. A full inbound queue holds back mqtt.js (and so the broker) rather than drop.
 */
import {
  type Backoff,
  backoffDelay,
  backoffOf,
  closedError,
  importOptional,
  type Peer,
  PeerError,
  type PeerLike,
  positiveInt,
  type ReconnectOptions,
  TransportBase,
  TransportIoError,
  TransportOptionError,
  type TransportOptions,
  TransportProtocolError,
  TransportStateError,
  TransportTimeoutError,
} from '@opensynaptic/transport/core';
import type { TransportDriver } from '@opensynaptic/transport';

/** The reference's topics: what its sender publishes to, what its listener subscribes to. */
export const REFERENCE_PUBLISH_TOPIC = 'os/sensors/raw';
export const REFERENCE_SUBSCRIBE_TOPIC = 'os/sensors/#';
export const DEFAULT_MQTT_MAX_FRAME_BYTES = 1024 * 1024;
/** The back-off of MQTT reconnections: 1 s doubling to 30 s, each delay up to 20% shorter at random. */
export const DEFAULT_MQTT_RECONNECT: Backoff = Object.freeze({ initialDelayMs: 1000, maxDelayMs: 30_000, factor: 2, jitter: 0.2 });
/** mqtt.js's own reconnection timer, parked: positive (so it keeps the subscriptions to restore), never due. */
const PARKED_RECONNECT_PERIOD = 2_147_483_647;

export interface MqttOptions extends TransportOptions {
  /** The broker (`mqtt://host:port`, `mqtts://...`); default `mqtt://127.0.0.1:1883`. */
  url?: string | undefined;
  /** Client id (default `OpenSynapticNode_<random>`; required, and stable, with `clean: false`). */
  clientId?: string | undefined;
  /** Where `send` publishes without a `to` (default `os/sensors/raw`); a function picks a topic per frame (per-device topics). */
  publishTopic?: string | ((frame: Uint8Array) => string) | undefined;
  /** Topic filters to receive from (default `['os/sensors/#']`); `[]` or `false`: send only. */
  subscribe?: readonly string[] | false | undefined;
  /** QoS of publishes and subscriptions: 0 (default, the reference's) or 1. */
  qos?: 0 | 1 | undefined;
  /** 5 (default) or 4 (MQTT 3.1.1, for brokers without MQTT 5). */
  protocolVersion?: 4 | 5 | undefined;
  /** `true` (default): a new session at each connection. `false`: the broker keeps subscriptions and QoS 1 frames while the client is away. */
  clean?: boolean | undefined;
  /** MQTT 5, `clean: false`: how long the broker keeps the session after a disconnection (default 3600 s). */
  sessionExpirySeconds?: number | undefined;
  /** MQTT 5: do not receive what this client publishes (default true). */
  noLocal?: boolean | undefined;
  /** Keep-alive interval (default 60 s, the reference's). */
  keepaliveSeconds?: number | undefined;
  /**
   * Back-off of reconnections after a lost connection: `initialDelayMs` (default 1000),
   * `maxDelayMs` (30000), `factor` (the multiplier, 2), `jitter` (0.2: each delay drawn from
   * `[d × 0.8, d]`); `false`: no reconnection. Subscriptions are restored on reconnection.
   */
  reconnect?: ReconnectOptions | false | undefined;
  /** The first reconnection delay, as `reconnect.initialDelayMs` (kept from earlier versions); 0: no reconnection. */
  reconnectPeriodMs?: number | undefined;
  /** How long `start()` waits for the broker (default 10000 ms). */
  connectTimeoutMs?: number | undefined;
  username?: string | undefined;
  password?: string | Uint8Array | undefined;
  /** Largest frame (default 1 MiB); larger received ones are dropped as `oversize`. */
  maxFrameBytes?: number | undefined;
}

// The part of mqtt.js used here (its types are not in the published declarations: it is optional).
interface MqttPacket {
  topic: string;
  payload: Uint8Array;
  qos?: number;
  messageId?: number;
}
/** mqtt.js's packet writer (not public API: the PUBACK of a QoS 1 message goes out through it; see `deferAcks`). */
type SendPacket = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;
interface MqttClient {
  handleMessage: (packet: MqttPacket, done: (err?: Error) => void) => void;
  on(event: 'connect', listener: (connack: { sessionPresent?: boolean }) => void): this;
  on(event: 'reconnect' | 'close' | 'offline', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  removeAllListeners(): this;
  subscribe(topics: Record<string, { qos: 0 | 1; nl?: boolean }>, cb: (err: Error | null | undefined, granted?: { topic: string; qos: number }[]) => void): this;
  /** Connects again; given its own stores, it keeps the QoS 1 frames not yet acknowledged. */
  reconnect(stores: { incomingStore: unknown; outgoingStore: unknown }): this;
  incomingStore: unknown;
  outgoingStore: unknown;
  publish(topic: string, payload: Uint8Array, options: { qos: 0 | 1 }, cb: (err?: Error) => void): this;
  end(force: boolean, options: object, cb: () => void): this;
}
interface MqttModule {
  connect(url: string, options: object): MqttClient;
}

interface BufferLike {
  from(buffer: ArrayBufferLike, byteOffset: number, length: number): Uint8Array;
}

const MQTT_RANGE = '^5 (tested with 5.16)';

function checkTopic(topic: unknown, what: string, filter: boolean): string {
  if (typeof topic !== 'string' || topic === '' || topic.length > 65535 || topic.includes('\u0000')) {
    throw new TransportOptionError(what, topic, 'a non-empty MQTT topic (no NUL, at most 65535 characters)', { medium: 'mqtt' });
  }
  if (!filter && (topic.includes('+') || topic.includes('#'))) throw new TransportOptionError(what, topic, 'a topic without wildcards (+, #)', { medium: 'mqtt' });
  return topic;
}

interface PendingPublish {
  resolve: () => void;
  reject: (e: Error) => void;
}

export class MqttTransport extends TransportBase {
  readonly reliable: boolean;
  readonly qos: 0 | 1;
  /**
   * The topic filters this transport subscribes to, as given. A consumer that needs a device's
   * frames in order looks here: a shared subscription (`$share/<group>/<filter>`) hands one
   * publisher's messages to different members of the group, so their order across members is lost.
   */
  readonly subscriptions: readonly string[];
  readonly #url: string;
  readonly #clientOptions: Record<string, unknown>;
  readonly #publishTopic: string | ((frame: Uint8Array) => string);
  readonly #subscribe: readonly string[];
  readonly #noLocal: boolean;
  readonly #connectTimeoutMs: number;
  readonly #backoff: Backoff | false;
  /** One options object for every publish (mqtt.js copies it). */
  readonly #publishOptions: { qos: 0 | 1 };
  #deferAcks = false;
  /**
   * QoS 1 messages delivered with `ack` and not yet acknowledged, by packet id: the PUBACK mqtt.js
   * built for each, held until `ack()` (one connection's: cleared when it closes, since the broker
   * sends them again to a persistent session). Bounded by the broker's in-flight window.
   */
  readonly #held = new Map<number, { packet: { cmd: string; messageId?: number } | null; acked: boolean }>();
  #send: SendPacket | null = null;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #client: MqttClient | undefined;
  #connected = false;
  #attempt = 0;
  #pending = new Set<PendingPublish>();
  #peers = new Map<string, Peer>();
  #Buffer: BufferLike | undefined;

  constructor(options: MqttOptions = {}) {
    super('mqtt', positiveInt('maxFrameBytes', options.maxFrameBytes, DEFAULT_MQTT_MAX_FRAME_BYTES, 'mqtt', 1, 256 * 1024 * 1024 - 65_536), options);
    const url = options.url ?? 'mqtt://127.0.0.1:1883';
    if (typeof url !== 'string' || !/^(mqtts?|wss?|tcp|ssl):\/\/[^/]+/.test(url)) throw new TransportOptionError('url', url, 'a broker URL such as mqtt://host:1883', { medium: 'mqtt' });
    this.#url = url;
    const qos = options.qos ?? 0;
    if (qos !== 0 && qos !== 1) throw new TransportOptionError('qos', qos, '0 or 1', { medium: 'mqtt' });
    this.qos = qos;
    this.#publishOptions = { qos };
    this.reliable = qos === 1;
    const protocolVersion = options.protocolVersion ?? 5;
    if (protocolVersion !== 4 && protocolVersion !== 5) throw new TransportOptionError('protocolVersion', protocolVersion, '4 (MQTT 3.1.1) or 5', { medium: 'mqtt' });
    const clean = options.clean ?? true;
    if (typeof clean !== 'boolean') throw new TransportOptionError('clean', clean, 'a boolean', { medium: 'mqtt' });
    if (!clean && options.clientId === undefined) throw new TransportOptionError('clientId', undefined, 'a stable client id when clean is false (the broker keeps the session by id)', { medium: 'mqtt' });
    const clientId = options.clientId ?? `OpenSynapticNode_${Math.random().toString(16).slice(2, 10)}`;
    if (typeof clientId !== 'string' || clientId === '' || clientId.length > 256) throw new TransportOptionError('clientId', clientId, 'a non-empty string of at most 256 characters', { medium: 'mqtt' });
    const publishTopic = options.publishTopic ?? REFERENCE_PUBLISH_TOPIC;
    this.#publishTopic = typeof publishTopic === 'function' ? publishTopic : checkTopic(publishTopic, 'publishTopic', false);
    const subscribe = options.subscribe === false ? [] : (options.subscribe ?? [REFERENCE_SUBSCRIBE_TOPIC]);
    if (!Array.isArray(subscribe)) throw new TransportOptionError('subscribe', subscribe, 'a list of topic filters, or false', { medium: 'mqtt' });
    this.#subscribe = subscribe.map((t, i) => checkTopic(t, `subscribe[${i}]`, true));
    this.subscriptions = Object.freeze([...this.#subscribe]);
    this.#noLocal = options.noLocal ?? true;
    this.#connectTimeoutMs = positiveInt('connectTimeoutMs', options.connectTimeoutMs, 10_000, 'mqtt', 1);
    const reconnectPeriod = positiveInt('reconnectPeriodMs', options.reconnectPeriodMs, DEFAULT_MQTT_RECONNECT.initialDelayMs, 'mqtt', 0);
    // The back-off is ours (mqtt.js retries at one fixed period): its own timer stays parked.
    const reconnect = options.reconnect ?? (reconnectPeriod === 0 ? false : { initialDelayMs: reconnectPeriod });
    this.#backoff = backoffOf(reconnect === false || reconnectPeriod === 0 ? false : reconnect, 'mqtt', DEFAULT_MQTT_RECONNECT);
    const keepalive = positiveInt('keepaliveSeconds', options.keepaliveSeconds, 60, 'mqtt', 0, 65535);
    this.#clientOptions = {
      clientId,
      clean,
      protocolVersion,
      keepalive,
      reconnectPeriod: this.#backoff === false ? 0 : PARKED_RECONNECT_PERIOD,
      connectTimeout: this.#connectTimeoutMs,
      resubscribe: true,
      // Frames published while the broker is away wait (bounded by maxPendingSends) and go out on reconnection.
      queueQoSZero: true,
    };
    if (protocolVersion === 5 && !clean) this.#clientOptions.properties = { sessionExpiryInterval: positiveInt('sessionExpirySeconds', options.sessionExpirySeconds, 3600, 'mqtt', 0) };
    if (options.username !== undefined) this.#clientOptions.username = options.username;
    if (options.password !== undefined) this.#clientOptions.password = options.password;
  }

  /** Whether a broker session is up now. */
  get connected(): boolean {
    return this.#connected;
  }

  protected override connectionCount(): number {
    return this.#connected ? 1 : 0;
  }

  protected async open(): Promise<void> {
    const mqtt = await importOptional<MqttModule & { default?: MqttModule }>('mqtt', 'mqtt', MQTT_RANGE);
    const connect = mqtt.connect ?? mqtt.default?.connect;
    this.#Buffer = (globalThis as { Buffer?: BufferLike }).Buffer;
    const broker: Peer = { medium: 'mqtt', key: `mqtt:${this.#url}`, address: this.#url };
    const client = connect(this.#url, this.#clientOptions);
    this.#client = client;
    // mqtt.js acknowledges a message, and reads the next, when handleMessage calls back.
    client.handleMessage = (packet, done) => this.#receive(packet, done);
    if (this.#deferAcks) this.#holdPubacks(client);
    let first = true;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new TransportTimeoutError(`connecting to the broker ${this.#url}`, this.#connectTimeoutMs, { medium: 'mqtt' }));
      }, this.#connectTimeoutMs);
      client.on('connect', () => {
        this.#connected = true;
        this.#attempt = 0;
        this.events.emit('connected', { peer: broker });
        if (!first) return;
        first = false;
        this.#subscribeAll(client).then(
          () => {
            clearTimeout(timer);
            resolve();
          },
          (e: unknown) => {
            clearTimeout(timer);
            reject(e);
          },
        );
      });
      client.on('error', (err) => {
        const error = new TransportIoError(`broker ${this.#url}: ${err.message}`, err, { medium: 'mqtt' });
        if (first) {
          clearTimeout(timer);
          reject(error);
        } else this.reportError(error);
      });
    });
    client.on('close', () => {
      if (this.#connected) {
        this.#connected = false;
        this.events.emit('disconnected', { peer: broker });
      }
      // After a lost connection and after each failed attempt: the next one, later.
      this.#scheduleReconnect(client);
    });
  }

  #scheduleReconnect(client: MqttClient): void {
    if (this.#backoff === false || this.#client !== client || this.#reconnectTimer !== undefined) return;
    const attempt = ++this.#attempt;
    const delayMs = backoffDelay(this.#backoff, attempt);
    this.events.emit('reconnecting', { attempt, delayMs });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#client !== client) return;
      // Its own stores: the QoS 1 frames the broker has not acknowledged go out again.
      client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delayMs);
  }

  #subscribeAll(client: MqttClient): Promise<void> {
    if (this.#subscribe.length === 0) return Promise.resolve();
    const topics: Record<string, { qos: 0 | 1; nl?: boolean }> = {};
    for (const t of this.#subscribe) topics[t] = this.#clientOptions.protocolVersion === 5 ? { qos: this.qos, nl: this.#noLocal } : { qos: this.qos };
    return new Promise<void>((resolve, reject) => {
      client.subscribe(topics, (err, granted) => {
        const refused = granted?.find((g) => g.qos > 2);
        if (err || refused) {
          reject(new TransportProtocolError(`the broker refused the subscription to ${refused?.topic ?? this.#subscribe.join(', ')}${err ? `: ${err.message}` : ''}`, { medium: 'mqtt' }));
        } else resolve();
      });
    });
  }

  deferAcks(): boolean {
    if (this.qos !== 1) return false;
    if (this.state !== 'created') throw new TransportStateError('ERR_TRANSPORT_STATE', 'deferAcks() before start()', this.state, { medium: 'mqtt' });
    this.#deferAcks = true;
    return true;
  }

  /**
   * mqtt.js sends a QoS 1 message's PUBACK as soon as handleMessage calls back, and reads the
   * next message only then: to acknowledge after the consumer made it durable without holding the
   * stream, the PUBACK is taken aside here and sent on `ack()`. The writer is mqtt.js's internal
   * `_sendPacket` (checked at start; without it acknowledgements stay immediate, said by an error event).
   */
  #holdPubacks(client: MqttClient): void {
    const raw = client as unknown as { _sendPacket?: SendPacket };
    const send = raw._sendPacket;
    if (typeof send !== 'function') {
      this.#deferAcks = false;
      this.reportError(new TransportProtocolError('this mqtt.js has no _sendPacket: QoS 1 messages are acknowledged on receipt, not once durable', { medium: 'mqtt' }));
      return;
    }
    const write = send.bind(client) as SendPacket;
    this.#send = write;
    raw._sendPacket = (packet, cb, ...rest) => {
      const id = packet.messageId;
      if (packet.cmd === 'puback' && id !== undefined) {
        const h = this.#held.get(id);
        if (h !== undefined && !h.acked) {
          h.packet = packet;
          cb?.(); // the stream reads on; the PUBACK waits for ack()
          return;
        }
        this.#held.delete(id);
      }
      write(packet, cb, ...rest);
    };
    client.on('close', () => this.#held.clear());
  }

  /** The `ack` of QoS 1 message `id` (see `deferAcks`). */
  #ackOf(id: number): () => void {
    const entry = { packet: null, acked: false };
    this.#held.set(id, entry);
    return () => {
      if (this.#held.get(id) !== entry || entry.acked) return; // already sent, or a closed connection's
      entry.acked = true;
      if (entry.packet !== null) {
        this.#held.delete(id);
        this.#send?.(entry.packet, () => undefined);
      }
    };
  }

  #receive(packet: MqttPacket, done: (err?: Error) => void): void {
    const payload = packet.payload;
    if (payload === undefined || payload.byteLength === 0) {
      done();
      return;
    }
    let peer = this.#peers.get(packet.topic);
    if (peer === undefined) {
      if (this.#peers.size >= 4096) this.#peers.clear();
      peer = { medium: 'mqtt', key: `mqtt:${packet.topic}`, topic: packet.topic };
      this.#peers.set(packet.topic, peer);
    }
    if (payload.byteLength > this.maxFrameBytes) {
      this.drop('oversize', 1, peer);
      done();
      return;
    }
    // A plain Uint8Array view of mqtt.js's payload (no copy).
    const frame = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    const ack = this.#deferAcks && packet.qos === 1 && packet.messageId !== undefined ? this.#ackOf(packet.messageId) : undefined;
    if (this.deliver(frame, peer, true, undefined, ack)) {
      done();
      return;
    }
    // The queue is full: the PUBACK and the next message wait until the consumer makes room,
    // which holds back the broker's stream to this client rather than dropping.
    void this.inbound.waitForSpace().then(() => done());
  }

  protected write(frame: Uint8Array, to: PeerLike | undefined): Promise<void> {
    const client = this.#client;
    if (client === undefined) return Promise.reject(closedError('mqtt'));
    let topic: string;
    if (to === undefined) {
      topic = typeof this.#publishTopic === 'function' ? this.#publishTopic(frame) : this.#publishTopic;
    } else {
      topic = (to as { topic?: string }).topic as string;
    }
    // The configured topic was checked once, in the constructor.
    if (topic !== this.#publishTopic && (typeof topic !== 'string' || topic === '' || topic.includes('+') || topic.includes('#') || topic.includes('\u0000'))) {
      return Promise.reject(new PeerError(`an MQTT destination needs a topic without wildcards; got ${JSON.stringify(topic)}`, { medium: 'mqtt' }));
    }
    const payload = this.#Buffer ? this.#Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength) : frame;
    return new Promise<void>((resolve, reject) => {
      const entry: PendingPublish = { resolve, reject };
      this.#pending.add(entry);
      client.publish(topic, payload, this.#publishOptions, (err) => {
        if (!this.#pending.delete(entry)) return;
        if (err) reject(new TransportIoError(`publish to ${topic} failed: ${err.message}`, err, { medium: 'mqtt', peer: `mqtt:${topic}` }));
        else resolve();
      });
    });
  }

  protected async close(drain: boolean): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (client !== undefined) {
      await new Promise<void>((resolve) => {
        // A stop lets mqtt.js finish what is in flight; a destroy does not wait.
        const timer = setTimeout(resolve, drain ? 5000 : 1000);
        client.end(!drain, {}, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      client.removeAllListeners();
      client.on('error', () => undefined);
    }
    this.#connected = false;
    for (const p of this.#pending) p.reject(closedError('mqtt', 'the transport closed before the broker took the frame'));
    this.#pending.clear();
  }
}

export function createMqttTransport(options: MqttOptions = {}): MqttTransport {
  return new MqttTransport(options);
}

/** The registry's `mqtt` driver. */
export const mqttDriver: TransportDriver = { name: 'mqtt', create: (options) => new MqttTransport(options as MqttOptions) };
