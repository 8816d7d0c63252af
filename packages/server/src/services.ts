import { isData } from '@opensynaptic/cmd';
import { readU32, readU48 } from '@opensynaptic/packet';
import type { LeaseKinds, SessionKinds } from '@opensynaptic/handshake';
import type { ReadingFrame, ReadingsSink, ReadingsSinkStatus, Store } from '@opensynaptic/store';
import type { Inbound, PeerLike, Transport } from '@opensynaptic/transport';
import type { ForwardRuleConfig } from './config.js';
import { optionError, ServerError } from './errors.js';
import type { ServerControl } from './server.js';

/** What a service sees of the server it runs in. */
export interface ServiceHost {
  /** The transport the server knows by `name` (its configured name), or undefined. */
  transport(name: string): Transport | undefined;
  /** Reports a service's failure as the server's `service-error` event. */
  reportError(service: string, error: unknown): void;
}

/**
 * A service: started after the node is open and before the transports, stopped (drained) after
 * the transports stopped, destroyed at once on `destroy()`. The hooks are optional.
 */
export interface Service {
  readonly name: string;
  start?(host: ServiceHost): void | Promise<void>;
  stop?(): void | Promise<void>;
  destroy?(): void | Promise<void>;
  /** Every inbound frame, before the node reads it (`via`: the transport's name). Must not throw or block. */
  onFrame?(inbound: Inbound, via: string): void;
  /** Every decoded reading (sinks use the `sink` field instead, for backpressure). */
  onReading?(reading: ReadingFrame): void;
  /**
   * Every inbound control packet the node handled (a PONG or TIME_RESPONSE answering a packet
   * sent with `sendTo`, an ACK...), after the server answered it. Must not throw or block.
   */
  onControl?(control: ServerControl): void;
  /** Storage services: the sink the server writes readings to, with backpressure. */
  readonly sink?: ReadingsSink;
  /** What the service reports in the server's `status()`. */
  status?(): unknown;
}

/** Services by name, in registration order (started in that order, stopped in reverse). */
export class ServiceRegistry {
  readonly #services = new Map<string, Service>();

  register(service: Service): this {
    if (typeof service?.name !== 'string' || service.name.length === 0) throw optionError('service.name', 'a service needs a non-empty name');
    if (this.#services.has(service.name)) throw optionError(`services.${service.name}`, 'a service of this name is already registered');
    this.#services.set(service.name, service);
    return this;
  }

  get(name: string): Service | undefined {
    return this.#services.get(name);
  }

  has(name: string): boolean {
    return this.#services.has(name);
  }

  names(): string[] {
    return [...this.#services.keys()];
  }

  list(): Service[] {
    return [...this.#services.values()];
  }
}

/**
 * A change of a storage service's health (the server's `storage` event): `failing` (commits
 * fail and are retried with backoff, or the status cannot be read: the database is down or
 * full), `recovered` (commits land again; what was buffered is being written), `lost` (readings
 * given up on, `lost` of them since the last event).
 */
export interface StorageChange {
  state: 'failing' | 'recovered' | 'lost';
  error: string | null;
  /** Readings accepted and not yet committed, when known. */
  buffered: number | null;
  lost: number | null;
}

/** Options of {@link SinkService}. */
export interface SinkServiceOptions {
  /** Service name (default `storage`). */
  name?: string;
  /** Close the sink on `destroy()` and after `stop()` (default true: the service owns it). */
  own?: boolean;
}

/**
 * The storage sink service: the server writes every decoded reading to `sink` (with
 * backpressure, see the server's `overflow`); `stop()` flushes and closes it, so what it had
 * accepted is committed or counted lost in its status.
 */
export class SinkService implements Service {
  readonly name: string;
  readonly sink: ReadingsSink;
  readonly #own: boolean;
  #closed = false;
  #last: ReadingsSinkStatus | null = null;
  #failing = false;
  #seen: { failed: number; committed: number; lost: number } | null = null;

  constructor(sink: ReadingsSink, options: SinkServiceOptions = {}) {
    if (typeof sink?.tryWrite !== 'function' || typeof sink.write !== 'function') throw optionError('sink', 'not a readings sink (write, tryWrite, flush, status, close)');
    this.sink = sink;
    this.name = options.name ?? 'storage';
    this.#own = options.own ?? true;
  }

  /**
   * Flushes, then (when it owns the sink) closes it. A flush that fails (the database down or
   * full) does not skip the close: the close keeps retrying for the sink's `closeTimeoutMs` and
   * then counts what it could not commit as lost, which the final status shows; the error is
   * rethrown after.
   */
  async stop(): Promise<void> {
    let failed: unknown;
    try {
      await this.sink.flush();
    } catch (error) {
      failed = error;
    }
    this.#last = await this.sink.status().catch(() => this.#last);
    if (this.#own && !this.#closed) {
      this.#closed = true;
      try {
        await this.sink.close();
        failed = undefined; // everything got committed in the end
      } catch (error) {
        failed = error;
      } finally {
        // The sink's counters after the close (its status() is closed now), over the last status read.
        const counts = (this.sink as { counts?: Partial<ReadingsSinkStatus> }).counts;
        if (counts !== undefined) this.#last = { ...(this.#last ?? {}), ...counts } as ReadingsSinkStatus;
      }
    }
    if (failed !== undefined) throw failed;
  }

  async destroy(): Promise<void> {
    if (this.#own && !this.#closed) {
      this.#closed = true;
      await this.sink.close().catch(() => undefined); // what it could not write is counted lost in its status
    }
  }

  /**
   * Compares the sink's status with the last check and says what changed: its commits started
   * failing (a database down or full; or its status cannot be read), it recovered (commits land
   * again), or it counted readings lost. The server calls this on its sweep timer and emits the
   * answer as a `storage` event.
   */
  async check(): Promise<StorageChange | null> {
    if (this.#closed) return null;
    let st: ReadingsSinkStatus;
    try {
      st = await this.sink.status();
    } catch (error) {
      if (this.#failing) return null;
      this.#failing = true;
      return { state: 'failing', error: error instanceof Error ? error.message : String(error), buffered: null, lost: null };
    }
    this.#last = st;
    const prev = this.#seen;
    this.#seen = { failed: st.failedAttempts, committed: st.committed, lost: st.lost };
    if (prev === null) return null;
    if (st.lost > prev.lost) return { state: 'lost', error: st.lastError?.message ?? null, buffered: st.buffered, lost: st.lost - prev.lost };
    if (!this.#failing && st.failedAttempts > prev.failed) {
      this.#failing = true;
      return { state: 'failing', error: st.lastError?.message ?? null, buffered: st.buffered, lost: null };
    }
    if (this.#failing && st.failedAttempts === prev.failed && (st.committed > prev.committed || st.buffered === 0)) {
      this.#failing = false;
      return { state: 'recovered', error: null, buffered: st.buffered, lost: null };
    }
    return null;
  }

  /** The sink's status (`status()` of the sink, last known once closed). */
  async currentStatus(): Promise<ReadingsSinkStatus | null> {
    if (this.#closed) return this.#last;
    this.#last = await this.sink.status();
    return this.#last;
  }

  status(): unknown {
    return this.#last;
  }
}

interface SqliteModule {
  openSqliteReadingsSink(options: object): Promise<ReadingsSink>;
  openSqliteStore<K extends object = LeaseKinds & SessionKinds>(options: object): Promise<Store<K>>;
}

interface PostgresModule {
  openPostgresReadingsSink(options: object): Promise<ReadingsSink>;
  openPostgresStore<K extends object = LeaseKinds & SessionKinds>(options: object): Promise<Store<K>>;
}

/** Loads a storage driver package by name (`ERR_SERVER_DEPENDENCY` saying what to install when it is missing). */
async function loadDriver<T>(name: string, driver: string): Promise<T> {
  try {
    return (await import(/* @vite-ignore */ name)) as T;
  } catch (e) {
    throw new ServerError('ERR_SERVER_DEPENDENCY', `storage.driver "${driver}" needs ${name}: install it beside @opensynaptic/server`, { key: 'storage.driver', cause: e });
  }
}

/**
 * Loads `@opensynaptic/store-sqlite` by name, so that the server itself does not depend on a
 * database driver (`ERR_SERVER_DEPENDENCY` saying what to install when it is missing).
 */
export function loadSqlite(): Promise<SqliteModule> {
  return loadDriver('@opensynaptic/store-sqlite', 'sqlite');
}

/** Loads `@opensynaptic/store-postgres` (and so `pg`) by name, only when a configuration asks for it. */
export function loadPostgres(): Promise<PostgresModule> {
  return loadDriver('@opensynaptic/store-postgres', 'postgres');
}

/** Opens the SQLite readings sink of `@opensynaptic/store-sqlite` (loaded by name). */
export async function openSqliteSink(options: { path: string; [option: string]: unknown }): Promise<ReadingsSink> {
  return (await loadSqlite()).openSqliteReadingsSink(options);
}

/** Counters of the port forwarder. */
export interface ForwarderStatus {
  /** Frames that matched a rule and were handed to its transport. */
  forwarded: number;
  /** Sends that failed (no such transport, refused, too large). */
  failed: number;
  /** Frames no rule matched. */
  unmatched: number;
  /** Per rule (its name, or `from→to`): forwarded and failed. */
  rules: Record<string, { forwarded: number; failed: number }>;
  lastError: string | null;
}

/** The source aid of a data frame (the last route id), or undefined for a short or control packet. */
export function frameAid(frame: Uint8Array): number | undefined {
  const cmd = frame[0];
  if (cmd === undefined || !isData(cmd) || frame.length < 2) return undefined;
  const routes = frame[1] as number;
  if (routes === 0) return 0;
  const at = 2 + 4 * (routes - 1);
  if (frame.length < at + 4) return undefined;
  return readU32(frame, at);
}

/**
 * The device timestamp of a data frame's header (the 48-bit `ts` after the routes and the tid,
 * normally Unix ms; 0 means "no clock"), or undefined for a short or control packet. Read from
 * the plain header, so secure frames have one too.
 */
export function frameTimestamp(frame: Uint8Array): number | undefined {
  const cmd = frame[0];
  if (cmd === undefined || !isData(cmd) || frame.length < 2) return undefined;
  const at = 2 + 4 * (frame[1] as number) + 1;
  if (frame.length < at + 6) return undefined;
  return readU48(frame, at);
}

interface CompiledRule {
  key: string;
  rule: ForwardRuleConfig;
  aids: Set<number> | null;
  cmds: Set<number> | null;
}

/**
 * The port forwarder, as the reference's: rules forward inbound frames of one medium to another
 * (serial in → UDP out, UDP → MQTT), filtered by source aid and command byte, highest priority
 * first, the first match wins unless the rule says `continue`. Frames are forwarded as they
 * arrived (the node still reads them); a send is not awaited, and a failed one is counted.
 */
export class PortForwarder implements Service {
  readonly name: string;
  readonly #rules: CompiledRule[];
  #host: ServiceHost | null = null;
  #running = false;
  readonly #status: ForwarderStatus = { forwarded: 0, failed: 0, unmatched: 0, rules: {}, lastError: null };

  constructor(rules: readonly ForwardRuleConfig[], options: { name?: string } = {}) {
    this.name = options.name ?? 'port-forwarder';
    this.#rules = rules
      .map((rule, index) => ({ rule, index }))
      .filter(({ rule }) => rule.enabled !== false)
      .sort((a, b) => (b.rule.priority ?? 0) - (a.rule.priority ?? 0) || a.index - b.index)
      .map(({ rule }) => ({
        key: rule.name ?? `${rule.from}→${rule.to}`,
        rule,
        aids: rule.aids === undefined ? null : new Set(rule.aids),
        cmds: rule.cmds === undefined ? null : new Set(rule.cmds),
      }));
    for (const r of this.#rules) this.#status.rules[r.key] = { forwarded: 0, failed: 0 };
  }

  start(host: ServiceHost): void {
    this.#host = host;
    for (const r of this.#rules) if (host.transport(r.rule.to) === undefined) throw optionError(`portForwarder.rules.${r.key}.to`, `no transport named "${r.rule.to}"`);
    this.#running = true;
  }

  stop(): void {
    this.#running = false;
  }

  destroy(): void {
    this.#running = false;
  }

  onFrame(inbound: Inbound, via: string): void {
    if (!this.#running || this.#host === null) return;
    const cmd = inbound.frame[0];
    let aid: number | undefined;
    let aidRead = false;
    let matched = false;
    for (const r of this.#rules) {
      if (r.rule.from !== '*' && r.rule.from !== via) continue;
      if (r.cmds !== null && (cmd === undefined || !r.cmds.has(cmd))) continue;
      if (r.aids !== null) {
        if (!aidRead) {
          aid = frameAid(inbound.frame);
          aidRead = true;
        }
        if (aid === undefined || !r.aids.has(aid)) continue;
      }
      matched = true;
      this.#send(r, inbound.frame);
      if (!r.rule.continue) break;
    }
    if (!matched) this.#status.unmatched++;
  }

  #send(r: CompiledRule, frame: Uint8Array): void {
    const counters = this.#status.rules[r.key] as { forwarded: number; failed: number };
    const transport = this.#host?.transport(r.rule.to);
    const fail = (e: unknown) => {
      counters.failed++;
      this.#status.failed++;
      this.#status.lastError = e instanceof Error ? e.message : String(e);
    };
    if (transport === undefined) {
      fail(new Error(`no transport named "${r.rule.to}"`));
      return;
    }
    counters.forwarded++;
    this.#status.forwarded++;
    let sent: Promise<void>;
    try {
      sent = transport.send(frame, r.rule.target as PeerLike | undefined);
    } catch (e) {
      counters.forwarded--;
      this.#status.forwarded--;
      fail(e);
      return;
    }
    sent.catch((e: unknown) => {
      counters.forwarded--;
      this.#status.forwarded--;
      fail(e);
    });
  }

  status(): ForwarderStatus {
    return structuredClone(this.#status);
  }
}
