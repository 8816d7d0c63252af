import { createRequire } from 'node:module';
import { thrown } from '@opensynaptic/config/assert';
import { describe, expect, it } from 'vitest';

// The two builds a consumer can get, side by side in one process (a dual-package setup, or
// one dependency importing and another requiring): each carries its own classes.
type Packet = typeof import('../src/index.js');
type Base62 = typeof import('@opensynaptic/base62');
const esm: Packet = await import(new URL('../dist/index.js', import.meta.url).href);
const cjs: Packet = createRequire(import.meta.url)('../dist/index.cjs');
const base62Esm: Base62 = await import('@opensynaptic/base62');
const base62Cjs: Base62 = createRequire(import.meta.url)('@opensynaptic/base62');

const short = Uint8Array.of(63, 1);

describe('isOpenSynapticError', () => {
  it('recognises an error of the other build, where instanceof does not', () => {
    const fromEsm = thrown(() => esm.decodeFrame(short));
    const fromCjs = thrown(() => cjs.decodeFrame(short));
    // The problem the guard exists for: separate classes per build.
    expect(fromEsm instanceof cjs.FrameError).toBe(false);
    expect(fromCjs instanceof esm.FrameError).toBe(false);
    for (const guard of [esm.isOpenSynapticError, cjs.isOpenSynapticError]) {
      for (const e of [fromEsm, fromCjs]) {
        expect(guard(e)).toBe(true);
        expect(guard(e, 'ERR_FRAME_TOO_SHORT')).toBe(true);
        expect(guard(e, 'ERR_FRAME_CRC16')).toBe(false);
      }
    }
  });

  it("recognises another package's errors, in either build", () => {
    const fromBase62 = thrown(() => base62Esm.decode('!'));
    const fromBase62Cjs = thrown(() => base62Cjs.decode('!'));
    const fromPacket = thrown(() => esm.decodeFrame(short));
    for (const guard of [esm.isOpenSynapticError, cjs.isOpenSynapticError]) {
      expect(guard(fromBase62, 'ERR_BASE62_INVALID')).toBe(true);
      expect(guard(fromBase62Cjs, 'ERR_BASE62_INVALID')).toBe(true);
    }
    for (const guard of [base62Esm.isOpenSynapticError, base62Cjs.isOpenSynapticError]) {
      expect(guard(fromPacket, 'ERR_FRAME_TOO_SHORT')).toBe(true);
    }
    // The field errors of the encoder and the body codec carry the brand too.
    const field = thrown(() => esm.encodeFrame({ cmd: 63, routes: -1, tid: 1, timestamp: 1, body: new Uint8Array(0) }));
    expect(cjs.isOpenSynapticError(field, 'ERR_FRAME_FIELD')).toBe(true);
  });

  it('refuses what is not ours: a code alone is not enough', () => {
    const nodeError = thrown(() => Buffer.alloc(-1));
    expect((nodeError as { code?: string }).code).toMatch(/^ERR_/);
    expect(esm.isOpenSynapticError(nodeError)).toBe(false);
    expect(esm.isOpenSynapticError({ code: 'ERR_FRAME_CRC16', message: 'forged' }, 'ERR_FRAME_CRC16')).toBe(false);
    expect(esm.isOpenSynapticError(Object.assign(new Error('x'), { code: 'ERR_FRAME_CRC16' }))).toBe(false);
    for (const v of [null, undefined, 'ERR_FRAME_CRC16', 42]) expect(esm.isOpenSynapticError(v)).toBe(false);
  });
});
