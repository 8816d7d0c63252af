import { DATA_DIFF, DATA_FULL } from '@opensynaptic/cmd';
import { slowdown } from '@opensynaptic/internal/testing';
import { encodeFrame, FrameError } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { ADVERSARIAL, benignBody, DENSE, denseBody, SIZE } from '../../packet/test/adversarial-bodies.js';
import { backendInfo, FusionError, OSVisualFusionEngine } from '../src/index.js';
const { nativeAvailable } = backendInfo();

const utf8 = (s: string) => new TextEncoder().encode(s);
const T = 1_700_000_000_000;

const frame = (cmd: number, body: Uint8Array): Uint8Array => encodeFrame({ cmd, routes: 42, tid: 1, timestamp: T, body });
const full = (text: string): Uint8Array => frame(DATA_FULL, utf8(text));

function decodeWith(rx: OSVisualFusionEngine): (f: Uint8Array) => void {
  return (f) => {
    try {
      rx.decompress(f);
    } catch (e) {
      if (!(e instanceof FusionError || e instanceof FrameError)) throw e;
    }
  };
}

/** A template of many sensors (about SIZE bytes), and a DIFF that changes value 0 to `v`. */
const SENSORS = Math.floor((SIZE - 13) / 12);
const manySensors = `D.U.AAAAAAAA|${Array.from({ length: SENSORS }, (_, i) => `s${String(i).padStart(4, '0')}>K.Z:1|`).join('')}`;
function diff(index: number, v: string): Uint8Array {
  const n = 2 * SENSORS;
  const maskLen = (n + 7) >> 3;
  const b = utf8(v);
  const body = new Uint8Array(maskLen + 1 + b.length);
  body[maskLen - 1 - (index >> 3)] = 1 << (index & 7);
  body[maskLen] = b.length;
  body.set(b, maskLen + 1);
  return frame(DATA_DIFF, body);
}

/**
 * Natively, a first frame above the receiver's 4 KiB buffer of a length that is no multiple of 4
 * breaks it (issue 8, item 1, fixed separately); until then the native cases are skipped.
 */
function nativeGrowsBuffers(): boolean {
  try {
    new OSVisualFusionEngine({ backend: 'native' }).decompress(full(`D.U.AAAAAAAA|&${'u'.repeat(8191)}|`));
    return true;
  } catch (e) {
    if (e instanceof RangeError) return false;
    throw e;
  }
}
const backends = nativeAvailable ? (nativeGrowsBuffers() ? (['ts', 'native'] as const) : (['ts'] as const)) : (['ts'] as const);
if (nativeAvailable && backends.length === 1) console.log('native linear-time cases skipped: the native receiver cannot grow its buffer yet (issue 8, item 1)');

for (const backend of backends) {
  describe(`${backend}: the fusion receiver runs in time linear in its input`, () => {
    for (const [name, body] of Object.entries(ADVERSARIAL)) {
      it(`FULL, ${name}: within 10x of a benign FULL of the same size`, () => {
        // No size limits: bodies of non-ASCII text are ~3x SIZE in UTF-8, and this measures decoding.
        const rx = new OSVisualFusionEngine({ backend, maxFrameSize: Number.POSITIVE_INFINITY, maxBodySize: Number.POSITIVE_INFINITY });
        const benign = DENSE.has(name) ? denseBody : benignBody;
        expect(full(body(0)).length).toBeGreaterThan(SIZE);
        expect(slowdown((r) => full(benign(r)), (r) => full(body(r)), decodeWith(rx))).toBeLessThanOrEqual(10);
      });
    }

    it(`DIFF with a value holding \\x01 (rebuilt through text): within 10x of a rebuild without`, () => {
      // Both values leave the fast path: ':' in a reading and \x01 anywhere change how the text splits.
      const plain = new OSVisualFusionEngine({ backend });
      const marked = new OSVisualFusionEngine({ backend });
      plain.decompress(full(manySensors));
      marked.decompress(full(manySensors));
      const ratio = slowdown(
        (r) => ({ rx: plain, f: diff(1, `1:${r}`) }),
        (r) => ({ rx: marked, f: diff(0, `K\x01${r}`) }),
        ({ rx, f }) => decodeWith(rx)(f),
      );
      expect(ratio).toBeLessThanOrEqual(10);
    });
  });
}
