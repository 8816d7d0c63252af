import { MemoryReadingsSink, MemoryStore } from '@opensynaptic/store';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureId } from '../src/device.js';
import { OpenSynapticServer } from '../src/server.js';
import { device, portOf, tick, udp, until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

describe('a persistent template store behind a small registry cache', () => {
  it('the first DIFF of a device whose templates left the cache decodes (the server loads them before decoding)', async () => {
    const transport = await udp();
    const sink = new MemoryReadingsSink();
    const templates = new MemoryStore({ kinds: ['templates'] });
    const server = new OpenSynapticServer({
      transports: [{ name: 'udp', transport }],
      store: new MemoryStore({ kinds: ['leases', 'sessions'] }),
      // One registry in memory: the second device's FULL evicts the first one's (saved to the store).
      node: { fusion: { registry: { store: templates, maxEntries: 1 } } },
      sinks: [sink],
    });
    cleanup.push(() => server.destroy());
    await server.start();
    const port = portOf(transport);
    const a = await device('TPL_A', port);
    const b = await device('TPL_B', port);
    cleanup.push(() => a.transport.destroy(), () => b.transport.destroy());
    await ensureId(a.node, { timeoutMs: 1000 });
    await ensureId(b.node, { timeoutMs: 1000 });
    const t0 = 1.7e12;
    const send = async (d: typeof a, value: number, t: number) => {
      const out = d.node.transmit([['T1', 'OK', value, 'Cel']], { t });
      await d.transport.send(out.frame);
      return out.kind;
    };
    expect(await send(a, 1, t0)).toBe('FULL');
    await until(async () => (await server.status()).readings === 1, 'the FULL of A');
    expect(await send(b, 1, t0)).toBe('FULL');
    await until(async () => (await server.status()).readings === 2, 'the FULL of B');
    expect(server.node.fusion.registry.peek(a.node.assignedId)).toBeNull();
    expect(await send(a, 2, t0 + 1000)).toBe('DIFF');
    await until(async () => {
      const s = await server.status();
      return s.readings + Object.values(s.errors).reduce((x, y) => x + y, 0) >= 3;
    }, 'the DIFF of A decoded or refused');
    await tick(5);
    const status = await server.status();
    expect(status.errors).toEqual({});
    expect(status.readings).toBe(3);
  });
});
