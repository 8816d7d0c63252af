import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { SocketAddress } from 'node:net';
import { Worker } from 'node:worker_threads';
import { until } from '@opensynaptic/config/until';
import { describe, expect, it } from 'vitest';
import { isTransportError } from '../src/index.js';
import { backendInfo, createUdpTransport } from '../src/udp.js';
import { ipv6Text, parseIp } from '../src/udp-native.js';

/** This process's native UDP receive threads, by name (the kernel keeps 15 characters of it). */
const threads = () => readdirSync('/proc/self/task').filter((t) => readFileSync(`/proc/self/task/${t}/comm`, 'utf8').startsWith('opensynaptic-ud')).length;

/** Sends `count` datagrams to `port` from a worker thread (its own event loop: it keeps sending while this one is blocked). */
function flood(port: number, count: number, size = 22): Promise<void> {
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    const s = require('node:dgram').createSocket('udp4');
    let left = workerData.count;
    const f = new Uint8Array(workerData.size);
    for (let i = 0; i < workerData.count; i++) s.send(f, workerData.port, '127.0.0.1', () => { if (--left === 0) { s.close(); parentPort.postMessage('done'); } });
  `;
  const w = new Worker(code, { eval: true, workerData: { port, count, size } });
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
}

const nativeAvailable = backendInfo().nativeAvailable;

describe.skipIf(!nativeAvailable)('udp native backend', () => {
  it('is reported by backendInfo() and taken by default where the addon has it', async () => {
    const info = backendInfo();
    expect(info.package).toBe('@opensynaptic/transport');
    expect(info.nativeAvailable).toBe(true);
    const t = createUdpTransport({ host: '127.0.0.1', port: 0 });
    await t.start();
    try {
      expect(t.backend).toBe(info.backends.udp);
    } finally {
      await t.destroy();
    }
    let error: unknown;
    try {
      createUdpTransport({ backend: 'fast' as never });
    } catch (e) {
      error = e;
    }
    expect(isTransportError(error, 'ERR_TRANSPORT_OPTION')).toBe(true);
    expect((error as { option: string }).option).toBe('backend');
  });

  it('writes peer addresses as node:dgram does (the platform inet_ntop) and parses them back', () => {
    for (const text of ['::1', '::', '::ffff:127.0.0.1', '::1.2.3.4', '1:0:0:1:0:0:0:1', '2001:db8:0:0:1:0:0:1', 'fe80::1:2', '1:2:3:4:5:6:7:8', '0:0:1::', '2001:DB8::FFFF:0:1']) {
      const ip = parseIp(text);
      expect(ip?.family, text).toBe(6);
      expect(ipv6Text(ip!.words), text).toBe(new SocketAddress({ address: text, family: 'ipv6' }).address);
    }
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, words: [0x0a010203] });
    for (const bad of ['localhost', '1.2.3.256', '1::2::3', 'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', ':::']) expect(parseIp(bad), bad).toBeUndefined();
  });

  it("counts the datagrams the kernel dropped while the JS thread was busy: received + dropped = sent", async () => {
    // A small kernel buffer, one batch of one datagram in flight: a blocked JS thread makes the kernel drop.
    const b = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0, recvBufferSize: 16 * 1024, recvBatch: 1, maxQueuedBatches: 1, maxBatchFrames: 1, inbound: { maxFrames: 1 << 16 } });
    await b.start();
    const port = b.address!.port;
    let received = 0;
    void (async () => {
      for await (const _ of b) received++;
    })();
    try {
      const sent = flood(port, 3000);
      // Block this thread while the worker sends.
      const end = Date.now() + 300;
      while (Date.now() < end) {}
      await sent;
      await new Promise((r) => setTimeout(r, 100));
      // The kernel reports its count with the next datagram it delivers.
      await flood(port, 1);
      await until(() => received + b.stats().dropped['queue-full'] >= 3001);
      expect(b.stats().dropped['queue-full']).toBeGreaterThan(0);
      expect(received + b.stats().dropped['queue-full']).toBe(3001);
    } finally {
      await b.destroy();
    }
  });

  it('rides out a blocked JS thread: what arrives meanwhile is gathered into the next batch, not left to the kernel to drop', async () => {
    // 6000 datagrams sent while JS is blocked, into a kernel buffer of a few thousand: gathering
    // up to 4096, against at most one system call's 64. The sender (a worker) starts on a flag
    // this thread sets just before it blocks, so the sends fall inside the block.
    const sender = (port: number, flag: Int32Array): Promise<void> => {
      const code = `
        const { workerData, parentPort } = require('node:worker_threads');
        const s = require('node:dgram').createSocket('udp4');
        const flag = new Int32Array(workerData.flag);
        parentPort.postMessage('ready');
        Atomics.wait(flag, 0, 0);
        let left = 6000;
        const f = new Uint8Array(22);
        for (let i = 0; i < 6000; i++) s.send(f, workerData.port, '127.0.0.1', () => { if (--left === 0) { s.close(); parentPort.postMessage('done'); } });
      `;
      const w = new Worker(code, { eval: true, workerData: { port, flag: flag.buffer } });
      return new Promise((resolve, reject) => {
        w.on('message', (m) => m === 'done' && resolve());
        w.once('error', reject);
      });
    };
    const run = async (maxBatchFrames: number) => {
      const b = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0, recvBufferSize: 256 * 1024, recvBatch: 64, maxQueuedBatches: 1, maxBatchFrames, inbound: { maxFrames: 1 << 16 } });
      await b.start();
      const sizes: number[] = [];
      void (async () => {
        for await (const batch of b.batches({ max: 1 << 16 })) sizes.push(batch.length);
      })();
      try {
        // One datagram first, so that the thread has handed a batch over when JS blocks.
        await flood(b.address!.port, 1);
        await until(() => sizes.length === 1);
        const flag = new Int32Array(new SharedArrayBuffer(4));
        const sent = sender(b.address!.port, flag);
        await new Promise((r) => setTimeout(r, 200)); // the worker is up and waiting on the flag
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
        const end = Date.now() + 400;
        while (Date.now() < end) {}
        await sent;
        await new Promise((r) => setTimeout(r, 100));
        await flood(b.address!.port, 1); // the kernel reports its drop count with the next datagram
        await until(() => sizes.reduce((x, y) => x + y, 0) + b.stats().dropped['queue-full'] >= 6002);
        return { dropped: b.stats().dropped['queue-full'], largest: Math.max(...sizes) };
      } finally {
        await b.destroy();
      }
    };
    const gathered = await run(4096);
    const one = await run(64);
    // Without the gather most are lost; with it, what the kernel buffer cannot hold while the
    // thread is descheduled on a loaded machine at most.
    expect(one.dropped).toBeGreaterThan(1500);
    expect(gathered.dropped).toBeLessThan(one.dropped / 3);
    expect(gathered.largest).toBeGreaterThan(one.largest);
  });

  it('refuses maxBatchFrames outside recvBatch..65536 with a typed error', () => {
    for (const bad of [0, 63, 65_537, 1.5]) expect(() => createUdpTransport({ backend: 'native', recvBatch: 64, maxBatchFrames: bad })).toThrow(expect.objectContaining({ code: 'ERR_TRANSPORT_OPTION', option: 'maxBatchFrames' }));
  });

  it('a flood into a full queue: every datagram queued or counted dropped (queue-full) with one backpressure event, in big batches', async () => {
    const b = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0, recvBufferSize: 4 << 20, recvBatch: 256, inbound: { maxFrames: 64 } });
    await b.start();
    const port = b.address!.port;
    const pressure: boolean[] = [];
    const dropped: number[] = [];
    b.on('backpressure', (e) => pressure.push(e.active));
    b.on('dropped', (e) => {
      if (e.reason === 'queue-full') dropped.push(e.count);
    });
    try {
      // Nobody reads: the queue fills with the first 64, the rest of each batch is dropped.
      await flood(port, 3000);
      await until(() => b.stats().inboundQueued + b.stats().dropped['queue-full'] >= 3000);
      await new Promise((r) => setTimeout(r, 50));
      const s = b.stats();
      expect(s.inboundQueued).toBe(64);
      expect(s.framesIn).toBe(64);
      expect(s.inboundQueued + s.dropped['queue-full']).toBe(3000);
      expect(dropped.reduce((x, y) => x + y, 0)).toBe(s.dropped['queue-full']);
      expect(pressure).toEqual([true]);
    } finally {
      await b.destroy();
    }
  });

  it('destroy while a flood is arriving frees the socket and the receive thread (no crash)', async () => {
    const before = threads();
    const b = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0 });
    await b.start();
    const port = b.address!.port;
    // The thread names itself once it runs.
    await until(() => threads() === before + 1);
    expect(threads()).toBe(before + 1);
    let received = 0;
    void (async () => {
      for await (const _ of b) received++;
    })();
    const sent = flood(port, 20_000);
    await until(() => received > 100);
    await b.destroy();
    await b.destroy();
    expect(threads()).toBe(before);
    await sent;
    // The port is free again.
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', () => resolve());
    });
    again.close();
  });

  it('a run of equal-size frames leaves as one GSO send and arrives as separate datagrams, on a native (GRO) and a node:dgram receiver', async () => {
    const rx = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0, recvBufferSize: 1 << 20 });
    await rx.start();
    const raw = createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
    await new Promise<void>((r) => raw.bind(0, '127.0.0.1', () => r()));
    const rawGot: Uint8Array[] = [];
    raw.on('message', (m) => rawGot.push(new Uint8Array(m)));
    const tx = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0 });
    await tx.start();
    // 150 frames of 50 bytes, then a shorter one: runs of 64 and the last one shorter.
    const frames = Array.from({ length: 151 }, (_, i) => new Uint8Array(i === 150 ? 20 : 50).fill(i & 0xff));
    try {
      for (const to of [{ address: '127.0.0.1', port: rx.address!.port }, { address: '127.0.0.1', port: raw.address().port }]) {
        await Promise.all(frames.map((f) => tx.send(f, to)));
      }
      const got: Uint8Array[] = [];
      const it = rx.frames();
      while (got.length < frames.length) got.push((await it.next()).value!.frame);
      await until(() => rawGot.length >= frames.length);
      for (const received of [got, rawGot]) expect(received.map((f) => [f.byteLength, f[0]])).toEqual(frames.map((f) => [f.byteLength, f[0]]));
    } finally {
      raw.close();
      await Promise.all([tx.destroy(), rx.destroy()]);
    }
  });

  it('sends to a host name (resolved per send, as node:dgram does) and refuses zoned IPv6 destinations with a typed error', async () => {
    const b = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0 });
    await b.start();
    const a = createUdpTransport({ backend: 'native', host: '127.0.0.1', port: 0, remote: { address: 'localhost', port: b.address!.port } });
    await a.start();
    try {
      await a.send(new Uint8Array([5, 6]));
      const m = (await b.frames().next()).value!;
      expect([...m.frame]).toEqual([5, 6]);
      expect(m.peer.port).toBe(a.address!.port);
      const zoned = await a.send(new Uint8Array([1]), { address: 'fe80::1%lo', port: 9 }).catch((e: unknown) => e);
      expect(isTransportError(zoned, 'ERR_TRANSPORT_PEER')).toBe(true);
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });
});
