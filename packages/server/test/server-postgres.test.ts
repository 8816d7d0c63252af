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

  async function outage(sinkOptions: object, serverOptions: object, during: number) {
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
    try {
      await send(during);
      await until(() => events.some((e) => e.state === 'failing'), 'a storage failing event');
      await until(() => failedCommits > 0, 'a commit attempted while the database is down');
      // Control traffic is still answered while the database is down.
      rtt = await d.node.ping({ timeoutMs: 2000 });
    } finally {
      pg!.startServer();
    }
    await until(() => events.some((e) => e.state === 'recovered'), 'a storage recovered event', 30_000);
    await until(async () => (await sink.status()).buffered === 0, 'the buffer written', 30_000);
    const status = await server.status();
    const st = await sink.status();
    await server.stop();
    return { sent, rtt, events, status, st, schema };
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
