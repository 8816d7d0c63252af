import { OpenSynaptic } from '@opensynaptic/core';
import { MemoryReadingsSink } from '@opensynaptic/store';
import { createTransport } from '@opensynaptic/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureId, linkNode } from '../src/device.js';
import { OpenSynapticServer, type ServerReading } from '../src/server.js';
import { portOf, tick, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

describe('OpenSynapticServer over TCP streaming', () => {
  it('answers each device on its own connection; every reading arrives once, in order', async () => {
    const sink = new MemoryReadingsSink();
    const server = new OpenSynapticServer({ transports: [{ name: 'tcp', medium: 'tcp', options: { listen: { host: '127.0.0.1', port: 0 } } }], sinks: [sink] });
    cleanup.push(() => server.destroy());
    await server.start();
    const port = portOf(server.transport('tcp') as never);
    const seen: ServerReading[] = [];
    void (async () => {
      for await (const r of server.readings()) seen.push(r);
    })();
    const nodes: OpenSynaptic[] = [];
    for (let i = 0; i < 3; i++) {
      const t = await createTransport('tcp', { connect: { host: '127.0.0.1', port } });
      await t.start();
      cleanup.push(() => t.destroy());
      const node = new OpenSynaptic({ deviceId: `TCP_${i}` });
      linkNode(node, t);
      await ensureId(node, { timeoutMs: 1000 });
      nodes.push(node);
      for (let k = 0; k < 30; k++) {
        await t.send(node.transmit([['T1', 'OK', k, 'Cel']], { t: 1.7e12 + k * 1000 }).frame);
        await tick(1); // lets the session answer come back
      }
    }
    await until(() => seen.length === 90, 'every reading');
    for (const node of nodes) {
      const mine = seen.filter((r) => r.aid === node.assignedId);
      expect(mine.map((r) => r.timestampMs)).toEqual(Array.from({ length: 30 }, (_, k) => 1.7e12 + k * 1000));
      expect(mine.some((r) => r.secure)).toBe(true);
    }
    await tick(1);
    await server.stop();
    expect((await server.status()).services.storage).toMatchObject({ committed: 90, lost: 0 });
  });
});
