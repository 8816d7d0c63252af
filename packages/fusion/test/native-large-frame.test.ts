import { DATA_FULL } from '@opensynaptic/cmd';
import { encodeFrame } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { backendInfo, type FusionParseResult, OSVisualFusionEngine } from '../src/index.js';
const { nativeAvailable } = backendInfo();

const T0 = 0x018bcfe56800;
const NOW = 1_700_000_000_000;
const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** The 8,211-byte FULL frame of the issue: aid 7, tid 1, body `D.1.AYvP5WgA|` and 8,182 `|`. */
function largeFrame(pipes = 8182): Uint8Array {
  return encodeFrame({ cmd: DATA_FULL, routes: 7, tid: 1, timestamp: T0, body: utf8(`D.1.AYvP5WgA|${'|'.repeat(pipes)}`) });
}

/** A good frame (aid 42, tid 128): the header and body length the damaged engine kept reading. */
const warm = () => encodeFrame({ cmd: DATA_FULL, routes: 42, tid: 128, timestamp: T0, body: utf8('D42.U.AYvP5WgA|S1>OK.K:1|') });

/** The follow-on traffic: a 2-sensor FULL from aid 43, FULL and DIFFs from aids 44-47. */
function followOn(): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const tx = (aid: number) => new OSVisualFusionEngine({ localId: aid, backend: 'ts', clock: () => NOW });
  const a43 = tx(43);
  frames.push(a43.runEngine('DEV43.U.AYvP5WgA|S1>OK.K:1|S2>OK.Pa:2|', 'FULL'));
  for (let aid = 44; aid <= 47; aid++) {
    const e = tx(aid);
    frames.push(e.runEngine(`D${aid}.U.AYvP5WgA|S1>OK.K:1|S2>OK.K:2|S3>OK.K:3|`, 'FULL'));
    frames.push(e.runEngine(`D${aid}.U.AYvP5WgB|S1>OK.K:9|S2>OK.K:2|S3>OK.K:${aid}|`, 'DIFF'));
    frames.push(e.runEngine(`D${aid}.U.AYvP5WgB|S1>OK.K:9|S2>OK.K:2|S3>OK.K:${aid}|`, 'DIFF'));
  }
  frames.push(a43.runEngine('DEV43.U.AYvP5WgB|S1>OK.K:5|S2>OK.Pa:2|', 'DIFF'));
  return frames;
}

/** A decode as comparable data: the fact, or the error's code (which must be a typed error's). */
function outcome(e: OSVisualFusionEngine, frame: Uint8Array): unknown {
  try {
    return { fact: e.decompress(frame) };
  } catch (err) {
    const x = err as { name?: string; code?: unknown };
    expect(x.name, String(err)).not.toMatch(/^(RangeError|TypeError|Error)$/);
    expect(typeof x.code, String(err)).toBe('string');
    return { code: x.code };
  }
}

const plain = (r: FusionParseResult) => ({ ...r, cause: r.cause?.name });

describe.skipIf(!nativeAvailable && !process.env.CI)('a large frame on the native backend (issue 8, item 1)', () => {
  const rx = (backend: 'ts' | 'native') => new OSVisualFusionEngine({ localId: 1, backend, clock: () => NOW });

  it('is the frame of the issue', () => {
    const f = largeFrame();
    expect(f.length).toBe(8211);
    expect(hex(f.subarray(0, 13))).toBe('3f0100000007' + '01' + '018bcfe56800');
  });

  it('decodes as on TypeScript, and the frames after it too', () => {
    const ts = rx('ts');
    const nat = rx('native');
    expect(nat.backend).toBe('native'); // the frame codec; the rest of decompress is TypeScript
    expect(outcome(nat, warm())).toEqual(outcome(ts, warm()));
    expect(outcome(nat, largeFrame())).toEqual(outcome(ts, largeFrame()));
    for (const frame of followOn()) expect(outcome(nat, frame)).toEqual(outcome(ts, frame));
  });

  it('leaves no trace of the large frame, whatever it gave: later frames decode as on TypeScript', () => {
    const ts = rx('ts');
    const nat = rx('native');
    nat.decompress(warm());
    ts.decompress(warm());
    try {
      nat.decompress(largeFrame());
    } catch {
      // Checked in the test above; here only what comes after matters.
    }
    for (const frame of followOn()) expect(outcome(nat, frame)).toEqual(outcome(ts, frame));
  });

  it('parse gives what TypeScript gives around the large frame', () => {
    const ts = rx('ts');
    const nat = rx('native');
    for (const frame of [largeFrame(), ...followOn(), largeFrame(), ...followOn()]) {
      expect(plain(nat.parse(frame))).toEqual(plain(ts.parse(frame)));
    }
  });

  it('decodes frames of every length around the io buffer growth steps as TypeScript does', () => {
    // Lengths around 4, 8, 16, 32 and 64 KiB, each modulo 4, and past 64 KiB.
    const lengths: number[] = [];
    for (let base = 4096; base <= 65536; base *= 2) for (let d = -150; d <= -140; d++) lengths.push(base + d, base + d + 2000);
    lengths.push(65536 + 3, 70001, 200003);
    const follow = followOn();
    const ts = rx('ts');
    const grown = rx('native');
    for (const len of lengths) {
      const f = largeFrame(len - 29);
      expect(f.length).toBe(len);
      // On an engine whose buffer grew step by step, and on a new one (one growth from the start size).
      const fresh = rx('native');
      const fts = rx('ts');
      expect(outcome(grown, f)).toEqual(outcome(ts, f));
      expect(outcome(fresh, f)).toEqual(outcome(fts, f));
      for (const g of follow) {
        expect(outcome(grown, g)).toEqual(outcome(ts, g));
        expect(outcome(fresh, g)).toEqual(outcome(fts, g));
      }
    }
    // A limit for a loaded machine, not a measurement.
  }, 30_000);
});
