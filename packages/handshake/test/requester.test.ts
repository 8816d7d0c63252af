import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  buildAck,
  buildIdAssign,
  buildIdPoolResponse,
  buildNack,
  buildPong,
  buildTimeResponse,
  HandshakeRequester,
  type HandshakeRequesterOptions,
  IdAllocator,
  InvalidAnswerError,
  MetaTooLargeError,
  OSHandshakeManager,
  readU16,
  RequestAbortedError,
  RequestNackError,
  RequestTimeoutError,
  TooManyRequestsError,
} from '../src/index.js';

const T0 = 1_700_000_000;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const seqOf = (b: Uint8Array): number => readU16(b, 1);

/** A requester whose packets land in `sent`; timers are the (fake) globals, `now` follows Date. */
function setup(options: Partial<HandshakeRequesterOptions> = {}) {
  const sent: Uint8Array[] = [];
  const r = new HandshakeRequester({
    send: (p) => {
      sent.push(p);
    },
    timers: { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as never), now: () => Date.now() },
    ...options,
  });
  return { r, sent };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('HandshakeRequester', () => {
  it('resolves an answered request and ignores a late duplicate', async () => {
    const { r, sent } = setup();
    const p = r.requestId({ device_id: 'NODE_A' });
    expect(sent).toHaveLength(1);
    expect(hex(sent[0]!.subarray(0, 3))).toBe('010001');
    expect(r.pending).toBe(1);
    const answer = buildIdAssign(1, 42, T0);
    expect(r.handle(answer)).toBe(true);
    await expect(p).resolves.toEqual({ aid: 42, serverTimeMs: T0 * 1000 });
    expect(r.handle(answer)).toBe(false);
    expect(r.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('answers ping, time and pool requests', async () => {
    const { r, sent } = setup();
    const ping = r.ping();
    const time = r.requestTime();
    const pool = r.requestIdPool(3, { device_id: 'GW' });
    expect(sent.map((p) => p[0])).toEqual([9, 11, 3]);
    vi.advanceTimersByTime(120);
    expect(r.handle(buildPong(seqOf(sent[0]!)))).toBe(true);
    expect(r.handle(buildTimeResponse(seqOf(sent[1]!), T0))).toBe(true);
    expect(r.handle(buildIdPoolResponse(seqOf(sent[2]!), [7, 8, 9]))).toBe(true);
    await expect(ping).resolves.toBe(120);
    await expect(time).resolves.toEqual({ serverTimeMs: T0 * 1000, rttMs: 120 });
    await expect(pool).resolves.toEqual([7, 8, 9]);
    // The short ID_ASSIGN form has no server time.
    const id = r.requestId(null);
    expect(r.handle(buildIdAssign(4, 5))).toBe(true);
    await expect(id).resolves.toEqual({ aid: 5 });
  });

  it('gives server times in ms, and refuses one beyond 2^53 ms instead of rounding it', async () => {
    const { r, sent } = setup();
    const time = r.requestTime();
    expect(r.handle(buildTimeResponse(seqOf(sent[0]!), 2 ** 50))).toBe(true);
    await expect(time).rejects.toMatchObject({ name: 'InvalidAnswerError', code: 'ERR_HANDSHAKE_BAD_ANSWER' });
    // An ID_ASSIGN with such a time still assigns the id, without a server time.
    const id = r.requestId(null);
    expect(r.handle(buildIdAssign(seqOf(sent[1]!), 5, 2n ** 60n))).toBe(true);
    await expect(id).resolves.toEqual({ aid: 5 });
  });

  it('fails on a NACK with the pending seq, carrying the reason', async () => {
    const { r } = setup();
    const p = r.requestId({ device_id: 'X' });
    expect(r.handle(buildNack(2, 'ID_POOL_EXHAUSTED'))).toBe(false); // another seq
    expect(r.handle(buildNack(1, 'ID_POOL_EXHAUSTED'))).toBe(true);
    const e = await p.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RequestNackError);
    expect(e).toMatchObject({ code: 'ERR_HANDSHAKE_NACK', reason: 'ID_POOL_EXHAUSTED', seq: 1, request: 'ID_REQUEST' });
    expect(r.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ignores wrong commands, ACKs and malformed answers with the pending seq', async () => {
    const { r } = setup();
    const p = r.requestId();
    expect(r.handle(buildPong(1))).toBe(false);
    expect(r.handle(buildAck(1))).toBe(false);
    expect(r.handle(new Uint8Array([2, 0, 1, 0, 0]))).toBe(false); // truncated ID_ASSIGN
    expect(r.handle(new Uint8Array([2, 0]))).toBe(false);
    expect(r.handle('junk' as unknown as Uint8Array)).toBe(false);
    expect(r.pending).toBe(1);
    // aid 0 is an answer, but an unusable one.
    expect(r.handle(buildIdAssign(1, 0))).toBe(true);
    await expect(p).rejects.toBeInstanceOf(InvalidAnswerError);
  });

  it('times out, removes the pending entry and ignores the late answer', async () => {
    const { r, sent } = setup();
    const p = r.requestId({ device_id: 'X' }, { timeoutMs: 3000 });
    const caught = p.catch((x: unknown) => x);
    vi.advanceTimersByTime(2999);
    expect(r.pending).toBe(1);
    vi.advanceTimersByTime(1);
    const e = await caught;
    expect(e).toBeInstanceOf(RequestTimeoutError);
    expect(e).toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT', seq: 1, timeoutMs: 3000, attempts: 2 });
    expect(sent).toHaveLength(2);
    expect(r.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(r.handle(buildIdAssign(1, 42))).toBe(false);
  });

  it.each([
    [500, [0]],
    [1000, [0]],
    [1500, [0, 1000]],
    [3000, [0, 1500]],
    [5000, [0, 2500]],
    [10_000, [0, 5000]],
  ])('resends the same packet every max(1 s, timeout/2): timeout %i ms', async (timeoutMs, expected) => {
    const { r, sent } = setup();
    const caught = r.ping({ timeoutMs }).catch((x: unknown) => x);
    const at: number[] = [];
    const start = Date.now();
    let seen = 0;
    for (let t = 0; t <= timeoutMs; t++) {
      if (t > 0) vi.advanceTimersByTime(1);
      while (seen < sent.length) {
        at.push(Date.now() - start);
        seen++;
      }
    }
    expect(at).toEqual(expected);
    expect(new Set(sent.map(hex)).size).toBe(1);
    expect(await caught).toBeInstanceOf(RequestTimeoutError);
  });

  it('keeps resending until answered over a long timeout', async () => {
    const { r, sent } = setup();
    const p = r.requestTime({ timeoutMs: 10_000 });
    vi.advanceTimersByTime(5000);
    expect(sent).toHaveLength(2);
    r.handle(buildTimeResponse(1, T0));
    await expect(p).resolves.toMatchObject({ serverTimeMs: T0 * 1000 });
    vi.advanceTimersByTime(20_000);
    expect(sent).toHaveLength(2);
  });

  it('honours an AbortSignal', async () => {
    const { r, sent } = setup();
    const ac = new AbortController();
    const p = r.requestId({ device_id: 'X' }, { signal: ac.signal });
    const reason = new Error('shutting down');
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
    expect(r.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(r.handle(buildIdAssign(1, 42))).toBe(false);
    // An already aborted signal sends nothing.
    await expect(r.ping({ signal: ac.signal })).rejects.toBe(reason);
    expect(sent).toHaveLength(1);
    // The default reason is the platform's AbortError.
    const ac2 = new AbortController();
    const p2 = r.ping({ signal: ac2.signal });
    ac2.abort();
    await expect(p2).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('cancelAll rejects everything pending', async () => {
    const { r } = setup();
    const all = [r.ping(), r.requestTime(), r.requestId()].map((p) => p.catch((x: unknown) => x));
    r.cancelAll();
    for (const e of await Promise.all(all)) expect(e).toBeInstanceOf(RequestAbortedError);
    expect(r.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('matches 50 concurrent requests answered out of order', async () => {
    const { r, sent } = setup();
    const ids = Array.from({ length: 20 }, (_, i) => r.requestId({ device_id: `D${i}` }));
    const pings = Array.from({ length: 15 }, () => r.ping());
    const times = Array.from({ length: 15 }, () => r.requestTime());
    expect(r.pending).toBe(50);
    const order = sent.map((_, i) => i);
    // Deterministic shuffle.
    let s = 12345;
    for (let i = order.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      const j = s % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (const i of order) {
      const p = sent[i]!;
      const seq = seqOf(p);
      const answer = p[0] === 1 ? buildIdAssign(seq, 1000 + seq) : p[0] === 9 ? buildPong(seq) : buildTimeResponse(seq, T0 + seq);
      expect(r.handle(answer)).toBe(true);
    }
    expect((await Promise.all(ids)).map((a) => a.aid)).toEqual(ids.map((_, i) => 1000 + i + 1));
    expect((await Promise.all(times)).map((t) => t.serverTimeMs)).toEqual(times.map((_, i) => (T0 + 36 + i) * 1000));
    expect(await Promise.all(pings)).toHaveLength(15);
    expect(r.pending).toBe(0);
  });

  it('bounds the requests in flight', async () => {
    const { r, sent } = setup({ maxInFlight: 2 });
    r.ping().catch(() => {});
    r.ping().catch(() => {});
    await expect(r.ping()).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(r.ping()).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_TOO_MANY_REQUESTS', limit: 2 });
    expect(sent).toHaveLength(2);
    expect(new HandshakeRequester({ send: () => {} }).maxInFlight).toBe(256);
    expect(() => new HandshakeRequester({ send: () => {}, maxInFlight: 0 })).toThrow(/maxInFlight/);
    r.cancelAll();
  });

  it('skips seqs still pending when the counter wraps', async () => {
    const { r, sent } = setup();
    r.seq.set(65534);
    const a = r.ping(); // 65535
    r.seq.set(65534);
    const b = r.ping(); // 65535 is pending: 0
    expect(sent.map(seqOf)).toEqual([65535, 0]);
    r.handle(buildPong(0));
    r.handle(buildPong(65535));
    await expect(Promise.all([a, b])).resolves.toHaveLength(2);
  });

  it('fails a request whose send throws or rejects, and refuses bad arguments', async () => {
    const boom = new Error('EHOSTUNREACH');
    const sync = new HandshakeRequester({
      send: () => {
        throw boom;
      },
    });
    await expect(sync.ping()).rejects.toBe(boom);
    expect(sync.pending).toBe(0);
    const async = new HandshakeRequester({ send: () => Promise.reject(boom) });
    await expect(async.requestTime()).rejects.toBe(boom);
    expect(async.pending).toBe(0);
    const { r } = setup({ maxMetaBytes: 10 });
    await expect(r.requestId({ device_id: 'much too long' })).rejects.toBeInstanceOf(MetaTooLargeError);
    await expect(r.ping({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_FIELD' });
    expect(r.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('HandshakeRequester over an in-process pair', () => {
  /**
   * Device (requester + its own manager) and server (manager with an allocator), joined by two
   * queues drained on the microtask queue, as datagrams would arrive on a later tick.
   */
  function pair(options: { allocator?: boolean; drop?: (p: Uint8Array, n: number) => boolean } = {}) {
    const clockMs = () => T0 * 1000;
    const server = new OSHandshakeManager({ clockMs, allocator: options.allocator === false ? null : new IdAllocator({ start: 1000, end: 1999, clockMs }) });
    const device = new OSHandshakeManager({ clockMs, role: 'tx_only' });
    const toServer: Uint8Array[] = [];
    const toDevice: Uint8Array[] = [];
    const unclaimed: unknown[] = [];
    let sends = 0;
    const drain = () => {
      for (let p = toServer.shift(); p; p = toServer.shift()) {
        const { response } = server.classifyAndDispatch(p, '10.0.0.7:5683');
        if (response) toDevice.push(response);
      }
      for (let p = toDevice.shift(); p; p = toDevice.shift()) {
        // What the requester does not claim goes to the device's own dispatch.
        if (!requester.handle(p)) unclaimed.push(device.classifyAndDispatch(p).result);
      }
    };
    const requester = new HandshakeRequester({
      seq: device.seq,
      send: (p) => {
        if (options.drop?.(p, sends++)) return;
        toServer.push(p);
        queueMicrotask(drain);
      },
    });
    return { requester, server, device, unclaimed };
  }

  it('runs requestId end to end against OSHandshakeManager', async () => {
    vi.useRealTimers();
    const { requester, device, unclaimed } = pair();
    const meta = { device_id: 'NODE_A', type: 'sensor_node' };
    await expect(requester.requestId(meta)).resolves.toEqual({ aid: 1000, serverTimeMs: T0 * 1000 });
    // The same device asking again keeps its id.
    await expect(requester.requestId(meta)).resolves.toEqual({ aid: 1000, serverTimeMs: T0 * 1000 });
    const [other, pool] = await Promise.all([requester.requestId({ device_id: 'NODE_B' }), requester.requestIdPool(3, { device_id: 'GW' })]);
    expect(other.aid).toBe(1001);
    expect(pool).toEqual([1002, 1003, 1004]);
    await expect(requester.requestTime()).resolves.toMatchObject({ serverTimeMs: T0 * 1000 });
    expect(await requester.ping()).toBeGreaterThanOrEqual(0);
    expect(device.seq.current).toBe(6);
    expect(requester.pending).toBe(0);
    expect(unclaimed).toEqual([]);
  });

  it('turns the server NACK into a typed failure', async () => {
    vi.useRealTimers();
    const { requester } = pair({ allocator: false });
    await expect(requester.requestId({ device_id: 'NODE_A' })).rejects.toMatchObject({ name: 'RequestNackError', reason: 'NO_ALLOCATOR' });
    await expect(requester.requestIdPool(2)).rejects.toMatchObject({ reason: 'POOL_ALLOC_FAILED' });
  });

  it('recovers a lost request by resending', async () => {
    const { requester } = pair({ drop: (_p, n) => n === 0 });
    const p = requester.requestId({ device_id: 'NODE_A' }, { timeoutMs: 4000 });
    await vi.advanceTimersByTimeAsync(1999);
    expect(requester.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await expect(p).resolves.toEqual({ aid: 1000, serverTimeMs: T0 * 1000 });
    expect(vi.getTimerCount()).toBe(0);
  });
});
