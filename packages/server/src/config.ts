/**
 * The server's configuration: one JSON file, validated with valibot, with defaults equal to the
 * ones the reference (OpenSynaptic 1.4.2) writes when it creates its `Config.json`. A reference
 * `Config.json` is accepted: the keys we understand are mapped, the others are listed in
 * `warnings`. Separate entry (`@opensynaptic/server/config`) so a CLI validates a file without
 * loading the server.
 */
import * as v from 'valibot';
import { type ConfigIssue, ConfigError, describeValue } from './errors.js';

/** The id that means "no id assigned yet" on the wire (and in `assignedId`). */
export const UNASSIGNED_ID = 4294967295;

const u32 = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(UNASSIGNED_ID));
const port = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535));
const positiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));
const text = v.pipe(v.string(), v.minLength(1), v.maxLength(256));

/** One forwarding rule of the port forwarder (see `PortForwarder`). */
export const ForwardRuleSchema = v.strictObject({
  /** Rule name, shown in status. */
  name: v.optional(text),
  /** Medium (service transport name) the frame came in on; `*` for any. */
  from: text,
  /** Transport name the frame goes out on. */
  to: text,
  /** Destination on `to` (`{ address, port }` or `{ topic }`); default: that transport's default peer. */
  target: v.optional(v.union([v.strictObject({ address: text, port }), v.strictObject({ topic: text })])),
  /** Only frames whose source aid is one of these. */
  aids: v.optional(v.array(u32)),
  /** Only frames whose command byte is one of these. */
  cmds: v.optional(v.array(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(255)))),
  enabled: v.optional(v.boolean(), true),
  /** Higher first; the first matching rule wins unless `continue` is set. */
  priority: v.optional(v.pipe(v.number(), v.integer()), 0),
  /** Keep matching lower-priority rules after this one (one frame to many media). */
  continue: v.optional(v.boolean(), false),
});

/** One transport the server listens on: a registry driver name and its options. */
export const TransportConfigSchema = v.strictObject({
  /** Name the server knows it by (port-forwarder rules use it). Default: the medium. */
  name: v.optional(text),
  /** Driver name of `@opensynaptic/transport` (`udp`, `tcp`, `mqtt`, `websocket`, `serial`...). */
  medium: text,
  enabled: v.optional(v.boolean(), true),
  /** The driver's options (see the transport README). */
  options: v.optional(v.record(v.string(), v.unknown()), {}),
});

export const ConfigSchema = v.strictObject({
  /** This node's device name (the reference's `device_id`). */
  deviceId: v.optional(text, 'DEMO_NODE'),
  /** This node's id (`assigned_id`); 4294967295 means unassigned. The reference ships 1. */
  assignedId: v.optional(u32, 1),
  /** Medium a device sends on (`OpenSynaptic_Setting.default_medium`, lower-cased). */
  defaultMedium: v.optional(text, 'udp'),
  /** Where a device finds its server (`Client_Core`). */
  client: v.optional(
    v.strictObject({ serverHost: v.optional(text, '127.0.0.1'), serverPort: v.optional(port, 8080) }),
    {},
  ),
  /** The server's address and id range (`Server_Core`). */
  server: v.optional(
    v.strictObject({
      host: v.optional(text, '127.0.0.1'),
      port: v.optional(port, 8080),
      startId: v.optional(u32, 1),
      endId: v.optional(u32, 4294967294),
      /** Id lease length, ms (default 30 days, the allocator's). */
      leaseMs: v.optional(positiveInt, 2_592_000_000),
    }),
    {},
  ),
  /** Engine switches (`engine_settings`); `precision` is the body's decimal places. */
  engine: v.optional(
    v.strictObject({
      precision: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(15)), 4),
      activeStandardization: v.optional(v.boolean(), true),
      activeCompression: v.optional(v.boolean(), true),
      activeCollapse: v.optional(v.boolean(), true),
      zeroCopyTransport: v.optional(v.boolean(), true),
      /**
       * Devices whose templates the server holds in memory (the fusion registry cache). Default:
       * with storage 1024, the reference's: the least recently seen past it leaves memory and is
       * read back from storage on its next frame (a store read on that frame's path, so a fleet
       * larger than this that sends in turn is read from disk frame after frame): size it to the
       * active fleet (the fleet bench measures about 2 KB of heap per device with one template).
       * Without storage 1,000,000, since a device that leaves is forgotten.
       */
      cachedDevices: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000_000))),
    }),
    {},
  ),
  /** Transports the server listens on; empty: one of `defaultMedium` on `server.host`:`server.port`. */
  transports: v.optional(v.array(TransportConfigSchema), []),
  /**
   * Where readings go: `sqlite` (loads `@opensynaptic/store-sqlite`), `postgres` (loads
   * `@opensynaptic/store-postgres`; `url` needed), `memory`, or `none`.
   */
  storage: v.optional(
    v.pipe(
      v.strictObject({
        driver: v.optional(v.picklist(['sqlite', 'postgres', 'memory', 'none']), 'sqlite'),
        path: v.optional(text, 'data/opensynaptic.db'),
        /** `postgres`: the server, `postgres://user:password@host:port/database`. */
        url: v.optional(v.pipe(v.string(), v.regex(/^postgres(ql)?:\/\/./, 'a postgres:// URL'))),
        /** `postgres`: the schema holding the tables (created when missing). */
        schema: v.optional(v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_]{0,62}$/, '1..63 characters a-z, 0-9 or _, starting with a letter or _')), 'public'),
        /** `postgres`: most connections of the readings sink's pool (and batches in flight). */
        maxConnections: v.optional(positiveInt, 4),
        /** Readings accepted and not yet committed; default the driver's (SQLite and PostgreSQL 300000, held packed; memory 100000). */
        maxBuffered: v.optional(positiveInt),
        /** Readings per transaction; default the driver's (SQLite 16384, PostgreSQL 4096, memory 1000). */
        batchSize: v.optional(positiveInt),
        synchronous: v.optional(v.picklist(['full', 'normal']), 'full'),
      }),
      v.forward(
        v.check((s) => s.driver !== 'postgres' || s.url !== undefined, 'a postgres:// URL (storage.driver "postgres" needs one)'),
        ['url'],
      ),
    ),
    {},
  ),
  /** Delivery of decoded readings (see the server's `readingsBuffer` and `overflow` options). */
  readings: v.optional(
    v.strictObject({
      buffer: v.optional(positiveInt, 4096),
      overflow: v.optional(v.picklist(['wait', 'drop']), 'wait'),
    }),
    {},
  ),
  /**
   * The authenticated mode (this project's extension): `enabled` answers AUTH_HELLO (false: the
   * reference's "Unknown CMD" NACK, as a legacy server); `require` refuses legacy data frames
   * (plain and XOR-secure), each refusal counted and reported; `graceMs` keeps a rotated-out
   * session opening frames in flight. Secrets are provisioned with `os-node keys add`.
   * `x25519` adds suite 2: the server's static X25519 private key (`privateKeyFile`, a file holding
   * its 64 hex digits as `os-node keys server-keypair --out` writes it, or `privateKey` inline),
   * the `kid` devices name it by, and `accept`: `known` (default; devices enrolled with
   * `os-node keys add <aid> --x25519`) or `any` (every aid without a pre-shared secret).
   */
  auth: v.optional(
    v.strictObject({
      enabled: v.optional(v.boolean(), true),
      require: v.optional(v.boolean(), false),
      graceMs: v.optional(positiveInt, 120_000),
      x25519: v.optional(
        v.pipe(
          v.strictObject({
            privateKey: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-fA-F]{64}$/, '64 hex digits (32 bytes)'))),
            privateKeyFile: v.optional(text),
            kid: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(255)), 0),
            accept: v.optional(v.picklist(['known', 'any']), 'known'),
          }),
          v.check((x) => (x.privateKey === undefined) !== (x.privateKeyFile === undefined), 'exactly one of privateKey and privateKeyFile'),
        ),
      ),
    }),
    {},
  ),
  /** How often the node's `sweep()` runs, ms. */
  sweepIntervalMs: v.optional(positiveInt, 1000),
  /** The port forwarder (the reference enables it with no rules). */
  portForwarder: v.optional(
    v.strictObject({ enabled: v.optional(v.boolean(), true), rules: v.optional(v.array(ForwardRuleSchema), []) }),
    {},
  ),
  /**
   * What `os-node serve --dashboard` gives the dashboard: alert rules, (re)applied at every start
   * over stored rules of the same id. Each rule is checked by the dashboard when it attaches
   * (its `AlertRule`: id, kind, severity, ...), so the server's schema holds them as objects.
   */
  dashboard: v.optional(v.strictObject({ alertRules: v.optional(v.array(v.record(v.string(), v.unknown())), []) }), {}),
});

/** A validated configuration, every default filled in. */
export type Config = v.InferOutput<typeof ConfigSchema>;
/** What a configuration file may hold (every key optional). */
export type ConfigInput = v.InferInput<typeof ConfigSchema>;
export type ForwardRuleConfig = v.InferOutput<typeof ForwardRuleSchema>;
export type TransportConfig = v.InferOutput<typeof TransportConfigSchema>;

export interface ValidatedConfig {
  config: Config;
  /** Reference keys that were ignored, and other notes; empty when there is nothing to say. */
  warnings: string[];
  /** Whether the input was a reference `Config.json`. */
  format: 'opensynaptic-js' | 'reference';
}

/** The keys an object of the schema has at `path` (through optional wrappers and arrays), for the message of an unknown key. */
function keysAt(path: readonly unknown[]): string[] {
  let schema: unknown = ConfigSchema;
  for (const key of path) {
    for (;;) {
      const s = schema as { type?: string; wrapped?: unknown; item?: unknown };
      if (s.type === 'optional') schema = s.wrapped;
      else break;
    }
    const s = schema as { type?: string; entries?: Record<string, unknown>; item?: unknown };
    if (s.type === 'array' && typeof key === 'number') schema = s.item;
    else if (s.entries !== undefined && typeof key === 'string') schema = s.entries[key];
    else return [];
  }
  while ((schema as { type?: string }).type === 'optional') schema = (schema as { wrapped: unknown }).wrapped;
  const entries = (schema as { entries?: Record<string, unknown> }).entries;
  return entries === undefined ? [] : Object.keys(entries);
}

function issuesOf(result: v.SafeParseResult<typeof ConfigSchema>): ConfigIssue[] {
  return (result.issues ?? []).map((issue) => {
    const path = issue.path ?? [];
    const key = path.map((p) => String(p.key)).join('.') || '(root)';
    if (issue.type === 'strict_object' && path.length > 0) {
      // The value is the unknown key's (valibot's input is its name); allowed: the keys there are.
      const known = keysAt(path.slice(0, -1).map((p) => p.key));
      return { key, value: path[path.length - 1]?.value, allowed: `unknown key${known.length > 0 ? `; the keys here are ${known.join(', ')}` : ''}` };
    }
    return { key, value: issue.input, allowed: `expected ${issue.expected ?? 'a valid value'}: ${issue.message}` };
  });
}

/** Keys a reference `Config.json` has at its top level (any one makes the input a reference file). */
const REFERENCE_MARKERS = ['device_id', 'assigned_id', 'OpenSynaptic_Setting', 'Client_Core', 'Server_Core', 'RESOURCES', 'engine_settings'];

/** Whether `raw` looks like a reference `Config.json`. */
export function isReferenceConfig(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && REFERENCE_MARKERS.some((k) => k in raw);
}

function sectionOf(input: Record<string, unknown>, key: string): Record<string, unknown> {
  const section: Record<string, unknown> = {};
  input[key] = section;
  return section;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Media of the reference with a driver here (reference name → ours). */
const REFERENCE_MEDIA: Record<string, string> = { udp: 'udp', tcp: 'tcp', mqtt: 'mqtt', uart: 'serial', rs485: 'rs485', websocket: 'websocket', ws: 'websocket' };

/**
 * Maps a reference `Config.json` to ours: the keys we understand become their equivalents, every
 * other key (dotted path) is listed in `ignored`. Values are not checked here (`validateConfig` is).
 */
export function fromReferenceConfig(raw: Record<string, unknown>): { input: Record<string, unknown>; ignored: string[] } {
  const ignored: string[] = [];
  const input: Record<string, unknown> = {};
  const take = (section: Record<string, unknown>, prefix: string, map: Record<string, string>, into: Record<string, unknown>) => {
    for (const [k, value] of Object.entries(section)) {
      const ours = map[k];
      if (ours === undefined) ignored.push(`${prefix}${k}`);
      else into[ours] = value;
    }
  };
  for (const [key, value] of Object.entries(raw)) {
    switch (key) {
      case 'device_id':
        input.deviceId = value;
        break;
      case 'assigned_id':
        input.assignedId = value;
        break;
      case 'OpenSynaptic_Setting':
        if (isObject(value)) {
          for (const [k, x] of Object.entries(value)) {
            if (k === 'default_medium') input.defaultMedium = typeof x === 'string' ? x.trim().toLowerCase() : x;
            else ignored.push(`${key}.${k}`);
          }
        } else ignored.push(key);
        break;
      case 'Client_Core':
        if (isObject(value)) take(value, `${key}.`, { server_host: 'serverHost', server_port: 'serverPort' }, sectionOf(input, 'client'));
        else ignored.push(key);
        break;
      case 'Server_Core':
        if (isObject(value)) take(value, `${key}.`, { host: 'host', port: 'port', Start_ID: 'startId', End_ID: 'endId' }, sectionOf(input, 'server'));
        else ignored.push(key);
        break;
      case 'engine_settings':
        if (isObject(value)) {
          take(
            value,
            `${key}.`,
            { precision: 'precision', active_standardization: 'activeStandardization', active_compression: 'activeCompression', active_collapse: 'activeCollapse', zero_copy_transport: 'zeroCopyTransport' },
            sectionOf(input, 'engine'),
          );
        } else ignored.push(key);
        break;
      case 'RESOURCES':
        if (isObject(value)) mapResources(value, input, ignored);
        else ignored.push(key);
        break;
      default:
        ignored.push(key);
    }
  }
  return { input, ignored };
}

function mapResources(res: Record<string, unknown>, input: Record<string, unknown>, ignored: string[]): void {
  const transports: Record<string, unknown>[] = [];
  const configs: Record<string, unknown> = {};
  for (const k of ['transport_config', 'physical_config', 'application_config']) if (isObject(res[k])) Object.assign(configs, res[k]);
  for (const [key, value] of Object.entries(res)) {
    if (key === 'transport_status' || key === 'physical_status' || key === 'application_status' || key === 'transporters_status') {
      if (!isObject(value)) {
        ignored.push(`RESOURCES.${key}`);
        continue;
      }
      for (const [name, on] of Object.entries(value)) {
        const medium = REFERENCE_MEDIA[name.trim().toLowerCase()];
        if (medium === undefined || on !== true) {
          if (on === true) ignored.push(`RESOURCES.${key}.${name}`);
          continue;
        }
        if (transports.some((t) => t.name === name.toLowerCase())) continue;
        const own = configs[name];
        const options: Record<string, unknown> = {};
        if (isObject(own)) {
          if (typeof own.host === 'string') options.host = own.host;
          if (typeof own.port === 'number') options.port = own.port;
        }
        transports.push({ name: name.toLowerCase(), medium, options });
      }
    } else if (key === 'transport_config' || key === 'physical_config' || key === 'application_config') {
      // read above, for the media that are enabled
    } else if (key === 'service_plugins' && isObject(value)) {
      for (const [name, plugin] of Object.entries(value)) {
        if (name === 'port_forwarder' && isObject(plugin)) input.portForwarder = mapForwarder(plugin, ignored);
        else ignored.push(`RESOURCES.service_plugins.${name}`);
      }
    } else ignored.push(`RESOURCES.${key}`);
  }
  // Only the media the server listens on: the reference enables every transport by default, so
  // a UDP server is what its `Server_Core` and `default_medium` describe.
  if (transports.length > 0) input.transports = transports.filter((t) => t.medium === (typeof input.defaultMedium === 'string' ? input.defaultMedium : 'udp'));
}

function mapForwarder(plugin: Record<string, unknown>, ignored: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const rules: Record<string, unknown>[] = [];
  for (const [k, value] of Object.entries(plugin)) {
    if (k === 'enabled') out.enabled = value;
    else if (k === 'rule_sets' && Array.isArray(value)) {
      for (const set of value) {
        if (!isObject(set) || set.enabled === false || !Array.isArray(set.rules)) continue;
        for (const r of set.rules) {
          if (!isObject(r)) continue;
          const rule: Record<string, unknown> = {
            from: String(r.from_protocol ?? '*').toLowerCase(),
            to: String(r.to_protocol ?? '').toLowerCase(),
            enabled: r.enabled ?? true,
            priority: r.priority ?? 0,
          };
          if (typeof r.to_host === 'string' && typeof r.to_port === 'number') rule.target = { address: r.to_host, port: r.to_port };
          if (r.condition != null) ignored.push('RESOURCES.service_plugins.port_forwarder.rule_sets[].rules[].condition');
          rules.push(rule);
        }
      }
    } else ignored.push(`RESOURCES.service_plugins.port_forwarder.${k}`);
  }
  out.rules = rules;
  return out;
}

/**
 * Validates a parsed configuration (ours, or a reference `Config.json`) and fills in the defaults.
 * Throws `ConfigError` (`ERR_SERVER_CONFIG`) naming every bad key, its value and what is allowed.
 */
export function validateConfig(raw: unknown, source?: string): ValidatedConfig {
  if (!isObject(raw)) throw new ConfigError([{ key: '(root)', value: raw, allowed: 'a JSON object' }], source);
  let input: Record<string, unknown> = raw;
  const warnings: string[] = [];
  const format = isReferenceConfig(raw) ? 'reference' : 'opensynaptic-js';
  if (format === 'reference') {
    const mapped = fromReferenceConfig(raw);
    input = mapped.input;
    if (mapped.ignored.length > 0) warnings.push(`reference configuration keys ignored: ${[...new Set(mapped.ignored)].join(', ')}`);
  }
  const result = v.safeParse(ConfigSchema, input);
  if (!result.success) throw new ConfigError(issuesOf(result), source);
  const config = result.output;
  if (config.server.endId < config.server.startId) {
    throw new ConfigError([{ key: 'server.endId', value: config.server.endId, allowed: `at least server.startId (${config.server.startId})` }], source);
  }
  return { config, warnings, format };
}

/** The defaults: what an empty file gives. */
export function defaultConfig(): Config {
  return validateConfig({}).config;
}

/** Reads and validates a JSON configuration file (Node only). */
export async function loadConfig(path: string): Promise<ValidatedConfig> {
  const { readFile } = await import('node:fs/promises');
  let textContent: string;
  try {
    textContent = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError([{ key: '(file)', value: path, allowed: `a readable file (${(e as Error).message})` }], path);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(textContent);
  } catch (e) {
    throw new ConfigError([{ key: '(file)', value: describeValue(textContent.slice(0, 40)), allowed: `JSON (${(e as Error).message})` }], path);
  }
  return validateConfig(raw, path);
}

/** The transports a configuration listens on (the default one when `transports` is empty). */
export function transportsOf(config: Config): TransportConfig[] {
  const enabled = config.transports.filter((t) => t.enabled);
  if (config.transports.length > 0) return enabled;
  return [{ name: config.defaultMedium, medium: config.defaultMedium, enabled: true, options: { host: config.server.host, port: config.server.port } }];
}

export { ConfigError, type ConfigIssue };
