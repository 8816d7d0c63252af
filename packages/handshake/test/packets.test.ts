import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildAck,
  buildIdAssign,
  buildIdPoolRequest,
  buildIdPoolResponse,
  buildIdRequest,
  buildNack,
  buildPing,
  buildPong,
  buildSecureChannelAck,
  buildSecureDictReady,
  buildTimeRequest,
  buildTimeResponse,
  HandshakeError,
  HandshakeFieldError,
  MAX_NACK_REASON_BYTES,
  MetaTooLargeError,
  OversizedPacketError,
  parseAck,
  parseControlPacket,
  parseIdAssign,
  parseIdPoolRequest,
  parseIdPoolResponse,
  parseIdRequest,
  parseMeta,
  parseNack,
  parsePing,
  parsePong,
  parseSecureChannelAck,
  parseSecureDictReady,
  parseTimeRequest,
  parseTimeResponse,
  readU64,
  SeqCounter,
  TruncatedPacketError,
  WrongCommandError,
} from '../src/index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

describe('SeqCounter', () => {
  it('pre-increments from 1 and wraps 65535 → 0', () => {
    const s = new SeqCounter();
    expect(s.next()).toBe(1);
    expect(s.next()).toBe(2);
    s.set(65534);
    expect([s.next(), s.next(), s.next()]).toEqual([65535, 0, 1]);
    expect(s.current).toBe(1);
  });
  it('refuses values outside 16 bits', () => {
    expect(() => new SeqCounter(65536)).toThrow(HandshakeFieldError);
    expect(() => new SeqCounter(-1)).toThrow(HandshakeFieldError);
    expect(() => new SeqCounter(1.5)).toThrow(/0\.\.65535/);
  });
});

describe('builders', () => {
  it('returns plain Uint8Arrays, never Buffers', () => {
    for (const b of [buildPing(1), buildIdRequest(1, { a: 1 }), buildNack(1, 'x'), buildSecureDictReady(1, 2)]) {
      expect(Object.getPrototypeOf(b)).toBe(Uint8Array.prototype);
    }
  });
  it('writes the reference layouts', () => {
    expect(hex(buildIdRequest(1, { device_id: 'NODE_A' }))).toBe(`010001${hex(Buffer.from('{"device_id": "NODE_A"}'))}`);
    expect(hex(buildIdRequest(2, null))).toBe('0100027b7d');
    expect(hex(buildIdAssign(7, 42))).toBe('0200070000002a');
    expect(hex(buildIdAssign(7, 42, 1_700_000_000))).toBe('0200070000002a000000006553f100');
    expect(hex(buildIdPoolRequest(4, 10, { site: 'lab' }))).toBe('030004000a7b2273697465223a20226c6162227d');
    expect(hex(buildIdPoolRequest(5))).toBe('030005000a7b7d');
    expect(hex(buildIdPoolResponse(5, [100, 101, 0xffffffff]))).toBe('04000500030000006400000065ffffffff');
    expect(hex(buildAck(3))).toBe('050003');
    expect(hex(buildNack())).toBe('060000');
    expect(hex(buildNack(1, '原因'))).toBe('060001e58e9fe59ba0');
    expect(hex(buildPong(9))).toBe('0a0009');
    expect(hex(buildTimeRequest(7))).toBe('0b0007');
    expect(hex(buildTimeResponse(11, 1_700_000_000))).toBe('0c000b000000006553f100');
    expect(hex(buildSecureDictReady(42, 1_700_000_000_000))).toBe('0d0000002a0000018bcfe56800');
    expect(hex(buildSecureChannelAck(42))).toBe('0e0000002a');
  });
  it('writes the pool count as given, as the reference does (only a server caps a pool)', () => {
    // Bytes of the reference's build_id_pool_request (vectors/handshake-extra.json).
    expect(hex(buildIdPoolRequest(1, 48058))).toBe('030001bbba7b7d');
    expect(hex(buildIdPoolRequest(3, 257))).toBe('03000301017b7d');
    expect(hex(buildIdPoolRequest(4, 65535))).toBe('030004ffff7b7d');
    expect(hex(buildIdPoolRequest(1, 0).subarray(3, 5))).toBe('0000');
  });
  it('refuses a pool count that does not fit its 16-bit field, naming the field', () => {
    for (const count of [65536, 2 ** 32, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      let error: unknown;
      try {
        buildIdPoolRequest(1, count);
      } catch (e) {
        error = e;
      }
      expect(error, String(count)).toBeInstanceOf(HandshakeFieldError);
      expect((error as HandshakeError).code).toBe('ERR_HANDSHAKE_FIELD');
      expect((error as Error).message).toMatch(/count/);
    }
  });
  it('writes 8-byte fields from numbers and bigints', () => {
    expect(hex(buildTimeResponse(1, 2n ** 64n - 1n))).toBe('0c0001ffffffffffffffff');
    expect(hex(buildSecureDictReady(1, Number.MAX_SAFE_INTEGER))).toBe('0d00000001001fffffffffffff');
  });
  it('refuses arguments that do not fit', () => {
    for (const f of [
      () => buildPing(65536),
      () => buildAck(-1),
      () => buildIdAssign(1, 2 ** 32),
      () => buildIdAssign(1, 1, -5),
      () => buildIdAssign(1, 1, 1.5),
      () => buildTimeResponse(1, 2 ** 53),
      () => buildTimeResponse(1, 2n ** 64n),
      () => buildIdPoolRequest(1, -1),
      () => buildIdPoolResponse(1, [1, -1]),
      () => buildSecureChannelAck(Number.NaN),
      () => buildNack(1, 'x'.repeat(MAX_NACK_REASON_BYTES + 1)),
    ]) {
      expect(f).toThrow(HandshakeFieldError);
    }
    try {
      buildPing(70000);
    } catch (e) {
      expect((e as HandshakeError).code).toBe('ERR_HANDSHAKE_FIELD');
    }
  });
  it('refuses JSON meta above maxMetaBytes (default 4096)', () => {
    const big = { blob: 'x'.repeat(4096) };
    expect(() => buildIdRequest(1, big)).toThrow(MetaTooLargeError);
    expect(() => buildIdPoolRequest(1, 3, big)).toThrow(MetaTooLargeError);
    expect(buildIdRequest(1, big, { maxMetaBytes: 5000 }).length).toBeGreaterThan(4096);
    expect(() => buildIdRequest(1, { a: 'é'.repeat(10) }, { maxMetaBytes: 20 })).toThrow(/bytes, the limit is 20/);
  });
});

describe('strict parsers', () => {
  it('read back what the builders write', () => {
    const u16 = fc.nat({ max: 0xffff });
    const u32 = fc.nat({ max: 0xffffffff });
    const u64 = fc.oneof(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }));
    fc.assert(
      fc.property(u16, u32, fc.option(u64, { nil: null }), (seq, aid, t) => {
        expect(parseIdAssign(buildIdAssign(seq, aid, t))).toEqual({ cmd: 2, seq, aid, serverTime: t });
        expect(parseSecureDictReady(buildSecureDictReady(aid, t ?? 0))).toEqual({ cmd: 13, aid, timestamp: t ?? 0 });
        expect(parseTimeResponse(buildTimeResponse(seq, t ?? 0))).toEqual({ cmd: 12, seq, serverTime: t ?? 0 });
        expect(parseSecureChannelAck(buildSecureChannelAck(aid))).toEqual({ cmd: 14, aid });
        expect(parseAck(buildAck(seq)).seq).toBe(seq);
        expect(parsePing(buildPing(seq)).seq).toBe(seq);
        expect(parsePong(buildPong(seq)).seq).toBe(seq);
        expect(parseTimeRequest(buildTimeRequest(seq)).seq).toBe(seq);
      }),
    );
    fc.assert(
      fc.property(u16, fc.array(u32, { maxLength: 300 }), (seq, ids) => {
        expect(parseIdPoolResponse(buildIdPoolResponse(seq, ids))).toEqual({ cmd: 4, seq, ids });
      }),
    );
    fc.assert(
      fc.property(u16, fc.string({ unit: 'binary', maxLength: 100 }), (seq, reason) => {
        const wellFormed = new TextDecoder().decode(new TextEncoder().encode(reason));
        expect(parseNack(buildNack(seq, wellFormed))).toEqual({ cmd: 6, seq, reason: wellFormed });
      }),
    );
    fc.assert(
      fc.property(u16, fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })), (seq, meta) => {
        const p = parseIdRequest(buildIdRequest(seq, meta as never, { maxMetaBytes: 1 << 20 }), { maxMetaBytes: 1 << 20 });
        expect(p.seq).toBe(seq);
        expect(p.metaValid).toBe(true);
        expect(JSON.stringify(p.meta)).toBe(JSON.stringify(JSON.parse(JSON.stringify(meta))));
      }),
    );
  });
  it('parses the pool request count and caps it', () => {
    expect(parseIdPoolRequest(bytes('03000c012c'))).toMatchObject({ seq: 12, requested: 300, count: 256, meta: {}, metaValid: true });
    expect(parseIdPoolRequest(buildIdPoolRequest(3, 7, { site: 'lab' }))).toMatchObject({ count: 7, meta: { site: 'lab' } });
  });
  it('throws typed errors for truncated, oversized and foreign packets', () => {
    const cases: [() => unknown, new (...a: never[]) => Error, string][] = [
      [() => parseIdAssign(bytes('02000a')), TruncatedPacketError, 'ERR_HANDSHAKE_TRUNCATED'],
      [() => parseIdAssign(bytes('0200070000002a0000')), TruncatedPacketError, 'ERR_HANDSHAKE_TRUNCATED'],
      [() => parseIdAssign(bytes('0200070000002a000000006553f10000')), OversizedPacketError, 'ERR_HANDSHAKE_OVERSIZED'],
      [() => parseIdPoolResponse(bytes('04000f0003000000640000006501')), TruncatedPacketError, 'ERR_HANDSHAKE_TRUNCATED'],
      [() => parseIdPoolResponse(bytes('0400100000ff')), OversizedPacketError, 'ERR_HANDSHAKE_OVERSIZED'],
      [() => parsePing(bytes('09')), TruncatedPacketError, 'ERR_HANDSHAKE_TRUNCATED'],
      [() => parsePing(bytes('09000100')), OversizedPacketError, 'ERR_HANDSHAKE_OVERSIZED'],
      [() => parseTimeResponse(bytes('0c0018')), TruncatedPacketError, 'ERR_HANDSHAKE_TRUNCATED'],
      [() => parseSecureDictReady(bytes('0d0000')), TruncatedPacketError, 'ERR_HANDSHAKE_TRUNCATED'],
      [() => parseSecureDictReady(bytes('0d0000002a00')), TruncatedPacketError, 'ERR_HANDSHAKE_TRUNCATED'],
      [() => parseSecureChannelAck(bytes('0e0000002a00')), OversizedPacketError, 'ERR_HANDSHAKE_OVERSIZED'],
      [() => parseNack(new Uint8Array(3 + MAX_NACK_REASON_BYTES + 1).fill(6, 0, 1)), OversizedPacketError, 'ERR_HANDSHAKE_OVERSIZED'],
      [() => parseAck(bytes('090001')), WrongCommandError, 'ERR_HANDSHAKE_WRONG_CMD'],
      [() => parseAck(new Uint8Array(0)), WrongCommandError, 'ERR_HANDSHAKE_WRONG_CMD'],
      [() => parseControlPacket(bytes('3f0100')), WrongCommandError, 'ERR_HANDSHAKE_WRONG_CMD'],
      [() => parseIdRequest(new Uint8Array(4100).fill(1, 0, 1)), MetaTooLargeError, 'ERR_HANDSHAKE_META_TOO_LARGE'],
    ];
    for (const [run, type, code] of cases) {
      let err: unknown;
      try {
        run();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(type);
      expect(err).toBeInstanceOf(HandshakeError);
      expect((err as HandshakeError).code).toBe(code);
    }
  });
  it('dispatches by command in parseControlPacket', () => {
    expect(parseControlPacket(bytes('0a0009'))).toEqual({ cmd: 10, seq: 9 });
    expect(parseControlPacket(bytes('0d0000002b'))).toEqual({ cmd: 13, aid: 43, timestamp: null });
    expect(parseControlPacket(bytes('060013' + '6162ff6364'))).toEqual({ cmd: 6, seq: 19, reason: 'abcd' });
  });
  it('reads 8-byte values exactly', () => {
    expect(readU64(bytes('001fffffffffffff'), 0)).toBe(Number.MAX_SAFE_INTEGER);
    expect(readU64(bytes('0020000000000000'), 0)).toBe(2n ** 53n);
    expect(readU64(bytes('ffffffffffffffff'), 0)).toBe(2n ** 64n - 1n);
  });
});

describe('parseMeta', () => {
  const m = (h: string) => parseMeta(bytes(h), 0);
  it('reads empty and non-JSON text as {} like the reference', () => {
    expect(m('')).toEqual({ text: '', value: {}, valid: true });
    expect(m('7b6e6f74206a736f6e')).toEqual({ text: '{not json', value: {}, valid: false });
    expect(m('2020')).toEqual({ text: '  ', value: {}, valid: false });
  });
  it('drops invalid UTF-8 and keeps a byte-order mark', () => {
    expect(m(`7b2261223a2022${'ff'}62227d`).value).toEqual({ a: 'b' });
    // A BOM is not JSON whitespace: Python's json.loads refuses it too.
    expect(m('efbbbf7b7d')).toEqual({ text: '\ufeff{}', value: {}, valid: false });
  });
});
