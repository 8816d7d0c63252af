import { deriveSessionKey } from '@opensynaptic/crc';
import { decodeFrame, encodeFrame, FrameError } from '@opensynaptic/packet';
import { compressFact, decompressBody, type FactInput } from '@opensynaptic/packet/body';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DiffOverrunError,
  FusionError,
  FusionInputError,
  FusionUtf8Error,
  NoCachedValuesError,
  OSVisualFusionEngine,
  TemplateMissingError,
} from '../src/index.js';

const T0 = 1_700_000_000_000;

function pair(options: { clock?: () => number } = {}) {
  const clock = options.clock ?? (() => T0);
  return {
    tx: new OSVisualFusionEngine({ localId: 42, clock }),
    rx: new OSVisualFusionEngine({ localId: 1, clock }),
  };
}

function body(values: number[], t = 1_700_000_000_000, extra: Partial<FactInput> = {}): string {
  const f: FactInput = { id: 'NODE_A', s: 'ONLINE', t, ...extra };
  for (const [i, v] of values.entries()) {
    Object.assign(f, { [`s${i + 1}_id`]: `S${i}`, [`s${i + 1}_s`]: 'OK', [`s${i + 1}_u`]: 'temperature', [`s${i + 1}_v`]: v });
  }
  return `42;${compressFact(f)}`;
}

function withoutMeta(f: object): Record<string, unknown> {
  const { __packet_meta__: _, ...rest } = f as Record<string, unknown>;
  return rest;
}

describe('sending', () => {
  it('sends FULL first, then HEART when nothing changed and DIFF with only the changed values', () => {
    const { tx } = pair();
    const full = tx.runEngine(body([1, 2, 3]));
    expect(full[0]).toBe(63);
    const heart = tx.runEngine(body([1, 2, 3]));
    expect(heart[0]).toBe(127);
    expect(decodeFrame(heart).bodyLength).toBe(0);
    const diff = decodeFrame(tx.runEngine(body([1, 5, 3])));
    expect(diff.cmd).toBe(170);
    // 6 values (state.unit and value per sensor): 1 mask byte, value 3 (sensor 2's value) changed.
    expect([...diff.body.subarray(0, 1)]).toEqual([0b1000]);
    const v = new TextDecoder().decode(diff.body.subarray(2, 2 + diff.body[1]!));
    expect(v).toBe(compressFact({ id: 'x', s: 'U', t: 0, s1_id: 'a', s1_s: 'OK', s1_u: 'temperature', s1_v: 5 }).split(':')[1]!.replace('|', ''));
  });

  it('writes multi-byte masks big-endian, bit i for value i', () => {
    const { tx } = pair();
    const vals = Array.from({ length: 9 }, (_, i) => i + 10);
    tx.runEngine(body(vals));
    const next = vals.slice();
    next[0] = 99; // value index 1
    next[8] = 77; // value index 17
    const f = decodeFrame(tx.runEngine(body(next)));
    expect(f.cmd).toBe(170);
    // 18 values → 3 mask bytes; bits 1 and 17.
    expect([...f.body.subarray(0, 3)]).toEqual([0b10, 0, 0b10]);
  });

  it('FULL strategy resends the whole body each time', () => {
    const { tx } = pair();
    tx.runEngine(body([1]), 'FULL');
    const again = tx.runEngine(body([1]), 'FULL');
    expect(again[0]).toBe(63);
    expect(tx.runEngine(body([2]), 'FULL')[0]).toBe(63);
    // The registry followed the FULL frames: DIFF now sees value 2 as unchanged.
    expect(tx.runEngine(body([2]))[0]).toBe(127);
  });

  it('assigns a new template id per signature and reuses tid 1 past 255', () => {
    const { tx } = pair();
    const tids: number[] = [];
    for (let i = 1; i <= 257; i++) {
      const text = `42;NODE_A.1.AYvP5WgA|S${i}>K.A:cmwc|`;
      tids.push(decodeFrame(tx.runEngine(text)).tid);
    }
    expect(tids.slice(0, 255)).toEqual(Array.from({ length: 255 }, (_, i) => i + 1));
    expect(tids.slice(255)).toEqual([1, 1]);
    expect(tx.registry.get(42).templates.size).toBe(255);
  });

  it('refuses text that cannot become a frame, without touching the registry', () => {
    const { tx } = pair();
    for (const bad of ['garbage', 'x.y|', '', 'NODE.1.short|T>K.A:1|', 'NODE_A.1.AYvP5WgA|a:b>c|']) {
      expect(() => tx.runEngine(bad), bad).toThrow(FusionInputError);
    }
    expect(tx.hasTemplate()).toBe(false);
    expect(() => tx.runEngine(new Uint8Array([0x4e, 0xff, 0x2e]))).toThrow(FusionUtf8Error);
    // A lone surrogate outside the values only shows when the whole body is encoded for FULL.
    expect(() => tx.runEngine('42;N\ud800.1.AYvP5WgA|T1>K.A:1|')).toThrow(FusionUtf8Error);
    expect(tx.hasTemplate()).toBe(false);
    expect(() => tx.runEngine(body([1]), 'BOTH' as 'FULL')).toThrow(FusionInputError);
  });

  it('names the aid in every error', () => {
    const { tx } = pair();
    try {
      tx.runEngine('garbage');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FusionError);
      expect((e as FusionError).aid).toBe(42);
      expect((e as FusionError).message).toMatch(/^aid 42: /);
    }
  });

  it('sends a value longer than 255 bytes as FULL (a DIFF length byte cannot say it)', () => {
    const { tx, rx } = pair();
    rx.decompress(tx.runEngine('42;N.1.AYvP5WgA|T1>K.A:1|'));
    const long = `42;N.1.AYvP5WgA|T1>K.${'x'.repeat(300)}:1|`;
    const f = tx.runEngine(long);
    expect(f[0]).toBe(63);
    expect(rx.parse(f).error).toBeUndefined();
  });
});

describe('receiving', () => {
  it('decodes every frame of a stream to the fact the sender compressed', () => {
    const { tx, rx } = pair();
    for (const vals of [[1, 2], [1, 2], [1, 3], [4, 3], [4, 3]]) {
      const text = body(vals);
      const got = rx.decompress(tx.runEngine(text));
      const want = decompressBody(text);
      expect(withoutMeta(got)).toEqual(got.__packet_meta__.cmd === 63 ? want : { ...want, id: 'NODE_A' });
    }
  });

  it('rebuilds extras (geohash, url, msg) that ride in the signature', () => {
    const { tx, rx } = pair();
    const extra = { geohash: 'wx4g0ec1', url: 'https://example.com/x', msg: 'héllo' };
    rx.decompress(tx.runEngine(body([1], 1_700_000_000_000, extra)));
    const got = rx.decompress(tx.runEngine(body([2], 1_700_000_001_000, extra)));
    expect(got).toMatchObject({ id: 'NODE_A', geohash: 'wx4g0ec1', url: 'https://example.com/x', msg: 'héllo', s1_v: 2, t_raw: 1_700_000_001_000 });
  });

  it('answers DIFF/HEART for unknown templates with typed errors naming aid and tid', () => {
    const { tx, rx } = pair();
    tx.runEngine(body([1]));
    const heart = tx.runEngine(body([1]));
    const e = (() => {
      try {
        rx.decompress(heart);
      } catch (x) {
        return x;
      }
    })() as TemplateMissingError;
    expect(e).toBeInstanceOf(TemplateMissingError);
    expect(e).toMatchObject({ code: 'ERR_FUSION_TEMPLATE_MISSING', aid: 42, tid: 1, referenceText: 'Template 01 missing for 0x7F' });
    expect(rx.parse(heart)).toMatchObject({ error: 'Template 01 missing for 0x7F', __packet_meta__: { source_aid: 42, tid: '01' } });
  });

  it('refuses a DIFF whose mask or lengths point past its body, and keeps the old values', () => {
    const tx = new OSVisualFusionEngine({ localId: 42, clock: () => T0 });
    const rx = new OSVisualFusionEngine({ localId: 1, clock: () => T0 });
    rx.decompress(tx.runEngine(body([1])));
    // Hand-made DIFF bodies for the 2-value template, with correct CRCs.
    const frame = (b: number[]) => encode(170, 1, new Uint8Array(b));
    for (const b of [[], [0b10], [0b10, 5, 0x31], [0b11, 1, 0x4b]]) {
      expect(() => rx.decompress(frame(b)), JSON.stringify(b)).toThrow(DiffOverrunError);
    }
    expect(rx.decompress(tx.runEngine(body([1]))).s1_v).toBe(1);
  });

  it('reports a template whose values are unknown, and rebuilds one that has none', () => {
    const rx = new OSVisualFusionEngine({ localId: 1, clock: () => T0 });
    rx.registry.get(42).put(1, 'N.1.{TS}|', null);
    expect(() => rx.decompress(encode(127, 1, new Uint8Array(0)))).toThrow(NoCachedValuesError);
    rx.registry.get(42).put(2, 'N.1.{TS}|', []);
    expect(rx.decompress(encode(127, 2, new Uint8Array(0)))).toMatchObject({ id: 'N', s: 'ONLINE', t_raw: T0 });
  });

  it('rejects invalid UTF-8 by default and drops it when asked, as the reference does', () => {
    const text = new TextEncoder().encode(body([1]));
    const bad = new Uint8Array([...text.subarray(0, 5), 0xff, ...text.subarray(5)]);
    const strict = new OSVisualFusionEngine({ localId: 1, clock: () => T0 });
    expect(() => strict.decompress(encode(63, 1, bad))).toThrow(FusionUtf8Error);
    const lossy = new OSVisualFusionEngine({ localId: 1, clock: () => T0, invalidUtf8: 'drop' });
    expect(lossy.decompress(encode(63, 1, bad)).id).toBe('42;NODE_A');
  });

  it('stamps frames sent without a timestamp with the receiver clock in seconds, and gives timestampMs beside it', () => {
    const rx = new OSVisualFusionEngine({ localId: 1, clock: () => 1_700_000_123_750 });
    const got = rx.decompress(encode(63, 1, new TextEncoder().encode(body([1])), 0));
    // timestamp_raw as the reference gives it (seconds here), timestampMs always ms.
    expect(got.__packet_meta__).toMatchObject({ timestamp_raw: 1_700_000_123, server_stamped: true, timestampMs: 1_700_000_123_750, receiverStamped: true });
    // The same through parse (the error path too) and for a DIFF / HEART rebuilt from a template.
    const heart = rx.parse(encode(127, 1, new Uint8Array(0), 0));
    expect(heart.__packet_meta__).toMatchObject({ timestamp_raw: 1_700_000_123, timestampMs: 1_700_000_123_750, receiverStamped: true });
    expect(rx.parse(encode(127, 9, new Uint8Array(0), 0)).__packet_meta__).toMatchObject({ timestampMs: 1_700_000_123_750, receiverStamped: true });
  });

  it('gives the frame timestamp as timestampMs (ms, like timestamp_raw), rx_only nodes included', () => {
    const frame = encode(63, 1, new TextEncoder().encode(body([1])), 1_700_000_000_500);
    const rx = new OSVisualFusionEngine({ localId: 1, clock: () => T0 + 99_000 });
    expect(rx.parse(frame).__packet_meta__).toMatchObject({ timestamp_raw: 1_700_000_000_500, server_stamped: false, timestampMs: 1_700_000_000_500, receiverStamped: false });
    // rx_only (skipTimestamp): the reference reports 0; the frame's time is still there in ms.
    const rxOnly = new OSVisualFusionEngine({ localId: 1, clock: () => T0 + 99_000, skipTimestamp: true });
    expect(rxOnly.parse(frame).__packet_meta__).toMatchObject({ timestamp_raw: 0, server_stamped: false, timestampMs: 1_700_000_000_500, receiverStamped: false });
    expect(rxOnly.parse(encode(63, 1, new TextEncoder().encode(body([1])), 0)).__packet_meta__).toMatchObject({ timestamp_raw: 0, server_stamped: false, timestampMs: T0 + 99_000, receiverStamped: true });
  });

  it('encrypts when the security provider gives a key, and decodes with the receiver key', () => {
    const key = deriveSessionKey(42, T0);
    const tx = new OSVisualFusionEngine({ localId: 42, clock: () => T0, security: { keys: new Map(), getTxKey: () => key } });
    const rx = new OSVisualFusionEngine({ localId: 1, clock: () => T0, security: { keys: new Map([[42, key]]), getTxKey: () => null } });
    const f1 = tx.runEngine(body([1]));
    const f2 = tx.runEngine(body([2]));
    expect([f1[0], f2[0]]).toEqual([64, 171]);
    expect(rx.decompress(f1).s1_v).toBe(1);
    expect(rx.decompress(f2).s1_v).toBe(2);
    const nokey = new OSVisualFusionEngine({ localId: 1, clock: () => T0 });
    expect(nokey.parse(f1)).toMatchObject({ error: 'Missing secure key for aid=42' });
  });
});

describe('hostile input', () => {
  it('never throws from parse and only throws typed errors from decompress (random and mutated frames)', () => {
    const { tx } = pair();
    const seeds = [tx.runEngine(body([1, 2, 3])), tx.runEngine(body([1, 2, 4])), tx.runEngine(body([1, 2, 4]))];
    const rx = new OSVisualFusionEngine({ localId: 1, clock: () => T0, invalidUtf8: 'drop' });
    rx.parse(seeds[0]!);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }),
          fc.tuple(fc.constantFrom(...seeds), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([s, at, b]) => {
            const m = s.slice();
            m[at % m.length] = b;
            return reframe(m);
          }),
        ),
        (frame) => {
          const r = rx.parse(frame);
          if (r.error !== undefined) expect(r.cause instanceof FrameError || r.cause instanceof FusionError, String(r.error)).toBe(true);
          try {
            rx.decompress(frame);
          } catch (e) {
            expect(e instanceof FrameError || e instanceof FusionError, String(e)).toBe(true);
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });
});

// Helpers: hand-made frames with correct CRCs.

function encode(cmd: number, tid: number, b: Uint8Array, timestamp = T0): Uint8Array {
  return encodeFrame({ cmd, routes: 42, tid, timestamp, body: b });
}

/** Fixes the CRCs of a mutated frame so it reaches the fusion layer. */
function reframe(m: Uint8Array): Uint8Array {
  try {
    const rc = m[1]!;
    const p = 2 + 4 * rc;
    if (m.length < p + 10) return m;
    const cmd = m[0]!;
    const routes = Array.from({ length: rc }, (_, i) => ((m[2 + 4 * i]! << 24) | (m[3 + 4 * i]! << 16) | (m[4 + 4 * i]! << 8) | m[5 + 4 * i]!) >>> 0);
    const body = m.subarray(p + 7, m.length - 3);
    return encodeFrame({ cmd: [63, 170, 127].includes(cmd) ? cmd : 170, routes, tid: m[p]!, timestamp: T0, body });
  } catch {
    return m;
  }
}

