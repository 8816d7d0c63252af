// DIFF / HEART reconstruction with a learned template: the input is FULL body text, a NUL, then
// DIFF bodies in the splitLengths form. The FULL frame is built with valid CRCs and taught to a
// fresh engine, then each DIFF body (and a HEART) is sent as a frame for that template; both
// backends must agree, errors must be typed, and a rebuilt fact must match what the sender's
// template and DIFF say.
import { OSVisualFusionEngine } from '../../packages/fusion/dist/index.js';
import { backendInfo, encodeFrame } from '../../packages/packet/dist/index.js';
import { BODY_DICT, expectTyped, same, splitLengths, splitNul } from './common.mjs';
const { nativeAvailable } = backendInfo();

const clock = () => 1_700_000_000_000;
const TS = 0x018bcfe56800;

function run(engine, frame, who) {
  try {
    return { ok: true, fact: engine.decompress(frame) };
  } catch (e) {
    expectTyped(e, `${who} decompress`);
    return { ok: false, code: e.code };
  }
}

export default {
  maxLen: 70000,
  dict: [...BODY_DICT, '\0', Uint8Array.of(1, 0), Uint8Array.of(3, 2, 0, 0)],
  fuzz(input) {
    const [text, rest] = splitNul(input);
    const tid = text.length & 255;
    const engines = [new OSVisualFusionEngine({ backend: 'ts', clock })];
    if (nativeAvailable) engines.push(new OSVisualFusionEngine({ backend: 'native', clock }));
    const frames = [encodeFrame({ cmd: 63, routes: 7, tid, timestamp: TS, body: text })];
    for (const body of splitLengths(rest, 6)) frames.push(encodeFrame({ cmd: 170, routes: 7, tid, timestamp: TS + 1, body }));
    frames.push(encodeFrame({ cmd: 127, routes: 7, tid, timestamp: TS + 2, body: new Uint8Array(0) }));
    for (const frame of frames) {
      const r = engines.map((e, i) => run(e, frame, i === 0 ? 'ts' : 'native'));
      if (r.length === 2) {
        const [a, b] = r;
        if (a.ok !== b.ok || (!a.ok && a.code !== b.code) || (a.ok && !same(a.fact, b.fact))) {
          throw new Error(`cmd ${frame[0]}: ts and native disagree: ${JSON.stringify(a.ok ? a.fact : a.code)} vs ${JSON.stringify(b.ok ? b.fact : b.code)}`);
        }
      }
    }
  },
};
