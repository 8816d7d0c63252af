import { startPostgres } from '@opensynaptic/config/postgres';
import { openPostgresReadingsSink } from '@opensynaptic/store-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config.js';
import { ensureId } from '../src/device.js';
import { isOpenSynapticError } from '../src/index.js';
import { serverFromConfig } from '../src/from-config.js';
import { OpenSynapticServer, type ServerEvents } from '../src/server.js';
import { device, portOf, tick, udp, until } from './helpers.js';
import { MemoryStore } from '@opensynaptic/store';

type Pg = Awaited<ReturnType<typeof startPostgres>>;
let pg: Pg | undefined;
let unavailable = '';
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  try {
    pg = await startPostgres();
  } catch (e) {
    unavailable = (e as Error).message;
    if (process.env.CI) throw e;
    console.warn(`SKIPPED (PostgreSQL could not be started): ${unavailable}`);
  }
}, 120_000);
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  pg?.stop();
});

const portOfServer = (s: OpenSynapticServer) => portOf(s.transport('udp') as never);
let schemas = 0;
const newSchema = () => `srv${process.pid}_${++schemas}`;

describe('serverFromConfig with storage.driver "postgres"', () => {
  it('needs storage.url: the message names the key', () => {
    const err = (() => {
      try {
        validateConfig({ storage: { driver: 'postgres' } });
      } catch (e) {
        return e;
      }
    })();
    expect(isOpenSynapticError(err, 'ERR_SERVER_CONFIG')).toBe(true);
    expect((err as Error).message).toContain('storage.url');
  });

  it('stores every reading in PostgreSQL, ids durable in the same schema across a restart', async (ctx) => {
    if (pg === undefined) return ctx.skip();
    const schema = newSchema();
    const { config } = validateConfig({ server: { port: 0 }, storage: { driver: 'postgres', url: pg.url, schema, maxConnections: 2 } });
    const ids: number[] = [];
    let sent = 0;
    for (let run = 0; run < 2; run++) {
      const server = await serverFromConfig(config);
      cleanup.push(() => server.destroy());
      await server.start();
      const d = await device(`PG_${run}`, portOfServer(server));
      cleanup.push(() => d.transport.destroy());
      ids.push(await ensureId(d.node, { timeoutMs: 2000, meta: { serial: `pg-${run}` } }));
      for (let i = 0; i < 20; i++) {
        await d.transport.send(d.node.transmit([['T1', 'OK', i % 3, 'Cel']], { t: 1.7e12 + i * 1000 }).frame);
        sent++;
        await tick(1);
      }
      await until(async () => (await server.status()).readings === 20, 'the readings');
      await server.stop();
    }
    expect(ids[0]).not.toBe(ids[1]);
    const reader = await openPostgresReadingsSink({ connection: pg.url, schema });
    cleanup.push(() => reader.close());
    expect((await reader.query({ limit: 1000 })).length).toBe(sent);
    expect((await reader.devices()).map((x) => x.deviceId).sort()).toEqual(['PG_0', 'PG_1']);
  });

  /**
   * `during` readings sent as fast as the device can once the database is down; then, for
   * `forMs`, a steady stream (a batch of 20 every 10 ms) with the sink's buffer and the heap
   * sampled, and the server's state watched.
   */
  async function outage(sinkOptions: object, serverOptions: object, during: number, forMs = 0) {
    const schema = newSchema();
    let failedCommits = 0;
    const sink = await openPostgresReadingsSink({ connection: pg!.url, schema, retryMinMs: 20, retryMaxMs: 200, connectTimeoutMs: 1000, onError: () => failedCommits++, ...sinkOptions });
    const transport = await udp();
    const server = new OpenSynapticServer({ transports: [{ name: 'udp', transport }], store: new MemoryStore({ kinds: ['leases', 'sessions'] }), sinks: [sink], sweepIntervalMs: 50, ...serverOptions });
    cleanup.push(() => server.destroy());
    const events: ServerEvents['storage'][] = [];
    server.on('storage', (e) => events.push(e));
    await server.start();
    const d = await device('OUTAGE', portOf(transport));
    cleanup.push(() => d.transport.destroy());
    await ensureId(d.node, { timeoutMs: 2000 });
    let sent = 0;
    const send = async (n: number) => {
      for (let i = 0; i < n; i++, sent++) {
        await d.transport.send(d.node.transmit([['T1', 'OK', sent % 7, 'Cel']], { t: 1.7e12 + sent * 1000 }).frame);
        if (i % 16 === 15) await tick(1);
      }
    };
    await send(20);
    await until(async () => (await sink.status()).committed === 20, 'the readings before the outage');
    pg!.stopServer();
    let rtt = -1;
    const heapBefore = process.memoryUsage().heapUsed;
    const watched = { maxBuffered: 0, maxHeapGrowth: 0, states: new Set<string>() };
    try {
      await send(during);
      for (const end = Date.now() + forMs; Date.now() < end; ) {
        await send(20);
        // `counts`: the sink's own counters (status() reads the database, down here).
        watched.maxBuffered = Math.max(watched.maxBuffered, sink.counts.buffered);
        watched.maxHeapGrowth = Math.max(watched.maxHeapGrowth, process.memoryUsage().heapUsed - heapBefore);
        watched.states.add(server.state);
        await tick(10);
      }
      await until(() => events.some((e) => e.state === 'failing'), 'a storage failing event');
      await until(() => failedCommits > 0, 'a commit attempted while the database is down');
      // Control traffic is still answered while the database is down.
      // (-1: not answered; with overflow 'wait' a full sink holds the transport's one loop, pings included.)
      rtt = await d.node.ping({ timeoutMs: 2000 }).catch(() => -1);
    } finally {
      pg!.startServer();
    }
    await until(() => events.some((e) => e.state === 'recovered'), 'a storage recovered event', 30_000);
    await until(async () => (await sink.status()).buffered === 0, 'the buffer written', 30_000);
    const status = await server.status();
    const st = await sink.status();
    await server.stop();
    return { sent, rtt, events, status, st, schema, watched };
  }

  it('the database down mid-stream, then back: status events, retries, everything buffered within bounds stored once, control traffic answered meanwhile', async (ctx) => {
    if (pg === undefined) return ctx.skip();
    const { sent, rtt, events, status, st } = await outage({ maxBuffered: 5000 }, {}, 100);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(events.find((e) => e.state === 'failing')?.service).toBe('storage');
    expect(status.readings).toBe(sent);
    expect([st.committed, st.lost, st.stored.readings]).toEqual([sent, 0, sent]);
    expect(st.failedAttempts).toBeGreaterThan(0);
  });

  /** How long the database stays down in the long outage (the issue asks 30 s; CI affords this much; FAULTS_OUTAGE_MS overrides). */
  const OUTAGE_MS = Number(process.env.FAULTS_OUTAGE_MS ?? 5000);

  it(`the database down for ${OUTAGE_MS / 1000} s (30 s in the issue; FAULTS_OUTAGE_MS) under a steady stream: the sink's buffer stays within maxBuffered, memory bounded, the overflow counted dropped, everything else written after recovery, the server running throughout`, async (ctx) => {
    if (pg === undefined) return ctx.skip();
    const maxBuffered = 2000;
    const { sent, rtt, events, status, st, watched } = await outage({ maxBuffered, batchSize: 200 }, { overflow: 'drop' }, 0, OUTAGE_MS);
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect([...watched.states]).toEqual(['running']);
    expect(watched.maxBuffered).toBeLessThanOrEqual(maxBuffered);
    expect(watched.maxBuffered).toBeGreaterThan(0);
    // Generous: the buffer holds at most 2000 small readings; a leak per reading would pass it.
    expect(watched.maxHeapGrowth).toBeLessThan(64 * 1024 * 1024);
    // More was sent than fits: the rest was counted, and reported in a dropped event.
    expect(sent - 20).toBeGreaterThan(maxBuffered);
    expect(status.dropped.sink).toBeGreaterThan(0);
    expect(events.some((e) => e.state === 'failing')).toBe(true);
    expect(events.some((e) => e.state === 'recovered')).toBe(true);
    expect(st.lost).toBe(0);
    // Every decoded reading is stored or counted dropped; what UDP itself dropped is the transport's count.
    expect(st.committed + status.dropped.sink).toBe(status.readings);
    expect(st.stored.readings).toBe(st.committed);
    const udpDropped = Object.values(status.transports.udp?.dropped ?? {}).reduce((a, b) => a + (b as number), 0);
    expect(status.readings + status.dropped.device + udpDropped).toBeLessThanOrEqual(sent);
  }, 60_000 + OUTAGE_MS * 3);

  it(`the same ${OUTAGE_MS / 1000} s outage with overflow 'wait': the full sink holds the loop, the pressure reaches the intake (UDP: frames over a device's share dropped and counted), every decoded reading written after recovery`, async (ctx) => {
    if (pg === undefined) return ctx.skip();
    const maxBuffered = 2000;
    const { sent, rtt, status, st, watched } = await outage({ maxBuffered, batchSize: 200 }, { overflow: 'wait', deviceQueue: 64 }, 0, OUTAGE_MS);
    expect([...watched.states]).toEqual(['running']);
    expect(watched.maxBuffered).toBeLessThanOrEqual(maxBuffered);
    expect(watched.maxHeapGrowth).toBeLessThan(64 * 1024 * 1024);
    // Held, not dropped: nothing decoded was lost between the server and the database.
    expect(status.dropped.sink).toBe(0);
    expect([st.committed, st.lost]).toEqual([status.readings, 0]);
    const udpDropped = Object.values(status.transports.udp?.dropped ?? {}).reduce((a, b) => a + (b as number), 0);
    expect(status.dropped.device + udpDropped).toBeGreaterThan(0);
    expect(status.readings + status.dropped.device + udpDropped).toBeLessThanOrEqual(sent);
    // Known limit: the control exchange waits behind the held loop of the same transport, so a
    // ping is not answered while the sink is full (answered or not, nothing crashes).
    expect(rtt === -1 || rtt >= 0).toBe(true);
  }, 60_000 + OUTAGE_MS * 3);

  it('past the bound (a small buffer, overflow drop): what did not fit is counted dropped, the rest stored after recovery', async (ctx) => {
    if (pg === undefined) return ctx.skip();
    const { sent, status, st } = await outage({ maxBuffered: 30, batchSize: 10 }, { overflow: 'drop' }, 200);
    expect(status.dropped.sink).toBeGreaterThan(0);
    expect(st.lost).toBe(0);
    // Every reading decoded is stored or counted dropped: none silently gone.
    expect(st.committed + status.dropped.sink).toBe(status.readings);
    expect(status.readings).toBeLessThanOrEqual(sent);
  });
});
