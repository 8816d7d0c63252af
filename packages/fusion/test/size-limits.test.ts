import { DATA_DIFF, DATA_FULL, DATA_HEART } from '@opensynaptic/cmd';
import { encodeFrame, FrameFieldError, FrameTooLargeError } from '@opensynaptic/packet';
import { BodyTooLargeError } from '@opensynaptic/packet/body';
import { thrown } from '@opensynaptic/config/assert';
import { describe, expect, it } from 'vitest';
import { backendInfo, FusionBodyError, OSVisualFusionEngine } from '../src/index.js';
const { nativeAvailable } = backendInfo();

const backends = nativeAvailable ? (['ts', 'native'] as const) : (['ts'] as const);
const utf8 = (s: string) => new TextEncoder().encode(s);
const T = 1_700_000_000_000;

function frame(cmd: number, body: Uint8Array | string, tid = 1, aid = 42): Uint8Array {
  return encodeFrame({ cmd, routes: aid, tid, timestamp: T, body: typeof body === 'string' ? utf8(body) : body });
}

/** DIFF body for `count` values: the changed ones by index. */
function diffBody(count: number, changed: Record<number, string>): Uint8Array {
  const maskLen = (count + 7) >> 3;
  const parts: number[] = new Array(maskLen).fill(0);
  for (const [k, v] of Object.entries(changed)) {
    const i = Number(k);
    parts[maskLen - 1 - (i >> 3)]! |= 1 << (i & 7);
    const b = utf8(v);
    parts.push(b.length, ...b);
  }
  return Uint8Array.from(parts);
}

for (const backend of backends) {
  describe(`${backend}: maxFrameSize`, () => {
    it('refuses a longer frame with FrameTooLargeError before any check reads it', () => {
      const rx = new OSVisualFusionEngine({ backend, maxFrameSize: 64 });
      const ok = frame(DATA_FULL, 'D.U.AAAAAAAA|S1>K.Z:1|');
      expect(rx.decompress(ok).s1_id).toBe('S1');
      // 65 bytes of junk: CRC-16 would fail, so the size check ran first.
      const junk = new Uint8Array(65).fill(0x3f);
      const e = thrown(() => rx.decompress(junk));
      expect(e).toBeInstanceOf(FrameTooLargeError);
      expect(e).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE', length: 65, limit: 64 });
      const p = rx.parse(junk);
      expect(p.cause).toBeInstanceOf(FrameTooLargeError);
      expect(p.error).toBe('Packet too large (65 > 64 bytes)');
      expect(p.__packet_meta__).toEqual({ crc16_ok: false });
      // A valid frame one byte above the limit is refused too; at the limit it is read.
      const body = `D.U.AAAAAAAA|&${'u'.repeat(64 - 16 - 15)}|`;
      const atLimit = frame(DATA_FULL, body);
      expect(atLimit.length).toBe(64);
      expect(rx.decompress(atLimit).geohash).toBe('u'.repeat(33));
      expect(() => rx.decompress(frame(DATA_FULL, `${body}|`))).toThrow(FrameTooLargeError);
    });

    it('decompressBatch refuses only the oversized frame', () => {
      const rx = new OSVisualFusionEngine({ backend, maxFrameSize: 64 });
      const a = frame(DATA_FULL, 'D.U.AAAAAAAA|S1>K.Z:1|');
      const big = frame(DATA_FULL, `D.U.AAAAAAAA|&${'u'.repeat(60)}|`);
      const b = frame(DATA_HEART, new Uint8Array(0));
      const all = new Uint8Array(a.length + big.length + b.length);
      all.set(a);
      all.set(big, a.length);
      all.set(b, a.length + big.length);
      const out = rx.decompressBatch(all, Uint32Array.of(0, a.length, a.length + big.length, all.length));
      expect(out[0]!.s1_id).toBe('S1');
      expect(out[1]!.cause).toBeInstanceOf(FrameTooLargeError);
      expect(out[2]!.s1_id).toBe('S1');
    });

    it('defaults to 65,507 bytes and takes Infinity; a bad value is named', () => {
      const big = frame(DATA_FULL, `D.U.AAAAAAAA|&${'u'.repeat(65_507)}|`);
      expect(new OSVisualFusionEngine({ backend }).maxFrameSize).toBe(65_507);
      expect(() => new OSVisualFusionEngine({ backend }).decompress(big)).toThrow(FrameTooLargeError);
      // (Natively a frame this large needs the receiver's buffer growth fixed: issue 8, item 1.)
      if (backend === 'ts') {
        const rx = new OSVisualFusionEngine({ backend, maxFrameSize: Number.POSITIVE_INFINITY, maxBodySize: Number.POSITIVE_INFINITY });
        expect(rx.decompress(big).geohash).toHaveLength(65_507);
      }
      expect(() => new OSVisualFusionEngine({ backend, maxFrameSize: 0 })).toThrow(FrameFieldError);
      expect(() => new OSVisualFusionEngine({ backend, maxBodySize: -1 })).toThrow(/maxBodySize/);
    });
  });

  describe(`${backend}: maxBodySize`, () => {
    it('refuses a FULL body above it before learning the template', () => {
      const rx = new OSVisualFusionEngine({ backend, maxBodySize: 30 });
      const e = thrown(() => rx.decompress(frame(DATA_FULL, 'D.U.AAAAAAAA|S1>K.Z:1|&uuuuuuuuu|')));
      expect(e).toBeInstanceOf(FusionBodyError);
      expect((e as FusionBodyError).cause).toBeInstanceOf(BodyTooLargeError);
      expect((e as FusionBodyError).cause).toMatchObject({ code: 'ERR_BODY_TOO_LARGE', size: 33, limit: 30 });
      expect(rx.hasTemplate(42)).toBe(false);
    });

    it('refuses a DIFF whose rebuilt text would pass it, leaving the stored values as they were', () => {
      const rx = new OSVisualFusionEngine({ backend, maxBodySize: 60 });
      const full = 'D.U.AAAAAAAA|S1>K.Z:1|S2>K.Z:2|';
      const first = rx.decompress(frame(DATA_FULL, full));
      // 31 bytes now; replacing the 3-byte "K.Z" by 32 bytes makes 60 (accepted), by 33 makes 61 (refused).
      expect(rx.decompress(frame(DATA_DIFF, diffBody(4, { 0: `K.${'é'.repeat(14)}Zz` })))).toMatchObject({ s1_u: `${'é'.repeat(14)}Zz` });
      const e = thrown(() => rx.decompress(frame(DATA_DIFF, diffBody(4, { 0: `K.${'é'.repeat(14)}Zzz` }))));
      expect(e).toBeInstanceOf(FusionBodyError);
      expect((e as FusionBodyError).cause).toMatchObject({ code: 'ERR_BODY_TOO_LARGE', size: 61, limit: 60 });
      expect(rx.decompress(frame(DATA_HEART, new Uint8Array(0)))).toMatchObject({ s1_u: `${'é'.repeat(14)}Zz`, s2_v: first.s2_v });
    });
  });
}
