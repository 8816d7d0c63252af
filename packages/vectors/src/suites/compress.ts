import { compressFact, decompressBody, type FactInput } from '@opensynaptic/packet/body';
import type { Suite } from '../types.js';
import { Checker, isOurError, referenceTime, same } from '../util.js';

/** The clock the reference recorded these cases with, unless a case gives its own. */
const VECTOR_CLOCK = 1_700_000_000;

function sameRecord(a: Record<string, unknown>, b: Record<string, unknown>): string | null {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!same(a[k], b[k])) return `${k}: got ${JSON.stringify(a[k])}, expected ${JSON.stringify(b[k])}`;
  return null;
}

/** compress.json: fact → body text → fact (the body codec has one implementation for both backends). */
export const compressSuite: Suite = {
  kind: 'compress',
  sniff: (f) => f.cases.some((c) => 'compressed' in c.input || 'fact' in c.input),
  run(file) {
    return file.cases.map((c) => {
      const i = c.input as { fact?: FactInput; clock?: number; compressed?: string };
      const e = c.expected as {
        compressed?: string;
        compress_raises?: unknown;
        decompressed?: Record<string, unknown>;
        decompressed_types?: Record<string, string>;
        decompress_raises?: unknown;
      };
      const k = new Checker();
      if (i.fact) {
        const clockMs = referenceTime.clockMs(i.clock ?? VECTOR_CLOCK);
        // The reference's compressor guesses the unit of t; ours takes ms.
        const fact = 't' in i.fact ? { ...i.fact, t: referenceTime.tMs(i.fact.t) } : i.fact;
        const run = () => compressFact(fact, { nowMs: () => clockMs });
        if (e.compress_raises) k.throws('compress', run, isOurError);
        else k.eq('compress', run, e.compressed);
      }
      const text = i.compressed ?? e.compressed;
      if (text !== undefined && (e.decompressed || e.decompress_raises)) {
        if (e.decompress_raises) {
          k.throws('decompress', () => decompressBody(text), isOurError);
        } else {
          try {
            const got = decompressBody(text) as unknown as Record<string, unknown>;
            const diff = sameRecord(got, e.decompressed!);
            if (diff) k.fail(`decompress ${diff}`);
            // The same text as UTF-8 bytes decodes the same.
            const fromBytes = sameRecord(decompressBody(new TextEncoder().encode(text)) as unknown as Record<string, unknown>, got);
            if (fromBytes) k.fail(`decompress of the UTF-8 bytes ${fromBytes}`);
            for (const [key, type] of Object.entries(e.decompressed_types ?? {})) {
              if (type === 'int' && !Number.isInteger(got[key])) k.fail(`decompress ${key}: expected an integer`);
            }
          } catch (x) {
            k.fail(`decompress threw ${(x as Error).message}`);
          }
        }
      }
      return k.result(c.id);
    });
  },
};
