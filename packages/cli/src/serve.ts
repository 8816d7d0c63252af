import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Config, loadConfig, type TransportConfig, transportsOf, validateConfig } from '@opensynaptic/server/config';
import type { OpenSynapticServer, Service, ServerStatus } from '@opensynaptic/server';

type ReadingFrame = Parameters<NonNullable<Service['onReading']>>[0];
import pc from 'picocolors';
import { DEFAULT_CONFIG_FILE } from './config-cmd.js';
import { CliError } from './errors.js';
import type { Output } from './output.js';
import { intOption } from './util.js';

// ------------------------------------------------------------------------ the configuration

export interface ConfigSource {
  /** The configuration file (ours or a reference Config.json); none: `os-node.json` when there is one, else the defaults. */
  config?: string;
  /** The SQLite file: overrides `storage.path` (and sets the driver to `sqlite`). */
  db?: string;
}

export interface LoadedConfig {
  config: Config;
  warnings: string[];
  format: 'opensynaptic-js' | 'reference' | 'defaults';
  /** The file read, absolute, or null for the defaults. */
  path: string | null;
}

/** Reads and validates the configuration a command names (a missing file is 5, a bad one 3). */
export async function readConfig(source: ConfigSource): Promise<LoadedConfig> {
  let loaded: LoadedConfig;
  // os-node.json in the working directory when no --config is given (what `config set` writes).
  if (source.config === undefined && existsSync(DEFAULT_CONFIG_FILE)) source = { ...source, config: DEFAULT_CONFIG_FILE };
  if (source.config === undefined) loaded = { ...validateConfig({}), format: 'defaults', path: null };
  else {
    const path = resolve(source.config);
    try {
      accessSync(path, constants.R_OK);
    } catch (e) {
      throw new CliError('ERR_CLI_UNAVAILABLE', `${source.config}: cannot read the configuration (${(e as Error).message})`, { cause: e });
    }
    loaded = { ...(await loadConfig(path)), path };
  }
  if (source.db !== undefined) loaded.config.storage = { ...loaded.config.storage, driver: 'sqlite', path: source.db };
  return loaded;
}

/**
 * The status file of the server a configuration describes: beside its database
 * (`<storage.path>.status.json`), so that every command given the same configuration finds it.
 */
export function statusFileOf(config: Config, override?: string): string {
  return resolve(override ?? `${config.storage.path}.status.json`);
}

// ---------------------------------------------------------------------------- the status file

/** What `os-node serve` writes to its status file, and what `transport-status` reads. */
export interface StatusDocument {
  /** 1: this shape. */
  version: 1;
  pid: number;
  /** The configuration file, or null (the defaults). */
  config: string | null;
  database: string | null;
  startedAtMs: number;
  updatedAtMs: number;
  /** How often the file is rewritten, ms. */
  intervalMs: number;
  state: ServerStatus['state'];
  transports: Record<string, TransportStatus>;
  /** The server's counters (`status()` without the transports and services). */
  server: Omit<ServerStatus, 'transports' | 'services'>;
  /** Each service's status (the storage sink's: stored, buffered, committed, lost...). */
  services: Record<string, unknown>;
  /** Devices seen since the server started. */
  devices: LiveDevice[];
}

export interface TransportStatus {
  medium: string;
  state: string;
  /** Where it listens (host and port, or a path), when the medium has one. */
  address: unknown;
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  dropped: Record<string, number>;
  inboundQueued: number;
  pendingSends: number;
  connections: number;
}

export interface LiveDevice {
  aid: number;
  deviceId: string;
  via: string;
  readings: number;
  frames: { FULL: number; DIFF: number; HEART: number };
  secure: number;
  lastSeenMs: number;
}

/** Tallies the readings per device (a server hook: synchronous, no backpressure, never throws). */
export class DeviceTally implements Service {
  readonly name = 'os-node-devices';
  readonly devices = new Map<string, LiveDevice>();
  onReading(r: ReadingFrame): void {
    const reading = r as ReadingFrame & { secure?: boolean; via?: string };
    const key = `${r.aid}\u0000${r.deviceId}`;
    let d = this.devices.get(key);
    if (d === undefined) {
      d = { aid: r.aid, deviceId: r.deviceId, via: reading.via ?? '', readings: 0, frames: { FULL: 0, DIFF: 0, HEART: 0 }, secure: 0, lastSeenMs: 0 };
      this.devices.set(key, d);
    }
    d.readings += r.sensors.length;
    d.frames[r.strategy]++;
    if (reading.secure === true) d.secure++;
    d.lastSeenMs = r.receivedAtMs;
  }
  status(): unknown {
    return { devices: this.devices.size };
  }
}

// The last address each transport had: a stopped transport has none, its final status keeps it.
const lastAddress = new WeakMap<OpenSynapticServer, Record<string, unknown>>();

/** The server's state as the status file holds it. */
export async function statusDocument(server: OpenSynapticServer, tally: DeviceTally, meta: { config: string | null; database: string | null; startedAtMs: number; intervalMs: number }): Promise<StatusDocument> {
  const { transports, services, ...counters } = await server.status();
  const out: Record<string, TransportStatus> = {};
  const known = lastAddress.get(server) ?? {};
  lastAddress.set(server, known);
  for (const [name, t] of Object.entries(transports)) {
    const address = (server.transport(name) as unknown as { address?: unknown } | undefined)?.address ?? known[name] ?? null;
    if (address !== null) known[name] = address;
    out[name] = { medium: t.medium, state: t.state, address, framesIn: t.framesIn, bytesIn: t.bytesIn, framesOut: t.framesOut, bytesOut: t.bytesOut, dropped: { ...t.dropped }, inboundQueued: t.inboundQueued, pendingSends: t.pendingSends, connections: t.connections };
  }
  const { [tally.name]: _own, ...rest } = services;
  return { version: 1, pid: process.pid, ...meta, updatedAtMs: Date.now(), state: counters.state, transports: out, server: counters, services: rest, devices: [...tally.devices.values()].map((d) => ({ ...d, frames: { ...d.frames } })) };
}

/** Writes the file whole or not at all (a reader never sees half of it): a temporary file, then a rename. */
/**
 * The end of `serve` and `demo`: stops the server (its error kept for the caller to throw after
 * the summary), lets the readings loop finish, and writes the final status document.
 */
export async function stopAndReport(server: OpenSynapticServer, readingsLoop: Promise<unknown> | null, tally: DeviceTally, meta: Parameters<typeof statusDocument>[2], live: { stop(): void }, statusPath: string): Promise<{ doc: StatusDocument; stopError: unknown }> {
  let stopError: unknown = null;
  try {
    await server.stop();
  } catch (e) {
    stopError = e;
  }
  await readingsLoop;
  const doc = await statusDocument(server, tally, meta);
  live.stop();
  try {
    writeStatusFile(statusPath, doc);
  } catch {
    // a status file left stale is what its readers then report
  }
  return { doc, stopError };
}

export function writeStatusFile(path: string, doc: StatusDocument): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`);
  renameSync(tmp, path);
}

/** The status file and whether its server is alive: its process exists and it wrote lately. */
export function readStatusFile(path: string): { doc: StatusDocument | null; live: 'running' | 'stopped' | 'stale' | 'absent'; ageMs: number | null } {
  let doc: StatusDocument;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8')) as StatusDocument;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { doc: null, live: 'absent', ageMs: null };
    throw new CliError('ERR_CLI_UNAVAILABLE', `${path}: not a status file of os-node serve (${(e as Error).message})`, { cause: e });
  }
  if (doc?.version !== 1 || typeof doc.updatedAtMs !== 'number') throw new CliError('ERR_CLI_UNAVAILABLE', `${path}: not a status file of os-node serve (version ${String(doc?.version)})`);
  const ageMs = Date.now() - doc.updatedAtMs;
  if (doc.state === 'stopped' || doc.state === 'destroyed') return { doc, live: 'stopped', ageMs };
  let alive = true;
  try {
    process.kill(doc.pid, 0);
  } catch (e) {
    alive = (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // Three missed rewrites (and 2 s of slack for a busy machine) make the file stale.
  const fresh = ageMs <= doc.intervalMs * 3 + 2000;
  return { doc, live: alive && fresh ? 'running' : 'stale', ageMs };
}

// ---------------------------------------------------------------------------------- serve

export interface ServeOptions extends ConfigSource {
  host?: string;
  port?: string;
  statusFile?: string;
  statusIntervalMs?: string;
  seconds?: string;
  readings?: boolean;
  /** Serve the live dashboard (`@opensynaptic/dashboard`) beside the server. */
  dashboard?: boolean;
  dashboardHost?: string;
  dashboardPort?: string;
  /** The dashboard map's tile server (a URL template with {z}/{x}/{y}; default none: a plain grid). */
  dashboardTiles?: string;
}

/** The environment variable that holds the dashboard's token (never on the command line, where `ps` shows it). */
export const DASHBOARD_TOKEN_ENV = 'OS_NODE_DASHBOARD_TOKEN';

/** What `attachDashboard` returns, as far as the CLI uses it. */
export interface AttachedDashboard {
  url(options?: { withToken?: boolean }): string;
}

/**
 * Registers the dashboard on a server that has not started (loaded by name: only `--dashboard`
 * loads it); its health view serves the status document the status file holds.
 */
export async function addDashboard(server: OpenSynapticServer, options: { host?: string | undefined; port?: string | undefined; defaultPort: number; tileUrl?: string | undefined; alertStore?: unknown; alertRules?: readonly unknown[] | undefined }, health: () => Promise<StatusDocument>): Promise<AttachedDashboard> {
  const port = intOption(options.port, '--dashboard-port', 0, 65535) ?? options.defaultPort;
  const { attachDashboard } = await import('@opensynaptic/dashboard');
  const token = process.env[DASHBOARD_TOKEN_ENV] || undefined;
  try {
    return attachDashboard(server, { host: options.host ?? '127.0.0.1', port, token, health, tileUrl: options.tileUrl ?? null, ...(options.alertStore === undefined ? {} : { alertStore: options.alertStore as never }), ...(options.alertRules === undefined ? {} : { alertRules: options.alertRules }) });
  } catch (e) {
    const key = (e as { key?: string }).key;
    const hint = key === 'token' ? ` (set ${DASHBOARD_TOKEN_ENV})` : '';
    // A rule of the configuration file: name it as the file does (dashboard.alertRules[i]...).
    const where = key?.startsWith('alertRules') === true ? 'the configuration: dashboard.' : '';
    throw new CliError('ERR_CLI_USAGE', `--dashboard: ${where}${(e as Error).message}${hint}`, { cause: e });
  }
}

/** The store of the dashboard's alert rules and history: the `os_store` table of the SQLite database. */
async function openAlertStore(database: string, config: Config): Promise<{ close(): Promise<void> }> {
  const [{ openSqliteStore }, { ALERT_STORE_KINDS }] = await Promise.all([import('@opensynaptic/store-sqlite'), import('@opensynaptic/dashboard')]);
  const synchronous = config.storage.driver === 'sqlite' ? config.storage.synchronous : undefined;
  return openSqliteStore({ path: database, kinds: [...ALERT_STORE_KINDS], ...(synchronous === undefined ? {} : { synchronous }) });
}

/** The server a loaded configuration and the command line describe (not started). */
async function buildServer(loaded: LoadedConfig, options: ServeOptions, tally: DeviceTally): Promise<OpenSynapticServer> {
  const { config } = loaded;
  if (options.host !== undefined || options.port !== undefined) {
    if (config.transports.length > 0) throw new CliError('ERR_CLI_USAGE', `--host/--port: the configuration lists its transports (${config.transports.map((t) => t.name ?? t.medium).join(', ')}); set their addresses there`);
    config.server = { ...config.server, host: options.host ?? config.server.host, port: intOption(options.port, '--port', 0, 65535) ?? config.server.port };
  }
  if (config.storage.driver === 'sqlite') mkdirSync(dirname(resolve(config.storage.path)), { recursive: true });
  const { serverFromConfig } = await import('@opensynaptic/server');
  return serverFromConfig(config, { services: [tally] });
}

const DROP_KEYS = ['iterator', 'sink', 'rejected', 'device'] as const;

function countersLine(doc: StatusDocument, rate: number): string {
  const storage = doc.services.storage as { committed?: number; buffered?: number; lost?: number } | undefined;
  const dropped = DROP_KEYS.reduce((n, k) => n + doc.server.dropped[k], 0) + Object.values(doc.transports).reduce((n, t) => n + Object.values(t.dropped).reduce((a, b) => a + b, 0), 0);
  const errors = Object.values(doc.server.errors).reduce((a, b) => a + b, 0);
  return `frames ${doc.server.frames} | readings ${doc.server.readings} (${rate.toFixed(0)}/s) | control ${doc.server.control} | devices ${doc.devices.length} | stored ${storage?.committed ?? '-'} | buffered ${storage?.buffered ?? '-'} | lost ${storage?.lost ?? '-'} | dropped ${dropped} | errors ${errors}`;
}

/**
 * Runs the server of a configuration until Ctrl-C (exit 130), SIGTERM (exit 0: the normal stop
 * of a service) or `--seconds`; stops it cleanly (transports drained, the sink flushed and
 * closed) and prints the totals. The status file is rewritten every `--status-interval-ms`.
 */
export async function serve(out: Output, options: ServeOptions, signal: AbortSignal): Promise<void> {
  const seconds = intOption(options.seconds, '--seconds', 1, 31_536_000);
  const intervalMs = intOption(options.statusIntervalMs, '--status-interval-ms', 100, 3_600_000) ?? 1000;
  const loaded = await readConfig(options);
  for (const w of loaded.warnings) {
    out.event({ event: 'warning', message: w });
    out.status(`${pc.yellow('warning')}: ${w}`);
  }
  const tally = new DeviceTally();
  const server = await buildServer(loaded, options, tally);
  const statusPath = statusFileOf(loaded.config, options.statusFile);
  mkdirSync(dirname(statusPath), { recursive: true });
  const database = loaded.config.storage.driver === 'sqlite' ? resolve(loaded.config.storage.path) : null;
  const startedAtMs = Date.now();
  const meta = { config: loaded.path, database, startedAtMs, intervalMs };
  // The dashboard's alert rules and history persist in the SQLite database beside the readings.
  const alertStore = options.dashboard && database !== null ? await openAlertStore(database, loaded.config) : null;
  const dashboard = options.dashboard ? await addDashboard(server, { host: options.dashboardHost, port: options.dashboardPort, defaultPort: 8090, tileUrl: options.dashboardTiles, alertRules: loaded.config.dashboard.alertRules, ...(alertStore === null ? {} : { alertStore }) }, () => statusDocument(server, tally, meta)) : null;
  server.on('frame-error', (e) => out.event({ event: 'frame-error', via: e.via, peer: e.peer.key, code: e.code, message: e.error.message }));
  server.on('service-error', (e) => {
    out.event({ event: 'service-error', service: e.service, message: e.error instanceof Error ? e.error.message : String(e.error) });
    out.status(`${pc.red('service error')} ${e.service}: ${e.error instanceof Error ? e.error.message : String(e.error)}`);
  });
  await server.start();
  const started = await statusDocument(server, tally, meta);
  writeStatusFile(statusPath, started);
  for (const [name, t] of Object.entries(started.transports)) out.event({ event: 'listening', transport: name, medium: t.medium, address: t.address });
  out.event({ event: 'started', statusFile: statusPath, database, config: loaded.path, dashboard: dashboard?.url() ?? null });
  if (!out.json) {
    for (const [name, t] of Object.entries(started.transports)) out.line(`${pc.green('listening')} ${name} (${t.medium}) ${describeAddress(t.address)}`);
    if (dashboard !== null) out.line(`${pc.green('dashboard')} ${dashboard.url({ withToken: true })}`);
    out.line(`${pc.dim('database')} ${database ?? `(${loaded.config.storage.driver})`}  ${pc.dim('status file')} ${statusPath}`);
  }
  const live = out.live('{counters}');
  const readingsLoop = options.readings
    ? (async () => {
        for await (const r of server.readings()) {
          if (out.json) out.event({ event: 'reading', aid: r.aid, deviceId: r.deviceId, strategy: r.strategy, secure: r.secure, ...(r.authMode === undefined ? {} : { mode: r.authMode }), via: r.via, timestampMs: r.timestampMs, sensors: r.sensors });
          else live.log(`${pc.cyan(`aid ${r.aid}`)} ${r.deviceId} ${r.strategy}${r.authMode === undefined ? '' : ` ${r.authMode}`}${r.secure ? ' secure' : ''}  ${r.sensors.map((s) => `${s.id}=${s.value} ${s.unit}`).join('  ')}`);
        }
      })()
    : null;
  let last = { at: Date.now(), readings: 0 };
  let writing: Promise<void> = Promise.resolve();
  const tick = () => {
    writing = writing.then(async () => {
      const doc = await statusDocument(server, tally, meta);
      try {
        writeStatusFile(statusPath, doc);
      } catch (e) {
        out.status(`${pc.yellow('warning')}: cannot write the status file ${statusPath}: ${(e as Error).message}`);
      }
      const now = Date.now();
      const rate = ((doc.server.readings - last.readings) * 1000) / Math.max(1, now - last.at);
      last = { at: now, readings: doc.server.readings };
      if (out.json) out.event({ event: 'status', ...doc.server, rate: Number(rate.toFixed(1)), transports: doc.transports, storage: doc.services.storage ?? null, devices: doc.devices.length });
      else live.update({ counters: countersLine(doc, rate) });
    });
  };
  const timer = setInterval(tick, intervalMs);
  const stopped = new Promise<void>((resolveStop) => {
    if (signal.aborted) return resolveStop();
    signal.addEventListener('abort', () => resolveStop(), { once: true });
    if (seconds !== undefined) setTimeout(resolveStop, seconds * 1000).unref();
  });
  await stopped;
  clearInterval(timer);
  await writing;
  const { doc: final, stopError } = await stopAndReport(server, readingsLoop, tally, meta, live, statusPath);
  await alertStore?.close().catch(() => undefined); // the dashboard flushed it when the server stopped
  const storage = final.services.storage as { committed?: number; lost?: number; accepted?: number } | undefined;
  const why = !signal.aborted ? 'seconds' : signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
  out.summary({ stoppedBy: why, frames: final.server.frames, readings: final.server.readings, control: final.server.control, errors: final.server.errors, ignored: final.server.ignored, dropped: final.server.dropped, devices: final.devices, storage: storage ?? null, database, statusFile: statusPath }, () => {
    out.line(`${pc.bold('stopped')} (${why}): ${final.server.frames} frame(s), ${final.server.readings} reading(s) from ${final.devices.length} device(s); stored ${storage?.committed ?? '-'}, lost ${storage?.lost ?? '-'}`);
    if (database !== null) out.line(`query: os-node db query ${shellQuote(database)} --limit 20`);
  });
  if (stopError !== null) throw stopError;
  // Ctrl-C is an interruption (130); SIGTERM and --seconds are the ways a server is meant to end.
  if (why === 'SIGINT') throw new CliError('ERR_CLI_USAGE', 'interrupted');
}

export function describeAddress(address: unknown): string {
  if (address === null || address === undefined) return '';
  const a = address as { address?: string; port?: number; path?: string };
  if (a.path !== undefined) return a.path;
  if (a.address !== undefined) return `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
  return JSON.stringify(address);
}

/** A path as one shell word (quoted only when it needs to be). */
export function shellQuote(s: string): string {
  return /^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

// ------------------------------------------------------------------------ transport-status

export interface TransportStatusOptions extends ConfigSource {
  statusFile?: string;
}

/**
 * Each configured transport, its state and counters, from the status file of the server
 * running that configuration. With no live server the configured transports are listed as
 * `not running` and the command exits 5.
 */
export async function transportStatus(out: Output, options: TransportStatusOptions): Promise<void> {
  const loaded = await readConfig(options);
  const path = statusFileOf(loaded.config, options.statusFile);
  const { doc, live, ageMs } = readStatusFile(path);
  type Row = Partial<TransportStatus> & { name: string; medium: string; state: string; options?: Record<string, unknown> };
  // The status file's transports are those of the server that wrote it (its state, address and
  // last counters; `stopped` or `stale` when it no longer runs); without one, the configured ones.
  const rows: Row[] = doc
    ? Object.entries(doc.transports).map(([name, t]) => ({ name, ...t, state: live === 'running' ? t.state : live }))
    : transportsOf(loaded.config).map((t: TransportConfig) => ({ name: t.name ?? t.medium, medium: t.medium, state: 'not running', options: t.options }));
  const result = { server: live, statusFile: path, updatedAtMs: doc?.updatedAtMs ?? null, ageMs, pid: doc?.pid ?? null, transports: rows };
  out.result(result, () => {
    out.line(`server: ${live === 'running' ? pc.green('running') : pc.yellow(live === 'absent' ? 'not running' : live)} (${path}${ageMs === null ? '' : `, written ${(ageMs / 1000).toFixed(1)} s ago`})`);
    for (const r of rows) {
      const t = r;
      const counters = t.framesIn === undefined ? '' : `  in ${t.framesIn} frames / ${t.bytesIn} B, out ${t.framesOut} / ${t.bytesOut} B, queued ${t.inboundQueued}, dropped ${Object.values(t.dropped ?? {}).reduce((a, b) => a + b, 0)}, connections ${t.connections}`;
      const where = t.address ?? (t.options?.host !== undefined ? { address: t.options.host, port: t.options.port } : t.options?.url);
      out.line(`  ${pc.bold(t.name)} (${t.medium}) ${t.state} ${typeof where === 'string' ? where : describeAddress(where)}${counters}`);
    }
  });
  if (live !== 'running') throw new CliError('ERR_CLI_UNAVAILABLE', `no running server writes ${path} (${live === 'absent' ? 'no status file' : live === 'stale' ? `last written ${((ageMs ?? 0) / 1000).toFixed(1)} s ago by pid ${doc?.pid}, which is gone or hung` : 'the server stopped'})`);
}
