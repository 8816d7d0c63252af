import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const binding = require('../index.js');

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('hex');
const ascii = (s) => new TextEncoder().encode(s);

// Frame and key from the reference's golden vectors (packet.json build_full_single_route,
// build_secure_full; security.json derive_04).
const BODY = '42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|';
const TS = 1700000000000;
const PLAIN_FRAME =
  '3f010000002a01018bcfe5680034323b4e4f44455f412e312e41597650355767417c54313e4b2e413a636d77637c730f69';
const SECURE_FRAME =
  '40010000002a01018bcfe568003eb792060e859e2b60c50f789d8e22a8b00487a0193a9b14655da0945e04902776730f42';
const KEY = 'c447eb9640f3f2767db9393d60f2bd2e7af4571996ba5b52d2c86732f82d45cf';

test('crc check values', () => {
  assert.equal(binding.crc16(ascii('123456789')), 0x29b1);
  assert.equal(binding.crc8(ascii('123456789')), 0xf4);
  const data = ascii('123456789hello world');
  const offsets = Uint32Array.of(0, 9, 9, 20);
  assert.deepEqual([...binding.crc16Batch(data, offsets)], [0x29b1, 0xffff, binding.crc16(ascii('hello world'))]);
  assert.deepEqual([...binding.crc8Batch(data, offsets)], [0xf4, 0, 168]);
  assert.throws(() => binding.crc8Batch(data, Uint32Array.of(0, 30)), { code: 'OSN_OFFSETS', message: 'boundary 1 (30) is decreasing or past the 20-byte data' });
  assert.throws(() => binding.crc8Batch(data, new Uint32Array(0)), { code: 'OSN_OFFSETS_EMPTY' });
});

test('session key and xor', () => {
  const key = binding.deriveSessionKey(42n, BigInt(TS));
  assert.equal(toHex(key), KEY);
  const body = ascii(BODY);
  const once = binding.xorPayload(body, key, 19);
  assert.deepEqual(binding.xorPayload(once, key, 19), body);
  assert.deepEqual(binding.xorPayload(body, new Uint8Array(0), 7), body);
  assert.throws(() => binding.deriveSessionKey(-1n, 1n), { code: 'OSN_CONTRACT' });
});

test('frame encode/decode round trip', () => {
  const body = ascii(BODY);
  const frame = binding.encodeFrame(63, Uint32Array.of(42), 1, TS, body, null);
  assert.equal(toHex(frame), PLAIN_FRAME);

  const out = new Float64Array(11);
  const plainOut = new Uint8Array(frame.length);
  assert.equal(binding.decodeFrame(frame, null, out, plainOut), 0);
  const [status, cmd, routeCount, aid, tid, ts, bodyOffset, bodyLength, crc8, crc16, computed] = out;
  assert.deepEqual([status, cmd, routeCount, aid, tid, ts], [0, 63, 1, 42, 1, TS]);
  assert.deepEqual(frame.subarray(bodyOffset, bodyOffset + bodyLength), body);
  assert.deepEqual([crc8, crc16, computed], [binding.crc8(body), 0x0f69, 0]);

  const key = hex(KEY);
  const secure = binding.encodeFrame(63, Uint32Array.of(42), 1, TS, body, key);
  assert.equal(toHex(secure), SECURE_FRAME);
  assert.equal(binding.decodeFrame(secure, key, out, plainOut), 0);
  assert.equal(out[1], 64);
  assert.deepEqual(plainOut.subarray(0, out[7]), body);
  assert.equal(binding.decodeFrame(secure, undefined, out, plainOut), 4);

  const broken = Uint8Array.from(frame);
  broken[broken.length - 1] ^= 1;
  assert.equal(binding.decodeFrame(broken, null, out, plainOut), 3);
  assert.deepEqual([out[9], out[10]], [0x0f68, 0x0f69]);
  assert.equal(binding.decodeFrame(frame.subarray(0, 4), null, out, plainOut), 1);

  assert.throws(() => binding.encodeFrame(63, Uint32Array.of(42), 1, 2 ** 48, body, null), { code: 'OSN_FRAME_TIMESTAMP' });
  assert.throws(() => binding.decodeFrame(frame, null, out, frame), { code: 'OSN_CONTRACT' });
});

test('batch frame encode/decode', () => {
  const bodies = ascii('abcdefg');
  const frames = binding.encodeFrames(
    Uint8Array.of(63, 170, 127),
    Uint32Array.of(1, 2, 3),
    Uint8Array.of(1, 1, 2),
    Float64Array.of(TS, TS + 1, 0),
    bodies,
    Uint32Array.of(0, 4, 7, 7),
  );
  assert.equal(frames.length, 16 * 3 + 7);
  const offsets = Uint32Array.of(0, 20, 39, 55);
  const out = new Float64Array(33);
  assert.equal(binding.decodeFrames(frames, offsets, out), 3);
  assert.deepEqual([out[0], out[1], out[3], out[5], out[7]], [0, 63, 1, TS, 4]);
  assert.deepEqual([out[11], out[12], out[14], out[16], out[18]], [0, 170, 2, TS + 1, 3]);
  assert.deepEqual([out[22], out[23], out[25], out[27], out[29]], [0, 127, 3, 0, 0]);

  const secure = hex(SECURE_FRAME);
  const mixed = new Uint8Array(secure.length + 4);
  mixed.set(secure);
  assert.equal(binding.decodeFrames(mixed, Uint32Array.of(0, secure.length, mixed.length), out), 2);
  assert.deepEqual([out[0], out[1], out[3]], [7, 64, 42]);
  assert.equal(out[11], 1);
  assert.throws(() => binding.decodeFrames(frames, offsets, new Float64Array(32)), { code: 'OSN_OUT_TOO_SMALL' });
  assert.throws(() => binding.decodeFrames(frames, Uint32Array.of(0, 30, 20), out), { code: 'OSN_OFFSETS', message: /^boundary 2 \(20\)/ });
  assert.throws(() => binding.decodeFrames(frames, new Uint32Array(0), out), { code: 'OSN_OFFSETS_EMPTY' });
  // No frames: no boundary is read (as in the TypeScript codec).
  assert.equal(binding.decodeFrames(frames, Uint32Array.of(999), out), 0);
});

// Fusion steady state: io control words (crates/opensynaptic-contract: fusion_io, sender_load, send_batch).
const CTRL = 128;
function fusionIo(size = 4096) {
  const io = new Uint8Array(size);
  return { io, w: new Uint32Array(io.buffer) };
}
function loadTemplate(id, tid, sig, values) {
  const { io, w } = fusionIo();
  w[0] = id;
  w[1] = tid;
  w[2] = sig.length;
  w[3] = values === null ? 0xffffffff : values.length;
  let at = 16 + 4 * (values?.length ?? 0);
  io.set(ascii(sig), at);
  at += sig.length;
  (values ?? []).forEach((v, i) => {
    w[4 + i] = v.length;
    io.set(ascii(v), at);
    at += v.length;
  });
  binding.fusionSenderLoad(io);
}
/** One body as a batch of one: its fallback code (0: sent), frame and changed values. */
function send(id, aid, text, key = null) {
  const { io, w } = fusionIo();
  const t = ascii(text);
  if (key) io.set(key, CTRL);
  w[0] = id;
  w[1] = aid;
  w[2] = key ? key.length : 0;
  w[3] = 0;
  w[4] = 0;
  const out = new Uint8Array(t.length + 16);
  const ends = new Uint32Array(2);
  binding.fusionSendBatch(io, t, Uint32Array.of(0, t.length), out, ends);
  const changed = [];
  for (let k = 0, p = w[10] >> 2; k < w[9]; k++, p += 3) changed.push([w[p], text.slice(w[p + 1], w[p + 2])]);
  const frame = out.slice(0, w[6]);
  return { status: w[7], cmd: frame[0], tid: frame[6], frame, changed, ts: frame.length ? Number(BigInt(`0x${toHex(frame.subarray(7, 13))}`)) : 0 };
}

test('fusion sender: DIFF, HEART and fallbacks against the loaded template', () => {
  const id = binding.fusionSenderNew();
  const a = 'D.U.AYvP5WgA|S1>OK.K:cmwc|S2>OK.Pa:1B3|';
  const b = 'D.U.AYvP5WgB|S1>OK.K:cmxc|S2>OK.Pa:1B3|';
  assert.equal(send(id, 42, a).status, 4); // nothing loaded
  loadTemplate(id, 7, 'D.U.{TS}|S1>\x01:\x01|S2>\x01:\x01|', ['OK.K', 'cmwc', 'OK.Pa', '1B3']);
  const d = send(id, 42, b);
  assert.deepEqual([d.status, d.cmd, d.tid, d.ts, d.changed], [0, 170, 7, TS + 1, [[1, 'cmxc']]]);
  assert.equal(toHex(d.frame), toHex(binding.encodeFrame(170, Uint32Array.of(42), 7, TS + 1, Uint8Array.of(2, 4, ...ascii('cmxc')))));
  const h = send(id, 42, b);
  assert.deepEqual([h.status, h.cmd, h.changed], [0, 127, []]);
  const key = hex(KEY);
  const s = send(id, 42, a, key);
  assert.equal(toHex(s.frame), toHex(binding.encodeFrame(170, Uint32Array.of(42), 7, TS, Uint8Array.of(2, 4, ...ascii('cmwc')), key)));
  assert.equal(send(id, 42, 'D.U.AYvP5WgA').status, 2); // does not decompose
  assert.equal(send(id, 42, 'D.U.AYvP|S1>OK.K:1|S2>OK.Pa:1|').status, 3); // token
  assert.equal(send(id, 42, 'D.U.AYvP5WgA|S9>OK.K:1|').status, 5); // other signature
  assert.equal(send(id, 42, `D.U.AYvP5WgA|S1>OK.K:${'1'.repeat(256)}|S2>OK.Pa:1B3|`).status, 7); // FULL
  binding.fusionSenderFree(id);
  assert.throws(() => send(id, 42, a), { code: 'OSN_NO_SENDER' });
});

test('fusion sender batch: frames back to back, stops at the first fallback', () => {
  const id = binding.fusionSenderNew();
  loadTemplate(id, 1, 'D.U.{TS}|S1>\x01:\x01|', ['OK.K', '1']);
  const texts = ['D.U.AAAAAAAA|S1>OK.K:2|', 'D.U.AAAAAAAA|S1>OK.K:2|', 'D.U.AAAAAAAA|S1>OK.K:3|', 'D.U.AAAAAAAA|S7>OK.K:3|'];
  const bodies = ascii(texts.join(''));
  const offsets = Uint32Array.of(0, 23, 46, 69, 92);
  const { io, w } = fusionIo();
  w[0] = id;
  w[1] = 5;
  w[2] = 0;
  w[3] = 0;
  w[4] = 0;
  const out = new Uint8Array(92 + 16 * 4);
  const ends = new Uint32Array(5);
  assert.equal(binding.fusionSendBatch(io, bodies, offsets, out, ends), 3);
  assert.deepEqual([w[5], w[7], w[8], w[9]], [3, 5, 3, 1]);
  assert.deepEqual([...ends.subarray(1, 4)], [19, 19 + 16, 19 + 16 + 19]);
  assert.equal(w[6], 54);
  const p = w[10] >> 2;
  assert.deepEqual([w[p], w[p + 1], w[p + 2]], [1, 46 + 21, 46 + 22]);
  assert.deepEqual([out[0], out[19], out[35]], [170, 127, 170]);
  assert.throws(() => binding.fusionSendBatch(io, bodies, Uint32Array.of(0, 200), out, ends), { code: 'OSN_OFFSETS' });
  binding.fusionSenderFree(id);
});
