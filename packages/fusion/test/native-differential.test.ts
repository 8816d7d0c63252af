/**
 * Native against TypeScript, frame by frame, over traffic of every size from 0 to 64 KiB and past
 * it: FULL / DIFF / HEART frames from several devices and templates (plain and secure, with and
 * without the receiver's key), damaged frames, frames with valid CRCs around random bodies, and
 * oversized ones. Both senders must build the same frames, and both receivers must give the same
 * fact or the same typed error for each, so a native receiver left in a bad state by one frame
 * shows on the next.
 *
 * CI runs a few dozen sequences (a few seconds). For a longer run:
 *   FUSION_DIFF_RUNS=2000 npx vitest run test/native-differential.test.ts   (in packages/fusion)
 * and FUSION_DIFF_SEED=<seed> to replay a reported failure.
 */
import { DATA_DIFF, DATA_FULL, DATA_HEART } from '@opensynaptic/cmd';
import { seededRandom } from '@opensynaptic/config/kill-loop';
import { encodeFrame } from '@opensynaptic/packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backendInfo, type FusionStrategy, OSVisualFusionEngine } from '../src/index.js';
const { nativeAvailable } = backendInfo();

const NOW = 1_700_000_000_000;
const KEY = Uint8Array.from({ length: 32 }, (_, i) => (i * 29 + 3) & 0xff);
const KEY_UNKNOWN = Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + 1) & 0xff);
/** 42-44 plain, 45 secure with a key the receiver has, 46 secure with one it lacks. */
const AIDS = [42, 43, 44, 45, 46] as const;
const TX_KEYS = new Map<number, Uint8Array>([
  [45, KEY],
  [46, KEY_UNKNOWN],
]);
const RUNS = Number(process.env.FUSION_DIFF_RUNS ?? 60);
const SEED = process.env.FUSION_DIFF_SEED === undefined ? undefined : Number(process.env.FUSION_DIFF_SEED);
const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Sizes from 0 to 64 KiB, most of them small (a 64 KiB body costs milliseconds per decode). */
const size = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 64 }) },
  { weight: 3, arbitrary: fc.integer({ min: 65, max: 9000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 9001, max: 65536 }) },
);
/** A few fixed sizes, so that bodies of one template repeat (DIFF / HEART of large templates). */
const fixedSize = fc.constantFrom(0, 1, 2, 3, 4093, 8191, 8192, 30001, 65535);
const value = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('1', '2', 'cmwc', '-1G3C', '0', 'zz') },
  // Too long for a DIFF length byte (FULL instead), and out of the wire's range (a typed error).
  { weight: 1, arbitrary: fc.constantFrom('1'.repeat(255), '2'.repeat(256), 'x'.repeat(300)) },
);

const send = fc.record({
  kind: fc.constant('send' as const),
  aid: fc.constantFrom(...AIDS),
  /** Where the size goes: trailing empty segments, a long device id, or many sensors. */
  pad: fc.constantFrom('bars' as const, 'id' as const, 'sensors' as const),
  n: fc.oneof({ weight: 1, arbitrary: size }, { weight: 2, arbitrary: fixedSize }),
  values: fc.array(value, { minLength: 1, maxLength: 4 }),
  token: fc.constantFrom('AYvP5WgA', 'AYvP5WgB', 'AAAAAAAB'),
  strategy: fc.constantFrom<FusionStrategy>('DIFF', 'DIFF', 'DIFF', 'FULL'),
});
/** The last body sent again, with new values (DIFF) or the same (HEART), maybe from another device. */
const again = fc.record({
  kind: fc.constant('again' as const),
  values: fc.option(fc.array(value, { minLength: 1, maxLength: 4 })),
  aid: fc.option(fc.constantFrom(...AIDS), { freq: 4 }),
});
/** The last frame, damaged: a byte changed, cut short, or with bytes added. */
const damage = fc.record({
  kind: fc.constant('damage' as const),
  how: fc.constantFrom('flip' as const, 'cut' as const, 'grow' as const),
  at: fc.nat(),
  extra: size,
});
/** A frame with valid CRCs around a random body: the parse goes past the frame checks. */
const raw = fc.record({
  kind: fc.constant('raw' as const),
  cmd: fc.constantFrom(DATA_FULL, DATA_DIFF, DATA_HEART),
  aid: fc.constantFrom(...AIDS),
  tid: fc.constantFrom(1, 2, 3, 128, 255),
  n: size,
  seed: fc.integer(),
  text: fc.boolean(),
});
/** Past 64 KiB (the native io bound): a FULL frame with a large body. */
const oversized = fc.record({ kind: fc.constant('big' as const), aid: fc.constantFrom(...AIDS), n: fc.integer({ min: 65537, max: 90000 }) });
const step = fc.oneof({ weight: 10, arbitrary: send }, { weight: 10, arbitrary: again }, { weight: 3, arbitrary: damage }, { weight: 3, arbitrary: raw }, { weight: 1, arbitrary: oversized });
type Step = typeof step extends fc.Arbitrary<infer T> ? T : never;

function body(s: Extract<Step, { kind: 'send' }>): string {
  const head = `D${s.aid}${s.pad === 'id' ? 'd'.repeat(s.n) : ''}.U.${s.token}|`;
  const v = (i: number) => s.values[i % s.values.length]!;
  if (s.pad === 'sensors') {
    // About n bytes of sensors (`Snnn>OK.K:v|`), one signature per count.
    const parts: string[] = [];
    for (let i = 0, len = 0; len < s.n; i++) {
      const p = `S${i}>OK.K:${v(i)}|`;
      parts.push(p);
      len += p.length;
    }
    return head + parts.join('');
  }
  return `${head}S1>OK.K:${v(0)}|S2>OK.Pa:${v(1)}|${s.pad === 'bars' ? '|'.repeat(s.n) : ''}`;
}

function bytesOf(n: number, seed: number): Uint8Array {
  // `| 1` and the low byte of the state keep the bytes of earlier versions, so old seeds replay.
  const rnd = seededRandom(seed | 1);
  return Uint8Array.from({ length: n }, () => Math.floor(rnd() * 2 ** 32) & 0xff);
}

/** What a call gave, as comparable data: the result, or the typed error's name and code. */
function outcome<T>(f: () => T): { ok: T } | { name: string; code: string } {
  try {
    return { ok: f() };
  } catch (e) {
    const x = e as { name?: string; code?: unknown };
    // Never a plain RangeError / TypeError: every failure is typed, with a code.
    expect(typeof x.code, `untyped ${String(e)}`).toBe('string');
    return { name: String(x.name), code: String(x.code) };
  }
}

const frameOutcome = (r: ReturnType<typeof outcome<Uint8Array>>) => ('ok' in r ? { ok: hex(r.ok) } : r);

function templates(e: OSVisualFusionEngine) {
  return AIDS.map((aid) => {
    const r = e.registry.peek(aid);
    return r === null ? null : [...r.templates.values()].map((t) => [t.tid, t.sig, t.values === null ? null : [...t.values]]);
  });
}

describe.skipIf(!nativeAvailable && !process.env.CI)('native against TypeScript, frames of random sizes (issue 8, item 1)', () => {
  const senders = (backend: 'ts' | 'native') =>
    new Map(
      AIDS.map((aid) => [
        aid,
        new OSVisualFusionEngine({
          localId: aid,
          backend,
          clock: () => NOW,
          security: { keys: new Map(), getTxKey: () => TX_KEYS.get(aid) ?? null },
        }),
      ]),
    );
  const receiver = (backend: 'ts' | 'native') =>
    new OSVisualFusionEngine({ localId: 1, backend, clock: () => NOW, security: { keys: new Map([[45, KEY]]), getTxKey: () => null } });

  it('gives the same frame, fact or error code for every frame', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 30 }), (steps) => {
        const tx = { ts: senders('ts'), native: senders('native') };
        const rx = { ts: receiver('ts'), native: receiver('native') };
        let lastSend: Extract<Step, { kind: 'send' }> | null = null;
        let last = encodeFrame({ cmd: DATA_FULL, routes: 42, tid: 1, timestamp: 1, body: utf8('D.U.AYvP5WgA|') });
        for (const s of steps) {
          let frame: Uint8Array | null = null;
          if (s.kind === 'send' || s.kind === 'again') {
            if (s.kind === 'again' && lastSend === null) continue;
            const sent: Extract<Step, { kind: 'send' }> =
              s.kind === 'send' ? s : { ...lastSend!, strategy: 'DIFF', values: s.values ?? lastSend!.values, aid: s.aid ?? lastSend!.aid };
            lastSend = sent;
            const text = body(sent);
            const a = outcome(() => tx.ts.get(sent.aid)!.runEngine(text, sent.strategy));
            const b = outcome(() => tx.native.get(sent.aid)!.runEngine(text, sent.strategy));
            expect(frameOutcome(b)).toEqual(frameOutcome(a));
            if ('ok' in a) frame = a.ok;
          } else if (s.kind === 'damage') {
            const f = last.slice();
            if (s.how === 'flip') f[s.at % f.length]! ^= 1 + (s.at % 255);
            frame = s.how === 'flip' ? f : s.how === 'cut' ? f.subarray(0, s.at % f.length) : Uint8Array.from([...f, ...bytesOf(s.extra, s.at)]);
          } else if (s.kind === 'raw') {
            const b = s.text ? utf8(`D${s.aid}.U.AYvP5WgA|${Buffer.from(bytesOf(s.n, s.seed)).toString('latin1')}`) : bytesOf(s.n, s.seed);
            frame = encodeFrame({ cmd: s.cmd, routes: s.aid, tid: s.tid, timestamp: NOW, body: b, key: TX_KEYS.get(s.aid) ?? null });
          } else {
            frame = encodeFrame({ cmd: DATA_FULL, routes: s.aid, tid: 7, timestamp: NOW, body: utf8(`D${s.aid}.U.AYvP5WgA|S1>OK.K:1|${'|'.repeat(s.n)}`) });
          }
          if (frame === null) continue;
          last = frame;
          expect(outcome(() => rx.native.decompress(frame))).toEqual(outcome(() => rx.ts.decompress(frame)));
        }
        expect(templates(rx.native)).toEqual(templates(rx.ts));
        expect(templates(tx.native.get(42)!)).toEqual(templates(tx.ts.get(42)!));
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    // A time limit for a loaded machine (about 50 ms per sequence here), not a measurement.
  }, 30_000 + 500 * RUNS);
});
