import { OpenSynaptic } from '@opensynaptic/core';
import { MemoryReadingsSink, MemoryStore } from '@opensynaptic/store';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureId, ensureTime } from '../src/device.js';
import { isOpenSynapticError } from '../src/index.js';
import { OpenSynapticServer, type ServerReading } from '../src/server.js';
import { type Device, device, GateSink, portOf, tick, udp, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

async function startServer(options: Partial<ConstructorParameters<typeof OpenSynapticServer>[0]> & { inbound?: object } = {}) {
  const transport = await udp(options.inbound === undefined ? {} : { inbound: options.inbound });
  const server = new OpenSynapticServer({
    transports: [{ name: 'udp', transport }],
    store: new MemoryStore({ kinds: ['leases', 'sessions'] }),
    ...options,
  });
  cleanup.push(() => server.destroy());
  await server.start();
  return { server, port: portOf(transport) };
}

async function devices(n: number, port: number): Promise<Device[]> {
  const out: Device[] = [];
  for (let i = 0; i < n; i++) {
    const d = await device(`DEV_${i}`, port);
    cleanup.push(() => d.transport.destroy());
    out.push(d);
  }
  return out;
}

function collect(server: OpenSynapticServer): ServerReading[] {
  const seen: ServerReading[] = [];
  void (async () => {
    for await (const r of server.readings()) seen.push(r);
  })();
  return seen;
}

describe('OpenSynapticServer over UDP loopback', () => {
  it('assigns ids through the handshake, then every reading reaches the iterator and the sink (FULL, DIFF, HEART, secure)', async () => {
    const sink = new MemoryReadingsSink();
    const { server, port } = await startServer({ sinks: [sink] });
    const seen = collect(server);
    const fleet = await devices(4, port);
    const ids = await Promise.all(fleet.map((d) => ensureId(d.node, { timeoutMs: 1000, retries: 3 })));
    expect(new Set(ids).size).toBe(4);
    for (const id of ids) expect(id).toBeGreaterThanOrEqual(1);
    const sync = await ensureTime(fleet[0]!.node, { timeoutMs: 1000 });
    expect(sync.serverTimeMs).toBeGreaterThan(1e12);

    let sent = 0;
    const base = Math.floor(Date.now() / 1000) * 1000;
    const kinds = new Set<string>();
    const secureSent: boolean[] = [];
    for (let round = 0; round < 12; round++) {
      for (const [i, d] of fleet.entries()) {
        // Device 0 and 1 change values every round (DIFF), 2 and 3 keep them (HEART).
        const value = i < 2 ? 20 + round : 20;
        // Timestamps a second apart: two identical frames in one second are a replay to the server.
        const t = base + round * 1000;
        const { frame, kind, secure } = d.node.transmit(
          [
            ['T1', 'OK', value, 'Cel'],
            ['H1', 'OK', 40 + i, '%'],
          ],
          { t },
        );
        kinds.add(kind);
        secureSent.push(secure);
        await d.transport.send(frame);
        sent++;
        await tick(1); // lets the session answer come back before the next frame
      }
    }
    await until(() => seen.length >= sent, 'every reading on the iterator').catch(async (e) => { console.log(seen.length, sent, JSON.stringify(await server.status())); throw e; });
    await until(async () => (await sink.status()).accepted >= sent * 2, 'every reading in the sink');
    await sink.flush();
    expect(seen.length).toBe(sent);
    expect(kinds).toEqual(new Set(['FULL', 'DIFF', 'HEART']));
    expect(secureSent.some((s) => s)).toBe(true);
    expect(seen.filter((r) => r.secure).length).toBe(secureSent.filter((s) => s).length);
    expect(new Set(seen.map((r) => r.strategy))).toEqual(new Set(['FULL', 'DIFF', 'HEART']));
    // Per device: all its readings, in order, with the values sent.
    for (const [i, id] of ids.entries()) {
      const mine = seen.filter((r) => r.aid === id);
      expect(mine.length).toBe(12);
      expect(mine.every((r) => r.deviceId === `DEV_${i}` && r.sensors.length === 2 && r.sensors[0]?.id === 'T1')).toBe(true);
      const stored = await sink.query({ aid: id, sensorId: 'T1', limit: 1000 });
      expect(stored.length).toBe(12);
    }
    const status = await server.status();
    expect(status.readings).toBe(sent);
    expect(status.dropped).toEqual({ iterator: 0, sink: 0, rejected: 0, device: 0 });
    expect(status.control).toBeGreaterThanOrEqual(5);
  });

  it('keeps serving others through junk frames, frames of unknown devices and a flood from one device', async () => {
    const { server, port } = await startServer();
    const seen = collect(server);
    const [good, flooder] = await devices(2, port);
    await ensureId(good!.node, { timeoutMs: 1000 });
    await ensureId(flooder!.node, { timeoutMs: 1000 });
    // Junk: random bytes and bytes that start like a data frame.
    let junk = 0;
    for (let i = 0; i < 200; i++) {
      const bytes = new Uint8Array(1 + (i % 60)).map((_, j) => (i * 31 + j * 7) & 0xff);
      if (i % 2 === 0) bytes[0] = 0x3f;
      await flooder!.transport.send(bytes);
      junk++;
    }
    // A device the server never saw: its DIFF has no template there.
    const stranger = new OpenSynaptic({ assignedId: 777, deviceId: 'STRANGER' });
    for (let i = 0; i < 3; i++) stranger.transmit([['T1', 'OK', i, 'Cel']]);
    const diff = stranger.transmit([['T1', 'OK', 99, 'Cel']]);
    expect(diff.kind).toBe('DIFF');
    await flooder!.transport.send(diff.frame);
    // A flood of valid frames from one device.
    for (let i = 0; i < 500; i++) await flooder!.transport.send(flooder!.node.transmit([['T1', 'OK', i, 'Cel']], { t: 1.7e12 + i * 1000 }).frame);
    // Once the flood has been read (UDP: what the kernel's buffer could not hold is lost before the
    // server sees it), the good device is still served.
    let last = -1;
    await until(async () => {
      const now = (await server.status()).frames;
      const quiet = now === last;
      last = now;
      if (!quiet) await tick(100);
      return quiet;
    }, 'the flood read');
    for (let i = 0; i < 5; i++) {
      await good!.transport.send(good!.node.transmit([['P1', 'OK', i, 'Pa']], { t: Date.now() + i * 1000 }).frame);
      await tick(2);
    }
    await until(() => seen.filter((r) => r.aid === good!.node.assignedId).length === 5, "the good device's readings");
    const status = await server.status();
    const errors = Object.values(status.errors).reduce((a, b) => a + b, 0);
    const ignored = Object.values(status.ignored).reduce((a, b) => a + b, 0);
    // Every frame the server took is accounted for: decoded, control, refused with a code, ignored,
    // or dropped at the intake for the flooder alone (over its deviceQueue share).
    expect(status.frames).toBe(status.readings + status.control + errors + ignored + status.dropped.device);
    expect(status.dropped.device).toBe(status.devices[String(flooder!.node.assignedId)]?.dropped ?? 0);
    expect(status.errors.ERR_FUSION_TEMPLATE_MISSING ?? 0).toBeGreaterThanOrEqual(status.readings > 5 ? 0 : 1);
    expect(errors).toBeGreaterThan(0);
    expect(status.frames).toBeLessThanOrEqual(junk + 1 + 500 + 5 + status.control);
    expect(server.state).toBe('running');
  });

  it("a sink that refuses readings with overflow 'drop' counts every drop; the iterator still sees all", async () => {
    const gate = new GateSink();
    const { server, port } = await startServer({ sinks: [gate], overflow: 'drop' });
    const seen = collect(server);
    const drops: number[] = [];
    server.on('dropped', (e) => drops.push(e.sink));
    const [d] = await devices(1, port);
    await ensureId(d!.node, { timeoutMs: 1000 });
    for (let i = 0; i < 50; i++) await d!.transport.send(d!.node.transmit([['T1', 'OK', i, 'Cel']], { t: 1.7e12 + i * 1000 }).frame);
    await until(() => seen.length === 50, 'the iterator');
    expect((await server.status()).dropped.sink).toBe(50);
    expect(drops.at(-1)).toBe(50);
    gate.open();
    await d!.transport.send(d!.node.transmit([['T1', 'OK', 1000, 'Cel']], { t: 1.8e12 }).frame);
    await until(() => gate.frames.length === 1, 'the sink takes readings again');
  });

  it("a blocked sink with overflow 'wait' holds the loop: the intake queue fills and its drops are counted for the device, nothing silent", async () => {
    const gate = new GateSink();
    // The server's intake holds 16 frames in all (and more than that per device): once full, a
    // datagram socket's frames, which cannot wait, are dropped there and counted for their device
    // (past twice the bound, whoever sent them).
    const { server, port } = await startServer({ sinks: [gate], inbound: { maxFrames: 16 }, queueFrames: 16, deviceQueue: 1000 });
    const seen = collect(server);
    const [d] = await devices(1, port);
    await ensureId(d!.node, { timeoutMs: 1000 });
    const sent = 300;
    for (let i = 0; i < sent; i++) {
      await d!.transport.send(d!.node.transmit([['T1', 'OK', i, 'Cel']], { t: 1.7e12 + i * 1000 }).frame);
      if (i % 8 === 7) await tick(1); // lets the server's socket be read: the drops are then the intake's, counted
    }
    await until(() => gate.writesWaiting === 1, 'the loop waiting on the sink');
    const dropped = async () => (await server.status()).dropped.device;
    await until(async () => (await dropped()) > 0, 'intake drops');
    gate.open();
    let settled = -1;
    await until(async () => {
      const now = seen.length;
      const quiet = now === settled;
      settled = now;
      if (!quiet) await tick(100);
      return quiet;
    }, 'the queue drained');
    // What the server did not take is the intake's counted drops (the kernel may drop more on a
    // busy machine, before anyone can count them).
    const status = await server.status();
    expect(seen.length + status.dropped.device).toBeLessThanOrEqual(sent);
    expect(seen.length + status.dropped.device).toBeGreaterThan(sent / 2);
    expect(status.devices[String(d!.node.assignedId)]?.dropped).toBe(status.dropped.device);
    expect(gate.frames.length).toBe(seen.length);
    expect(seen.length).toBeLessThan(sent);
    await server.stop();
    expect(server.state).toBe('stopped');
  });

  it('start → stop drains and ends the iterators; destroy is idempotent; a second start is refused', async () => {
    const sink = new MemoryReadingsSink();
    const { server, port } = await startServer({ sinks: [sink] });
    const readings = server.readings();
    const [d] = await devices(1, port);
    await ensureId(d!.node, { timeoutMs: 1000 });
    await d!.transport.send(d!.node.transmit([['T1', 'OK', 1, 'Cel']]).frame);
    const first = await readings.next();
    expect(first.done).toBe(false);
    await server.stop();
    expect((await readings.next()).done).toBe(true);
    // The storage service flushed and closed the sink: what it accepted is committed.
    const storage = (await server.status()).services.storage as { committed: number; lost: number };
    expect(storage).toMatchObject({ committed: 1, lost: 0 });
    await expect(server.start()).rejects.toSatisfy((e) => isOpenSynapticError(e, 'ERR_SERVER_STATE'));
    await server.destroy();
    await server.destroy();
    expect(server.state).toBe('destroyed');
  });
});
