/**
 * The DIFF/HEART decode that skips text must give exactly what rebuilding the text and decoding
 * it gives (the reference's way), for any template and any value bytes, or the same error.
 */
import { encodeFrame, encodeTimestampToken } from '@opensynaptic/packet';
import { decompressBody } from '@opensynaptic/packet/body';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OSVisualFusionEngine, rebuild } from '../src/index.js';

const T0 = 1_700_000_000_000;
const TOKEN = encodeTimestampToken(T0);

/** Decodes `values` the reference's way: rebuild the text, decode it. */
function oracle(sig: string, values: string[]): { ok: true; fact: unknown } | { ok: false } {
  try {
    return { ok: true, fact: decompressBody(rebuild(sig, TOKEN, values)) };
  } catch {
    return { ok: false };
  }
}

const textChar = fc.constantFrom(...'abcXYZ019._-&#@>:|'.split(''), '\x01', 'é');
const word = (chars: fc.Arbitrary<string>, max: number) => fc.array(chars, { minLength: 0, maxLength: max }).map((a) => a.join(''));
const b62 = word(fc.constantFrom(...'0123456789abcdefXYZ-'.split('')), 6);
const unitish = word(fc.constantFrom(...'KAZ1.temprau'.split('')), 8);

/** A body text whose shape varies: sensors, extras, odd tags. */
const bodyText = fc
  .record({
    id: word(fc.constantFrom(...'NODEA_1'.split('')), 6).filter((s) => s.length > 0),
    state: fc.constantFrom('1', '0', 'K', 'U', 'x.y'),
    sensors: fc.array(fc.record({ tag: word(textChar, 4), meta: unitish, val: b62 }), { minLength: 0, maxLength: 10 }),
    extras: fc.array(fc.constantFrom('&wx4g0ec1', '#ZXhhbXBsZS5jb20', '@aGk', '@!!', 'junk', '#@@'), { maxLength: 2 }),
  })
  .map(({ id, state, sensors, extras }) => {
    const segs = sensors.filter((s) => !s.tag.includes('|') && !s.tag.includes('>')).map((s) => `${s.tag}>${s.meta}:${s.val}`);
    return `42;${id}.${state}.${TOKEN}|${[...segs, ...extras].join('|')}|`;
  });

function run(sender: OSVisualFusionEngine, text: string): Uint8Array | null {
  try {
    return sender.runEngine(text);
  } catch {
    return null;
  }
}

describe('fast DIFF/HEART decode', () => {
  it('matches rebuild-and-decode for random templates and value changes', () => {
    fc.assert(
      fc.property(bodyText, fc.array(fc.tuple(fc.nat(), b62, unitish), { maxLength: 6 }), (text, changes) => {
        const tx = new OSVisualFusionEngine({ localId: 42, clock: () => T0 });
        const rx = new OSVisualFusionEngine({ localId: 1, clock: () => T0 });
        const full = run(tx, text);
        if (!full) return;
        rx.parse(full);
        let current = text;
        for (const [at, val, meta] of changes) {
          // Change one sensor's meta or value in the text and send it again.
          const parts = current.split('|');
          const idx = 1 + (at % Math.max(1, parts.length - 2));
          const seg = parts[idx];
          if (seg?.includes('>') && seg.includes(':')) {
            const colon = seg.lastIndexOf(':');
            const gt = seg.indexOf('>');
            parts[idx] = at % 2 ? `${seg.slice(0, colon)}:${val}` : `${seg.slice(0, gt)}>${meta}:${seg.slice(colon + 1)}`;
          }
          current = parts.join('|');
          const frame = run(tx, current);
          if (!frame || frame[0] === 63) {
            if (frame) rx.parse(frame);
            continue;
          }
          const got = rx.parse(frame);
          const t = rx.registry.find(42)?.templates.get(frame[6]!);
          if (!t?.values) throw new Error('receiver lost the template');
          const want = oracle(t.sig, t.values);
          if (want.ok) {
            const { __packet_meta__: _m, ...fact } = got;
            expect(fact).toEqual(want.fact);
            expect(Object.keys(fact)).toEqual(Object.keys(want.fact as object));
            // Each fact is the caller's own: changing it must not reach the next one.
            got.id = 'CHANGED';
            for (const k of Object.keys(got)) if (k.endsWith('_v')) got[k] = Number.NaN;
          } else expect(got.error).toBeDefined();
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('matches rebuild-and-decode for hand-made DIFF values holding separators', () => {
    const text = `42;NODE.1.${TOKEN}|T1>K.A:1|T2>K.9:2|&wx4g|@aGk|`;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), word(textChar, 5)), { minLength: 1, maxLength: 4 }), (edits) => {
        const tx = new OSVisualFusionEngine({ localId: 42, clock: () => T0 });
        const rx = new OSVisualFusionEngine({ localId: 1, clock: () => T0, invalidUtf8: 'drop' });
        rx.parse(tx.runEngine(text));
        let mask = 0;
        const chunks: number[] = [];
        const seen = new Set<number>();
        for (const [i, v] of edits.sort((a, b) => a[0] - b[0])) {
          if (seen.has(i)) continue;
          seen.add(i);
          mask |= 1 << i;
          const b = new TextEncoder().encode(v);
          chunks.push(b.length, ...b);
        }
        const body = new Uint8Array([mask, ...chunks]);
        const got = rx.parse(encodeFrame({ cmd: 170, routes: 42, tid: 1, timestamp: T0, body }));
        const t = rx.registry.find(42)?.templates.get(1);
        const want = oracle(t!.sig, t!.values!);
        if (want.ok) {
          const { __packet_meta__: _m, ...fact } = got;
          expect(fact).toEqual(want.fact);
        } else expect(got.error).toBeDefined();
      }),
      { numRuns: 3000 },
    );
  });

  it('sender: matching the last template\'s shape sends what decomposing the text sends', () => {
    const mutate = fc.tuple(fc.nat(), fc.constantFrom('', '|', '||', '.', ':', '>', 'x', ';', 'T1>K.A:', '|Q>Z:1')).map(([at, ins]) => (t: string) => {
      const i = at % (t.length + 1);
      return t.slice(0, i) + ins + t.slice(i);
    });
    // Value changes keep the shape (the path under test); inserts mostly break it.
    const revalue = fc.tuple(fc.nat(), b62).map(([k, v]) => (t: string) => {
      let seen = 0;
      return t.replace(/:([^|:]*)\|/g, (all) => (seen++ === k % 4 ? `:${v}|` : all));
    });
    const cut = fc.nat().map((at) => (t: string) => {
      const i = at % Math.max(1, t.length);
      return t.slice(0, i) + t.slice(i + 1);
    });
    fc.assert(
      fc.property(bodyText, fc.array(fc.oneof(revalue, revalue, mutate, cut), { maxLength: 8 }), (text, edits) => {
        const a = new OSVisualFusionEngine({ localId: 42, clock: () => T0 });
        const b = new OSVisualFusionEngine({ localId: 42, clock: () => T0 });
        let current = text;
        for (const edit of [(t: string) => t, ...edits]) {
          current = edit(current);
          const reg = b.registry.find(42);
          if (reg) reg.recent = null; // b always decomposes in full
          const fa = run(a, current);
          const fb = run(b, current);
          expect(fa === null ? null : Array.from(fa)).toEqual(fb === null ? null : Array.from(fb));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
