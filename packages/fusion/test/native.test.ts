import { DATA_DIFF } from '@opensynaptic/cmd';
import { encodeFrame } from '@opensynaptic/packet';
import { MemoryStore } from '@opensynaptic/store';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  backendInfo,
  DiffOverrunError,
  type FusionParseResult,
  type FusionStrategy,
  OSVisualFusionEngine,
  RegistryCache,
  type TemplateKinds,
} from '../src/index.js';
const { nativeAvailable, backends } = backendInfo();

const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 29 + 3) & 0xff);
const KEY2 = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 1) & 0xff);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const utf8 = (s: string) => new TextEncoder().encode(s);

it('has the native fusion steady state whenever CI builds the addon', () => {
  if (process.env.CI) expect(nativeAvailable).toBe(true);
  if (!nativeAvailable) console.log('native fusion tests skipped: @opensynaptic/binding is not built (pnpm --filter @opensynaptic/binding build)');
});

it('sends only the batch to the addon in auto mode', () => {
  if (process.env.OPENSYNAPTIC_CORE) return;
  expect(backends).toEqual({ runEngineBatch: nativeAvailable ? 'native' : 'ts', decompressBatch: 'ts' });
});

it('lists only the operations that have a native build, and forcing native routes each of them there', () => {
  const e = new OSVisualFusionEngine({ backend: nativeAvailable ? 'native' : 'ts' });
  expect(Object.keys(e.backends).sort()).toEqual(['decompressBatch', 'runEngineBatch']);
  if (nativeAvailable) expect(e.backends).toEqual({ runEngineBatch: 'native', decompressBatch: 'native' });
});

/** `bodies` back to back (UTF-8) with their offsets, for `runEngineBatch`. */
function packed(bodies: readonly string[]): [Uint8Array, Uint32Array] {
  const parts = bodies.map(utf8);
  const offsets = new Uint32Array(parts.length + 1);
  parts.forEach((p, i) => {
    offsets[i + 1] = offsets[i]! + p.length;
  });
  const buf = new Uint8Array(offsets[parts.length]!);
  for (let i = 0; i < parts.length; i++) buf.set(parts[i]!, offsets[i]!);
  return [buf, offsets];
}

/** The frame of one body sent as a batch of one (through the native sender on the native backend). */
function sendOne(e: OSVisualFusionEngine, body: string): Uint8Array {
  const r = e.runEngineBatch(...packed([body]));
  if (r.errors.length > 0) throw r.errors[0]!.error;
  return r.frames;
}

// ------------------------------------------------------------------ random bodies

const token = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('AYvP5WgA', 'AYvP5WgB', 'AAAAAAAA') },
  { weight: 1, arbitrary: fc.constantFrom('AYvP5W', 'AYvP5Wg=', 'AYvP5WgAxyz') },
);
const value = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('1', '2', 'cmwc', '-1G3C') },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(256), 'y'.repeat(255), 'é', '😀', '\ud800', '', 'a|b', '\x01') },
);
const sensor = fc.tuple(fc.constantFrom('S1', 'S2', 'T'), fc.constantFrom('OK.K', 'OK.Pa', 'U.é'), value).map(([s, m, v]) => `${s}>${m}:${v}`);
const segment = fc.oneof({ weight: 6, arbitrary: sensor }, { weight: 1, arbitrary: fc.constantFrom('&u4pruy', '#aHR0cA', '@aGk', 'S:x>y', '') });
const body = fc
  .tuple(fc.constantFrom('', '42;'), fc.constantFrom('D1', 'DEV'), fc.constantFrom('U', 'ONLINE'), token, fc.array(segment, { maxLength: 4 }), fc.boolean())
  .map(([p, id, st, tk, segs, bar]) => `${p}${id}.${st}.${tk}${bar || segs.length ? '|' : ''}${segs.map((x) => `${x}|`).join('')}`);
/** A body as a string or bytes (valid UTF-8, or with a stray byte), and the strategy to send it with. */
const step = fc.record({
  text: body,
  form: fc.oneof({ weight: 6, arbitrary: fc.constant('string' as const) }, { weight: 2, arbitrary: fc.constant('bytes' as const) }, { weight: 1, arbitrary: fc.constant('bad' as const) }),
  strategy: fc.oneof({ weight: 8, arbitrary: fc.constant<FusionStrategy>('DIFF') }, { weight: 1, arbitrary: fc.constant<FusionStrategy>('FULL') }),
  keyed: fc.constantFrom(0, 0, 0, 1, 2),
});
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function rawOf(s: Step): string | Uint8Array {
  if (s.form === 'string') return s.text;
  const b = utf8(s.text);
  if (s.form === 'bytes') return b;
  const bad = new Uint8Array(b.length + 1);
  bad.set(b);
  bad[b.length] = 0xff;
  return bad;
}

/** Outcome of a call as comparable data: the value, or the error's class, code and message. */
function outcome<T>(f: () => T): T | { threw: string } {
  try {
    return f();
  } catch (e) {
    const x = e as { name?: string; code?: string; message?: string };
    return { threw: `${x.name} ${x.code} ${x.message}` };
  }
}

function templates(e: OSVisualFusionEngine, aid = 42) {
  const r = e.registry.peek(aid);
  if (r === null) return null;
  return { recent: r.recent?.tid, t: [...r.templates.values()].map((t) => [t.tid, t.sig, t.values === null ? null : [...t.values]]) };
}

function plainResult(r: FusionParseResult) {
  const { cause, ...rest } = r;
  return { ...rest, cause: cause === undefined ? undefined : `${cause.name} ${cause.message}` };
}

describe.skipIf(!nativeAvailable && !process.env.CI)('native steady state (skipped only when the addon is not built)', () => {
  const engines = (backend: 'ts' | 'native', invalidUtf8: 'error' | 'drop', key: { current: Uint8Array | null }) => {
    const security = { keys: new Map([[42, KEY]]), getTxKey: () => key.current };
    return {
      tx: new OSVisualFusionEngine({ localId: 42, backend, invalidUtf8, clock: () => 1_700_000_000_000, security }),
      rx: new OSVisualFusionEngine({ localId: 1, backend, invalidUtf8, clock: () => 1_700_000_000_000, security }),
    };
  };

  it('makes the same frames, registries and facts as TypeScript for random sequences', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), fc.constantFrom<'error' | 'drop'>('error', 'drop'), (steps, invalidUtf8) => {
        const key = { current: null as Uint8Array | null };
        const ts = engines('ts', invalidUtf8, key);
        const nat = engines('native', invalidUtf8, key);
        expect(nat.tx.backend).toBe('native');
        for (const s of steps) {
          key.current = s.keyed === 0 ? null : s.keyed === 1 ? KEY : KEY2;
          const raw = rawOf(s);
          const a = outcome(() => ts.tx.runEngine(raw, s.strategy));
          const b = outcome(() => nat.tx.runEngine(raw, s.strategy));
          expect(b instanceof Uint8Array ? hex(b) : b).toEqual(a instanceof Uint8Array ? hex(a) : a);
          expect(templates(nat.tx)).toEqual(templates(ts.tx));
          if (a instanceof Uint8Array) {
            expect(plainResult(nat.rx.parse(a))).toEqual(plainResult(ts.rx.parse(a)));
            expect(templates(nat.rx)).toEqual(templates(ts.rx));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('batches make the frames runEngine makes one by one, errors per body', () => {
    fc.assert(
      fc.property(fc.array(fc.array(step, { maxLength: 30 }), { minLength: 1, maxLength: 4 }), fc.boolean(), (batches, keyed) => {
        const key = { current: keyed ? KEY : null };
        const one = engines('ts', 'error', key).tx;
        const ts = engines('ts', 'error', key).tx;
        const nat = engines('native', 'error', key).tx;
        for (const steps of batches) {
          const parts = steps.map((s) => (s.form === 'string' ? utf8(s.text) : (rawOf(s) as Uint8Array)));
          const offsets = new Uint32Array(parts.length + 1);
          parts.forEach((p, i) => {
            offsets[i + 1] = offsets[i]! + p.length;
          });
          const bodies = new Uint8Array(offsets[parts.length]!);
          for (let i = 0; i < parts.length; i++) bodies.set(parts[i]!, offsets[i]!);
          const expected: string[] = [];
          const failed: number[] = [];
          parts.forEach((p, i) => {
            const r = outcome(() => one.runEngine(p, 'DIFF'));
            if (r instanceof Uint8Array) expected.push(hex(r));
            else {
              failed.push(i);
              expected.push('');
            }
          });
          for (const e of [ts, nat]) {
            const r = e.runEngineBatch(bodies, offsets);
            const got = parts.map((_, i) => hex(r.frames.subarray(r.offsets[i]!, r.offsets[i + 1]!)));
            expect(got).toEqual(expected);
            expect(r.errors.map((x) => x.index)).toEqual(failed);
            expect(templates(e)).toEqual(templates(one));
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('keeps the registry exact when something else changes it between frames', async () => {
    const clock = () => 1_700_000_000_000;
    const shared = new RegistryCache({ clock });
    const ref = new OSVisualFusionEngine({ localId: 42, clock, backend: 'ts' });
    const nat = new OSVisualFusionEngine({ localId: 42, clock, backend: 'native', registry: shared });
    const other = new OSVisualFusionEngine({ localId: 42, clock, backend: 'ts', registry: shared });
    const bodies = ['D.U.AAAAAAAA|S1>OK.K:1|', 'D.U.AAAAAAAA|S1>OK.K:2|', 'D.U.AAAAAAAA|S1>OK.K:3|', 'D.U.AAAAAAAA|S2>OK.K:3|'];
    for (let i = 0; i < 60; i++) {
      const b = bodies[(i * 7) % (i % 5 === 0 ? 4 : 3)]!;
      const by = i % 3 === 0 ? other : nat; // the TypeScript engine edits the same arrays in place
      expect(hex(by === nat ? sendOne(nat, b) : by.runEngine(b))).toBe(hex(ref.runEngine(b)));
      expect(templates(nat)).toEqual(templates(ref));
    }
    // A registry that leaves the cache (saved to the store) and comes back as a new object.
    const store = new MemoryStore<TemplateKinds>({ kinds: ['templates'] });
    const small = new OSVisualFusionEngine({ localId: 42, clock, backend: 'native', registry: { store, maxEntries: 1, syncIntervalMs: 0 } });
    await small.registry.preload();
    const ref2 = new OSVisualFusionEngine({ localId: 42, clock, backend: 'ts' });
    const comeBack = async () => {
      small.registry.get(1000); // evicts aid 42
      expect(small.registry.find(42)).toBeNull(); // loads it behind
      await small.registry.settled();
      expect(small.registry.peek(42)).not.toBeNull();
    };
    for (let i = 0; i < 20; i++) {
      const b = bodies[i % 3]!;
      expect(hex(sendOne(small, b))).toBe(hex(ref2.runEngine(b)));
      await comeBack();
      const batch = utf8(b);
      expect(hex(small.runEngineBatch(batch, Uint32Array.of(0, batch.length)).frames)).toBe(hex(ref2.runEngine(b)));
      await comeBack();
    }
  });

  it('stays exact while bodies alternate shapes (the rest of a batch then goes through TypeScript) and after', () => {
    const key = { current: null as Uint8Array | null };
    const ts = engines('ts', 'error', key).tx;
    const nat = engines('native', 'error', key).tx;
    const shapes = ['D.U.AAAAAAAA|S1>OK.K:{}|', 'D.U.AAAAAAAA|S2>OK.K:{}|S3>a:b|', 'D.U.AAAAAAAA|S1>OK.K:{}|&x|'];
    for (let round = 0; round < 6; round++) {
      // Alternating shapes first, then one shape again (steady state through the addon).
      const bodies = Array.from({ length: 50 }, (_, j) => {
        const i = round * 50 + j;
        return shapes[i < 200 ? i % 3 : 0]!.replace('{}', String(i % 5));
      });
      const want = bodies.map((b) => hex(ts.runEngine(b)));
      const r = nat.runEngineBatch(...packed(bodies));
      expect(bodies.map((_, i) => hex(r.frames.subarray(r.offsets[i]!, r.offsets[i + 1]!)))).toEqual(want);
      expect(templates(nat)).toEqual(templates(ts));
    }
  });

  it('re-encrypts when the session key changes between frames', () => {
    const key = { current: null as Uint8Array | null };
    const ts = engines('ts', 'error', key).tx;
    const nat = engines('native', 'error', key).tx;
    const bodies = ['D.U.AAAAAAAA|S1>OK.K:1|', 'D.U.AAAAAAAA|S1>OK.K:2|'];
    const keys = [null, KEY, KEY, KEY2, Uint8Array.from(KEY2), new Uint8Array(0), KEY];
    for (let i = 0; i < 28; i++) {
      key.current = keys[i % keys.length]!;
      expect(hex(sendOne(nat, bodies[i % 2]!))).toBe(hex(ts.runEngine(bodies[i % 2]!)));
    }
    // The key object mutated in place between frames.
    const k = Uint8Array.from(KEY);
    key.current = k;
    for (let i = 0; i < 6; i++) {
      k[0] = i;
      expect(hex(sendOne(nat, bodies[i % 2]!))).toBe(hex(ts.runEngine(bodies[i % 2]!)));
    }
  });

  it('decompressBatch gives what parse gives frame by frame', () => {
    const key = { current: null as Uint8Array | null };
    const tx = engines('ts', 'error', key).tx;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 30; i++) {
      key.current = i % 7 === 3 ? KEY : null;
      const f = tx.runEngine(`D.U.AAAAAAAA|S1>OK.K:${i % 4}|S2>OK.K:${i % 3}|`);
      frames.push(f);
      if (i % 9 === 4) frames.push(f.slice(0, f.length - 1), Uint8Array.of(1, 2, 3), encodeFrame({ cmd: DATA_DIFF, routes: 42, tid: 1, timestamp: 1, body: Uint8Array.of(3, 9) }));
    }
    const offsets = new Uint32Array(frames.length + 1);
    frames.forEach((f, i) => {
      offsets[i + 1] = offsets[i]! + f.length;
    });
    const buf = new Uint8Array(offsets[frames.length]!);
    for (let i = 0; i < frames.length; i++) buf.set(frames[i]!, offsets[i]!);
    const one = engines('ts', 'error', key).rx;
    const expected = frames.map((f) => plainResult(one.parse(f)));
    for (const backend of ['ts', 'native'] as const) {
      const rx = engines(backend, 'error', key).rx;
      expect(rx.decompressBatch(buf, offsets).map(plainResult)).toEqual(expected);
    }
  });

  it('raises the typed DIFF errors on the native backend, with the TypeScript text', () => {
    const key = { current: null as Uint8Array | null };
    const tx = engines('ts', 'error', key).tx;
    const full = tx.runEngine('D.U.AAAAAAAA|S1>OK.K:1|S2>OK.K:2|S3>a:b|S4>c:d|S5>e:f|');
    const good = tx.runEngine('D.U.AAAAAAAA|S1>OK.K:5|S2>OK.K:2|S3>a:b|S4>c:d|S5>e:f|');
    const diff = (body: number[]) => encodeFrame({ cmd: DATA_DIFF, routes: 42, tid: 1, timestamp: 1, body: Uint8Array.from(body) });
    const hostile = [
      [1], // 10 values need a 2-byte mask
      [0, 3, 1, 0x41], // marks values 0 and 1, only one is there
      [0, 1, 5, 0x41], // value 0 claims 5 bytes
      [0, 3, 1, 0xff, 9], // value 0 is not UTF-8, value 1 overruns: the UTF-8 error comes first
      [0x02, 0, 1, 0x41, 9, 9], // fine: trailing bytes ignored
      [0xfc, 0, 0], // bits past the count ignored: nothing changed
    ];
    const results = (backend: 'ts' | 'native') => {
      const rx = engines(backend, 'error', key).rx;
      rx.decompress(full);
      rx.decompress(good);
      return hostile.map((b) => {
        const r = outcome(() => rx.decompress(diff(b)));
        return 'threw' in r ? r.threw : JSON.stringify(r);
      });
    };
    const ts = results('ts');
    expect(results('native')).toEqual(ts);
    expect(ts[0]).toBe('DiffOverrunError ERR_FUSION_DIFF_OVERRUN aid 42, tid 1: the 2-byte mask for 10 values is cut short (1 bytes)');
    expect(ts[1]).toMatch(/^DiffOverrunError .*the mask marks value 1 but the body ends at byte 4$/);
    expect(ts[2]).toMatch(/^DiffOverrunError .*value 0 claims 5 bytes but 1 remain$/);
    expect(ts[3]).toMatch(/^FusionUtf8Error .*value 0 is not valid UTF-8/);
    const rx = engines('native', 'error', key).rx;
    rx.decompress(full);
    rx.decompress(good);
    expect(() => rx.decompress(diff([0, 1, 5, 0x41]))).toThrow(DiffOverrunError);
    // Nothing was learned from the failed frames.
    expect(rx.decompress(diff([0, 1, 1, 0x37])).s1_id).toBe('S1');
  });
});
