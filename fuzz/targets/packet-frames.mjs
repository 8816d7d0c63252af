// decodeFrames (batch check) of both codecs against decodeFrame frame by frame.
import { backendInfo, DECODED_FIELDS, FrameStatus, getCodec } from '../../packages/packet/dist/index.js';
import { expectTyped, FRAME_DICT, fixFrames, splitLengths } from './common.mjs';
const { nativeAvailable } = backendInfo();

const ts = getCodec('ts');
const codecs = nativeAvailable ? [ts, getCodec('native')] : [ts];
const STATUS = {
  ERR_FRAME_TOO_SHORT: FrameStatus.TOO_SHORT,
  ERR_FRAME_INCOMPLETE_HEADER: FrameStatus.INCOMPLETE_HEADER,
  ERR_FRAME_CRC16: FrameStatus.CRC16_MISMATCH,
  ERR_FRAME_MISSING_KEY: FrameStatus.SECURE_UNCHECKED,
  ERR_FRAME_CRC8: FrameStatus.CRC8_MISMATCH,
  ERR_FRAME_UNKNOWN_CMD: FrameStatus.UNKNOWN_CMD,
};

export default {
  maxLen: 70000,
  dict: FRAME_DICT,
  fixup: fixFrames,
  fuzz(input) {
    const frames = splitLengths(input);
    const offsets = new Uint32Array(frames.length + 1);
    let n = 0;
    frames.forEach((f, i) => {
      n += f.length;
      offsets[i + 1] = n;
    });
    const buf = new Uint8Array(n);
    for (let i = 0; i < frames.length; i++) buf.set(frames[i], offsets[i]);
    const single = frames.map((f) => {
      try {
        ts.decodeFrame(f);
        return FrameStatus.OK;
      } catch (e) {
        expectTyped(e, 'decodeFrame');
        return STATUS[e.code];
      }
    });
    for (const c of codecs) {
      const out = new Float64Array(frames.length * DECODED_FIELDS);
      let count;
      try {
        count = c.decodeFrames(buf, offsets, out);
      } catch (e) {
        expectTyped(e, `${c.backend} decodeFrames`);
        throw new Error(`${c.backend} decodeFrames refused a well-formed batch: ${e.message}`);
      }
      if (count !== frames.length) throw new Error(`${c.backend} decodeFrames counted ${count} of ${frames.length}`);
      for (let i = 0; i < frames.length; i++) {
        const got = out[i * DECODED_FIELDS];
        // Secure frames are not decrypted in a batch: SECURE_UNCHECKED, or a CRC-16 failure.
        if (got !== single[i]) throw new Error(`${c.backend} decodeFrames frame ${i}: status ${got}, decodeFrame says ${single[i]}`);
      }
    }
  },
};
