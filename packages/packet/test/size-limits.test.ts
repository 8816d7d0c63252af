import { describe, expect, it } from 'vitest';
import { BodyTextError, BodyTooLargeError, DEFAULT_MAX_BODY_SIZE, decompressBody } from '../src/body/index.js';
import { checkFrameSize, DEFAULT_MAX_FRAME_SIZE, FrameFieldError, FrameTooLargeError, frameErrorMeta, sizeLimit } from '../src/index.js';

const utf8 = (s: string) => new TextEncoder().encode(s);

describe('body size limit', () => {
  it('refuses text above maxBodySize before reading it, and reads text at the limit', () => {
    // Not even a header: a read would fail with ERR_BODY_SYNTAX, so the size check came first.
    const junk = 'x'.repeat(101);
    for (const input of [junk, utf8(junk)]) {
      const e = (() => {
        try {
          decompressBody(input, { maxBodySize: 100 });
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(BodyTooLargeError);
      expect(e).toBeInstanceOf(BodyTextError);
      expect(e).toMatchObject({ code: 'ERR_BODY_TOO_LARGE', field: 'body', size: 101, limit: 100 });
      expect((e as Error).message).toContain('101 bytes');
      expect((e as Error).message).toContain('100');
    }
    const body = `D.U.AAAAAAAA|&${'u'.repeat(86)}|`;
    expect(body.length).toBe(101);
    expect(decompressBody(body, { maxBodySize: 101 }).geohash).toBe('u'.repeat(86));
    expect(() => decompressBody(body, { maxBodySize: 100 })).toThrow(BodyTooLargeError);
  });

  it('counts UTF-8 bytes of text given as a string', () => {
    // 40 UTF-16 units, 120 UTF-8 bytes: the limit is on bytes, as for the received frame.
    const body = `D.U.AAAAAAAA|&${'€'.repeat(26)}|`;
    const bytes = utf8(body).length;
    expect(() => decompressBody(body, { maxBodySize: bytes - 1 })).toThrow(expect.objectContaining({ code: 'ERR_BODY_TOO_LARGE', size: bytes }));
    expect(decompressBody(body, { maxBodySize: bytes }).geohash).toBe('€'.repeat(26));
  });

  it('defaults to the largest UDP payload and takes Infinity', () => {
    expect(DEFAULT_MAX_BODY_SIZE).toBe(65_507);
    const big = `D.U.AAAAAAAA|&${'u'.repeat(DEFAULT_MAX_BODY_SIZE)}|`;
    expect(() => decompressBody(big)).toThrow(BodyTooLargeError);
    expect(decompressBody(big, { maxBodySize: Number.POSITIVE_INFINITY }).geohash).toHaveLength(DEFAULT_MAX_BODY_SIZE);
  });

  it('names a bad limit', () => {
    for (const v of [0, -1, 1.5, Number.NaN]) {
      expect(() => decompressBody('D.U.AAAAAAAA|', { maxBodySize: v })).toThrow(expect.objectContaining({ code: 'ERR_BODY_FIELD', field: 'maxBodySize' }));
    }
  });
});

describe('frame size limit helpers', () => {
  it('FrameTooLargeError names the size and the limit, and reports no parsed field', () => {
    expect(DEFAULT_MAX_FRAME_SIZE).toBe(65_507);
    expect(() => checkFrameSize(new Uint8Array(10), 10)).not.toThrow();
    let e: unknown;
    try {
      checkFrameSize(new Uint8Array(11), 10);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(FrameTooLargeError);
    expect(e).toMatchObject({ code: 'ERR_FRAME_TOO_LARGE', field: 'length', length: 11, limit: 10, header: {} });
    expect((e as Error).message).toBe('frame too large: 11 bytes, the limit (maxFrameSize) is 10');
    expect(frameErrorMeta(e as FrameTooLargeError, () => ({ timestamp_raw: 0, server_stamped: false, timestampMs: 0, receiverStamped: false }))).toEqual({ crc16_ok: false });
  });

  it('sizeLimit takes positive integers and Infinity, and names anything else', () => {
    expect(sizeLimit('maxFrameSize', undefined, 7)).toBe(7);
    expect(sizeLimit('maxFrameSize', 1, 7)).toBe(1);
    expect(sizeLimit('maxFrameSize', Number.POSITIVE_INFINITY, 7)).toBe(Number.POSITIVE_INFINITY);
    for (const v of [0, -5, 2.5, Number.NaN]) {
      expect(() => sizeLimit('maxFrameSize', v, 7)).toThrow(FrameFieldError);
      expect(() => sizeLimit('maxFrameSize', v, 7)).toThrow(/maxFrameSize/);
    }
  });
});
