import { encodeFrame, FrameFieldError, FrameTooLargeError } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { buildIdRequest, type DataFrameParser, IdAllocator, OSHandshakeManager } from '../src/index.js';

const T0 = 1_700_000_000_000;

/** A parser that records every frame it was handed. */
function spyParser(): DataFrameParser & { seen: number } {
  const p = {
    seen: 0,
    parse: () => {
      p.seen++;
      return { __packet_meta__: { crc16_ok: true } };
    },
  };
  return p;
}

describe('maxFrameSize', () => {
  it('refuses a longer control packet or data frame with FrameTooLargeError before reading it', () => {
    const parser = spyParser();
    const m = new OSHandshakeManager({ clockMs: () => T0, maxFrameSize: 100, parser, allocator: new IdAllocator({ clockMs: () => T0 }) });
    // An ID_REQUEST whose meta is within maxMetaBytes but makes the packet 101 bytes.
    const req = buildIdRequest(1, { name: 'x'.repeat(86) });
    expect(req.length).toBe(101);
    const out = m.classifyAndDispatch(req);
    expect(out.type).toBe('ERROR');
    expect(out.response).toBeNull();
    const cause = (out.result as { cause?: unknown }).cause;
    expect(cause).toBeInstanceOf(FrameTooLargeError);
    expect(cause).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE', length: 101, limit: 100 });
    expect((out.result as { error: string }).error).toContain('101 bytes');

    const data = encodeFrame({ cmd: 63, routes: 42, tid: 1, timestamp: 1, body: new Uint8Array(85) });
    expect(data.length).toBe(101);
    expect(m.classifyAndDispatch(data)).toMatchObject({ type: 'ERROR', cmd: 63 });
    expect(parser.seen).toBe(0);
    // At the limit both go through.
    expect(m.classifyAndDispatch(data.subarray(0, 100))).toMatchObject({ type: 'DATA' });
    expect(parser.seen).toBe(1);
    expect(m.classifyAndDispatch(buildIdRequest(2, { name: 'x'.repeat(85) }))).toMatchObject({ type: 'CTRL', result: { status: 'ASSIGNED' } });
  });

  it('defaults to the largest UDP payload; Infinity lifts it; a bad value is named', () => {
    const parser = spyParser();
    const big = encodeFrame({ cmd: 63, routes: 42, tid: 1, timestamp: 1, body: new Uint8Array(65_507 - 15) });
    expect(new OSHandshakeManager().maxFrameSize).toBe(65_507);
    expect(new OSHandshakeManager({ parser }).classifyAndDispatch(big).type).toBe('ERROR');
    expect(new OSHandshakeManager({ parser, maxFrameSize: Number.POSITIVE_INFINITY }).classifyAndDispatch(big).type).toBe('DATA');
    expect(() => new OSHandshakeManager({ maxFrameSize: 0 })).toThrow(FrameFieldError);
  });
});
