import { createSocket } from 'node:dgram';
import { until } from '@opensynaptic/config/until';
import { describe, expect, it } from 'vitest';
import { isTransportError } from '../src/index.js';
import { transportConformanceSuite } from '../src/testing.js';
import { backendInfo, createUdpTransport, DEFAULT_UDP_PORT, MAX_UDP4_PAYLOAD, type UdpOptions, udpDriver } from '../src/udp.js';

// Every case on both sockets: node:dgram (ts) and the addon's batched one (native, where the
// addon loads and OPENSYNAPTIC_CORE does not rule it out; said below when it is skipped).
const native = backendInfo();
it.skipIf(native.nativeAvailable)(`the native UDP socket is not tested here: ${native.nativeUnavailable?.message}`, () => undefined);
for (const backend of native.nativeAvailable ? (['ts', 'native'] as const) : (['ts'] as const)) {
  const make = (options: UdpOptions = {}) => createUdpTransport({ backend, ...options });

  const pairOn = (host: string) => async (options: { inbound?: { maxFrames?: number } | undefined }) => {
    // A receive buffer of 4 MiB, as a server would set (the default 208 KiB holds ~250 datagrams).
    const b = make({ host, port: 0, inbound: options.inbound, recvBufferSize: 4 << 20 });
    await b.start();
    const a = make({ host, port: 0, remote: { address: host, port: b.address!.port }, inbound: options.inbound });
    await a.start();
    return { a, b };
  };

  transportConformanceSuite({ describe, it }, { name: `udp ${backend} (IPv4)`, pair: pairOn('127.0.0.1') });
  transportConformanceSuite({ describe, it }, { name: `udp ${backend} (IPv6)`, pair: pairOn('::1'), burst: 2000, flood: 5000 });

  describe(`udp (${backend})`, () => {
    it(`runs on the ${backend} socket`, async () => {
      const t = make({ host: '127.0.0.1', port: 0 });
      await t.start();
      try {
        expect(t.backend).toBe(backend);
      } finally {
        await t.destroy();
      }
    });

    it('defaults to the reference port 8080 and the largest IPv4 payload', () => {
      const t = make();
      expect(t.maxFrameBytes).toBe(MAX_UDP4_PAYLOAD);
      expect(DEFAULT_UDP_PORT).toBe(8080);
      expect(udpDriver.name).toBe('udp');
    });

    it('serves many peers from one socket and replies to each', async () => {
      const server = make({ host: '127.0.0.1', port: 0 });
      await server.start();
      const port = server.address!.port;
      const clients = await Promise.all(
        Array.from({ length: 5 }, async () => {
          const c = make({ host: '127.0.0.1', port: 0, remote: { address: '127.0.0.1', port } });
          await c.start();
          return c;
        }),
      );
      try {
        await Promise.all(clients.map((c, i) => c.send(new Uint8Array([i + 1]))));
        const it = server.frames();
        const seen = new Set<string>();
        for (let i = 0; i < clients.length; i++) {
          const m = (await it.next()).value!;
          seen.add(m.peer.key);
          await server.send(new Uint8Array([m.frame[0]! + 100]), m.peer);
        }
        expect(seen.size).toBe(5);
        for (let i = 0; i < clients.length; i++) {
          const reply = (await clients[i]!.frames().next()).value!;
          expect(reply.frame[0]).toBe(i + 101);
          expect(reply.peer.port).toBe(port);
        }
      } finally {
        await Promise.all([server.destroy(), ...clients.map((c) => c.destroy())]);
      }
    });

    it('receiveInto hands each datagram to the handler instead of the queue; one handler at a time; its off goes back to queueing', async () => {
      const b = make({ host: '127.0.0.1', port: 0 });
      await b.start();
      const a = make({ host: '127.0.0.1', port: 0, remote: { address: '127.0.0.1', port: b.address!.port } });
      await a.start();
      try {
        const got: number[] = [];
        const off = b.receiveInto((inbound) => got.push(inbound.frame[0]!));
        expect(() => b.receiveInto(() => undefined)).toThrow(expect.objectContaining({ code: 'ERR_TRANSPORT_STATE' }));
        expect(() => (b as unknown as { receiveInto(h: unknown): void }).receiveInto('no')).toThrow(expect.objectContaining({ code: 'ERR_TRANSPORT_OPTION' }));
        for (let i = 1; i <= 3; i++) await a.send(new Uint8Array([i]));
        await until(() => got.length === 3, "3 datagrams handed over");
        expect(got).toEqual([1, 2, 3]);
        expect(b.stats()).toMatchObject({ framesIn: 3, inboundQueued: 0 });
        // A throwing handler is reported as an error event; the transport keeps receiving.
        off();
        const errors: unknown[] = [];
        b.on('error', (e) => errors.push(e.error));
        const off2 = b.receiveInto(() => {
          throw new Error('handler bug');
        });
        await a.send(new Uint8Array([4]));
        await until(() => errors.length === 1, "the error event");
        expect(errors[0]).toMatchObject({ code: 'ERR_TRANSPORT_IO' });
        off2();
        await a.send(new Uint8Array([5]));
        const next = await b.frames().next();
        expect(next.value!.frame[0]).toBe(5);
        expect(got).toEqual([1, 2, 3]);
      } finally {
        await Promise.all([a.destroy(), b.destroy()]);
      }
    });

    it('hands the datagram bytes over as a plain Uint8Array view (no copy, no Buffer)', async () => {
      const b = make({ host: '127.0.0.1', port: 0 });
      await b.start();
      const raw = createSocket('udp4');
      try {
        raw.send(new Uint8Array([1, 2, 3, 4]), b.address!.port, '127.0.0.1');
        const m = (await b.frames().next()).value!;
        expect(Object.getPrototypeOf(m.frame)).toBe(Uint8Array.prototype);
        expect([...m.frame]).toEqual([1, 2, 3, 4]);
        // The view is the datagram's own memory: nothing was copied for it.
        expect(m.frame.buffer.byteLength).toBeLessThan(64);
      } finally {
        raw.close();
        await b.destroy();
      }
    });

    it('drops received datagrams over maxFrameBytes (counted and reported), keeps serving', async () => {
      const b = make({ host: '127.0.0.1', port: 0, maxFrameBytes: 100 });
      const dropped: string[] = [];
      b.on('dropped', (e) => dropped.push(`${e.reason}:${e.count}`));
      await b.start();
      const raw = createSocket('udp4');
      try {
        raw.send(new Uint8Array(101), b.address!.port, '127.0.0.1');
        raw.send(new Uint8Array([7]), b.address!.port, '127.0.0.1');
        const m = (await b.frames().next()).value!;
        expect([...m.frame]).toEqual([7]);
        expect(b.stats().dropped.oversize).toBe(1);
        await new Promise((r) => setTimeout(r, 20));
        expect(dropped).toEqual(['oversize:1']);
      } finally {
        raw.close();
        await b.destroy();
      }
    });

    it('refuses bad destinations and options with typed errors naming the field', async () => {
      const t = make({ host: '127.0.0.1', port: 0 });
      await t.start();
      try {
        const noDest = await t.send(new Uint8Array([1])).catch((e: unknown) => e);
        expect(isTransportError(noDest, 'ERR_TRANSPORT_PEER')).toBe(true);
        const badPort = await t.send(new Uint8Array([1]), { address: '127.0.0.1', port: 70000 }).catch((e: unknown) => e);
        expect(isTransportError(badPort, 'ERR_TRANSPORT_PEER')).toBe(true);
        expect((badPort as Error).message).toMatch(/port/);
      } finally {
        await t.destroy();
      }
      for (const [options, field] of [
        [{ port: -1 }, 'port'],
        [{ port: 1.5 }, 'port'],
        [{ type: 'udp5' }, 'type'],
        [{ maxFrameBytes: 70_000 }, 'maxFrameBytes'],
        [{ remote: { address: '' } }, 'remote.address'],
        [{ inbound: { maxFrames: 0 } }, 'inbound.maxFrames'],
      ] as const) {
        let error: unknown;
        try {
          make(options as never);
        } catch (e) {
          error = e;
        }
        expect(isTransportError(error, 'ERR_TRANSPORT_OPTION'), JSON.stringify(options)).toBe(true);
        expect((error as { option: string }).option).toBe(field);
      }
    });

    it('reports a port in use as ERR_TRANSPORT_IO from start() and ends stopped', async () => {
      const a = make({ host: '127.0.0.1', port: 0 });
      await a.start();
      const b = make({ host: '127.0.0.1', port: a.address!.port });
      try {
        const e = await b.start().catch((x: unknown) => x);
        expect(isTransportError(e, 'ERR_TRANSPORT_IO')).toBe(true);
        expect((e as { errno?: string }).errno).toBe('EADDRINUSE');
        expect(b.state).toBe('stopped');
      } finally {
        await Promise.all([a.destroy(), b.destroy()]);
      }
    });
  });
}
