import { open } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { cobsEncode, isTransportError, lrc8, stxEtxLrcEncode, type TransportEvent } from '../src/index.js';
import { createSerialTransport, DEFAULT_BAUD_RATE, type SerialOptions } from '../src/serial.js';
import { transportConformanceSuite } from '../src/testing.js';
import { PtyPair } from './helpers/socat.js';

/** Two serial transports on the two ends of a socat pty pair (a null-modem cable in software). */
const serialPair = (extra: Partial<SerialOptions>) => async ({ inbound }: { inbound?: { maxFrames?: number | undefined } | undefined }) => {
  const pty = await PtyPair.start();
  const a = createSerialTransport({ path: pty.a, inbound, ...extra });
  const b = createSerialTransport({ path: pty.b, inbound, ...extra });
  await Promise.all([a.start(), b.start()]);
  return { a, b, close: () => pty.close() };
};

transportConformanceSuite({ describe, it }, {
  name: 'serial, COBS framing (socat pty pair)',
  pair: serialPair({ framing: 'cobs' }),
  pausable: true,
  burst: 5000,
  flood: 5000,
});

transportConformanceSuite({ describe, it }, {
  name: 'serial, STX/ETX framing, the reference listener\'s (socat pty pair)',
  pair: serialPair({ framing: 'stx-etx' }),
  forbiddenBytes: [0x03],
  pausable: true,
  burst: 5000,
  flood: 5000,
});

describe('serial', () => {
  it('SLIP framing round trip, 115200 baud by default', async () => {
    const p = await serialPair({ framing: 'slip' })({});
    try {
      await p.a.send(new Uint8Array([0xc0, 0xdb, 0, 3, 2]));
      expect([...(await p.b.frames().next()).value!.frame]).toEqual([0xc0, 0xdb, 0, 3, 2]);
      expect(DEFAULT_BAUD_RATE).toBe(115_200);
    } finally {
      await Promise.all([p.a.destroy(), p.b.destroy()]);
      await p.close();
    }
  });

  for (const framing of ['cobs', 'stx-etx'] as const) {
    it(`${framing}: a line of noise with no delimiter is bounded, dropped and reported; the next frame still arrives`, async () => {
      const pty = await PtyPair.start();
      const t = createSerialTransport({ path: pty.b, framing, maxFrameBytes: 256 });
      const dropped: TransportEvent<'dropped'>[] = [];
      t.on('dropped', (e) => dropped.push(e));
      await t.start();
      // Written asynchronously: a blocking write to a full pty would stall the reader in this process.
      const fh = await open(pty.a, 'w');
      try {
        const noise = new Uint8Array(100_000).fill(0x41);
        for (let at = 0; at < noise.length; at += 4096) await fh.write(noise.subarray(at, at + 4096));
        // Then a real frame (COBS: its leading delimiter ends the noise; STX/ETX: its STX).
        await fh.write(framing === 'cobs' ? cobsEncode(new Uint8Array([7, 0, 7])) : new Uint8Array([2, 7, 0, 7, 3]));
        const m = (await t.frames().next()).value!;
        expect([...m.frame]).toEqual([7, 0, 7]);
        const s = t.stats();
        expect(s.framesIn).toBe(1);
        // Every byte of noise is counted as dropped; none was kept past the frame limit.
        expect(s.dropped.noise).toBe(100_000);
        expect(s.inboundQueuedBytes).toBe(0);
        await new Promise((r) => setTimeout(r, 20));
        expect(dropped.length).toBeGreaterThan(0);
        expect(process.memoryUsage().arrayBuffers).toBeLessThan(512 << 20);
      } finally {
        await fh.close();
        await t.destroy();
        await pty.close();
      }
    });
  }

  it('STX/ETX refuses to send a frame holding 0x03 (ERR_TRANSPORT_FRAME), COBS carries it', async () => {
    const p = await serialPair({ framing: 'stx-etx' })({});
    try {
      const e = await p.a.send(new Uint8Array([1, 3, 1])).catch((x: unknown) => x);
      expect(isTransportError(e, 'ERR_TRANSPORT_FRAME')).toBe(true);
      await p.a.send(new Uint8Array([1, 2, 1]));
      expect([...(await p.b.frames().next()).value!.frame]).toEqual([1, 2, 1]);
    } finally {
      await Promise.all([p.a.destroy(), p.b.destroy()]);
      await p.close();
    }
  });

  it('STX/ETX with LRC (the reference RS-485 driver\'s): the LRC byte is added and checked; a bad one is dropped as a protocol error; a frame or LRC of 0x03 is refused', async () => {
    const pty = await PtyPair.start();
    const t = createSerialTransport({ path: pty.b, framing: 'stx-etx-lrc' });
    const tx = createSerialTransport({ path: pty.a, framing: 'stx-etx-lrc' });
    const dropped: TransportEvent<'dropped'>[] = [];
    t.on('dropped', (e) => dropped.push(e));
    await Promise.all([t.start(), tx.start()]);
    try {
      // Through our own sender: 02 <frame> <sum mod 256> 03, an STX and a 0 inside as data.
      expect([...stxEtxLrcEncode(new Uint8Array([0x3f, 2, 0, 0xff]))]).toEqual([2, 0x3f, 2, 0, 0xff, (0x3f + 2 + 0xff) & 0xff, 3]);
      await tx.send(new Uint8Array([0x3f, 2, 0, 0xff]));
      const inbound = t.frames();
      expect([...(await inbound.next()).value!.frame]).toEqual([0x3f, 2, 0, 0xff]);
      // Written raw: a frame with a wrong LRC, then a good one.
      const fh = await open(pty.a, 'w');
      try {
        await fh.write(new Uint8Array([2, 7, 8, 99, 3, 2, 7, 8, 15, 3]));
      } finally {
        await fh.close();
      }
      expect([...(await inbound.next()).value!.frame]).toEqual([7, 8]);
      expect(t.stats().dropped.protocol).toBe(1);
      await new Promise((r) => setTimeout(r, 20)); // drop events are coalesced
      expect(dropped.some((e) => e.reason === 'protocol')).toBe(true);
      for (const bad of [new Uint8Array([1, 3, 1]), new Uint8Array([1, 2])]) {
        const e = await tx.send(bad).catch((x: unknown) => x);
        expect(isTransportError(e, 'ERR_TRANSPORT_FRAME'), String([...bad])).toBe(true);
      }
      expect(lrc8(new Uint8Array([1, 2]))).toBe(3);
    } finally {
      await Promise.all([t.destroy(), tx.destroy()]);
      await pty.close();
    }
  });

  it('a device that is not there: start() rejects with ERR_TRANSPORT_IO; bad options name the field', async () => {
    const t = createSerialTransport({ path: '/dev/does-not-exist-os' });
    const e = await t.start().catch((x: unknown) => x);
    expect(isTransportError(e, 'ERR_TRANSPORT_IO')).toBe(true);
    expect(t.state).toBe('stopped');
    for (const [options, field] of [
      [{}, 'path'],
      [{ path: '/dev/x', framing: 'hdlc' }, 'framing'],
      [{ path: '/dev/x', baudRate: 0 }, 'baudRate'],
      [{ path: '/dev/x', parity: 'maybe' }, 'parity'],
    ] as const) {
      let error: unknown;
      try {
        createSerialTransport(options as never);
      } catch (x) {
        error = x;
      }
      expect(isTransportError(error, 'ERR_TRANSPORT_OPTION'), JSON.stringify(options)).toBe(true);
      expect((error as { option: string }).option).toBe(field);
    }
  });
});
