import { OpenSynaptic } from '@opensynaptic/core';
import { IdAllocator } from '@opensynaptic/handshake';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { osNode, startOsNode } from './helpers/run.js';

interface FrameEvent {
  event: string;
  type?: string;
  aid?: number;
  cmdName?: string;
  port?: number;
  sensors?: { id: string; value: number; unit: string }[];
}

const opened: Transport[] = [];
afterEach(async () => {
  for (const t of opened.splice(0)) await t.destroy();
});

/** An in-test server on a free UDP port: it assigns ids and answers time requests, as a server does. */
async function server(pool: { start: number; end: number } = { start: 5000, end: 5999 }): Promise<number> {
  const node = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', handshake: { allocator: new IdAllocator({ ...pool, clockMs: Date.now }) } });
  const t = await createTransport('udp', { host: '127.0.0.1', port: 0 });
  opened.push(t);
  let port = 0;
  t.on('listening', (e) => {
    port = e.port ?? 0;
  });
  await t.start();
  void (async () => {
    for await (const { frame, peer } of t) {
      const out = node.receive(frame);
      if (out.response) await t.send(out.response, peer).catch(() => {});
    }
  })();
  return port;
}

describe('transmit → watch over UDP on loopback', () => {
  it('watch prints every reading transmit sent, decoded to the standardized values', async () => {
    const watch = startOsNode(['watch', '--host', '127.0.0.1', '--port', '0', '--count', '8', '--timeout-ms', '20000', '--json']);
    const first = JSON.parse((await watch.lines.next()).value as string) as FrameEvent;
    expect(first.event).toBe('listening');
    const port = first.port as number;
    expect(port).toBeGreaterThan(0);
    const tx = await osNode(['transmit', '--port', String(port), '--aid', '42', '--device', 'NODE_A', 'T1:21.5:Cel', 'H1:40:%', '--count', '8', '--interval-ms', '20', '--json']);
    expect(tx.stderr).toBe('');
    expect(tx.code).toBe(0);
    const txLines = tx.stdout.trim().split('\n');
    // NDJSON: every line one object, the summary last.
    const txEvents = txLines.map((l) => JSON.parse(l) as { event: string; kind: string; frameHex: string; sent?: number });
    const sent = txEvents.filter((e) => e.event === 'sent');
    expect(sent).toHaveLength(8);
    expect(txEvents.at(-1)).toMatchObject({ event: 'summary', sent: 8 });
    const w = await watch.done;
    expect(w.code).toBe(0);
    const events = w.stdout.trim().split('\n').map((l) => JSON.parse(l) as FrameEvent);
    expect(events.at(-1)).toMatchObject({ event: 'summary', readings: 8 });
    const data = events.filter((e) => e.event === 'frame' && e.type === 'data');
    expect(data).toHaveLength(8);
    // The first value steps by 0.1 every other reading (FULL, then DIFF and HEART); Cel is stored in K.
    const expected = sent.map((_, i) => Number((21.5 + 273.15 + (Math.floor(i / 2) % 10) / 10).toFixed(2)));
    expect(data.map((e) => Number(Number(e.sensors?.[0]?.value).toFixed(2)))).toEqual(expected);
    expect(data.every((e) => e.aid === 42 && e.sensors?.[1]?.value === 40)).toBe(true);
    // What watch printed is what the library decodes from the frames transmit reported sending.
    const receiver = new OpenSynaptic({ assignedId: 1, deviceId: 'R' });
    const lib = sent.map((s) => receiver.receive(Buffer.from(s.frameHex, 'hex')));
    expect(data.map((e) => e.sensors?.map((x) => x.unit))).toEqual(lib.map((d) => (d.type === 'data' ? [d.fact.s1_u, d.fact.s2_u] : d.type)));
    expect(new Set(sent.map((s) => s.kind))).toEqual(new Set(['FULL', 'DIFF', 'HEART']));
  });

  it('watch ends quietly (exit 0) when its reader goes away, as `| head` does', async () => {
    const watch = startOsNode(['watch', '--host', '127.0.0.1', '--port', '0', '--timeout-ms', '20000', '--json']);
    const port = (JSON.parse((await watch.lines.next()).value as string) as FrameEvent).port as number;
    watch.child.stdout?.destroy();
    await osNode(['transmit', '--port', String(port), '--aid', '42', 'T1:1:Cel', '--count', '3', '--interval-ms', '10']);
    const r = await watch.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('watch --timeout-ms with too few readings exits 4; a port in use exits 5', async () => {
    const r = await osNode(['watch', '--host', '127.0.0.1', '--port', '0', '--count', '1', '--timeout-ms', '300']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/0 of 1 reading/);
    const port = await server();
    const busy = await osNode(['watch', '--host', '127.0.0.1', '--port', String(port), '--timeout-ms', '300', '--json']);
    expect(busy.code).toBe(5);
    expect(JSON.parse(busy.stderr.trim()).error.code).toMatch(/^ERR_TRANSPORT_/);
  });
});

describe('Ctrl-C', () => {
  it('stops a transmit run: sockets closed, the summary printed, exit 130', async () => {
    const port = await server();
    const tx = startOsNode(['transmit', '--port', String(port), '--aid', '42', 'T1:1:Cel', '--count', '100000', '--interval-ms', '10', '--json']);
    await tx.lines.next(); // the first frame went out
    tx.child.kill('SIGINT');
    const r = await tx.done;
    expect(r.code).toBe(130);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string);
    expect(summary.event).toBe('summary');
    expect(summary.interrupted).toBe(true);
    expect(summary.sent).toBeGreaterThan(0);
    expect(summary.sent).toBeLessThan(100000);
  });
});

describe('ensure-id and time-sync against a server over UDP', () => {
  it("ensure-id gets an id from the server's pool; time-sync its time", async () => {
    const port = await server();
    const id = await osNode(['ensure-id', '--port', String(port), '--device', 'dev-1', '--json']);
    expect(id.stderr).toBe('');
    expect(id.code).toBe(0);
    const { aid } = JSON.parse(id.stdout);
    expect(aid).toBeGreaterThanOrEqual(5000);
    expect(aid).toBeLessThanOrEqual(5999);
    const before = Date.now();
    const ts = await osNode(['time-sync', '--port', String(port), '--json']);
    expect(ts.code).toBe(0);
    const sync = JSON.parse(ts.stdout);
    // The wire carries whole seconds.
    expect(sync.serverTimeMs).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
    expect(sync.serverTimeMs).toBeLessThanOrEqual(Date.now() + 1000);
    expect(sync.rttMs).toBeGreaterThanOrEqual(0);
  });

  it('a refusal (no id left in the pool) exits 6', async () => {
    const port = await server({ start: 7000, end: 7000 });
    const first = await osNode(['ensure-id', '--port', String(port), '--device', 'a', '--json']);
    expect(JSON.parse(first.stdout).aid).toBe(7000);
    // The same device asking again gets its id back.
    const again = await osNode(['ensure-id', '--port', String(port), '--device', 'a', '--json']);
    expect(JSON.parse(again.stdout).aid).toBe(7000);
    const second = await osNode(['ensure-id', '--port', String(port), '--device', 'b', '--json']);
    expect(second.code).toBe(6);
    expect(JSON.parse(second.stderr.trim()).error.code).toBe('ERR_HANDSHAKE_NACK');
  });

  it('with nobody answering, both exit 4 after --timeout-ms', async () => {
    // A bound socket that never answers.
    const silent = await createTransport('udp', { host: '127.0.0.1', port: 0 });
    opened.push(silent);
    let port = 0;
    silent.on('listening', (e) => {
      port = e.port ?? 0;
    });
    await silent.start();
    for (const cmd of ['ensure-id', 'time-sync']) {
      const r = await osNode([cmd, '--port', String(port), '--timeout-ms', '300', '--json']);
      expect(r.code, cmd).toBe(4);
      expect(JSON.parse(r.stderr.trim()).error.code).toBe('ERR_HANDSHAKE_TIMEOUT');
    }
  });
});
