import { timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frameAid, type OpenSynapticServer, type ServerControl, type Service, type ServiceHost } from '@opensynaptic/server';
import type { ReadingFrame, ReadingsSink, Store } from '@opensynaptic/store';
import type { Peer } from '@opensynaptic/transport';
import { type UpgradeRefusal, type UpgradeRequest, WebSocketTransport } from '@opensynaptic/transport/websocket';
import { ALERT_DEFAULTS, type AlertEvent, AlertEngine, type AlertEngineStatus, type AlertStoreKinds } from './alerts.js';
import { AlertHttpError, alertRules, listAlerts } from './alerts-http.js';
import { DeviceConsole, MAX_CONSOLE_TIMEOUT_MS, readJson } from './console.js';
import { FrameDecoder, type TemplatePeek } from './decoded.js';
import { type GaugeRanges, gaugeRangesOf } from './gauge-ranges.js';
import { RateMeter } from './rates.js';
import { type BookReading, DeviceBook, type DeviceView } from './devices.js';
import { DashboardError, optionError } from './errors.js';
import { FrameLog } from './frames.js';
import { MAX_FEED_MESSAGE_BYTES } from './feed-limits.js';
import { tileOption } from './map-options.js';
import { CSV_HEADER, csvLine, readingQueryOf } from './query.js';

export interface DashboardOptions {
  /** Service name (default `dashboard`). */
  name?: string;
  /** Address to bind (default `127.0.0.1`). Anything but loopback needs `token`. */
  host?: string;
  /** TCP port (default 8090; 0: any free port, see `address`). */
  port?: number;
  /**
   * The access token. When set, every API call and the live feed need it (`Authorization:
   * Bearer <token>`, or `?token=` where a header cannot be set: the WebSocket, a CSV link);
   * write actions need it always, so without one they are refused (403). At least 16 characters.
   */
  token?: string | undefined;
  /** A device not heard for longer than this is `stale` (default 10000 ms). */
  staleAfterMs?: number;
  /** ... and `offline` after this (default 60000 ms; at least `staleAfterMs`). */
  offlineAfterMs?: number;
  /** Live-feed connections open at once (default 64); one more is refused with HTTP 503. */
  maxClients?: number;
  /**
   * Bytes a live-feed client may have unsent (default 1 MiB). A client past it gets no more
   * updates (counted `skipped`) until it drains, then one `sync` message with the current state:
   * updates are coalesced, never queued without bound.
   */
  maxClientBufferBytes?: number;
  /** A client that stays past `maxClientBufferBytes` this long is disconnected (default 15000 ms). */
  maxBehindMs?: number;
  /** How often the live feed pushes what happened, ms (default 100). */
  feedIntervalMs?: number;
  /** Readings one push carries at most (default 5000); beyond that they are coalesced into the devices' latest values. */
  maxFeedReadings?: number;
  /** How often the health document is pushed, ms (default 2000). */
  healthIntervalMs?: number;
  /** Most rows one history request returns, JSON or CSV (default 100000, at most 1000000). */
  maxHistoryRows?: number;
  /** Devices the live table holds (default 10000; the least recently heard is forgotten first). */
  maxDevices?: number;
  /** Data frames the inspector keeps per device (default 32; 0: none), for `GET /api/frames`. */
  framesPerDevice?: number;
  /** The readings store for history and CSV (default: the server's `storage` service's sink). */
  storage?: ReadingsSink | null;
  /**
   * The health document (default: one built from `server.status()` in the shape of the status
   * file `os-node serve` writes; the CLI passes its own).
   */
  health?: () => unknown | Promise<unknown>;
  /** Where the built page is (default: `dist/web` of this package). */
  webRoot?: string;
  /** The clock, ms (default `Date.now`). */
  clock?: () => number;
  /** How long a console request waits for the device's reply, ms (default 2000; a request may give its own `timeoutMs`, at most 30000). */
  consoleTimeoutMs?: number;
  /** Longest raw packet the console sends, bytes (default 512). */
  maxConsoleBytes?: number;
  /** Console requests waiting for replies at once (default 64); one more is refused (503 `ERR_DASHBOARD_BUSY`). */
  maxConsolePending?: number;
  /**
   * The map's tile server, a URL template with `{z}`, `{x}`, `{y}` (and optionally `{s}`), e.g.
   * `https://tile.openstreetmap.org/{z}/{x}/{y}.png` (default none: the map draws the devices on
   * a plain latitude/longitude grid, as it does when the tile server cannot be reached).
   */
  tileUrl?: string | null;
  /** The attribution shown with the tiles (default none; most tile servers require one). */
  tileAttribution?: string;
  /** Alert rules (see `AlertRule`), (re)applied at every start over stored rules of the same id. */
  alertRules?: readonly unknown[];
  /**
   * Where alert rules and the alert history persist: a `Store` with the kinds `alert-rules` and
   * `alerts` (`ALERT_STORE_KINDS`), e.g. `openSqliteStore({ path, kinds: ALERT_STORE_KINDS })`.
   * Default none: kept for the life of the process. The caller closes it.
   */
  alertStore?: Store<AlertStoreKinds> | null;
  /** Most alert rules (default 256). */
  maxAlertRules?: number;
  /** Alerts the history keeps, fired and cleared (default 1000). */
  maxAlertHistory?: number;
  /** Alerts active at once (default 1000); past it, a firing is counted `overflow`, not recorded. */
  maxActiveAlerts?: number;
  /** Series (rule × device × sensor) the engine watches (default 100000); past it, counted `untracked`. */
  maxAlertSeries?: number;
  /** How often `stale` rules are checked, ms (default 1000). */
  alertCheckIntervalMs?: number;
  /** Alert events queued for the next push (default 1000); past it, clients get the whole alert state instead. */
  maxAlertEvents?: number;
  /** Largest JSON body of a write request, bytes (default 16384). */
  maxBodyBytes?: number;
  /** Gauge ranges by sensor id and by unit (`%` is 0..100 without a setting). */
  gaugeRanges?: GaugeRanges;
  /** The span health rates are computed over, ms (default 5000). */
  rateWindowMs?: number;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 8090,
  staleAfterMs: 10_000,
  offlineAfterMs: 60_000,
  maxClients: 64,
  maxClientBufferBytes: 1024 * 1024,
  maxBehindMs: 15_000,
  feedIntervalMs: 100,
  maxFeedReadings: 5000,
  healthIntervalMs: 2000,
  maxHistoryRows: 100_000,
  maxDevices: 10_000,
  maxAlertEvents: 1000,
  maxBodyBytes: 16 * 1024,
  rateWindowMs: 5000,
  ...ALERT_DEFAULTS,
} as const;

/** Counters of the dashboard (its `status()`). */
export interface DashboardStatus {
  url: string | null;
  clients: number;
  /** Live-feed connections refused (too many, bad token). */
  refused: number;
  /** Pushes a slow client missed (it got a `sync` after), and clients dropped for staying behind. */
  skipped: number;
  dropped: number;
  /** Readings not pushed one by one (more than `maxFeedReadings` in one interval). */
  coalesced: number;
  pushes: number;
  devices: number;
  requests: number;
  alerts: AlertEngineStatus;
}

/** A reading as the live feed pushes it. */
export interface FeedReading {
  key: string;
  aid: number;
  deviceId: string;
  strategy: string;
  secure: boolean;
  timestampMs: number;
  receivedAtMs: number;
  sensors: readonly { id: string; state: string; value: number; unit: string }[];
}

interface Client {
  peer: Peer;
  behindSince: number | null;
}

const utf8 = new TextEncoder();

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;
const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.json': 'application/json', '.ico': 'image/x-icon' };
const PAGE_CSP = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; img-src 'self' data:";

function intOpt(key: string, value: number | undefined, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) throw optionError(key, `${String(value)} is not an integer in ${min}..${max}`);
  return value;
}

function defaultWebRoot(): string {
  // Built: dist/index.js beside dist/web. From the sources (tests): src/ → ../dist/web.
  const here = fileURLToPath(new URL('.', import.meta.url));
  const built = join(here, 'web');
  // src/web holds the page's sources (no assets/ until Vite built them into dist/web).
  return existsSync(join(built, 'assets')) ? built : join(here, '..', 'dist', 'web');
}

/** An HTTP error answered as `{ error: { code, message, key } }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly key?: string,
  ) {
    super(message);
  }
}

/**
 * The dashboard as a server service: an HTTP server (loopback by default) with the JSON API,
 * the CSV export, the health document, the live feed over WebSocket (`/api/live`) and the
 * prebuilt page. It watches the server through the service hooks (`onFrame`, `onReading`, both
 * synchronous and bounded) and never holds the server's loop: a slow browser is coalesced.
 */
export class DashboardService implements Service {
  readonly name: string;
  readonly host: string;
  readonly staleAfterMs: number;
  readonly offlineAfterMs: number;
  readonly maxClients: number;
  readonly maxClientBufferBytes: number;
  readonly maxBehindMs: number;
  readonly feedIntervalMs: number;
  readonly maxFeedReadings: number;
  readonly healthIntervalMs: number;
  readonly maxHistoryRows: number;
  readonly #server: OpenSynapticServer;
  readonly #port: number;
  readonly #token: Uint8Array | null;
  readonly #book: DeviceBook;
  readonly #frames: FrameLog;
  readonly #clock: () => number;
  readonly #webRoot: string;
  readonly #healthFn: (() => unknown | Promise<unknown>) | undefined;
  #storage: ReadingsSink | null;
  readonly #storageGiven: boolean;
  #http: Server | null = null;
  #live: WebSocketTransport | null = null;
  readonly #clients = new Map<string, Client>();
  readonly #sockets = new Set<Socket>();
  #pending: FeedReading[] = [];
  #touched = new Set<string>();
  #coalescedNow = false;
  #timers: ReturnType<typeof setInterval>[] = [];
  readonly #startedAtMs: number;
  readonly #console: DeviceConsole;
  readonly #decoder: FrameDecoder;
  readonly #map: { tileUrl: string | null; attribution: string };
  readonly #pageCsp: string;
  readonly #status: Omit<DashboardStatus, 'alerts'> = { url: null, clients: 0, refused: 0, skipped: 0, dropped: 0, coalesced: 0, pushes: 0, devices: 0, requests: 0 };
  /** The alert rule engine (rules, active alerts, history). */
  readonly alerts: AlertEngine;
  readonly alertCheckIntervalMs: number;
  readonly #maxAlertEvents: number;
  readonly #maxBodyBytes: number;
  #alertEvents: AlertEvent[] = [];
  #alertsResync = false;
  readonly #gaugeRanges: ReturnType<typeof gaugeRangesOf>;
  readonly #rates: RateMeter;

  constructor(server: OpenSynapticServer, options: DashboardOptions = {}) {
    if (typeof server?.status !== 'function') throw optionError('server', 'not an OpenSynapticServer');
    this.#server = server;
    this.name = options.name ?? 'dashboard';
    this.host = options.host ?? DEFAULTS.host;
    this.#port = intOpt('port', options.port, DEFAULTS.port, 0, 65535);
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) throw optionError('token', 'must be a string of at least 16 characters');
    this.#token = options.token === undefined ? null : new TextEncoder().encode(options.token);
    if (this.#token === null && !LOOPBACK.test(this.host)) throw optionError('token', `binding to ${this.host} (not loopback) needs a token`);
    this.staleAfterMs = intOpt('staleAfterMs', options.staleAfterMs, DEFAULTS.staleAfterMs, 1);
    this.offlineAfterMs = intOpt('offlineAfterMs', options.offlineAfterMs, Math.max(DEFAULTS.offlineAfterMs, this.staleAfterMs), this.staleAfterMs);
    this.maxClients = intOpt('maxClients', options.maxClients, DEFAULTS.maxClients, 1, 100_000);
    this.maxClientBufferBytes = intOpt('maxClientBufferBytes', options.maxClientBufferBytes, DEFAULTS.maxClientBufferBytes, 1024);
    this.maxBehindMs = intOpt('maxBehindMs', options.maxBehindMs, DEFAULTS.maxBehindMs, 0);
    this.feedIntervalMs = intOpt('feedIntervalMs', options.feedIntervalMs, DEFAULTS.feedIntervalMs, 10, 60_000);
    this.maxFeedReadings = intOpt('maxFeedReadings', options.maxFeedReadings, DEFAULTS.maxFeedReadings, 1, 1_000_000);
    this.healthIntervalMs = intOpt('healthIntervalMs', options.healthIntervalMs, DEFAULTS.healthIntervalMs, 100, 3_600_000);
    this.maxHistoryRows = intOpt('maxHistoryRows', options.maxHistoryRows, DEFAULTS.maxHistoryRows, 1, 1_000_000);
    const maxDevices = intOpt('maxDevices', options.maxDevices, DEFAULTS.maxDevices, 1, 10_000_000);
    this.#book = new DeviceBook({ maxDevices, staleAfterMs: this.staleAfterMs, offlineAfterMs: this.offlineAfterMs });
    this.#frames = new FrameLog(intOpt('framesPerDevice', options.framesPerDevice, 32, 0, 4096), maxDevices);
    this.#clock = options.clock ?? Date.now;
    this.#webRoot = resolve(options.webRoot ?? defaultWebRoot());
    this.#healthFn = options.health;
    this.#storage = options.storage ?? null;
    this.#storageGiven = options.storage !== undefined;
    this.#startedAtMs = this.#clock();
    this.#console = new DeviceConsole(server, {
      timeoutMs: intOpt('consoleTimeoutMs', options.consoleTimeoutMs, 2000, 1, MAX_CONSOLE_TIMEOUT_MS),
      maxBytes: intOpt('maxConsoleBytes', options.maxConsoleBytes, 512, 1, 65_507),
      maxPending: intOpt('maxConsolePending', options.maxConsolePending, 64, 1, 10_000),
      clock: this.#clock,
    });
    this.#decoder = new FrameDecoder(((aid: number) => server.node?.fusion?.registry?.peek?.(aid)) as TemplatePeek);
    const tile = tileOption(options.tileUrl, options.tileAttribution);
    this.#map = { tileUrl: tile.url, attribution: tile.attribution };
    this.#pageCsp = tile.origin === null ? PAGE_CSP : PAGE_CSP.replace("img-src 'self' data:", `img-src 'self' data: ${tile.origin}`);
    this.alertCheckIntervalMs = intOpt('alertCheckIntervalMs', options.alertCheckIntervalMs, DEFAULTS.alertCheckIntervalMs, 10, 3_600_000);
    this.#maxAlertEvents = intOpt('maxAlertEvents', options.maxAlertEvents, DEFAULTS.maxAlertEvents, 1, 1_000_000);
    this.#maxBodyBytes = intOpt('maxBodyBytes', options.maxBodyBytes, DEFAULTS.maxBodyBytes, 256, 1024 * 1024);
    this.#gaugeRanges = gaugeRangesOf(options.gaugeRanges);
    this.#rates = new RateMeter(intOpt('rateWindowMs', options.rateWindowMs, DEFAULTS.rateWindowMs, 100, 3_600_000));
    this.alerts = new AlertEngine({
      store: options.alertStore ?? null,
      rules: options.alertRules,
      maxAlertRules: intOpt('maxAlertRules', options.maxAlertRules, DEFAULTS.maxAlertRules, 1, 100_000),
      maxAlertHistory: intOpt('maxAlertHistory', options.maxAlertHistory, DEFAULTS.maxAlertHistory, 1, 1_000_000),
      maxActiveAlerts: intOpt('maxActiveAlerts', options.maxActiveAlerts, DEFAULTS.maxActiveAlerts, 1, 1_000_000),
      maxAlertSeries: intOpt('maxAlertSeries', options.maxAlertSeries, DEFAULTS.maxAlertSeries, 1, 10_000_000),
      clock: this.#clock,
      knownDevices: () => this.#book.list(),
      onEvent: (e) => this.#alertEvent(e),
    });
  }

  /** Where it listens, after `start()`. */
  get address(): { host: string; port: number } {
    const a = this.#http?.address() as AddressInfo | null | undefined;
    if (a === null || a === undefined) throw new DashboardError('ERR_DASHBOARD_STATE', 'the dashboard is not listening (before start() or after stop())');
    return { host: a.address, port: a.port };
  }

  /** The page's URL (with the token in the fragment, which browsers never send to a server). */
  url(options: { withToken?: boolean } = {}): string {
    const { host, port } = this.address;
    const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    const token = options.withToken && this.#token !== null ? `#token=${encodeURIComponent(new TextDecoder().decode(this.#token))}` : '';
    return `http://${shown}:${port}/${token}`;
  }

  async start(_host?: ServiceHost): Promise<void> {
    if (!this.#storageGiven) this.#storage = (this.#server.services.get('storage')?.sink as ReadingsSink | undefined) ?? null;
    if (this.#storage !== null) {
      try {
        const now = this.#clock();
        for (const d of await this.#storage.devices({ limit: this.#book.maxDevices })) this.#book.seed(d, now);
      } catch {
        // a store that cannot list its devices still serves history; the live table fills as devices speak
      }
    }
    await this.alerts.load();
    const http = createServer((req, res) => {
      this.#handle(req, res).catch((e: unknown) => this.#fail(res, e));
    });
    http.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((ok, fail) => {
      http.once('error', fail);
      http.listen(this.#port, this.host, () => {
        http.off('error', fail);
        ok();
      });
    });
    this.#http = http;
    // The live feed is the project's own WebSocket transport, sharing the page's HTTP server.
    const live = new WebSocketTransport({
      attach: { server: http, path: '/api/live' },
      verifyUpgrade: (req) => this.#verifyLive(req),
      maxConnections: this.maxClients,
      maxFrameBytes: MAX_FEED_MESSAGE_BYTES,
      maxInboundBytes: 4096,
      // The feed skips a client past maxClientBufferBytes itself; the transport must not refuse first.
      maxPendingBytes: MAX_FEED_MESSAGE_BYTES,
      maxPendingSends: 1_000_000,
    });
    live.on('connected', ({ peer }) => this.#connected(peer));
    live.on('disconnected', ({ peer }) => this.#clients.delete(peer.key));
    live.on('error', () => undefined); // refusals are counted in #verifyLive
    // Messages from the page are not used yet: dropped (maxInboundBytes bounds them).
    live.receiveInto(() => undefined);
    await live.start();
    this.#live = live;
    this.#status.url = this.url();
    this.#timers.push(setInterval(() => this.#push(), this.feedIntervalMs));
    this.#timers.push(setInterval(() => void this.#pushHealth(), this.healthIntervalMs));
    this.#timers.push(setInterval(() => this.alerts.check(), this.alertCheckIntervalMs));
    for (const t of this.#timers) t.unref();
  }

  async stop(): Promise<void> {
    await this.#close(1001, 'server stopping');
    await this.alerts.flush();
  }

  async destroy(): Promise<void> {
    await this.#close(1001, 'server destroyed');
  }

  async #close(code: number, reason: string): Promise<void> {
    for (const t of this.#timers.splice(0)) clearInterval(t);
    const live = this.#live;
    this.#live = null;
    if (live !== null) {
      for (const c of this.#clients.values()) live.disconnect(c.peer, { code, reason });
      // A bounded drain: close frames go out, then what is left is cut.
      await live.stop();
    }
    this.#clients.clear();
    const http = this.#http;
    this.#http = null;
    if (http === null) return;
    await new Promise<void>((ok) => {
      http.close(() => ok());
      // Keep-alive sockets and upgraded ones would hold close() open.
      for (const s of this.#sockets) s.destroy();
    });
  }

  // ------------------------------------------------------------------------------ the hooks

  onFrame(inbound: { frame: Uint8Array; peer?: { key?: string }; receivedAt?: number }, via = ''): void {
    const aid = frameAid(inbound.frame);
    if (aid === undefined) return;
    this.#book.frame(aid, inbound.frame.length);
    const inspected = this.#frames.add(aid, inbound.frame, { receivedAtMs: Math.trunc(inbound.receivedAt ?? this.#clock()), via, peer: inbound.peer?.key ?? '' });
    if (inspected !== null) this.#decoder.frame(via, aid, inbound.frame, inspected);
  }

  onControl(control: ServerControl): void {
    this.#console.onControl(control);
  }

  onReading(reading: ReadingFrame): void {
    const r = reading as BookReading;
    this.#decoder.reading(r, this.#book.sensorsOf(`${r.aid}:${r.deviceId}`));
    const { view } = this.#book.reading(r, this.#templatesOf(r.aid));
    this.alerts.reading(r);
    // A new device, a state change and a new value all reach the page with the next push.
    this.#touched.add(view.key);
    if (this.#clients.size === 0) return;
    if (this.#pending.length >= this.maxFeedReadings) {
      // The devices' latest values still go out with the next push.
      this.#status.coalesced++;
      this.#coalescedNow = true;
      return;
    }
    this.#pending.push({ key: view.key, aid: r.aid, deviceId: r.deviceId, strategy: r.strategy, secure: r.secure === true, timestampMs: r.timestampMs, receivedAtMs: r.receivedAtMs, sensors: r.sensors.map((s) => ({ id: s.id, state: s.state, value: s.value, unit: s.unit })) });
  }

  #templatesOf(aid: number): number | null {
    // The node's registry of the device's templates, where this node has one.
    const fusion = (this.#server.node as unknown as { fusion?: { registry?: { peek?(aid: number): { templates?: { size: number } } | null } } }).fusion;
    const size = fusion?.registry?.peek?.(aid)?.templates?.size;
    return typeof size === 'number' ? size : null;
  }

  status(): DashboardStatus {
    return { ...this.#status, clients: this.#clients.size, devices: this.#book.size, alerts: this.alerts.status() };
  }

  // ---------------------------------------------------------------------------- the feed

  #hello(): string {
    return JSON.stringify({ type: 'hello', version: 1, nowMs: this.#clock(), thresholds: this.#thresholds(), limits: { maxHistoryRows: this.maxHistoryRows, feedIntervalMs: this.feedIntervalMs }, map: this.#map, devices: this.#devices(), alerts: this.#alertState(), gaugeRanges: this.#gaugeRanges });
  }

  #thresholds() {
    return { staleAfterMs: this.staleAfterMs, offlineAfterMs: this.offlineAfterMs };
  }

  #devices(): DeviceView[] {
    // A state change seen here first still goes out with the next push.
    for (const v of this.#book.refresh(this.#clock())) this.#touched.add(v.key);
    return this.#book.list();
  }

  #alertEvent(e: AlertEvent): void {
    if (this.#clients.size === 0 || this.#alertsResync) return;
    if (this.#alertEvents.length >= this.#maxAlertEvents) {
      // Too many to send one by one: the whole alert state goes out with the next push instead.
      this.#alertsResync = true;
      this.#alertEvents = [];
      return;
    }
    this.#alertEvents.push(e);
  }

  /** What a page needs to show the alerts from scratch. */
  #alertState() {
    return { active: this.alerts.active(), recent: this.alerts.recent(50) };
  }

  #pushAlerts(now: number): void {
    if (this.#alertEvents.length === 0 && !this.#alertsResync) return;
    const messages = this.#alertsResync ? [JSON.stringify({ type: 'alerts', nowMs: now, alerts: this.#alertState() })] : this.#alertEvents.map((e) => JSON.stringify({ type: 'alert', nowMs: now, event: e.event, alert: e.alert }));
    this.#alertEvents = [];
    this.#alertsResync = false;
    // A client behind gets the alert state with its sync.
    for (const m of messages) this.#broadcast(m);
  }

  #push(): void {
    const now = this.#clock();
    this.#pushAlerts(now);
    for (const v of this.#book.refresh(now)) this.#touched.add(v.key);
    if (this.#clients.size === 0) {
      this.#pending = [];
      this.#touched.clear();
      this.#coalescedNow = false;
      return;
    }
    if (this.#pending.length === 0 && this.#touched.size === 0) return;
    const devices: DeviceView[] = [];
    for (const key of this.#touched) {
      const v = this.#book.get(key);
      if (v !== undefined) devices.push(v);
    }
    // Encoded once for every client.
    const message = utf8.encode(JSON.stringify({ type: 'update', nowMs: now, readings: this.#pending, devices, coalesced: this.#coalescedNow }));
    this.#pending = [];
    this.#touched.clear();
    this.#coalescedNow = false;
    this.#status.pushes++;
    let sync: Uint8Array | null = null;
    for (const c of this.#clients.values()) {
      if (this.#buffered(c) > this.maxClientBufferBytes) {
        c.behindSince ??= now;
        this.#status.skipped++;
        if (now - c.behindSince > this.maxBehindMs) {
          this.#status.dropped++;
          this.#clients.delete(c.peer.key);
          // Its close frame would wait behind the backlog: cut it.
          this.#live?.disconnect(c.peer, { force: true });
        }
        continue;
      }
      if (c.behindSince !== null) {
        // It missed updates: the whole state once, then updates again.
        c.behindSince = null;
        sync ??= utf8.encode(JSON.stringify({ type: 'sync', nowMs: now, devices: this.#book.list(), alerts: this.#alertState() }));
        this.#send(c, sync);
        continue;
      }
      this.#send(c, message);
    }
  }

  /** A message to every client that keeps up (a slow one gets the state with its next sync). */
  #broadcast(message: string): void {
    if (this.#clients.size === 0) return;
    const bytes = utf8.encode(message);
    for (const c of this.#clients.values()) if (this.#keepsUp(c)) this.#send(c, bytes);
  }

  #buffered(c: Client): number {
    return this.#live?.bufferedBytes(c.peer) ?? 0;
  }

  #keepsUp(c: Client): boolean {
    return c.behindSince === null && this.#buffered(c) <= this.maxClientBufferBytes;
  }

  /** One feed message (JSON as UTF-8, sent as a binary message); a failed send is the connection's end. */
  #send(c: Client, message: Uint8Array): void {
    this.#live?.send(message, c.peer).catch(() => undefined);
  }

  async #pushHealth(): Promise<void> {
    let health: unknown;
    try {
      health = await this.#health();
    } catch {
      return;
    }
    if (this.#clients.size === 0) return; // sampled for the rates all the same
    this.#broadcast(JSON.stringify({ type: 'health', nowMs: this.#clock(), health }));
  }

  /** The live feed's door: the Host check, the token, and the client bound, each counted when it refuses. */
  #verifyLive(req: UpgradeRequest): true | UpgradeRefusal {
    const url = new URL(req.url ?? '/', 'http://localhost');
    // On a Node HTTP server the transport hands over the IncomingMessage itself.
    const request = req as unknown as IncomingMessage;
    const refusal: UpgradeRefusal | null = !this.#hostAllowed(request)
      ? { status: 403, reason: 'Forbidden' }
      : this.#token !== null && !this.#tokenOk(request, url)
        ? { status: 401, reason: 'Unauthorized' }
        : this.#clients.size >= this.maxClients
          ? { status: 503, reason: 'Service Unavailable' }
          : null;
    if (refusal === null) return true;
    this.#status.refused++;
    return refusal;
  }

  #connected(peer: Peer): void {
    const client: Client = { peer, behindSince: null };
    this.#clients.set(peer.key, client);
    this.#send(client, utf8.encode(this.#hello()));
    void this.#health().then(
      (health) => this.#clients.get(peer.key) === client && this.#send(client, utf8.encode(JSON.stringify({ type: 'health', nowMs: this.#clock(), health }))),
      () => undefined,
    );
  }

  // ---------------------------------------------------------------------------- the HTTP API

  #tokenOk(req: IncomingMessage, url: URL): boolean {
    if (this.#token === null) return false;
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : (url.searchParams.get('token') ?? '');
    const bytes = new TextEncoder().encode(given);
    return bytes.length === this.#token.length && timingSafeEqual(bytes, this.#token);
  }

  /** Without a token the page is reachable on loopback only; a foreign Host header (DNS rebinding) is refused. */
  #hostAllowed(req: IncomingMessage): boolean {
    if (this.#token !== null) return true;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    return LOOPBACK.test(host);
  }

  /** The health document with its rates (from the counters of successive documents). */
  async #health(): Promise<unknown> {
    const doc = await this.#healthDoc();
    if (typeof doc !== 'object' || doc === null) return doc;
    return { ...doc, rates: this.#rates.observe(doc, this.#clock()) };
  }

  async #healthDoc(): Promise<unknown> {
    if (this.#healthFn !== undefined) return await this.#healthFn();
    const { transports, services, ...server } = await this.#server.status();
    const out: Record<string, unknown> = {};
    for (const [name, t] of Object.entries(transports)) {
      const address = (this.#server.transport(name) as unknown as { address?: unknown } | undefined)?.address ?? null;
      out[name] = { medium: t.medium, state: t.state, address, framesIn: t.framesIn, bytesIn: t.bytesIn, framesOut: t.framesOut, bytesOut: t.bytesOut, dropped: { ...t.dropped }, inboundQueued: t.inboundQueued, pendingSends: t.pendingSends, connections: t.connections };
    }
    const devices = this.#book.list().map((d) => ({ aid: d.aid, deviceId: d.deviceId, via: d.via, readings: 0, frames: { ...d.frames }, secure: d.secureFrames, lastSeenMs: d.lastSeenMs }));
    return { version: 1, pid: process.pid, config: null, database: null, startedAtMs: this.#startedAtMs, updatedAtMs: this.#clock(), intervalMs: this.healthIntervalMs, state: server.state, transports: out, server, services, devices };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#status.requests++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (!this.#hostAllowed(req)) throw new HttpError(403, 'ERR_DASHBOARD_HOST', `host ${JSON.stringify(req.headers.host ?? '')} is not loopback: set a token to serve other names`);
    if (!path.startsWith('/api/') && path !== '/api') return this.#static(req, res, path);
    const write = req.method !== 'GET' && req.method !== 'HEAD';
    if (write && this.#token === null) throw new HttpError(403, 'ERR_DASHBOARD_TOKEN', 'write actions need a token: none is configured');
    if (this.#token !== null && !this.#tokenOk(req, url)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, 'ERR_DASHBOARD_TOKEN', 'a valid token is needed (Authorization: Bearer <token>, or ?token=)');
    }
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'GET /api':
        return this.#json(res, 200, { version: 1, endpoints: ENDPOINTS, thresholds: this.#thresholds(), limits: { maxHistoryRows: this.maxHistoryRows, maxClients: this.maxClients, maxClientBufferBytes: this.maxClientBufferBytes, ...this.#console.limits } });
      case 'GET /api/devices':
        this.#noParams(url);
        return this.#json(res, 200, { nowMs: this.#clock(), thresholds: this.#thresholds(), devices: this.#devices() });
      case 'GET /api/health':
        this.#noParams(url);
        return this.#json(res, 200, await this.#health());
      case 'GET /api/readings':
      case 'GET /api/readings.csv':
        return this.#readings(res, url, path.endsWith('.csv'));
      case 'GET /api/frames': {
        const q = readingQueryOf(url.searchParams, 1);
        if (q.aid === undefined || [...url.searchParams.keys()].some((k) => k !== 'aid' && k !== 'token')) throw new DashboardError('ERR_DASHBOARD_QUERY', 'query parameter "aid": needed, and the only one this endpoint takes', { key: 'aid' });
        return this.#json(res, 200, { aid: q.aid, frames: this.#frames.get(q.aid) });
      }
      case 'POST /api/console': {
        this.#noParams(url);
        const request = this.#console.parse(await readJson(req, CONSOLE_BODY_MAX));
        const result = await this.#console.run(request);
        this.#broadcast(JSON.stringify({ type: 'console', nowMs: this.#clock(), result }));
        return this.#json(res, 200, result);
      }
      case 'GET /api/alerts':
        return this.#json(res, 200, listAlerts(this.alerts, url.searchParams, this.#clock()).body);
      case 'GET /api/alert-rules':
      case 'POST /api/alert-rules':
      case 'PUT /api/alert-rules':
      case 'DELETE /api/alert-rules': {
        const answer = await alertRules(this.alerts, req, url.searchParams, this.#maxBodyBytes);
        return this.#json(res, answer.status, answer.body);
      }
      case 'POST /api/devices/forget': {
        const key = url.searchParams.get('key');
        if (key === null || key === '') throw new HttpError(400, 'ERR_DASHBOARD_QUERY', 'query parameter "key": missing (the device key, aid:deviceId)', 'key');
        if (!this.#book.delete(key)) throw new HttpError(404, 'ERR_DASHBOARD_NOT_FOUND', `no device ${JSON.stringify(key)}`, 'key');
        return this.#json(res, 200, { forgotten: key });
      }
    }
    if (KNOWN_PATHS.has(path)) {
      res.setHeader('Allow', KNOWN_PATHS.get(path) as string);
      throw new HttpError(405, 'ERR_DASHBOARD_METHOD', `${req.method} is not allowed on ${path}`);
    }
    throw new HttpError(404, 'ERR_DASHBOARD_NOT_FOUND', `no API endpoint ${path} (GET /api lists them)`);
  }

  #noParams(url: URL): void {
    for (const key of url.searchParams.keys()) if (key !== 'token') throw new DashboardError('ERR_DASHBOARD_QUERY', `query parameter "${key}": unknown (this endpoint takes none)`, { key });
  }

  async #readings(res: ServerResponse, url: URL, csv: boolean): Promise<void> {
    const q = readingQueryOf(url.searchParams, this.maxHistoryRows);
    if (this.#storage === null) throw new HttpError(503, 'ERR_DASHBOARD_NO_STORE', 'the server has no readings store (storage service)');
    // One more than asked tells whether the answer was cut at the limit.
    const rows = await this.#storage.query({ ...q, limit: Math.min(q.limit + 1, 1_000_000) });
    const truncated = rows.length > q.limit;
    if (truncated) rows.length = q.limit;
    if (!csv) return this.#json(res, 200, { query: q, count: rows.length, truncated, readings: rows });
    const name = `readings${q.deviceId ? `-${q.deviceId}` : q.aid !== undefined ? `-${q.aid}` : ''}${q.sensorId ? `-${q.sensorId}` : ''}.csv`.replace(/[^\w.-]/g, '_');
    res.writeHead(200, { 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${name}"`, 'Cache-Control': 'no-store', 'X-Truncated': String(truncated), 'X-Content-Type-Options': 'nosniff' });
    const lines = [CSV_HEADER];
    for (const r of rows) lines.push(csvLine(r));
    res.end(`${lines.join('\r\n')}\r\n`);
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  #fail(res: ServerResponse, e: unknown): void {
    let status = 500;
    let code = 'ERR_DASHBOARD_INTERNAL';
    let key: string | undefined;
    let message = e instanceof Error ? e.message : String(e);
    if (e instanceof AlertHttpError) {
      status = e.status;
      code = e.httpCode;
      key = e.key;
    } else if (e instanceof HttpError) {
      status = e.status;
      code = e.code;
      key = e.key;
    } else if (e instanceof DashboardError) {
      status = e.code === 'ERR_DASHBOARD_QUERY' || e.code === 'ERR_DASHBOARD_CONSOLE' || e.code === 'ERR_DASHBOARD_RULE' ? 400 : e.code === 'ERR_DASHBOARD_BUSY' ? 503 : 500;
      code = e.code;
      key = e.key;
    } else if (typeof (e as { code?: unknown })?.code === 'string' && SEND_STATUS[(e as { code: string }).code] !== undefined) {
      // The server's sendTo refusals, under their own codes.
      code = (e as { code: string }).code;
      status = SEND_STATUS[code] as number;
      key = (e as { key?: string }).key;
    } else if (typeof (e as { code?: unknown })?.code === 'string' && (e as { code: string }).code === 'ERR_STORE_VALUE') {
      // The store's own check of a query value (a field the API let through).
      status = 400;
      code = 'ERR_DASHBOARD_QUERY';
    } else message = `internal error: ${message}`;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.#json(res, status, { error: { code, message, ...(key === undefined ? {} : { key }) } });
  }

  #static(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new HttpError(405, 'ERR_DASHBOARD_METHOD', `${req.method} is not allowed on the page`);
    }
    let rel: string;
    try {
      rel = decodeURIComponent(path === '/' ? '/index.html' : path);
    } catch {
      throw new HttpError(400, 'ERR_DASHBOARD_PATH', 'a malformed path');
    }
    const file = normalize(join(this.#webRoot, rel));
    if (!file.startsWith(this.#webRoot + sep) || !existsSync(file) || !statSync(file).isFile()) {
      if (!existsSync(join(this.#webRoot, 'index.html'))) throw new HttpError(404, 'ERR_DASHBOARD_NO_PAGE', `the page is not built (${this.#webRoot}/index.html is missing)`);
      throw new HttpError(404, 'ERR_DASHBOARD_NOT_FOUND', `no file ${path}`);
    }
    const body = readFileSync(file);
    const hashed = rel.startsWith('/assets/');
    res.writeHead(200, {
      'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      'Content-Security-Policy': this.#pageCsp,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

/** The API, as `GET /api` lists it. */
export const ENDPOINTS = [
  { method: 'GET', path: '/api/devices', about: 'every known device: key, aid, deviceId, state (online/stale/offline), lastSeenMs, templates, frames per strategy, secure, authenticated and mode (auth-psk, auth-x25519, secure or plain), wireBytes vs jsonBytes, latest value per sensor' },
  { method: 'GET', path: '/api/readings', about: 'stored readings; parameters aid, device, sensor, from, to (Unix ms or ISO 8601), limit, order (asc|desc)' },
  { method: 'GET', path: '/api/readings.csv', about: 'the same as CSV' },
  { method: 'GET', path: '/api/frames', about: 'the last data frames of a device (aid=): hex, command, strategy, tid, timestamp, CRCs, the check it passed, the plain body' },
  { method: 'GET', path: '/api/health', about: 'the status document (the shape of `os-node serve`’s status file): transports, counters, services, devices' },
  { method: 'GET', path: '/api/live', about: 'WebSocket: hello (the whole state), then update / sync / health messages' },
  { method: 'POST', path: '/api/console', about: 'the command console (JSON { aid, action: ping|time-request|id-assign|raw, id?, hex?, timeoutMs? }): what was sent and the reply with its round trip, or timedOut; needs the token' },
  { method: 'POST', path: '/api/devices/forget', about: 'forgets a device of the live table (key=aid:deviceId); needs the token' },
  { method: 'GET', path: '/api/alerts', about: 'active alerts and the recent history; parameters state (all|active), limit, severity, rule, aid' },
  { method: 'GET', path: '/api/alert-rules', about: 'the alert rules (id= for one)' },
  { method: 'POST', path: '/api/alert-rules', about: 'adds a rule (JSON body; 409 when its id exists); needs the token' },
  { method: 'PUT', path: '/api/alert-rules', about: 'adds or replaces the rule id= (JSON body); needs the token' },
  { method: 'DELETE', path: '/api/alert-rules', about: 'removes the rule id=; needs the token' },
] as const;

const KNOWN_PATHS = new Map<string, string>([
  ['/api', 'GET'],
  ['/api/devices', 'GET'],
  ['/api/readings', 'GET'],
  ['/api/readings.csv', 'GET'],
  ['/api/health', 'GET'],
  ['/api/frames', 'GET'],
  ['/api/live', 'GET'],
  ['/api/devices/forget', 'POST'],
  ['/api/console', 'POST'],
  ['/api/alerts', 'GET'],
  ['/api/alert-rules', 'GET, POST, PUT, DELETE'],
]);

/** Largest console request body, bytes. */
const CONSOLE_BODY_MAX = 256 * 1024;

/** HTTP statuses of the server's `sendTo` errors. */
const SEND_STATUS: Record<string, number> = { ERR_SERVER_UNKNOWN_DEVICE: 404, ERR_SERVER_TRANSPORT: 503, ERR_SERVER_STATE: 503, ERR_SERVER_PACKET: 400, ERR_SERVER_PACKET_SIZE: 413 };


/** Registers a dashboard on `server` (before `server.start()`) and returns it. */
export function attachDashboard(server: OpenSynapticServer, options: DashboardOptions = {}): DashboardService {
  const dashboard = new DashboardService(server, options);
  server.services.register(dashboard);
  return dashboard;
}
