import { OpenSynaptic } from '@opensynaptic/core';
import { createInProcessPair, type Inbound, type Transport } from '@opensynaptic/transport';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReadingFrame } from '@opensynaptic/store';
import { OpenSynapticServer } from '../src/server.js';
import { until } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
});

/** A device's FULL and then `n` DIFFs, as its node makes them. */
function frames(aid: number, n: number): Uint8Array[] {
  const node = new OpenSynaptic({ assignedId: aid, deviceId: `BATCH${aid}` });
  const out: Uint8Array[] = [];
  for (let i = 0; out.length < n + 1; i++) out.push(node.transmit([['T', 'OK', 20 + i / 10, 'Cel']], { t: 1_700_000_000_000 + i * 1000 }).frame);
  return out;
}

/** Counts how the server reads `t`: batches and frames per batch, and frames read one by one. */
function counted(t: Transport): { batches: number; batched: number; single: number } {
  const c = { batches: 0, batched: 0, single: 0 };
  const batches = t.batches.bind(t);
  t.batches = (options) => {
    const it = batches(options);
    const next = it.next.bind(it);
    it.next = async () => {
      const r = await next();
      if (r.done !== true) {
        c.batches++;
        c.batched += r.value.length;
      }
      return r;
    };
    return it;
  };
  const frames = t.frames.bind(t);
  const single = () => {
    const it = frames();
    const next = it.next.bind(it);
    it.next = async () => {
      const r = await next();
      if (r.done !== true) c.single++;
      return r;
    };
    return it;
  };
  t.frames = single;
  (t as unknown as { [Symbol.asyncIterator]: () => AsyncIterator<Inbound> })[Symbol.asyncIterator] = single;
  return c;
}

async function serve(transport: Transport, peer: Transport): Promise<{ server: OpenSynapticServer; seen: ReadingFrame[] }> {
  const seen: ReadingFrame[] = [];
  const server = new OpenSynapticServer({ transports: [{ name: 'inprocess', transport }], sweepIntervalMs: 0, services: [{ name: 'seen', onReading: (r) => seen.push(r) }] });
  cleanup.push(() => server.destroy(), () => peer.destroy());
  await peer.start();
  await server.start();
  return { server, seen };
}

describe('server intake', () => {
  it('takes a burst off its transport in batches, not one read per frame, and decodes every frame in order', async () => {
    const [a, b] = createInProcessPair();
    const c = counted(b);
    const { seen } = await serve(b, a);
    const burst = [...frames(4001, 300), ...frames(4002, 300)];
    await Promise.all(burst.map((f) => a.send(f)));
    await until(() => seen.length >= burst.length, `${burst.length} readings (got ${seen.length})`);
    expect(seen.length).toBe(burst.length);
    for (const aid of [4001, 4002]) {
      const times = seen.filter((r) => r.aid === aid).map((r) => r.timestampMs);
      expect(times.length).toBe(301);
      expect(times).toEqual([...times].sort((x, y) => x - y));
    }
    expect(c.batched + c.single).toBe(burst.length);
    // Read in batches: far fewer reads than frames.
    expect(c.batches + c.single).toBeLessThan(burst.length / 4);
  });

  it('serves a transport that has only the per-frame iterator (a third-party driver)', async () => {
    const [a, b] = createInProcessPair();
    const bare = new Proxy(b, {
      get(t, k) {
        if (k === 'batches') return undefined;
        const v = Reflect.get(t, k, t);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    const { seen } = await serve(bare, a);
    const burst = frames(4003, 50);
    await Promise.all(burst.map((f) => a.send(f)));
    await until(() => seen.length >= burst.length, `${burst.length} readings (got ${seen.length})`);
    expect(seen.map((r) => r.timestampMs)).toEqual(burst.map((_, i) => 1_700_000_000_000 + i * 1000));
  });
});
