import { MemoryReadingsSink, MemoryStore, type ReadingFrame } from '@opensynaptic/store';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureId } from '../src/device.js';
import { OpenSynapticServer, type ServerEvents } from '../src/server.js';
import { type Device, device, portOf, tick, udp, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

/** A sink that takes one write at a time, a few ms each: a server slower than the traffic. */
class SlowSink extends MemoryReadingsSink {
  override tryWrite(): number | false {
    return false;
  }
  override async write(frames: readonly ReadingFrame[]): Promise<number> {
    await tick(2);
    return super.write(frames);
  }
}

async function startServer(options: Partial<ConstructorParameters<typeof OpenSynapticServer>[0]> = {}) {
  const transport = await udp({ inbound: { maxFrames: 64 }, recvBufferSize: 1 << 20 });
  const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport }], store: new MemoryStore({ kinds: ['leases', 'sessions'] }), ...options });
  cleanup.push(() => server.destroy());
  await server.start();
  return { server, port: portOf(transport) };
}

async function fleet(names: string[], port: number): Promise<Device[]> {
  const out: Device[] = [];
  for (const name of names) {
    const d = await device(name, port);
    cleanup.push(() => d.transport.destroy());
    await ensureId(d.node, { timeoutMs: 2000, retries: 3 });
    out.push(d);
  }
  return out;
}

describe('bad input: the server keeps serving everyone else', () => {
  it('a flood from one device does not starve the others: its excess is dropped and counted for it alone', async () => {
    const sink = new SlowSink();
    const { server, port } = await startServer({ sinks: [sink], sinkBatch: 1, deviceQueue: 16 });
    const [flooder, ...quiet] = await fleet(['FLOOD', 'QUIET_0', 'QUIET_1', 'QUIET_2'], port);
    const t0 = 1.7e12;
    // The flood: frames as fast as the socket takes them, from one device.
    let flooding = true;
    const flood = (async () => {
      for (let i = 0; flooding && i < 20_000; i++) {
        await flooder!.transport.send(flooder!.node.transmit([['T1', 'OK', i % 500, 'Cel']], { t: t0 + i * 1000 }).frame);
        if (i % 64 === 63) await tick(0);
      }
    })();
    // Meanwhile each quiet device sends a frame every 20 ms.
    const perDevice = 10;
    for (let i = 0; i < perDevice; i++) {
      for (const d of quiet) await d.transport.send(d.node.transmit([['T1', 'OK', i, 'Cel']], { t: t0 + i * 1000 }).frame);
      await tick(20);
    }
    flooding = false;
    await flood;
    const quietIds = new Set(quiet.map((d) => d.node.assignedId));
    const quietStored = async () => (await sink.query({ limit: 100_000 })).filter((r) => quietIds.has(r.aid)).length;
    await until(async () => (await quietStored()) === perDevice * quiet.length, 'every reading of the quiet devices stored', 20_000).catch(async (e) => {
      console.log(await quietStored(), JSON.stringify((await server.status()).devices), JSON.stringify((await server.status()).transports.udp));
      throw e;
    });
    const status = await server.status();
    const floodKey = String(flooder!.node.assignedId);
    expect(status.devices[floodKey]?.dropped).toBeGreaterThan(0);
    expect(status.dropped.device).toBe(status.devices[floodKey]?.dropped);
    for (const d of quiet) expect(status.devices[String(d.node.assignedId)]).toBeUndefined();
  });

  it('frames from an unknown device are refused, counted for that device, and the others are served', async () => {
    const sink = new MemoryReadingsSink();
    const { server, port } = await startServer({ sinks: [sink] });
    const [known] = await fleet(['KNOWN'], port);
    // A device the server never saw a FULL from (its own node sent one, to another server).
    const stranger = await device('STRANGER', port);
    cleanup.push(() => stranger.transport.destroy());
    stranger.node.assignedId = 424242;
    const t0 = 1.7e12;
    for (let i = 0; i < 4; i++) stranger.node.transmit([['T1', 'OK', i, 'Cel']], { t: t0 + i * 1000 }); // FULLs never sent
    const diff = stranger.node.transmit([['T1', 'OK', 9, 'Cel']], { t: t0 + 9000 });
    expect(diff.kind).toBe('DIFF');
    // The known reading first and the stranger's frames right behind it, in one burst: the
    // reading must reach the sink although no reading follows it.
    const sends = [known!.transport.send(known!.node.transmit([['T1', 'OK', 1, 'Cel']], { t: t0 }).frame)];
    for (let i = 0; i < 3; i++) sends.push(stranger.transport.send(diff.frame));
    await Promise.all(sends);
    await until(async () => (await server.status()).readings === 1, 'the known device served');
    await until(async () => (await server.status()).devices['424242']?.errors === 3, 'the stranger counted');
    const status = await server.status();
    expect(Object.values(status.errors).reduce((a, b) => a + b, 0)).toBe(3);
    expect(status.state).toBe('running');
    // The server counts a reading when decoded; the sink gets it with the next batch.
    await until(async () => (await sink.status()).committed === 1, 'the known reading committed');
    await sink.flush();
    expect((await sink.status()).committed).toBe(1);
  });

  it('a full SQLite database: a storage event, the server keeps serving, nothing partial; writing resumes when there is room', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'server-full-')), 'os.db');
    const sink = await openSqliteReadingsSink({ path, maxPages: 40, batchSize: 32, retryMinMs: 10, retryMaxMs: 50 });
    const { server, port } = await startServer({ sinks: [sink], sweepIntervalMs: 50 });
    const events: ServerEvents['storage'][] = [];
    server.on('storage', (e) => events.push(e));
    const [d] = await fleet(['FILLER'], port);
    let sent = 0;
    while (!events.some((e) => e.state === 'failing') && sent < 20_000) {
      for (let i = 0; i < 32; i++, sent++) await d!.transport.send(d!.node.transmit([['T1', 'OK', sent % 9, 'Cel']], { t: 1.7e12 + sent * 1000 }).frame);
      await tick(20);
    }
    const failing = events.find((e) => e.state === 'failing');
    expect(failing?.error).toMatch(/SQLITE_FULL/);
    // Still serving: control traffic is answered and the state is running.
    expect(await d!.node.ping({ timeoutMs: 2000 })).toBeGreaterThanOrEqual(0);
    expect(server.state).toBe('running');
    await until(async () => (await server.status()).readings === sent, 'every frame decoded');
    // Room again (another connection deletes old readings, as freeing disk space would).
    const other = new Database(path);
    other.exec('DELETE FROM os_reading_rows');
    other.close();
    await until(() => events.some((e) => e.state === 'recovered'), 'a storage recovered event', 20_000);
    await until(async () => (await sink.status()).buffered === 0, 'what was buffered written', 20_000);
    const st = await sink.status();
    expect([st.committed, st.lost, st.buffered]).toEqual([sent, 0, 0]);
  });

  it('a stop while the database is full: what cannot be committed is counted lost and stop() says how many; committed + lost = accepted', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'server-stop-full-')), 'os.db');
    const sink = await openSqliteReadingsSink({ path, maxPages: 40, batchSize: 32, retryMinMs: 10, retryMaxMs: 50, closeTimeoutMs: 300 });
    const { server, port } = await startServer({ sinks: [sink], sweepIntervalMs: 50 });
    const events: ServerEvents['storage'][] = [];
    server.on('storage', (e) => events.push(e));
    const [d] = await fleet(['STOPPER'], port);
    let sent = 0;
    while (!events.some((e) => e.state === 'failing') && sent < 20_000) {
      for (let i = 0; i < 32; i++, sent++) await d!.transport.send(d!.node.transmit([['T1', 'OK', sent % 9, 'Cel']], { t: 1.7e12 + sent * 1000 }).frame);
      await tick(20);
    }
    await until(async () => (await server.status()).readings === sent, 'every frame decoded');
    const err = await server.stop().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/\d+ readings could not be committed/);
    const st = (await server.status()).services.storage as { accepted: number; committed: number; lost: number; buffered: number };
    expect(st.lost).toBeGreaterThan(0);
    expect(st.committed + st.lost).toBe(st.accepted);
    expect(st.accepted).toBe(sent);
    // What the file holds is what was committed, whole transactions only.
    const reader = await openSqliteReadingsSink({ path, readonly: true });
    expect((await reader.status()).stored.readings).toBe(st.committed);
    await reader.close();
  });
});
