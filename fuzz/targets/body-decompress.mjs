// decompressBody of @opensynaptic/packet/body on any bytes and on the same text as a string: the
// bytes path drops invalid UTF-8 as Python's errors='ignore' does, so the string it is compared
// with is made the same way (utf8DecodeLossy), and both must give the same fact or both refuse.
import { decompressBody, utf8DecodeLossy } from '../../packages/packet/dist/body.js';
import { BODY_DICT, expectTyped } from './common.mjs';

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
    let b;
    try {
      b = decompressBody(utf8DecodeLossy(input));
    } catch (e) {
      expectTyped(e, 'decompressBody(string)');
    }
    if ((a === undefined) !== (b === undefined)) throw new Error(`bytes ${a === undefined ? 'refused' : 'decoded'} but the same text as a string ${b === undefined ? 'is refused' : 'decodes'}`);
    if (a !== undefined && JSON.stringify(a) !== JSON.stringify(b)) throw new Error('bytes and the same text as a string decode to different facts');
  },
};
