import { startPostgres } from '@opensynaptic/config/postgres';
import { openPostgresReadingsSink } from '@opensynaptic/store-postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../src/config.js';
import { ensureId } from '../src/device.js';
import { isOpenSynapticError } from '../src/index.js';
import { serverFromConfig } from '../src/from-config.js';
import type { OpenSynapticServer } from '../src/server.js';
import { device, portOf, tick, until } from './helpers.js';

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
});
