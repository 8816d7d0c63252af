import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  cobsDecode,
  cobsEncode,
  CobsDecoder,
  createInProcessPair,
  DEFAULT_MAX_RETRIES,
  DEFAULT_RETRY_INTERVAL_MS,
  type DecoderSink,
  DispatchError,
  DriverRegistry,
  drivers,
  encodeLengthPrefixed,
  FrameQueue,
  isOpenSynapticError,
  isTransportError,
  LengthPrefixDecoder,
  mediumKey,
  type PeerLike,
  SlipDecoder,
  slipEncode,
  StxEtxDecoder,
  stxEtxEncode,
  TransportBase,
  TransportError,
  TransporterManager,
  TransportIoError,
} from '../src/index.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A transport whose sends follow a script: 'ok', 'fail' (an I/O error), or 'hang' (never settles). */
class ScriptedTransport extends TransportBase {
  readonly reliable = true;
  readonly sent: Uint8Array[] = [];
  constructor(
    medium: string,
    private readonly script: () => 'ok' | 'fail' | 'hang',
    maxFrameBytes = 1000,
  ) {
    super(medium, maxFrameBytes);
  }
  protected async open(): Promise<void> {}
  protected write(frame: Uint8Array, _to: PeerLike | undefined, signal: AbortSignal | undefined): Promise<void> {
    const step = this.script();
    if (step === 'ok') {
      this.sent.push(frame);
      return Promise.resolve();
    }
    if (step === 'fail') return Promise.reject(new TransportIoError('scripted failure', new Error('boom'), { medium: this.medium }));
    return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
  }
  protected async close(): Promise<void> {}
  /** Feeds a received frame, as a driver does. */
  receive(frame: Uint8Array): boolean {
    return this.deliver(frame, { medium: this.medium, key: `${this.medium}:x` });
  }
}

const item = (n: number) => ({ frame: new Uint8Array(n) });

describe('FrameQueue', () => {
  it('refuses past its frame and byte limits, signals pressure once, and releases at half', () => {
    const events: boolean[] = [];
    const q = new FrameQueue({ maxFrames: 4, maxBytes: 1000 }, (active) => events.push(active));
    for (let i = 0; i < 4; i++) expect(q.push(item(1))).toBe(true);
    expect(q.push(item(1))).toBe(false);
    expect(q.push(item(1))).toBe(false);
    expect(events).toEqual([true]);
    q.shift();
    expect(events).toEqual([true]);
    q.shift();
    expect(events).toEqual([true, false]);
    const bytes = new FrameQueue({ maxFrames: 100, maxBytes: 10 });
    expect(bytes.push(item(8))).toBe(true);
    expect(bytes.push(item(3))).toBe(false);
    expect(bytes.length).toBe(1);
  });

  it('hands items to a waiting reader, ends after the queued ones, and is not ended by a loop that breaks', async () => {
    const q = new FrameQueue<{ frame: Uint8Array; n: number }>({});
    const waiting = q.next();
    q.push({ frame: new Uint8Array(1), n: 1 });
    expect((await waiting).value?.n).toBe(1);
    q.push({ frame: new Uint8Array(1), n: 2 });
    q.push({ frame: new Uint8Array(1), n: 3 });
    for await (const x of q) {
      expect(x.n).toBe(2);
      break;
    }
    q.end();
    expect(q.push({ frame: new Uint8Array(1), n: 4 })).toBe(false);
    expect((await q.next()).value?.n).toBe(3);
    expect((await q.next()).done).toBe(true);
  });

  it('gives a waiting batch reader every item its producer queued in one synchronous run, in batches of at most max, with the pressure released once taken', async () => {
    const events: boolean[] = [];
    const q = new FrameQueue<{ frame: Uint8Array; n: number }>({ maxFrames: 8 }, (active) => events.push(active));
    const waiting = q.nextBatch(5);
    // A native UDP batch: the driver queues its datagrams one after the other in one call.
    for (let n = 0; n < 8; n++) expect(q.pushForce({ frame: new Uint8Array(1), n })).toBe(true);
    expect(events).toEqual([true]);
    const first = await waiting;
    expect(first.value?.map((x: { n: number }) => x.n)).toEqual([0, 1, 2, 3, 4]);
    // Taking the batch brought the queue under half: the medium may read again.
    expect(events).toEqual([true, false]);
    expect(q.length).toBe(3);
    expect((await q.nextBatch(5)).value?.map((x: { n: number }) => x.n)).toEqual([5, 6, 7]);
    expect(q.bytes).toBe(0);
    const pending = q.nextBatch(5);
    q.end();
    expect((await pending).done).toBe(true);
  });

  it('keeps its memory bounded over a long stream (the consumed prefix is compacted)', () => {
    const q = new FrameQueue({ maxFrames: 10 });
    for (let i = 0; i < 100_000; i++) {
      q.push(item(1));
      q.shift();
    }
    expect(q.length).toBe(0);
    expect(q.bytes).toBe(0);
  });

  it('refuses bad limits with ERR_TRANSPORT_OPTION naming the limit', () => {
    for (const bad of [0, -1, 1.5, '10', Number.NaN]) {
      let e: unknown;
      try {
        new FrameQueue({ maxFrames: bad as number });
      } catch (x) {
        e = x;
      }
      expect(isTransportError(e, 'ERR_TRANSPORT_OPTION')).toBe(true);
      expect((e as { option: string }).option).toBe('inbound.maxFrames');
    }
  });
});

describe('errors', () => {
  it('are branded OpenSynaptic errors with ERR_TRANSPORT_ codes, told apart by isTransportError', () => {
    const e = new TransportIoError('socket failed', Object.assign(new Error('x'), { code: 'ECONNRESET' }), { medium: 'tcp', peer: 'tcp:1.2.3.4:5' });
    expect(e).toBeInstanceOf(TransportError);
    expect(isOpenSynapticError(e, 'ERR_TRANSPORT_IO')).toBe(true);
    expect(isTransportError(e)).toBe(true);
    expect(isTransportError(e, 'ERR_TRANSPORT_PEER')).toBe(false);
    expect(e.message).toBe('tcp tcp:1.2.3.4:5: socket failed (ECONNRESET)');
    expect(e.errno).toBe('ECONNRESET');
    expect(isTransportError(Object.assign(new Error('x'), { code: 'ERR_TRANSPORT_IO' }))).toBe(false);
    expect(isTransportError({ code: 'ERR_TRANSPORT_IO', name: 'TransportIoError' })).toBe(false);
  });
});

describe('transport base (through a scripted driver and the in-process pair)', () => {
  it('emits typed state events through the lifecycle and refuses out-of-order calls', async () => {
    const t = new ScriptedTransport('fake', () => 'ok');
    const states: string[] = [];
    t.on('state', (e) => states.push(`${e.from}>${e.to}`));
    expect(isTransportError(await t.send(new Uint8Array([1])).catch((e: unknown) => e), 'ERR_TRANSPORT_STATE')).toBe(true);
    await t.start();
    expect(isTransportError(await t.start().catch((e: unknown) => e), 'ERR_TRANSPORT_STATE')).toBe(true);
    await t.stop();
    await t.destroy();
    expect(states).toEqual(['created>starting', 'starting>running', 'running>stopping', 'stopping>stopped', 'stopped>destroyed']);
    expect(isTransportError(await t.start().catch((e: unknown) => e), 'ERR_TRANSPORT_CLOSED')).toBe(true);
  });

  it('bounds pending sends (maxPendingSends): the next is refused with ERR_TRANSPORT_QUEUE_FULL and backpressure reported', async () => {
    const bounded = new (class extends TransportBase {
      readonly reliable = true;
      constructor() {
        super('bounded', 100, { maxPendingSends: 3 });
      }
      protected async open() {}
      protected write() {
        return new Promise<void>(() => undefined);
      }
      protected async close() {}
    })();
    const seen: boolean[] = [];
    bounded.on('backpressure', (e) => seen.push(e.active && e.direction === 'outbound'));
    await bounded.start();
    for (let i = 0; i < 3; i++) void bounded.send(new Uint8Array([i])).catch(() => undefined);
    const refused = await bounded.send(new Uint8Array([9])).catch((e: unknown) => e);
    expect(isTransportError(refused, 'ERR_TRANSPORT_QUEUE_FULL')).toBe(true);
    expect(seen).toEqual([true]);
    expect(bounded.stats().pendingSends).toBe(3);
    await bounded.destroy();
  });

  it('drops on a full queue for an unpausable medium, counts it and reports one coalesced event', async () => {
    const q = new (class extends TransportBase {
      readonly reliable = false;
      constructor() {
        super('lossy', 100, { inbound: { maxFrames: 2 } });
      }
      protected async open() {}
      protected async write() {}
      protected async close() {}
      feed(n: number) {
        for (let i = 0; i < n; i++) this.deliver(new Uint8Array([i]), { medium: 'lossy', key: 'lossy:p' });
      }
    })();
    const dropped: { reason: string; count: number }[] = [];
    q.on('dropped', (e) => dropped.push({ reason: e.reason, count: e.count }));
    await q.start();
    q.feed(10);
    await new Promise((r) => setTimeout(r, 10));
    expect(q.stats().inboundQueued).toBe(2);
    expect(q.stats().dropped['queue-full']).toBe(8);
    expect(dropped).toEqual([{ reason: 'queue-full', count: 8 }]);
    await q.destroy();
    expect(q.stats().dropped.destroyed).toBe(2);
  });

  it('receivedAt comes from the now option (milliseconds), Date.now by default', async () => {
    const [a, b] = createInProcessPair({ now: () => 1_700_000_000_123 });
    await Promise.all([a.start(), b.start()]);
    await a.send(new Uint8Array([1]));
    expect((await b.frames().next()).value!.receivedAt).toBe(1_700_000_000_123);
    await Promise.all([a.destroy(), b.destroy()]);
  });

  it('in-process: the receiver gets a copy unless copy: false, and an aborted waiting send is withdrawn', async () => {
    const [a, b] = createInProcessPair({ inbound: { maxFrames: 1 } });
    await Promise.all([a.start(), b.start()]);
    const f = new Uint8Array([1, 2]);
    await a.send(f);
    f[0] = 9;
    const ac = new AbortController();
    const blocked = a.send(new Uint8Array([3]), undefined, { signal: ac.signal });
    ac.abort(new Error('enough'));
    expect(isTransportError(await blocked.catch((e: unknown) => e), 'ERR_TRANSPORT_ABORTED')).toBe(true);
    const it = b.frames();
    expect([...(await it.next()).value!.frame]).toEqual([1, 2]);
    await a.send(new Uint8Array([4]));
    expect([...(await it.next()).value!.frame]).toEqual([4]);
    await Promise.all([a.destroy(), b.destroy()]);
    const [c, d] = createInProcessPair({ copy: false });
    await Promise.all([c.start(), d.start()]);
    const g = new Uint8Array([5]);
    await c.send(g);
    expect((await d.frames().next()).value!.frame).toBe(g);
    await Promise.all([c.destroy(), d.destroy()]);
  });
});

describe('driver registry', () => {
  it('keys drivers by trimmed lower-case name, as the reference keys its transporters', async () => {
    expect(mediumKey(' UDP ')).toBe('udp');
    expect(drivers.names()).toEqual(['mqtt', 'rs485', 'serial', 'tcp', 'uart', 'udp', 'unix', 'websocket', 'ws']);
    const r = new DriverRegistry();
    const made: object[] = [];
    r.register('Fake', {
      name: 'fake',
      create: (o) => {
        made.push(o);
        return new ScriptedTransport('fake', () => 'ok');
      },
    });
    const t = await r.create('FAKE', { a: 1 });
    expect(t.medium).toBe('fake');
    expect(made).toEqual([{ a: 1 }]);
    for (const bad of ['', 'a b', 'x'.repeat(65), 42]) {
      expect(() => mediumKey(bad)).toThrow(/driver name/);
    }
    const unknown = await r.create('carrier-pigeon').catch((e: unknown) => e);
    expect(isTransportError(unknown, 'ERR_TRANSPORT_DRIVER')).toBe(true);
    expect((unknown as Error).message).toMatch(/registered: fake/);
  });

  it('loads a driver only when first used, once, and tries a failed loader again', async () => {
    const r = new DriverRegistry();
    let loads = 0;
    r.register('lazy', async () => {
      loads++;
      if (loads === 1) throw new Error('not installed');
      return { name: 'lazy', create: () => new ScriptedTransport('lazy', () => 'ok') };
    });
    expect(loads).toBe(0);
    expect(r.isLoaded('lazy')).toBe(false);
    const first = await r.load('lazy').catch((e: unknown) => e);
    expect(isTransportError(first, 'ERR_TRANSPORT_DRIVER')).toBe(true);
    expect((first as Error).cause).toBeInstanceOf(Error);
    await r.load('lazy');
    await r.load('LAZY');
    expect(loads).toBe(2);
    expect(r.isLoaded('lazy')).toBe(true);
  });
});

describe('TransporterManager', () => {
  it('dispatches by priority: the first medium that takes the frame wins', async () => {
    const fails = new ScriptedTransport('mqtt', () => 'fail');
    const works = new ScriptedTransport('udp', () => 'ok');
    const m = new TransporterManager({ transports: { mqtt: fails, udp: works }, priority: ['MQTT', 'udp'], retry: false });
    await m.start();
    const r = await m.dispatch(new Uint8Array([1]));
    expect(r.medium).toBe('udp');
    expect(r.attempts).toBe(2);
    expect(r.failures.map((f) => f.medium)).toEqual(['mqtt']);
    expect(works.sent.length).toBe(1);
    await m.destroy();
  });

  it('retries as the reference does: 2 retries, 1 s apart, then a DispatchError listing every attempt', async () => {
    vi.useFakeTimers();
    let attempts = 0;
    const t = new ScriptedTransport('udp', () => {
      attempts++;
      return 'fail';
    });
    const m = new TransporterManager({ transports: { udp: t } });
    await m.start();
    expect([DEFAULT_MAX_RETRIES, DEFAULT_RETRY_INTERVAL_MS]).toEqual([2, 1000]);
    const result = m.dispatch(new Uint8Array([1])).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(0);
    expect(attempts).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(attempts).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(attempts).toBe(3);
    await vi.advanceTimersByTimeAsync(5000);
    const e = await result;
    expect(attempts).toBe(3);
    expect(e).toBeInstanceOf(DispatchError);
    expect(isTransportError(e, 'ERR_TRANSPORT_DISPATCH')).toBe(true);
    expect((e as DispatchError).attempts.map((a) => a.round)).toEqual([1, 2, 3]);
    await m.destroy();
  });

  it('bounds each attempt by sendTimeoutMs and stops at once when the signal aborts', async () => {
    const hang = new ScriptedTransport('tcp', () => 'hang');
    const m = new TransporterManager({ transports: { tcp: hang }, sendTimeoutMs: 30, retry: { maxRetries: 1, intervalMs: 5 } });
    await m.start();
    const e = (await m.dispatch(new Uint8Array([1])).catch((x: unknown) => x)) as DispatchError;
    expect(e.attempts.map((a) => a.error.code)).toEqual(['ERR_TRANSPORT_TIMEOUT', 'ERR_TRANSPORT_TIMEOUT']);
    const ac = new AbortController();
    const pending = m.dispatch(new Uint8Array([1]), { signal: ac.signal, timeoutMs: 60_000 }).catch((x: unknown) => x);
    ac.abort(new Error('shutdown'));
    expect(isTransportError(await pending, 'ERR_TRANSPORT_ABORTED')).toBe(true);
    await m.destroy();
  });

  it('does not retry a frame a medium refuses for its size, but tries the next medium', async () => {
    let small = 0;
    const udp = new ScriptedTransport(
      'udp',
      () => {
        small++;
        return 'ok';
      },
      10,
    );
    const tcp = new ScriptedTransport('tcp', () => 'ok', 1000);
    const m = new TransporterManager({ transports: { udp, tcp }, retry: { maxRetries: 5, intervalMs: 1 } });
    await m.start();
    const r = await m.dispatch(new Uint8Array(100));
    expect(r.medium).toBe('tcp');
    expect(r.failures.map((f) => f.error.code)).toEqual(['ERR_TRANSPORT_FRAME_SIZE']);
    const only = (await m.dispatch(new Uint8Array(100), { medium: 'udp' }).catch((x: unknown) => x)) as DispatchError;
    expect(only.attempts.length).toBe(1);
    expect(small).toBe(0);
    const unknown = await m.dispatch(new Uint8Array(1), { medium: 'lora' }).catch((x: unknown) => x);
    expect(isTransportError(unknown, 'ERR_TRANSPORT_DRIVER')).toBe(true);
    await m.destroy();
  });

  it('merges the inbound frames of its media, and opens media by name through the registry', async () => {
    const r = new DriverRegistry();
    const made: ScriptedTransport[] = [];
    r.register('fake', {
      name: 'fake',
      create: () => {
        const t = new ScriptedTransport('fake', () => 'ok');
        made.push(t);
        return t;
      },
    });
    const m = await TransporterManager.open({ media: { one: { driver: 'fake' }, two: { driver: 'fake' } }, registry: r });
    expect(m.media).toEqual(['one', 'two']);
    made[0]!.receive(new Uint8Array([1]));
    made[1]!.receive(new Uint8Array([2]));
    const got: string[] = [];
    for await (const f of m) {
      got.push(`${f.via}:${f.frame[0]}`);
      if (got.length === 2) break;
    }
    expect(got.sort()).toEqual(['one:1', 'two:2']);
    await m.destroy();
    expect(made.every((t) => t.state === 'destroyed')).toBe(true);
    expect(() => new TransporterManager({ transports: {} })).toThrow(/at least one medium/);
    expect(() => new TransporterManager({ transports: { udp: made[0]! }, priority: ['tcp'] })).toThrow(/priority/);
  });
});

/** Collects what a stream decoder finds. */
function sink(): DecoderSink & { frames: number[][]; drops: string[] } {
  const frames: number[][] = [];
  const drops: string[] = [];
  return { frames, drops, frame: (f) => frames.push([...f]), drop: (reason, count) => drops.push(`${reason}:${count}`) };
}

const rand = (n: number, seed: number) => {
  let x = seed;
  return Uint8Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x >>> 24;
  });
};

describe('framings', () => {
  it('length prefix: any split of the stream gives the same frames; whole frames are views of the chunk', () => {
    const frames = [rand(1, 1), rand(300, 2), rand(70_000, 3), rand(5, 4)];
    const wire = encodeLengthPrefixed(frames);
    for (const cut of [1, 2, 3, 4, 5, 7, 100, 4096, wire.length]) {
      const d = new LengthPrefixDecoder(1 << 20);
      const out: Uint8Array[] = [];
      for (let i = 0; i < wire.length; i += cut) d.push(wire.subarray(i, i + cut), (f) => out.push(f));
      expect(out.map((f) => f.length)).toEqual(frames.map((f) => f.length));
      for (let i = 0; i < frames.length; i++) expect(Buffer.compare(out[i]!, frames[i]!), `frame ${i}, chunks of ${cut}`).toBe(0);
    }
    const d = new LengthPrefixDecoder(100);
    const out: Uint8Array[] = [];
    d.push(wire.subarray(0, 5), (f) => out.push(f));
    expect(out[0]!.buffer).toBe(wire.buffer);
    const hb = new LengthPrefixDecoder(10);
    hb.push(new Uint8Array([0, 0, 0, 0, 0, 0, 0]), () => expect.unreachable());
    expect(hb.heartbeats).toBe(1);
    expect(() => new LengthPrefixDecoder(10).push(new Uint8Array([0, 0, 0, 11]), () => undefined)).toThrow(/11 bytes, over maxFrameBytes \(10\)/);
  });

  it('COBS: round trips (zeros, 254-byte runs, empty blocks), resynchronises after noise, bounds a line with no delimiter', () => {
    const cases = [new Uint8Array([0]), new Uint8Array([0, 0]), new Uint8Array([1, 0, 2]), rand(254, 5).map((b) => b || 1), rand(255, 6).map((b) => b || 1), rand(1000, 7), new Uint8Array(600)];
    for (const f of cases) {
      const enc = cobsEncode(f);
      expect(enc[0]).toBe(0);
      expect(enc[enc.length - 1]).toBe(0);
      expect(enc.subarray(1, -1).includes(0)).toBe(false);
      expect(cobsDecode(enc.subarray(1, -1))).toEqual(f);
    }
    // Known vector (Cheshire & Baker): 11 22 00 33 -> 03 11 22 02 33
    expect([...cobsEncode(new Uint8Array([0x11, 0x22, 0x00, 0x33]))]).toEqual([0, 3, 0x11, 0x22, 2, 0x33, 0]);
    const s = sink();
    const d = new CobsDecoder(100);
    d.push(new Uint8Array([7, 7, 7]), s); // noise before the first delimiter
    d.push(cobsEncode(new Uint8Array([1, 2, 3])), s);
    d.push(new Uint8Array([9, 1, 0]), s); // invalid COBS (block runs past the packet)
    d.push(new Uint8Array(5000).fill(0x41), s); // noise with no delimiter
    d.push(cobsEncode(new Uint8Array([4])), s);
    expect(s.frames).toEqual([[1, 2, 3], [4]]);
    expect(s.drops[0]).toBe('protocol:3');
    expect(s.drops.slice(1)).toEqual(['protocol:2', 'noise:5000']);
  });

  it('SLIP: escapes C0 and DB, drops a bad escape, bounds a line with no delimiter', () => {
    const f = new Uint8Array([0xc0, 1, 0xdb, 2]);
    expect([...slipEncode(f)]).toEqual([0xc0, 0xdb, 0xdc, 1, 0xdb, 0xdd, 2, 0xc0]);
    const s = sink();
    const d = new SlipDecoder(50);
    d.push(slipEncode(f), s);
    d.push(new Uint8Array([0xc0, 1, 0xdb, 0x41, 0xc0]), s);
    d.push(new Uint8Array(500).fill(0x42), s);
    d.push(slipEncode(new Uint8Array([5])), s);
    expect(s.frames).toEqual([[...f], [5]]);
    expect(s.drops).toEqual(['protocol:2', 'noise:500']);
  });

  it('STX/ETX: as the reference listener (noise skipped, STX inside is data), refuses to send a frame holding 03, bounds a frame with no ETX', () => {
    expect([...stxEtxEncode(new Uint8Array([1, 2]))]).toEqual([2, 1, 2, 3]);
    const e = (() => {
      try {
        stxEtxEncode(new Uint8Array([1, 3, 1]));
      } catch (x) {
        return x;
      }
    })();
    expect(isTransportError(e, 'ERR_TRANSPORT_FRAME')).toBe(true);
    expect((e as Error).message).toMatch(/0x03 \(at offset 1\)/);
    const s = sink();
    const d = new StxEtxDecoder(10);
    d.push(new Uint8Array([9, 9, 2, 5, 2, 6, 3, 2, 3]), s);
    d.push(new Uint8Array([2, ...new Uint8Array(20).fill(7), 3, 2, 8, 3]), s);
    d.push(new Uint8Array(100).fill(0x41), s);
    expect(s.frames).toEqual([[5, 2, 6], [8]]);
    expect(s.drops).toEqual(['noise:2', 'oversize:1', 'noise:11', 'noise:100']);
  });
});
