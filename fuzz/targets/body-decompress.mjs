// decompressBody of @opensynaptic/packet/body on any bytes and on the same text as a string.
import { decompressBody } from '../../packages/packet/dist/body.js';
import { BODY_DICT, expectTyped } from './common.mjs';

const dec = new TextDecoder();

export default {
  maxLen: 70000,
  dict: BODY_DICT,
  fuzz(input) {
    let a;
    try {
      a = decompressBody(input);
    } catch (e) {
      expectTyped(e, 'decompressBody(bytes)');
    }
    const text = dec.decode(input);
    try {
      decompressBody(text);
      if (a === undefined) throw new Error('bytes refused but the same text as a string decodes');
    } catch (e) {
      expectTyped(e, 'decompressBody(string)');
    }
  },
};
