// decodeFrame of @opensynaptic/packet, TypeScript and native codecs, with and without a key.
// Asserts typed errors only, that both codecs agree, and that an accepted frame re-encodes to
// the same bytes.
import { backendInfo, getCodec } from '../../packages/packet/dist/index.js';
import { expectTyped, FRAME_DICT, fixFrame, hex } from './common.mjs';
const { nativeAvailable } = backendInfo();

const ts = getCodec('ts');
const native = nativeAvailable ? getCodec('native') : null;
const KEY = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 255);
const keys = { get: (aid) => (aid % 2 === 0 ? KEY : null) };

function decode(codec, frame, options) {
  try {
    const f = codec.decodeFrame(frame, options);
    return { ok: true, f, body: f.body.slice(), routes: f.routes };
  } catch (e) {
    expectTyped(e, `${codec.backend} decodeFrame`);
    return { ok: false, code: e.code };
  }
}

function check(frame, options) {
  const a = decode(ts, frame, options);
  if (native) {
    const b = decode(native, frame, options);
    if (a.ok !== b.ok || (!a.ok && a.code !== b.code)) throw new Error(`codecs disagree on ${hex(frame)}: ts ${a.code ?? 'ok'}, native ${b.code ?? 'ok'}`);
    if (a.ok) {
      for (const k of ['cmd', 'routeCount', 'sourceAid', 'tid', 'timestamp', 'bodyOffset', 'bodyLength', 'crc8', 'crc16']) {
        if (a.f[k] !== b.f[k]) throw new Error(`codecs disagree on ${k}: ${a.f[k]} vs ${b.f[k]}`);
      }
      if (Buffer.compare(a.body, b.body) !== 0) throw new Error('codecs disagree on the body');
    }
  }
  if (a.ok) {
    const f = a.f;
    const again = ts.encodeFrame({ cmd: f.baseCmd, routes: a.routes, tid: f.tid, timestamp: f.timestamp, body: a.body, key: f.secure ? KEY : null });
    // A plain frame with a secure-only command byte is not something encodeFrame makes; compare the rest.
    if (Buffer.compare(again, frame) !== 0 && f.cmd === (f.secure ? again[0] : f.baseCmd)) {
      throw new Error(`decode then encode differs: ${hex(frame)} -> ${hex(again)}`);
    }
  }
}

export default {
  maxLen: 70000,
  dict: FRAME_DICT,
  fixup: fixFrame,
  fuzz(frame) {
    check(frame, undefined);
    check(frame, { keys });
  },
};
