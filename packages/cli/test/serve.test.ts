import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { untilValue } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { ensureId, linkNode } from '@opensynaptic/server/device';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { osNode, startOsNode } from './helpers/run.js';

const opened: Transport[] = [];
afterEach(async () => {
  for (const t of opened.splice(0)) await t.destroy();
});

interface Event {
  event: string;
  [k: string]: unknown;
}

const parseLines = (text: string): Event[] =>
  text
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Event);

/** Reads NDJSON lines of a running os-node until one matches. */
async function nextEvent(lines: AsyncIterator<string>, match: (e: Event) => boolean): Promise<Event> {
  for (;;) {
    const { value, done } = await lines.next();
    if (done) throw new Error('os-node ended before the expected event');
    const e = JSON.parse(value as string) as Event;
    if (match(e)) return e;
  }
}

/** A device in this process, on its own UDP socket: it gets its id from the server, then sends `count` readings. */
async function sendReadings(port: number, name: string, count: number): Promise<{ aid: number; sent: number }> {
  const transport = await createTransport('udp', { host: '127.0.0.1', port: 0, remote: { address: '127.0.0.1', port } });
  opened.push(transport);
  await transport.start();
  const node = new OpenSynaptic({ deviceId: name, requestTimeoutMs: 1000 });
  linkNode(node, transport);
  const aid = await ensureId(node, { timeoutMs: 1000, retries: 3, meta: { device_id: name } });
  const t0 = Date.now();
  for (let i = 0; i < count; i++) {
    const { frame } = node.transmit([['T1', 'OK', 20 + (i % 4), 'Cel'], ['H1', 'OK', 50, '%']], { t: t0 + i });
    await transport.send(frame);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { aid, sent: count };
}

describe('serve, transport-status and snapshot', () => {
  it('serves a configuration over UDP: ids, readings stored, live status; SIGTERM stops it cleanly (exit 0)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-serve-'));
    const db = join(dir, 'data', 'serve.db');
    const config = join(dir, 'os-node.json');
    writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0, startId: 500, endId: 599 }, storage: { path: db, synchronous: 'normal' } }));
    const serve = startOsNode(['serve', '--config', config, '--json', '--status-interval-ms', '200']);
    const listening = await nextEvent(serve.lines, (e) => e.event === 'listening');
    const port = (listening.address as { port: number }).port;
    expect(listening).toMatchObject({ transport: 'udp', medium: 'udp' });
    const started = await nextEvent(serve.lines, (e) => e.event === 'started');
    expect(started).toMatchObject({ database: db, statusFile: `${db}.status.json`, config });

    // Two real senders, each from its own socket.
    const [a, b] = await Promise.all([sendReadings(port, 'dev-a', 15), sendReadings(port, 'dev-b', 10)]);
    expect(new Set([a.aid, b.aid]).size).toBe(2);
    for (const { aid } of [a, b]) expect(aid).toBeGreaterThanOrEqual(500);

    // transport-status reads the running server's status file (written every 200 ms).
    const status = await untilValue(async () => {
      const r = await osNode(['transport-status', '--config', config, '--json']);
      if (r.code !== 0) return undefined;
      const s = JSON.parse(r.stdout);
      return s.transports[0].framesIn >= 25 + 2 ? s : undefined;
    }, 'transport-status to count every frame', 15_000, 100);
    expect(status.server).toBe('running');
    expect(status.transports).toHaveLength(1);
    expect(status.transports[0]).toMatchObject({ name: 'udp', medium: 'udp', state: 'running', address: { address: '127.0.0.1', port } });
    expect(status.transports[0].framesOut).toBeGreaterThanOrEqual(2); // the two ID_ASSIGNs at least
    const human = await osNode(['transport-status', '--config', config]);
    expect(human.stdout).toContain(`127.0.0.1:${port}`);

    serve.child.kill('SIGTERM');
    const done = await serve.done;
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    const events = parseLines(done.stdout);
    expect(events.some((e) => e.event === 'status')).toBe(true);
    const summary = events.at(-1) as Event & { storage: { committed: number; lost: number }; readings: number; devices: { aid: number; readings: number }[] };
    expect(summary).toMatchObject({ event: 'summary', stoppedBy: 'SIGTERM', readings: 25 });
    expect(summary.storage.committed).toBe(50);
    expect(summary.storage.lost).toBe(0);
    expect(summary.devices.map((d) => [d.aid, d.readings]).sort()).toEqual([[a.aid, 30], [b.aid, 20]].sort());

    // What the file holds after the stop: every reading.
    const sink = await openSqliteReadingsSink({ path: db, readonly: true });
    expect((await sink.status()).stored.readings).toBe(50);
    await sink.close();

    // The server is gone: transport-status says so and exits 5, keeping the last counters.
    const after = await osNode(['transport-status', '--config', config, '--json']);
    expect(after.code).toBe(5);
    const last = JSON.parse(after.stdout);
    expect(last).toMatchObject({ server: 'stopped', transports: [{ name: 'udp', state: 'stopped', address: { port } }] });
    expect(last.transports[0].framesIn).toBeGreaterThanOrEqual(status.transports[0].framesIn);
    expect(JSON.parse(after.stderr.trim()).error.message).toContain('the server stopped');

    // snapshot: devices, sessions (state, never the key) and leases of the database.
    const snap = await osNode(['snapshot', '--config', config, '--json']);
    expect(snap.stderr).toBe('');
    expect(snap.code).toBe(0);
    const s = JSON.parse(snap.stdout);
    expect(s.stored).toMatchObject({ readings: 50, devices: 2 });
    expect(s.devices.map((d: { aid: number; deviceId: string }) => [d.aid, d.deviceId])).toEqual([[a.aid, 'dev-a'], [b.aid, 'dev-b']].sort((x, y) => Number(x[0]) - Number(y[0])));
    expect(s.leases.map((l: { id: number; device: string }) => l.id).sort()).toEqual([a.aid, b.aid].sort());
    expect(s.sessions.map((x: { aid: string }) => Number(x.aid)).sort()).toEqual([a.aid, b.aid].sort());
    expect(s.sessions.every((x: { state: string; hasKey: boolean; key?: unknown }) => x.state === 'SECURE' && x.hasKey && x.key === undefined)).toBe(true);
    expect(snap.stdout).not.toMatch(/[0-9a-f]{64}/); // no session key anywhere
    const snapHuman = await osNode(['snapshot', '--db', db]);
    expect(snapHuman.code).toBe(0);
    expect(snapHuman.stdout).toContain('dev-a');
  });

  it('serves the dashboard with --dashboard: its health is the status document, its devices those heard', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-serve-dash-'));
    const db = join(dir, 'serve.db');
    const serve = startOsNode(['serve', '--db', db, '--port', '0', '--host', '127.0.0.1', '--json', '--status-interval-ms', '200', '--dashboard', '--dashboard-port', '0']);
    const listening = await nextEvent(serve.lines, (e) => e.event === 'listening');
    const started = await nextEvent(serve.lines, (e) => e.event === 'started');
    expect(started.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const base = started.dashboard as string;
    const { aid } = await sendReadings((listening.address as { port: number }).port, 'dev-d', 5);
    const devices = await untilValue(async () => {
      const body = (await (await fetch(`${base}api/devices`)).json()) as { devices: { aid: number; deviceId: string; frames: { FULL: number; DIFF: number; HEART: number } }[] };
      return body.devices.some((d) => d.aid === aid && d.frames.FULL + d.frames.DIFF + d.frames.HEART === 5) ? body.devices : undefined;
    }, 'the device on the dashboard', 15_000, 100);
    expect(devices.map((d) => d.deviceId)).toEqual(['dev-d']);
    const health = (await (await fetch(`${base}api/health`)).json()) as Record<string, unknown>;
    const file = JSON.parse(readFileSync(`${db}.status.json`, 'utf8')) as Record<string, unknown>;
    // The status document, plus the rates the dashboard computes from successive documents.
    expect(Object.keys(health).filter((k) => k !== 'rates').sort()).toEqual(Object.keys(file).sort());
    expect(health.rates).toMatchObject({ server: expect.any(Object), transports: expect.any(Object), storage: expect.any(Object) });
    expect(health).toMatchObject({ version: 1, database: db, state: 'running' });
    expect((await fetch(base)).headers.get('content-type')).toMatch(/^text\/html/);
    serve.child.kill('SIGTERM');
    expect((await serve.done).code).toBe(0);
  });

  it('keeps the dashboard alert rules and alerts in the database across a restart of serve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-serve-alerts-'));
    const db = join(dir, 'serve.db');
    const token = 'a-cli-test-token-of-some-length';
    const auth = { authorization: `Bearer ${token}` };
    const before = process.env.OS_NODE_DASHBOARD_TOKEN;
    process.env.OS_NODE_DASHBOARD_TOKEN = token;
    try {
      const args = ['serve', '--db', db, '--port', '0', '--host', '127.0.0.1', '--json', '--dashboard', '--dashboard-port', '0'];
      const first = startOsNode(args);
      const listening = await nextEvent(first.lines, (e) => e.event === 'listening');
      const base = (await nextEvent(first.lines, (e) => e.event === 'started')).dashboard as string;
      const put = await fetch(`${base}api/alert-rules?id=any`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'above', sensor: 'T1', threshold: 0, severity: 'critical' }) });
      expect(put.status).toBe(201);
      await sendReadings((listening.address as { port: number }).port, 'dev-al', 1);
      const fired = await untilValue(async () => {
        const body = (await (await fetch(`${base}api/alerts`, { headers: auth })).json()) as { active: { ruleId: string; deviceId: string }[] };
        return body.active.length > 0 ? body.active : undefined;
      }, 'the alert fired', 15_000, 100);
      expect(fired[0]).toMatchObject({ ruleId: 'any', deviceId: 'dev-al' });
      first.child.kill('SIGTERM');
      expect((await first.done).code).toBe(0);

      const second = startOsNode(args);
      const base2 = (await nextEvent(second.lines, (e) => e.event === 'started')).dashboard as string;
      const rules = (await (await fetch(`${base2}api/alert-rules`, { headers: auth })).json()) as { rules: { id: string; severity: string }[] };
      expect(rules.rules).toMatchObject([{ id: 'any', severity: 'critical' }]);
      const alerts = (await (await fetch(`${base2}api/alerts`, { headers: auth })).json()) as { active: { ruleId: string }[] };
      expect(alerts.active.map((a) => a.ruleId)).toEqual(['any']);
      second.child.kill('SIGTERM');
      expect((await second.done).code).toBe(0);
    } finally {
      if (before === undefined) delete process.env.OS_NODE_DASHBOARD_TOKEN;
      else process.env.OS_NODE_DASHBOARD_TOKEN = before;
    }
  });

  it('applies the alert rules of the configuration (dashboard.alertRules) and refuses a bad one naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-serve-rules-'));
    const config = join(dir, 'os-node.json');
    const rule = { id: 'hot', kind: 'above', sensor: 'T1', threshold: 21, severity: 'warning', message: 'too warm' };
    writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, storage: { path: join(dir, 'serve.db') }, dashboard: { alertRules: [rule] } }));
    const serve = startOsNode(['serve', '--config', config, '--json', '--dashboard', '--dashboard-port', '0']);
    const listening = await nextEvent(serve.lines, (e) => e.event === 'listening');
    const base = (await nextEvent(serve.lines, (e) => e.event === 'started')).dashboard as string;
    const rules = (await (await fetch(`${base}api/alert-rules`)).json()) as { rules: Record<string, unknown>[] };
    expect(rules.rules).toMatchObject([rule]);
    // The rule works: a reading above 21 fires it (sendReadings sends 20, 21, 22, 23 ...).
    await sendReadings((listening.address as { port: number }).port, 'dev-hot', 4);
    const fired = await untilValue(async () => {
      const body = (await (await fetch(`${base}api/alerts`)).json()) as { active: { ruleId: string; deviceId: string }[] };
      return body.active.length > 0 ? body.active : undefined;
    }, 'the configured rule fired', 15_000, 100);
    expect(fired[0]).toMatchObject({ ruleId: 'hot', deviceId: 'dev-hot' });
    serve.child.kill('SIGTERM');
    expect((await serve.done).code).toBe(0);

    writeFileSync(config, JSON.stringify({ server: { host: '127.0.0.1', port: 0 }, storage: { path: join(dir, 'serve.db') }, dashboard: { alertRules: [{ ...rule, kind: 'hotter' }] } }));
    const bad = await osNode(['serve', '--config', config, '--dashboard', '--dashboard-port', '0', '--seconds', '5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/the configuration: dashboard\.alertRules\[0\]\.kind/);
  });

  it('refuses a dashboard bound wider than loopback without a token (exit 2, naming the variable)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-serve-dash-'));
    const r = await osNode(['serve', '--db', join(dir, 'x.db'), '--port', '0', '--dashboard', '--dashboard-host', '0.0.0.0', '--seconds', '1'], { env: { ...process.env, OS_NODE_DASHBOARD_TOKEN: '' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('OS_NODE_DASHBOARD_TOKEN');
  });

  it('serves the Config.json the reference wrote (its ignored keys in a warning); Ctrl-C stops it with exit 130 after the flush', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-serve-ref-'));
    const config = join(dir, 'Config.json');
    // Recorded from the live reference: what OpenSynaptic 1.4.2 writes when it creates its Config.json.
    const recorded = readFileSync(new URL('./fixtures/reference-Config.json', import.meta.url), 'utf8');
    writeFileSync(config, recorded);
    // Its own keys, set with config set: the rest of the file stays as the reference wrote it.
    for (const [key, value] of [['RESOURCES.transport_config.udp.port', '0'], ['Server_Core.Start_ID', '100'], ['Server_Core.End_ID', '200']] as const) {
      const set = await osNode(['config', 'set', key, value, '--config', config]);
      expect(set.code, key).toBe(0);
    }
    const written = JSON.parse(readFileSync(config, 'utf8'));
    const expected = JSON.parse(recorded);
    expected.RESOURCES.transport_config.udp.port = 0;
    expected.Server_Core.Start_ID = 100;
    expected.Server_Core.End_ID = 200;
    expect(written).toEqual(expected);
    const db = join(dir, 'ref.db');
    const serve = startOsNode(['serve', '--config', config, '--db', db, '--json', '--status-interval-ms', '200']);
    const warning = await nextEvent(serve.lines, (e) => e.event === 'warning');
    expect(warning.message).toMatch(/security_settings.*first_run|first_run.*security_settings/);
    const port = ((await nextEvent(serve.lines, (e) => e.event === 'listening')).address as { port: number }).port;
    const { aid } = await sendReadings(port, 'ref-dev', 8);
    expect(aid).toBeGreaterThanOrEqual(100);
    expect(aid).toBeLessThanOrEqual(200);
    await untilValue(async () => {
      const e = await nextEvent(serve.lines, (x) => x.event === 'status');
      return (e.readings as number) >= 8 ? e : undefined;
    }, 'the readings counted', 15_000, 100);
    serve.child.kill('SIGINT');
    const done = await serve.done;
    expect(done.code).toBe(130);
    const summary = parseLines(done.stdout).at(-1) as Event & { storage: { committed: number } };
    expect(summary).toMatchObject({ event: 'summary', stoppedBy: 'SIGINT', readings: 8 });
    expect(summary.storage.committed).toBe(16);
  });

  it('human output (not a terminal): the transports, counters as plain lines, the totals; --seconds ends it with exit 0', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'os-cli-serve-human-'));
    // os-node.json in the working directory is the configuration when --config is not given.
    writeFileSync(join(cwd, 'os-node.json'), JSON.stringify({ server: { port: 0 }, storage: { path: 'h.db' } }));
    const r = await osNode(['serve', '--seconds', '1', '--status-interval-ms', '100'], { cwd });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^listening udp \(udp\) 127\.0\.0\.1:\d+$/m);
    expect(r.stdout).toContain(`database ${join(cwd, 'h.db')}`);
    expect(r.stdout).toMatch(/^frames 0 \| readings 0 \(0\/s\) \| control 0 \| devices 0 \| stored 0/m);
    expect(r.stdout).toContain('stopped (seconds): 0 frame(s)');
    expect(r.stdout).toContain(`query: os-node db query ${join(cwd, 'h.db')}`);
  });

  it('refuses a missing configuration (5), a bad one naming the key (3), --port beside listed transports (2)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-serve-bad-'));
    const missing = await osNode(['serve', '--config', join(dir, 'none.json')]);
    expect(missing.code).toBe(5);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ server: { port: 'eighty' } }));
    for (const cmd of ['serve', 'snapshot', 'transport-status']) {
      const r = await osNode([cmd, '--config', bad, '--json']);
      expect(r.code, cmd).toBe(3);
      expect(JSON.parse(r.stderr.trim()).error.message).toMatch(/server\.port: "eighty" is not allowed/);
    }
    const listed = join(dir, 'listed.json');
    writeFileSync(listed, JSON.stringify({ transports: [{ medium: 'udp', options: { port: 0 } }], storage: { driver: 'none' } }));
    const r = await osNode(['serve', '--config', listed, '--port', '9']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--host/--port');
    const none = await osNode(['snapshot', '--db', join(dir, 'nothing.db')]);
    expect(none.code).toBe(5);
  });
});
