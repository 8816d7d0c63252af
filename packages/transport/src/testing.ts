/**
 * The transport conformance suite: every driver (in-process, UDP, TCP, Unix, MQTT, WebSocket,
 * serial, and third-party ones) runs these same cases, the way MQTT.js runs each of its
 * transports through one abstract client test. It takes the test framework's `describe` and `it`
 * (vitest, node:test, mocha...) and a factory of connected pairs, and asserts with plain thrown
 * errors, so this module depends on no framework:
 *
 *     import { describe, it } from 'vitest';
 *     import { transportConformanceSuite } from '@opensynaptic/transport/testing';
 *     transportConformanceSuite({ describe, it }, { name: 'udp', pair: async (o) => ... });
 */
import { brandError } from '@opensynaptic/internal';
import { isTransportError, type TransportErrorCode } from './errors.js';
import type { InboundLimits } from './queue.js';
import type { Inbound, PeerLike, Transport, TransportEvent, TransportEventType } from './types.js';

/** The part of a test framework the suite needs. */
export interface SuiteApi {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>, timeoutMs?: number): unknown;
}

/** Two started transports that reach each other. */
export interface TransportPair {
  a: Transport;
  b: Transport;
  /** Where `a` sends to reach `b` (default: `a`'s default peer). */
  toB?: PeerLike | undefined;
  /** Where `b` sends to reach `a` (default: the peer of the frame `b` received, a reply). */
  toA?: PeerLike | undefined;
  /** Frees what the pair holds besides the two transports (a server, a broker connection). */
  close?: (() => Promise<void>) | undefined;
}

/** What the suite asks of a pair: limits for both ends. */
export interface PairOptions {
  inbound?: InboundLimits | undefined;
}

export interface TransportPairFactory {
  /** Shown in the test names. */
  name: string;
  /** A fresh, started pair. */
  pair(options: PairOptions): Promise<TransportPair>;
  /** Frames of the burst (default 10,000). */
  burst?: number | undefined;
  /** Sends in flight at once during a burst (default 256). */
  window?: number | undefined;
  /** Byte values the framing cannot carry (STX/ETX: `[0x03]`); test frames avoid them. */
  forbiddenBytes?: readonly number[] | undefined;
  /** Whether the receiver pauses its medium when its queue is full (no loss); default `a.reliable`. */
  pausable?: boolean | undefined;
  /** Whether `a` holds a connection to `b` (a gone peer must show as `disconnected` or `reconnecting`). */
  connectionOriented?: boolean | undefined;
  /** Frames sent in the flood case (default 20,000). */
  flood?: number | undefined;
  /** Breaks the medium in the middle of a stream and brings it back (an MQTT broker restart). */
  interrupt?: ((pair: TransportPair) => Promise<void>) | undefined;
  /** Frames of the interrupted stream (default 2000). */
  interruptFrames?: number | undefined;
  /**
   * A pair whose connection `freeze()` makes half-open (the peer silent, nothing closed, as when
   * its host dies); `a` must report it within `withinMs`.
   */
  halfOpen?: { pair(options: PairOptions): Promise<TransportPair & { freeze(): Promise<void> }>; withinMs: number } | undefined;
  /** Time limit of each case (default 60 s). */
  timeoutMs?: number | undefined;
  /** Where the suite reports what it measured (UDP loss); default `console.log`. */
  log?: ((line: string) => void) | undefined;
}

class SuiteAssertionError extends Error {
  static {
    brandError(this);
  }
  override readonly name = 'SuiteAssertionError';
  /** A transport failed the conformance suite (a branded error like every other of the packages). */
  readonly code = 'ERR_TRANSPORT_SUITE';
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new SuiteAssertionError(message);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `pred()` holds, polling; fails after `ms` with `what`. */
async function until(pred: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new SuiteAssertionError(`timed out after ${ms} ms waiting for ${what()}`);
    await sleep(5);
  }
}

/** Settles within `ms` or fails: `'ok'` or the rejection. */
async function settle(p: Promise<unknown>, ms: number, what: string): Promise<'ok' | unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SuiteAssertionError(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p.then(() => 'ok' as const, (e: unknown) => e), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The value of `p`, or fails after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SuiteAssertionError(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function rejects(p: Promise<unknown>, codes: readonly TransportErrorCode[], what: string): Promise<unknown> {
  const r = await settle(p, 10_000, what);
  check(r !== 'ok', `${what}: expected a rejection with ${codes.join(' or ')}, it resolved`);
  check(isTransportError(r) && codes.includes(r.code), `${what}: expected ${codes.join(' or ')}, got ${describeError(r)}`);
  return r;
}

function describeError(e: unknown): string {
  const x = e as { code?: unknown; message?: unknown } | null;
  return typeof x?.code === 'string' ? `${x.code} (${String(x.message)})` : String(e);
}

/** Reads every inbound frame of a transport into a list, from now until the transport ends. */
class Collector {
  readonly items: Inbound[] = [];
  ended = false;
  constructor(t: Transport) {
    void (async () => {
      for await (const m of t) this.items.push(m);
      this.ended = true;
    })();
  }
}

function listen<K extends TransportEventType>(t: Transport, type: K): TransportEvent<K>[] {
  const seen: TransportEvent<K>[] = [];
  t.on(type, (e) => seen.push(e));
  return seen;
}

/** A deterministic byte generator (xorshift32), so a failing case fails the same way again. */
function bytesOf(n: number, seed: number, forbidden: ReadonlySet<number>): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    let b = x & 0xff;
    if (forbidden.has(b)) b = 0x55;
    out[i] = b;
  }
  return out;
}

const MARK = 0x4f; // 'O'

/** Frame `i` of a stream: `O`, the index as 8 letters A..P (no byte a framing reserves), filler. */
function indexed(i: number, size: number, forbidden: ReadonlySet<number>): Uint8Array {
  const f = bytesOf(Math.max(size, 9), i + 1, forbidden);
  f[0] = MARK;
  for (let k = 0; k < 8; k++) f[1 + k] = 0x41 + ((i >>> (28 - 4 * k)) & 0xf);
  return f;
}

function indexOf(f: Uint8Array): number {
  if (f.byteLength < 9 || f[0] !== MARK) return -1;
  let n = 0;
  for (let k = 0; k < 8; k++) {
    const d = f[1 + k]! - 0x41;
    if (d < 0 || d > 15) return -1;
    n = n * 16 + d;
  }
  return n;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Sends frames `from..from+count-1` keeping at most `window` sends in flight; resolves with the failures. */
async function stream(t: Transport, to: PeerLike | undefined, from: number, count: number, size: number, window: number, forbidden: ReadonlySet<number>): Promise<unknown[]> {
  const failures: unknown[] = [];
  let inflight = 0;
  let room: (() => void) | undefined;
  const settled = () => {
    inflight--;
    room?.();
  };
  const wait = () =>
    new Promise<void>((r) => {
      room = r;
    });
  for (let i = from; i < from + count; i++) {
    inflight++;
    t.send(indexed(i, size, forbidden), to).then(settled, (e: unknown) => {
      failures.push(e);
      settled();
    });
    while (inflight >= window) await wait();
    // A macrotask per window: a receiver in this same process gets to read (sends that complete
    // at once call back in microtasks, which would otherwise starve it).
    if ((i - from) % window === window - 1) await sleep(0);
  }
  while (inflight > 0) await wait();
  return failures;
}

/** Registers the conformance suite for one driver. */
export function transportConformanceSuite(api: SuiteApi, factory: TransportPairFactory): void {
  const forbidden = new Set(factory.forbiddenBytes ?? []);
  const timeout = factory.timeoutMs ?? 60_000;
  const log = factory.log ?? ((line: string) => console.log(line));
  const burst = factory.burst ?? 10_000;
  const window = factory.window ?? 256;

  const withPair = async (options: PairOptions, body: (p: TransportPair) => Promise<void>) => {
    const p = await factory.pair(options);
    try {
      await body(p);
    } finally {
      await Promise.all([p.a.destroy(), p.b.destroy()]);
      await p.close?.();
    }
  };

  api.describe(`transport conformance suite: ${factory.name}`, () => {
    api.it(
      'carries a frame each way: the bytes as sent, the peer, receivedAt in milliseconds',
      () =>
        withPair({}, async (p) => {
          const ca = new Collector(p.a);
          const cb = new Collector(p.b);
          const before = Date.now();
          const f1 = bytesOf(100, 7, forbidden);
          await p.a.send(f1, p.toB);
          await until(() => cb.items.length >= 1, 10_000, () => 'the frame a sent');
          const got = cb.items[0]!;
          check(got.frame instanceof Uint8Array, 'a received frame is a Uint8Array');
          check(equal(got.frame, f1), `b received other bytes than a sent (${got.frame.byteLength} vs ${f1.byteLength})`);
          check(typeof got.peer?.key === 'string' && got.peer.key.length > 0 && got.peer.medium === p.b.medium, `the peer of a received frame: ${JSON.stringify(got.peer)}`);
          check(got.receivedAt >= before - 1000 && got.receivedAt <= Date.now() + 1000, `receivedAt ${got.receivedAt} is not a time in milliseconds near ${before}`);
          const f2 = bytesOf(60, 9, forbidden);
          await p.b.send(f2, p.toA ?? got.peer);
          await until(() => ca.items.length >= 1, 10_000, () => 'the reply b sent');
          check(equal(ca.items[0]!.frame, f2), 'a received other bytes than b replied');
          check(cb.items.length === 1, `b received ${cb.items.length} frames, 1 sent`);
        }),
      timeout,
    );

    api.it(
      `streams a burst of ${burst} frames: ${'in order, none lost (reliable drivers); for unreliable ones the loss is counted and reported'}`,
      () =>
        withPair({}, async (p) => {
          const cb = new Collector(p.b);
          const failures = await stream(p.a, p.toB, 0, burst, 32, window, forbidden);
          if (p.a.reliable) {
            check(failures.length === 0, `${failures.length} sends of the burst failed: ${describeError(failures[0])}`);
            await until(() => cb.items.length >= burst, timeout - 5000, () => `${burst} frames (got ${cb.items.length})`);
            await sleep(20);
            check(cb.items.length === burst, `b received ${cb.items.length} frames, ${burst} sent`);
            for (let i = 0; i < burst; i++) {
              const f = cb.items[i]!.frame;
              check(indexOf(f) === i, `frame ${i} of the burst arrived as frame ${indexOf(f)} (lost or reordered)`);
              if (i % 97 === 0) check(equal(f, indexed(i, 32, forbidden)), `frame ${i} of the burst arrived damaged`);
            }
            return;
          }
          // Unreliable: wait until nothing more comes, then count.
          let last = -1;
          while (cb.items.length !== last && cb.items.length < burst) {
            last = cb.items.length;
            await sleep(300);
          }
          const seen = new Set<number>();
          for (const m of cb.items) {
            const i = indexOf(m.frame);
            check(i >= 0 && i < burst && equal(m.frame, indexed(i, 32, forbidden)), 'a frame of the burst arrived damaged');
            check(!seen.has(i), `frame ${i} arrived twice`);
            seen.add(i);
          }
          const lost = burst - seen.size - failures.length;
          const s = p.b.stats();
          log(
            `${factory.name}: burst of ${burst}: ${seen.size} received, ${lost} lost on the medium (${((100 * lost) / burst).toFixed(2)}%), ` +
              `${failures.length} sends refused, ${s.dropped['queue-full']} dropped by the receiver's queue`,
          );
          check(seen.size > 0, 'no frame of the burst arrived');
        }),
      timeout,
    );

    api.it(
      'batches(): the frames in batches of at most max, each once, through a small queue (backpressure as the iterator has it), ending at stop()',
      () =>
        withPair({ inbound: { maxFrames: 64 } }, async (p) => {
          let threw: unknown;
          try {
            p.b.batches({ max: 0 });
          } catch (e) {
            threw = e;
          }
          check(isTransportError(threw, 'ERR_TRANSPORT_OPTION'), `batches({ max: 0 }) gave ${describeError(threw)}, expected ERR_TRANSPORT_OPTION`);
          const n = Math.min(burst, 3000);
          const max = 50;
          const got: Inbound[] = [];
          let batches = 0;
          let biggest = 0;
          let ended = false;
          let bad = '';
          const reading = (async () => {
            for await (const batch of p.b.batches({ max })) {
              batches++;
              biggest = Math.max(biggest, batch.length);
              if (batch.length < 1 || batch.length > max) bad ||= `a batch of ${batch.length} frames (max ${max})`;
              for (const m of batch) got.push(m);
              // A consumer slower than the sender: frames wait in the queue and come in batches.
              if (batches % 4 === 0) await sleep(1);
            }
            ended = true;
          })();
          const failures = await stream(p.a, p.toB, 0, n, 32, window, forbidden);
          if (p.a.reliable) {
            check(failures.length === 0, `${failures.length} sends failed: ${describeError(failures[0])}`);
            await until(() => got.length >= n, timeout - 10_000, () => `${n} frames in batches (got ${got.length})`);
            for (let i = 0; i < n; i++) check(indexOf(got[i]!.frame) === i, `frame ${i} came in the batches as frame ${indexOf(got[i]!.frame)} (lost or reordered)`);
          } else {
            let last = -1;
            while (got.length !== last && got.length < n) {
              last = got.length;
              await sleep(300);
            }
            check(got.length > 0, 'no frame came in a batch');
          }
          check(bad === '', bad);
          const seen = new Set<number>();
          for (const m of got) {
            const i = indexOf(m.frame);
            check(i >= 0 && i < n && equal(m.frame, indexed(i, 32, forbidden)), 'a frame came damaged in a batch');
            check(!seen.has(i), `frame ${i} came twice`);
            seen.add(i);
            check(m.peer?.medium === p.b.medium && typeof m.receivedAt === 'number', 'a batched frame lacks its peer or receivedAt');
          }
          check(p.b.stats().inboundQueued === 0, `${p.b.stats().inboundQueued} frames left in the queue`);
          log(`${factory.name}: ${got.length} of ${n} frames in ${batches} batches (largest ${biggest}, max ${max})`);
          await p.b.stop();
          await within(reading, 10_000, 'the batch iterator after stop()');
          check(ended, 'the batch iterator did not end at stop()');
        }),
      timeout,
    );

    api.it(
      'carries the largest frame it allows and refuses one byte more with ERR_TRANSPORT_FRAME_SIZE',
      () =>
        withPair({}, async (p) => {
          const cb = new Collector(p.b);
          const max = p.a.maxFrameBytes;
          check(Number.isInteger(max) && max > 0, `maxFrameBytes ${max}`);
          const big = bytesOf(max, 3, forbidden);
          await p.a.send(big, p.toB);
          await until(() => cb.items.length >= 1, 20_000, () => `the frame of ${max} bytes`);
          check(equal(cb.items[0]!.frame, big), `the frame of ${max} bytes arrived as ${cb.items[0]!.frame.byteLength} bytes or damaged`);
          const e = await rejects(p.a.send(bytesOf(max + 1, 4, forbidden), p.toB), ['ERR_TRANSPORT_FRAME_SIZE'], `a frame of ${max + 1} bytes`);
          check((e as { limit?: unknown }).limit === max && (e as { size?: unknown }).size === max + 1, 'the error names the size and the limit');
          const marker = bytesOf(20, 5, forbidden);
          await p.a.send(marker, p.toB);
          await until(() => cb.items.length >= 2, 10_000, () => 'the frame after the refused one');
          check(equal(cb.items[1]!.frame, marker), 'the refused frame reached the other end');
        }),
      timeout,
    );

    api.it(
      'refuses what is not a non-empty Uint8Array with ERR_TRANSPORT_FRAME',
      () =>
        withPair({}, async (p) => {
          for (const bad of ['text', null, undefined, [1, 2, 3], new ArrayBuffer(4), new Uint8Array(0), 42]) {
            await rejects(p.a.send(bad as unknown as Uint8Array, p.toB), ['ERR_TRANSPORT_FRAME'], `send(${Array.isArray(bad) ? 'an array' : typeof bad})`);
          }
          check(p.a.state === 'running', 'a bad frame stopped the transport');
        }),
      timeout,
    );

    api.it(
      'settles every send when destroyed in the middle of sending, and refuses later ones with ERR_TRANSPORT_CLOSED',
      () =>
        withPair({}, async (p) => {
          const sends: Promise<unknown>[] = [];
          for (let i = 0; i < 500; i++) sends.push(p.a.send(indexed(i, 32, forbidden), p.toB).then(() => 'ok', (e: unknown) => e));
          const destroyed = p.a.destroy();
          const results = await within(Promise.all(sends), 15_000, 'the sends pending at destroy()');
          for (const r of results) {
            check(r === 'ok' || (isTransportError(r) && ['ERR_TRANSPORT_CLOSED', 'ERR_TRANSPORT_ABORTED', 'ERR_TRANSPORT_IO', 'ERR_TRANSPORT_PEER'].includes(r.code)), `a send pending at destroy() settled with ${describeError(r)}`);
          }
          await settle(destroyed, 15_000, 'destroy()');
          check(p.a.state === 'destroyed', `state after destroy: ${p.a.state}`);
          await rejects(p.a.send(indexed(1, 32, forbidden), p.toB), ['ERR_TRANSPORT_CLOSED'], 'send after destroy');
          check(p.b.state === 'running', 'destroying one end stopped the other');
        }),
      timeout,
    );

    api.it(
      'settles a send to a peer that is gone (a typed error, or taken by an unreliable medium), never hangs',
      () =>
        withPair({}, async (p) => {
          const disconnected = listen(p.a, 'disconnected');
          const reconnecting = listen(p.a, 'reconnecting');
          await p.b.destroy();
          await p.close?.();
          if (factory.connectionOriented) {
            await until(() => disconnected.length + reconnecting.length > 0, 10_000, () => 'a disconnected or reconnecting event after the peer went away');
          }
          const r = await settle(p.a.send(indexed(1, 32, forbidden), p.toB, { signal: AbortSignal.timeout(1500) }), 10_000, 'a send to a gone peer');
          check(r === 'ok' || isTransportError(r), `a send to a gone peer settled with ${describeError(r)}`);
          if (p.a.reliable && factory.connectionOriented) check(r !== 'ok', 'a reliable medium claimed to deliver to a peer that is gone');
        }),
      timeout,
    );

    api.it(
      'stop() drains what is queued: every send settles, the other end gets them, its iterator ends after the queued frames',
      () =>
        withPair({}, async (p) => {
          const K = 300;
          const sends: Promise<unknown>[] = [];
          for (let i = 0; i < K; i++) sends.push(p.a.send(indexed(i, 32, forbidden), p.toB).then(() => 'ok', (e: unknown) => e));
          await settle(p.a.stop(), 20_000, 'stop()');
          const results = await within(Promise.all(sends), 5000, 'the sends pending at stop()');
          check(p.a.state === 'stopped', `state after stop: ${p.a.state}`);
          await rejects(p.a.send(indexed(0, 32, forbidden), p.toB), ['ERR_TRANSPORT_CLOSED'], 'send after stop');
          if (p.a.reliable) {
            const failed = results.filter((r) => r !== 'ok');
            check(failed.length === 0, `${failed.length} sends queued before stop() failed: ${describeError(failed[0])}`);
            await until(() => p.b.stats().framesIn >= K, 20_000, () => `the ${K} frames sent before stop() (got ${p.b.stats().framesIn})`);
          } else {
            await sleep(200);
          }
          const received = p.b.stats().framesIn;
          await settle(p.b.stop(), 20_000, "the receiver's stop()");
          let read = 0;
          for await (const m of p.b) {
            if (p.a.reliable) check(indexOf(m.frame) === read, `frame ${read} read after stop() is frame ${indexOf(m.frame)}`);
            read++;
          }
          check(read === received, `the iterator gave ${read} frames after stop(), ${received} had arrived`);
          await p.b.stop();
        }),
      timeout,
    );

    api.it(
      'destroy() twice (and at once), the iterator ends, start() after it is ERR_TRANSPORT_CLOSED',
      () =>
        withPair({}, async (p) => {
          const it = p.a.frames();
          const waiting = it.next();
          await Promise.all([p.a.destroy(), p.a.destroy()]);
          await p.a.destroy();
          check(p.a.state === 'destroyed', `state: ${p.a.state}`);
          const r = await within(waiting, 5000, 'a next() pending at destroy()');
          check(r.done === true, 'a pending next() did not end');
          check((await p.a.frames().next()).done === true, 'the iterator of a destroyed transport is not done');
          await rejects(p.a.start(), ['ERR_TRANSPORT_CLOSED'], 'start() after destroy()');
          const dispose = (p.a as unknown as Record<symbol, unknown>)[(Symbol as { asyncDispose?: symbol }).asyncDispose ?? Symbol()];
          if (typeof dispose === 'function') await (dispose as () => Promise<void>).call(p.a);
        }),
      timeout,
    );

    api.it(
      'bounds a flood faster than the consumer: queue within its limit, backpressure or drops reported',
      () =>
        withPair({ inbound: { maxFrames: 64 } }, async (p) => {
          const n = factory.flood ?? 20_000;
          const pausable = factory.pausable ?? p.a.reliable;
          const pressure = listen(p.b, 'backpressure');
          const dropped = listen(p.b, 'dropped');
          let peak = 0;
          const sampler = setInterval(() => {
            peak = Math.max(peak, p.b.stats().inboundQueued);
          }, 1);
          let failures: unknown[] = [];
          const sending = stream(p.a, p.toB, 0, n, 32, window, forbidden).then((f) => {
            failures = f;
          });
          try {
            if (pausable) {
              await until(() => pressure.some((e) => e.direction === 'inbound' && e.active), 20_000, () => 'a backpressure event from the receiver');
              // The medium is paused: the queue stays near its limit (a read in flight at most), far below the flood.
              await sleep(100);
              peak = Math.max(peak, p.b.stats().inboundQueued);
              check(peak < Math.max(64 * 4, 2200) && peak < n, `the receiver queued ${peak} frames with a limit of 64`);
              const cb = new Collector(p.b);
              await sending;
              check(failures.length === 0, `${failures.length} sends of the flood failed: ${describeError(failures[0])}`);
              await until(() => cb.items.length >= n, timeout - 10_000, () => `the ${n} frames of the flood (got ${cb.items.length})`);
              for (let i = 0; i < n; i += 101) check(indexOf(cb.items[i]!.frame) === i, `frame ${i} of the flood out of order`);
              await until(() => pressure.some((e) => e.direction === 'inbound' && !e.active), 5000, () => 'the end of backpressure');
            } else {
              await sending;
              await sleep(300);
              const s = p.b.stats();
              peak = Math.max(peak, s.inboundQueued);
              check(peak <= 64, `the receiver queued ${peak} frames with a limit of 64`);
              check(s.dropped['queue-full'] > 0 || s.framesIn + failures.length < n, 'a flood of an unpausable medium dropped nothing and queued all');
              if (s.dropped['queue-full'] > 0) {
                await until(() => dropped.some((e) => e.reason === 'queue-full' && e.count > 0), 5000, () => 'a dropped event (queue-full)');
              }
              log(`${factory.name}: flood of ${n} into a queue of 64: ${s.framesIn} queued, ${s.dropped['queue-full']} dropped by the queue and reported`);
            }
          } finally {
            clearInterval(sampler);
          }
        }),
      timeout,
    );

    if (factory.interrupt) {
      const interrupt = factory.interrupt;
      const n = factory.interruptFrames ?? 2000;
      api.it(
        `loses no frame of a ${n}-frame stream when the medium is interrupted in the middle`,
        () =>
          withPair({}, async (p) => {
            const cb = new Collector(p.b);
            const first = await stream(p.a, p.toB, 0, n / 2, 32, window, forbidden);
            const sending = stream(p.a, p.toB, n / 2, n / 2, 32, Math.min(window, 64), forbidden);
            await interrupt(p);
            const second = await sending;
            const failures = [...first, ...second];
            check(failures.length === 0, `${failures.length} sends failed across the interruption: ${describeError(failures[0])}`);
            const unique = () => new Set(cb.items.map((m) => indexOf(m.frame))).size;
            await until(() => unique() >= n, timeout - 10_000, () => `all ${n} frames (got ${unique()} distinct)`);
            log(`${factory.name}: interrupted stream of ${n}: all arrived, ${cb.items.length - unique()} twice (at-least-once redelivery)`);
          }),
        timeout,
      );
    }

    if (factory.halfOpen) {
      const { withinMs } = factory.halfOpen;
      const makePair = factory.halfOpen.pair;
      api.it(
        'detects a half-open connection (the peer silent, nothing closed) and reports it',
        async () => {
          const p = await makePair({});
          try {
            const down = listen(p.a, 'disconnected');
            await p.a.send(indexed(0, 32, forbidden), p.toB);
            await p.freeze();
            await until(() => down.length > 0, withinMs, () => 'a disconnected event for the half-open connection');
            check(isTransportError(down[0]!.error, 'ERR_TRANSPORT_TIMEOUT'), `the disconnected event says ${describeError(down[0]!.error)}, expected ERR_TRANSPORT_TIMEOUT`);
          } finally {
            await Promise.all([p.a.destroy(), p.b.destroy()]);
            await p.close?.();
          }
        },
        timeout,
      );
    }
  });
}
