import { BodyTextError, compressFact, decompressBody, type FactInput } from '@opensynaptic/packet/body';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backendInfo, FusionInputError, OSVisualFusionEngine } from '../src/index.js';
const { nativeAvailable } = backendInfo();

const backends = nativeAvailable ? (['ts', 'native'] as const) : (['ts'] as const);

/** Text rich in what the body and the fusion template treat specially, plus any code point. */
const piece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('\x00', '\x01', '\x02', '{TS}', '{', 'TS}', '.', ':', '>', ';', '&', '#', '|', '@', ' ', '\t', '\u3000', 'é', '😀', '1', 'a', 'OK', 'Pa', 'k', '/', ',') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }) },
);
const text = fc.array(piece, { maxLength: 4 }).map((p) => p.join(''));
const sensorMeta = fc.record({ s: text, u: text, v: fc.integer({ min: -1_000_000, max: 1_000_000 }) });
const factShape = fc.record({
  id: text,
  s: text,
  sids: fc.array(text, { minLength: 0, maxLength: 3 }),
  geohash: fc.option(text, { nil: undefined }),
  url: fc.option(text, { nil: undefined }),
  msg: fc.option(text, { nil: undefined }),
});

type Shape = typeof factShape extends fc.Arbitrary<infer T> ? T : never;

function fact(shape: Shape, metas: { s: string; u: string; v: number }[], t: number): FactInput {
  const f: Record<string, unknown> = { id: shape.id, s: shape.s, t };
  shape.sids.forEach((sid, i) => {
    const m = metas[i]!;
    Object.assign(f, { [`s${i + 1}_id`]: sid, [`s${i + 1}_s`]: m.s, [`s${i + 1}_u`]: m.u, [`s${i + 1}_v`]: m.v / 100 });
  });
  for (const k of ['geohash', 'url', 'msg'] as const) if (shape[k] !== undefined) f[k] = shape[k];
  return f as unknown as FactInput;
}

/** compressFact's text, or `null` when it refuses the fact (with its typed error). */
function compress(f: FactInput): string | null {
  try {
    return compressFact(f);
  } catch (e) {
    if (e instanceof BodyTextError) return null;
    throw e;
  }
}

function withoutMeta(f: object): Record<string, unknown> {
  const { __packet_meta__: _, ...rest } = f as Record<string, unknown>;
  return rest;
}

for (const backend of backends) {
  describe(`${backend}: whatever compressFact accepts, the receiver reads back`, () => {
    it('in FULL, then DIFF, then HEART: each decode is what the body text sent for it says', () => {
      fc.assert(
        fc.property(factShape, fc.array(sensorMeta, { minLength: 3, maxLength: 3 }), fc.array(sensorMeta, { minLength: 3, maxLength: 3 }), (shape, m1, m2) => {
          const b1 = compress(fact(shape, m1, 1_700_000_000));
          const b2 = compress(fact(shape, m2, 1_700_000_001));
          if (b1 === null || b2 === null) return;
          const tx = new OSVisualFusionEngine({ localId: 42, backend });
          const rx = new OSVisualFusionEngine({ localId: 1, backend });
          // FULL carries the "42;" prefix; DIFF and HEART rebuild the text without it, as the reference does.
          expect(withoutMeta(rx.decompress(tx.runEngine(`42;${b1}`, 'FULL')))).toEqual(decompressBody(`42;${b1}`));
          const f2 = tx.runEngine(`42;${b2}`, 'DIFF');
          const want2 = f2[0] === 63 ? decompressBody(`42;${b2}`) : decompressBody(b2);
          expect(withoutMeta(rx.decompress(f2))).toEqual(want2);
          const f3 = tx.runEngine(`42;${b2}`, 'DIFF');
          expect(f3[0]).toBe(127);
          expect(withoutMeta(rx.decompress(f3))).toEqual(decompressBody(b2));
        }),
        { numRuns: 400 },
      );
    });

    it('refuses, naming the field, the marks the template could not give back', () => {
      const base: FactInput = { id: 'DEV', s: 'ONLINE', t: 1_700_000_000, s1_id: 'T1', s1_s: 'OK', s1_u: 'Pa', s1_v: 1, geohash: 'u4pruy' };
      const cases: [keyof FactInput & string, string][] = [
        ['id', 'a\x01b'],
        ['id', 'a{TS}b'],
        ['s', 'a\x01b'],
        ['s', '{TS}'],
        ['s1_id', 'T\x01'],
        ['s1_id', 'T{TS}'],
        ['s1_s', 'O\x01K'],
        ['s1_u', 'P\x01a'],
        ['geohash', 'u{TS}'],
        ['geohash', 'a:b>c'],
        ['geohash', '>\x01:'],
      ];
      for (const [field, v] of cases) {
        expect(() => compressFact({ ...base, [field]: v })).toThrow(expect.objectContaining({ code: 'ERR_BODY_SEPARATOR', field }));
      }
      // What reads back is still sent: {TS} in a sensor's state or unit, \x01 in a geohash not cut as a sensor.
      for (const [field, v] of [['s1_s', 'a{TS}'], ['s1_u', '{TS}'], ['geohash', 'u\x01']] as const) {
        expect(typeof compressFact({ ...base, [field]: v })).toBe('string');
      }
    });

    it('the fusion sender refuses raw text whose template the receiver could not rebuild, and sends what it can', () => {
      const refused = ['42;a\x01b.U.AAAAAAAA|T>K:1|', '42;D.U.AAAAAAAA|T\x01>K:1|', '42;D.U.AAAAAAAA|&x\x01|T>K:1|', '42;a{TS}.U.AAAAAAAA|T>K:1|', '42;D.U.AAAAAAAA|T>K:1|&{TS}|'];
      for (const text of refused) {
        const tx = new OSVisualFusionEngine({ localId: 42, backend });
        expect(() => tx.runEngine(text)).toThrow(FusionInputError);
        expect(tx.hasTemplate(42)).toBe(false);
      }
      // \x01 after the last value mark, or with no sensors at all, comes back as it is.
      for (const [text, next] of [
        ['42;D.U.AAAAAAAA|T>K:1|&x\x01|', '42;D.U.AAAAAAAB|T>K:2|&x\x01|'],
        ['42;a\x01b.U.AAAAAAAA|&g|', '42;a\x01b.U.AAAAAAAB|&g|'],
      ] as const) {
        const tx = new OSVisualFusionEngine({ localId: 42, backend });
        const rx = new OSVisualFusionEngine({ localId: 1, backend });
        expect(withoutMeta(rx.decompress(tx.runEngine(text)))).toEqual(decompressBody(text));
        const f = tx.runEngine(next);
        expect(f[0]).not.toBe(63);
        expect(withoutMeta(rx.decompress(f))).toEqual(decompressBody(next.slice(3)));
      }
    });
  });
}
