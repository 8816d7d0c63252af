import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_FULL, ID_REQUEST } from '@opensynaptic/cmd';
import { OpenSynaptic } from '@opensynaptic/core';
import { FileStore } from '@opensynaptic/store';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureId, linkNode } from '../src/device.js';
import { isOpenSynapticError } from '../src/index.js';
import { OpenSynapticServer } from '../src/server.js';
import { frameAid, PortForwarder, type Service } from '../src/services.js';
import { device, portOf, tick, udp, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

describe('services', () => {
  it('the port forwarder sends matching frames (by aid and command) from one medium to another', async () => {
    const inbound = await udp();
    const uplink = await udp();
    const collector = await udp();
    cleanup.push(() => collector.destroy());
    const forwarder = new PortForwarder([
      { name: 'only-42-full', from: 'field', to: 'uplink', target: { address: '127.0.0.1', port: portOf(collector) }, aids: [42], cmds: [DATA_FULL], enabled: true, priority: 1, continue: false },
    ]);
    const server = new OpenSynapticServer({ transports: [{ name: 'field', transport: inbound }, { name: 'uplink', transport: uplink }], services: [forwarder] });
    cleanup.push(() => server.destroy());
    await server.start();
    const sender = await udp({ remote: { address: '127.0.0.1', port: portOf(inbound) } });
    cleanup.push(() => sender.destroy());
    const a = new OpenSynaptic({ assignedId: 42, deviceId: 'A' });
    const b = new OpenSynaptic({ assignedId: 43, deviceId: 'B' });
    const fullA = a.transmit([['T1', 'OK', 1, 'Cel']]).frame;
    expect(frameAid(fullA)).toBe(42);
    await sender.send(fullA);
    await sender.send(b.transmit([['T1', 'OK', 1, 'Cel']]).frame);
    await sender.send(new Uint8Array([ID_REQUEST, 0, 1, 2]));
    const got: Uint8Array[] = [];
    void (async () => {
      for await (const { frame } of collector) got.push(frame);
    })();
    await until(async () => (await server.status()).frames === 3, 'three frames read');
    await until(() => got.length === 1, 'the forwarded frame');
    expect([...(got[0] as Uint8Array)]).toEqual([...fullA]);
    const status = forwarder.status();
    expect(status).toMatchObject({ forwarded: 1, failed: 0, unmatched: 2, rules: { 'only-42-full': { forwarded: 1, failed: 0 } } });
    expect((await server.status()).services['port-forwarder']).toMatchObject({ forwarded: 1 });
  });

  it('a rule naming a transport that does not exist fails start() with a typed error', async () => {
    const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport: await udp() }], services: [new PortForwarder([{ from: '*', to: 'nowhere', enabled: true, priority: 0, continue: false }])] });
    await expect(server.start()).rejects.toSatisfy((e) => isOpenSynapticError(e, 'ERR_SERVER_OPTION') && (e as Error).message.includes('nowhere'));
    expect(server.state).toBe('destroyed');
  });

  it('user services run start → stop → destroy in order, see frames and readings; names are unique', async () => {
    const log: string[] = [];
    const mine: Service = {
      name: 'mine',
      start: () => void log.push('start'),
      stop: () => void log.push('stop'),
      destroy: () => void log.push('destroy'),
      onFrame: () => void log.push('frame'),
      onReading: (r) => void log.push(`reading ${r.deviceId}`),
      status: () => ({ ok: true }),
    };
    const transport = await udp();
    const server = new OpenSynapticServer({ transports: [{ transport }], services: [mine] });
    expect(() => server.services.register({ name: 'mine' })).toThrow(/already registered/);
    await server.start();
    const sender = await udp({ remote: { address: '127.0.0.1', port: portOf(transport) } });
    cleanup.push(() => sender.destroy());
    await sender.send(new OpenSynaptic({ assignedId: 5, deviceId: 'X' }).transmit([['T1', 'OK', 1, 'Cel']]).frame);
    await until(() => log.includes('reading X'), 'the reading');
    expect((await server.status()).services.mine).toEqual({ ok: true });
    await server.stop();
    await server.destroy();
    expect(log).toEqual(['start', 'frame', 'reading X', 'stop', 'destroy']);
  });

  it('sweeps the node on the injected timer', async () => {
    let fire: (() => void) | null = null;
    let cleared = false;
    const timers = {
      setInterval: (fn: () => void) => {
        fire = fn;
        return 1;
      },
      clearInterval: () => {
        cleared = true;
      },
    };
    const server = new OpenSynapticServer({ transports: [{ transport: await udp() }], timers, sweepIntervalMs: 250 });
    let sweeps = 0;
    const original = server.node.sweep.bind(server.node);
    server.node.sweep = () => {
      sweeps++;
      original();
    };
    await server.start();
    expect(fire).not.toBeNull();
    (fire as unknown as () => void)();
    (fire as unknown as () => void)();
    expect(sweeps).toBe(2);
    await server.stop();
    expect(cleared).toBe(true);
  });

  it('ensureId gives up after its retries with ERR_SERVER_TIMEOUT when no server answers', async () => {
    const silent = await udp();
    cleanup.push(() => silent.destroy());
    const d = await device('LONELY', portOf(silent));
    cleanup.push(() => d.transport.destroy());
    await expect(ensureId(d.node, { timeoutMs: 100, retries: 2, backoffMs: 10 })).rejects.toSatisfy(
      (e) => isOpenSynapticError(e, 'ERR_SERVER_TIMEOUT') && (e as Error).message.includes('3 attempt'),
    );
    expect(silent.stats().framesIn).toBeGreaterThanOrEqual(3);
  });

  it('with a durable store, ids survive a restart: a new device never gets an id handed out before', async () => {
    const root = await mkdtemp(join(tmpdir(), 'os-server-'));
    const ids: number[] = [];
    for (let run = 0; run < 2; run++) {
      const store = await FileStore.open({ root, kinds: ['leases', 'sessions'] });
      const transport = await udp();
      const server = new OpenSynapticServer({ transports: [{ transport }], store });
      await server.start();
      for (let i = 0; i < 3; i++) {
        const d = await device(`D${run}-${i}`, portOf(transport));
        ids.push(await ensureId(d.node, { timeoutMs: 1000, meta: { mac: `aa:${run}:${i}` } }));
        await d.transport.destroy();
      }
      await server.stop();
      await store.close();
      await tick(1);
    }
    expect(new Set(ids).size).toBe(6);
  });

  it('linkNode answers the server and ends when the transport stops', async () => {
    const t = await udp();
    const node = new OpenSynaptic({ deviceId: 'L' });
    const link = linkNode(node, t);
    await t.stop();
    await link.done;
    link.unlink();
    expect(t.state).toBe('stopped');
  });
});

describe('stop with a sink that never takes readings', () => {
  it('stop() lets the held loop go after stopTimeoutMs and says so, instead of hanging', async () => {
    const { GateSink } = await import('./helpers.js');
    const gate = new GateSink();
    const transport = await udp();
    const server = new OpenSynapticServer({ transports: [{ transport }], sinks: [gate], stopTimeoutMs: 50 });
    cleanup.push(() => server.destroy());
    await server.start();
    const sender = await udp({ remote: { address: '127.0.0.1', port: portOf(transport) } });
    cleanup.push(() => sender.destroy());
    await sender.send(new OpenSynaptic({ assignedId: 9, deviceId: 'S' }).transmit([['T1', 'OK', 1, 'Cel']]).frame);
    await until(() => gate.writesWaiting === 1, 'the loop held by the sink');
    await expect(server.stop()).rejects.toSatisfy((e) => isOpenSynapticError(e, 'ERR_SERVER_SERVICE') && (e as Error).message.includes('did not drain'));
    expect(server.state).toBe('stopped');
  });
});

describe('await using', () => {
  it('destroys the server at the end of the scope', async () => {
    let server: OpenSynapticServer | undefined;
    {
      await using s = new OpenSynapticServer({ transports: [{ transport: await udp() }] });
      server = s;
      await s.start();
    }
    expect(server.state).toBe('destroyed');
  });
});

describe('a sink that refuses some readings', () => {
  it('counts each refused reading (dropped.rejected) and stores the others of the same burst', async () => {
    const { GateSink } = await import('./helpers.js');
    const picky = new GateSink();
    picky.blocked = false;
    const tryWrite = picky.tryWrite.bind(picky);
    picky.tryWrite = (frames) => {
      if (frames.some((f) => f.deviceId === 'BAD')) throw new Error('ERR_STORE_VALUE: deviceId BAD');
      return tryWrite(frames);
    };
    const transport = await udp();
    const server = new OpenSynapticServer({ transports: [{ transport }], sinks: [picky] });
    cleanup.push(() => server.destroy());
    const errors: unknown[] = [];
    server.on('service-error', (e) => errors.push(e.error));
    await server.start();
    const sender = await udp({ remote: { address: '127.0.0.1', port: portOf(transport) } });
    cleanup.push(() => sender.destroy());
    const good = new OpenSynaptic({ assignedId: 11, deviceId: 'GOOD' });
    const bad = new OpenSynaptic({ assignedId: 12, deviceId: 'BAD' });
    for (let i = 0; i < 40; i++) {
      const node = i % 4 === 0 ? bad : good;
      await sender.send(node.transmit([['T1', 'OK', i, 'Cel']], { t: 1.7e12 + i * 1000 }).frame);
    }
    await until(async () => (await server.status()).readings === 40, 'every frame read');
    await until(async () => picky.frames.length + (await server.status()).dropped.rejected === 40, 'every reading settled');
    expect((await server.status()).dropped.rejected).toBe(10);
    expect(picky.frames.every((f) => f.deviceId === 'GOOD')).toBe(true);
    expect(errors.length).toBeGreaterThan(0);
  });
});
