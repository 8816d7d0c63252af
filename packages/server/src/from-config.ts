import { readFile } from 'node:fs/promises';
import type { AuthKinds, AuthX25519Options, LeaseKinds, SessionKinds } from '@opensynaptic/handshake';
import { MemoryReadingsSink, type ReadingsSink, type Store } from '@opensynaptic/store';
import type { OpenSynapticOptions } from '@opensynaptic/core';
import { type Config, transportsOf } from './config.js';
import { ConfigError } from './errors.js';
import { OpenSynapticServer, type OpenSynapticServerOptions } from './server.js';
import { loadPostgres, loadSqlite, PortForwarder } from './services.js';
import { nodeX25519 } from './x25519-node.js';

/** Fusion's template store (its `TemplateStore`, named through core's options: no dependency on fusion). */
type TemplateStore = NonNullable<Exclude<NonNullable<NonNullable<OpenSynapticOptions['fusion']>['registry']>, { preload: unknown }>['store']>;
type TemplateKinds = TemplateStore extends Store<infer K> ? K : never;
type ServerKinds = LeaseKinds & SessionKinds & TemplateKinds & AuthKinds;

/** The store kinds a configured server keeps in its database: leases, sessions, templates, and the authenticated mode's secrets and sessions. */
export const SERVER_STORE_KINDS = ['leases', 'sessions', 'templates', 'keys', 'auth'] as const;

/** The server's suite-2 key pair and policy from `auth.x25519` (the key inline or in its file). */
async function x25519Of(x: NonNullable<Config['auth']['x25519']>): Promise<AuthX25519Options> {
  let text = x.privateKey;
  if (text === undefined) {
    const file = x.privateKeyFile!;
    try {
      text = (await readFile(file, 'utf8')).trim();
    } catch (e) {
      throw new ConfigError([{ key: 'auth.x25519.privateKeyFile', value: file, allowed: `a readable file (${(e as Error).message})` }]);
    }
    if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new ConfigError([{ key: 'auth.x25519.privateKeyFile', value: file, allowed: 'a file holding 64 hex digits (os-node keys server-keypair --out)' }]);
  }
  const privateKey = new Uint8Array(32).map((_, i) => Number.parseInt(text.slice(2 * i, 2 * i + 2), 16));
  return { privateKey, kid: x.kid, accept: x.accept, sharedSecret: nodeX25519 };
}

/**
 * A server as a validated configuration describes it (not started): its transports, the storage
 * (`sqlite`: the readings sink and the lease and session store in one file, through
 * `@opensynaptic/store-sqlite` loaded by name; `postgres`: the same in `storage.schema` of the
 * database at `storage.url`, through `@opensynaptic/store-postgres` loaded by name only then, so
 * SQLite-only users never load `pg`; `memory`: a `MemoryReadingsSink`, leases in memory;
 * `none`), the id range, the readings options, the sweep and the port forwarder. `overrides` win
 * (more services, a clock, timers...).
 */
export async function serverFromConfig(config: Config, overrides: Partial<OpenSynapticServerOptions> = {}): Promise<OpenSynapticServer> {
  const sinks: ReadingsSink[] = [];
  // Leases, sessions and the devices' templates: a restarted server must still decode the DIFFs
  // and HEARTs of devices that sent their FULL to the process before it (they send no new FULL).
  let store: Store<ServerKinds> | null = null;
  const { storage } = config;
  if (storage.driver === 'sqlite') {
    const sqlite = await loadSqlite();
    const common = { path: storage.path, synchronous: storage.synchronous };
    store = await sqlite.openSqliteStore<ServerKinds>({ ...common, kinds: [...SERVER_STORE_KINDS] });
    sinks.push(await sqlite.openSqliteReadingsSink({ ...common, maxBuffered: storage.maxBuffered, batchSize: storage.batchSize }));
  } else if (storage.driver === 'postgres') {
    const postgres = await loadPostgres();
    const common = { connection: storage.url, schema: storage.schema };
    const opened = await postgres.openPostgresStore<ServerKinds>({ ...common, kinds: [...SERVER_STORE_KINDS] });
    store = opened;
    try {
      sinks.push(await postgres.openPostgresReadingsSink({ ...common, maxConnections: storage.maxConnections, maxBuffered: storage.maxBuffered, batchSize: storage.batchSize }));
    } catch (e) {
      await opened.close().catch(() => undefined);
      throw e;
    }
  } else if (storage.driver === 'memory') {
    sinks.push(new MemoryReadingsSink({ maxBuffered: storage.maxBuffered, batchSize: storage.batchSize }));
  }
  const services = [...(overrides.services ?? [])];
  if (config.portForwarder.enabled && config.portForwarder.rules.length > 0) services.unshift(new PortForwarder(config.portForwarder.rules));
  const server = new OpenSynapticServer({
    transports: transportsOf(config).map((t) => ({ name: t.name ?? t.medium, medium: t.medium, options: t.options })),
    node: { assignedId: config.assignedId, deviceId: config.deviceId, fusion: { precision: config.engine.precision, registry: { ...(config.engine.cachedDevices === undefined ? {} : { maxEntries: config.engine.cachedDevices }), ...(store === null ? {} : { store: store as unknown as TemplateStore }) } } },
    store: store as Store<LeaseKinds & SessionKinds> | null,
    ownStore: store !== null,
    ids: { start: config.server.startId, end: config.server.endId, leaseMs: config.server.leaseMs },
    sinks,
    readingsBuffer: config.readings.buffer,
    overflow: config.readings.overflow,
    sweepIntervalMs: config.sweepIntervalMs,
    auth: config.auth.enabled ? { require: config.auth.require, graceMs: config.auth.graceMs, ...(config.auth.x25519 === undefined ? {} : { x25519: await x25519Of(config.auth.x25519) }) } : false,
    ...overrides,
    services,
  });
  return server;
}
