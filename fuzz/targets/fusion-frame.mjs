// OSVisualFusionEngine.decompress on a sequence of raw frames (one engine per input, so FULL
// frames teach templates to later DIFF / HEART frames), TypeScript and native engines side by
// side: typed errors only, and both give the same fact or the same error code for every frame.
import { OSVisualFusionEngine } from '../../packages/fusion/dist/index.js';
import { backendInfo } from '../../packages/packet/dist/index.js';
import { expectTyped, FRAME_DICT, fixFrames, same, splitLengths } from './common.mjs';
const { nativeAvailable } = backendInfo();

const clock = () => 1_700_000_000_000;

function run(engine, frame, who) {
  try {
    const fact = engine.decompress(frame);
    return { ok: true, fact };
  } catch (e) {
    expectTyped(e, `${who} decompress`);
    return { ok: false, code: e.code };
  }
}


export default {
  maxLen: 70000,
  dict: FRAME_DICT,
  fixup: fixFrames,
  fuzz(input) {
    // Fresh engines per input, so that a finding reproduces from its input alone.
    const pair = [new OSVisualFusionEngine({ backend: 'ts', clock })];
    if (nativeAvailable) pair.push(new OSVisualFusionEngine({ backend: 'native', clock }));
    for (const frame of splitLengths(input, 8)) {
      const r = pair.map((e, i) => run(e, frame, i === 0 ? 'ts' : 'native'));
      if (r.length === 2) {
        const [a, b] = r;
        if (a.ok !== b.ok || (!a.ok && a.code !== b.code) || (a.ok && !same(a.fact, b.fact))) {
          throw new Error(`ts and native engines disagree: ${JSON.stringify(a.ok ? a.fact : a.code)} vs ${JSON.stringify(b.ok ? b.fact : b.code)}`);
        }
      }
    }
  },
};
