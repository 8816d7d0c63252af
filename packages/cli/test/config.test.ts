import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '@opensynaptic/server/config';
import { describe, expect, it } from 'vitest';
import { osNode } from './helpers/run.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'os-cli-config-'));

describe('config get, set and validate', () => {
  it('get gives the defaults with no file, and the value of a dotted key (JSON with --json)', async () => {
    const cwd = fresh();
    const port = await osNode(['config', 'get', 'server.port', '--json'], { cwd });
    expect(port.code).toBe(0);
    expect(JSON.parse(port.stdout)).toEqual({ key: 'server.port', value: defaultConfig().server.port, source: 'default', file: null });
    const storage = await osNode(['config', 'get', 'storage', '--json'], { cwd });
    expect(JSON.parse(storage.stdout).value).toEqual(defaultConfig().storage);
    const text = await osNode(['config', 'get', 'storage.path'], { cwd });
    expect(text.stdout).toBe(`${defaultConfig().storage.path}\n`);
  });

  it('set writes the key back keeping the rest of the file (its order and indentation), creating os-node.json when missing', async () => {
    const cwd = fresh();
    const created = await osNode(['config', 'set', 'server.port', '9000', '--json'], { cwd });
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ key: 'server.port', value: 9000, created: true });
    expect(JSON.parse(readFileSync(join(cwd, 'os-node.json'), 'utf8'))).toEqual({ server: { port: 9000 } });

    const file = join(cwd, 'mine.json');
    const original = { deviceId: 'GW_1', transports: [{ name: 'u', medium: 'udp', options: { host: '127.0.0.1', port: 7000 } }], storage: { driver: 'memory' }, readings: { buffer: 100 } };
    writeFileSync(file, `${JSON.stringify(original, null, 4)}\n`);
    for (const [key, value] of [['transports.0.options.port', '7001'], ['readings.overflow', 'drop'], ['engine.precision', '2']]) {
      const r = await osNode(['config', 'set', key as string, value as string, '--config', file]);
      expect(r.stderr, key).toBe('');
      expect(r.code, key).toBe(0);
    }
    const text = readFileSync(file, 'utf8');
    const expected = { ...original, transports: [{ ...original.transports[0], options: { host: '127.0.0.1', port: 7001 } }], readings: { buffer: 100, overflow: 'drop' }, engine: { precision: 2 } };
    expect(text).toBe(`${JSON.stringify(expected, null, 4)}\n`);
    const got = await osNode(['config', 'get', 'transports.0.options.port', '--config', file, '--json']);
    expect(JSON.parse(got.stdout)).toMatchObject({ value: 7001, source: 'file' });
    // Text that is not JSON is a string; JSON text is its value.
    await osNode(['config', 'set', 'deviceId', 'GW_2', '--config', file]);
    expect(JSON.parse(readFileSync(file, 'utf8')).deviceId).toBe('GW_2');
  });

  it('a bad value exits 3 naming key, value and what is allowed, and leaves the file as it was', async () => {
    const cwd = fresh();
    const file = join(cwd, 'os-node.json');
    writeFileSync(file, '{\n  "server": { "port": 8080 }\n}\n');
    const before = readFileSync(file, 'utf8');
    const cases: [string, string, RegExp][] = [
      ['server.port', '70000', /server\.port: 70000 is not allowed \(expected <=65535/],
      ['readings.overflow', 'sideways', /readings\.overflow: "sideways" is not allowed \(expected \("wait" \| "drop"\)/],
      ['storage.driver', 'oracle', /storage\.driver: "oracle" is not allowed/],
      ['server.prot', '1', /server\.prot: 1 is not allowed \(unknown key; the keys here are host, port, startId, endId, leaseMs\)/],
    ];
    for (const [key, value, message] of cases) {
      const r = await osNode(['config', 'set', key, value, '--json'], { cwd });
      expect(r.code, key).toBe(3);
      const err = JSON.parse(r.stderr.trim()).error;
      expect(err.code).toBe('ERR_CLI_INPUT');
      expect(err.message, key).toMatch(message);
    }
    expect(readFileSync(file, 'utf8')).toBe(before);
    const human = await osNode(['config', 'set', 'server.port', '-1'], { cwd });
    expect(human.code).toBe(3);
    expect(human.stderr).toMatch(/server\.port: -1 is not allowed/);
    // A key that is not there is a usage error; so is a malformed one.
    for (const args of [['config', 'get', 'server.nope'], ['config', 'get', 'a..b'], ['config', 'set', 'transports.5.medium', 'udp']]) {
      const r = await osNode(args, { cwd });
      expect(r.code, args.join(' ')).toBe(2);
    }
  });

  it('validate: a good file (0, with the warnings of a reference Config.json), a bad one (3, every bad key), a missing one (5)', async () => {
    const cwd = fresh();
    const ref = join(cwd, 'Config.json');
    writeFileSync(ref, JSON.stringify({ device_id: 'N', assigned_id: 4294967295, Server_Core: { host: '0.0.0.0', port: 8080, Start_ID: 1, End_ID: 99 }, security_settings: {}, config_version: 1 }));
    const ok = await osNode(['config', 'validate', ref, '--json']);
    expect(ok.code).toBe(0);
    const v = JSON.parse(ok.stdout);
    expect(v).toMatchObject({ valid: true, format: 'reference' });
    expect(v.warnings.join(' ')).toMatch(/security_settings.*config_version/);
    const get = await osNode(['config', 'get', 'server.endId', '--config', ref]);
    expect(get.stdout.trim()).toBe('99');
    const raw = await osNode(['config', 'get', 'Server_Core.End_ID', '--config', ref, '--raw']);
    expect(raw.stdout.trim()).toBe('99');

    const bad = join(cwd, 'bad.json');
    writeFileSync(bad, JSON.stringify({ server: { port: 'eighty', startId: -1 }, storage: { driver: 'oracle' } }));
    const r = await osNode(['config', 'validate', bad, '--json']);
    expect(r.code).toBe(3);
    const result = JSON.parse(r.stdout);
    expect(result.valid).toBe(false);
    expect(result.issues.map((i: { key: string }) => i.key).sort()).toEqual(['server.port', 'server.startId', 'storage.driver']);
    expect(JSON.parse(r.stderr.trim()).error.message).toMatch(/server\.port: "eighty" is not allowed.*server\.startId: -1 is not allowed.*storage\.driver: "oracle"/);
    const notJson = join(cwd, 'junk.json');
    writeFileSync(notJson, '{ server: ');
    expect((await osNode(['config', 'validate', notJson])).code).toBe(3);
    expect((await osNode(['config', 'validate', join(cwd, 'missing.json')])).code).toBe(5);
  });
});
