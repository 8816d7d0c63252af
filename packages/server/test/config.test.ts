import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ConfigError, defaultConfig, loadConfig, transportsOf, UNASSIGNED_ID, validateConfig } from '../src/config.js';
import { isOpenSynapticError } from '../src/index.js';

/** What the reference 1.4.2 writes when it creates a Config.json, plus keys we do not use. */
const referenceConfig = {
  device_id: 'DEMO_NODE',
  assigned_id: 1,
  OpenSynaptic_Setting: { default_medium: 'UDP' },
  Client_Core: { server_host: '127.0.0.1', server_port: 8080 },
  Server_Core: { host: '127.0.0.1', port: 8080, Start_ID: 1, End_ID: 4294967294 },
  engine_settings: { precision: 4, active_standardization: true, active_compression: true, active_collapse: true, zero_copy_transport: true },
  RESOURCES: {
    transport_status: { udp: true, tcp: true, quic: true },
    transport_config: { udp: { host: '0.0.0.0', port: 9000 } },
    service_plugins: {
      port_forwarder: { enabled: true, rule_sets: [{ name: 'default', enabled: true, rules: [{ from_protocol: 'UDP', to_protocol: 'TCP', to_host: '10.0.0.2', to_port: 9999, priority: 5 }] }] },
      tui: { enabled: false },
    },
  },
  security_settings: {},
  config_version: 1,
  first_run: true,
};

function issueOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(isOpenSynapticError(e, 'ERR_SERVER_CONFIG')).toBe(true);
    return e as ConfigError;
  }
  throw new Error('no error');
}

describe('configuration', () => {
  it("defaults are the reference's shipped ones", () => {
    const c = defaultConfig();
    expect(c).toMatchObject({
      deviceId: 'DEMO_NODE',
      assignedId: 1,
      defaultMedium: 'udp',
      client: { serverHost: '127.0.0.1', serverPort: 8080 },
      server: { host: '127.0.0.1', port: 8080, startId: 1, endId: 4294967294 },
      engine: { precision: 4, activeStandardization: true, activeCompression: true, activeCollapse: true, zeroCopyTransport: true },
      portForwarder: { enabled: true, rules: [] },
    });
    expect(transportsOf(c)).toEqual([{ name: 'udp', medium: 'udp', enabled: true, options: { host: '127.0.0.1', port: 8080 } }]);
  });

  it('4294967295 means unassigned and is accepted; 4294967296 is not', () => {
    expect(validateConfig({ assignedId: UNASSIGNED_ID }).config.assignedId).toBe(4294967295);
    const e = issueOf(() => validateConfig({ assignedId: 4294967296 }));
    expect(e.issues[0]).toMatchObject({ key: 'assignedId', value: 4294967296 });
    expect(e.message).toContain('assignedId');
    expect(e.message).toContain('4294967296');
    expect(e.message).toContain('4294967295');
  });

  it('a bad value names the key, the value and what is allowed; every bad key is listed', () => {
    const e = issueOf(() => validateConfig({ server: { port: 70000 }, readings: { overflow: 'block' }, storage: { drivr: 'x' } }));
    const keys = e.issues.map((i) => i.key);
    expect(keys).toEqual(expect.arrayContaining(['server.port', 'readings.overflow', 'storage.drivr']));
    expect(e.message).toMatch(/server\.port: 70000 .*65535/);
    expect(e.message).toMatch(/readings\.overflow: "block" .*"wait" \| "drop"/);
    // An unknown key: its value, and the keys that place has.
    expect(e.issues.find((i) => i.key === 'storage.drivr')).toEqual({ key: 'storage.drivr', value: 'x', allowed: 'unknown key; the keys here are driver, path, url, schema, maxConnections, maxBuffered, batchSize, synchronous' });
    expect(e.message).toContain('storage.drivr: "x" is not allowed (unknown key; the keys here are driver, path');
    const deep = issueOf(() => validateConfig({ transports: [{ medium: 'udp' }, { medium: 'udp', opts: {} }], deviceid: 'x' })).issues;
    expect(deep.find((i) => i.key === 'transports.1.opts')?.allowed).toBe('unknown key; the keys here are name, medium, enabled, options');
    expect(deep.find((i) => i.key === 'deviceid')?.allowed).toMatch(/^unknown key; the keys here are deviceId, assignedId, /);
    expect(issueOf(() => validateConfig({ server: { startId: 10, endId: 5 } })).issues[0]?.key).toBe('server.endId');
    expect(issueOf(() => validateConfig([])).issues[0]?.key).toBe('(root)');
  });

  it('a reference Config.json is accepted: known keys mapped, ignored keys listed in a warning', () => {
    const { config, warnings, format } = validateConfig(referenceConfig);
    expect(format).toBe('reference');
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 8080, startId: 1, endId: 4294967294 });
    expect(config.defaultMedium).toBe('udp');
    expect(config.transports).toEqual([{ name: 'udp', medium: 'udp', enabled: true, options: { host: '0.0.0.0', port: 9000 } }]);
    expect(config.portForwarder.rules).toEqual([{ from: 'udp', to: 'tcp', target: { address: '10.0.0.2', port: 9999 }, enabled: true, priority: 5, continue: false }]);
    expect(warnings).toHaveLength(1);
    for (const k of ['security_settings', 'config_version', 'first_run', 'RESOURCES.service_plugins.tui', 'RESOURCES.transport_status.quic']) expect(warnings[0]).toContain(k);
    const bad = issueOf(() => validateConfig({ ...referenceConfig, Server_Core: { port: 'eighty' } }));
    expect(bad.issues[0]).toMatchObject({ key: 'server.port', value: 'eighty' });
  });

  it('loadConfig reads a file and names it in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'os-config-'));
    const good = join(dir, 'good.json');
    await writeFile(good, JSON.stringify({ deviceId: 'GW', sweepIntervalMs: 500 }));
    expect((await loadConfig(good)).config).toMatchObject({ deviceId: 'GW', sweepIntervalMs: 500, assignedId: 1 });
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ "deviceId": ');
    await expect(loadConfig(broken)).rejects.toSatisfy((e) => isOpenSynapticError(e, 'ERR_SERVER_CONFIG') && (e as Error).message.includes(broken));
    await expect(loadConfig(join(dir, 'missing.json'))).rejects.toSatisfy((e) => isOpenSynapticError(e, 'ERR_SERVER_CONFIG'));
  });
});
