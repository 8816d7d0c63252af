import * as codec from '@opensynaptic/base62';
import type { Suite } from '../types.js';
import { Checker, fromPythonRepr, isOurError } from '../util.js';

/** base62.json: int64, fixed-point and invalid-input cases (the codec has one implementation for both backends). */
export const base62Suite: Suite = {
  kind: 'base62',
  sniff: (f) => typeof f.cases[0]?.input?.kind === 'string' && 'alphabet' in f,
  run(file) {
    return file.cases.map((c) => {
      const i = c.input;
      const e = c.expected;
      const k = new Checker();
      // Python hands the codec ints, floats, strings, None and bools alike; our API takes
      // numbers, so a literal becomes the JS value it denotes and the rest go in as they are.
      const asNumber = (v: unknown) => (typeof v === 'bigint' ? Number(v) : v) as number;
      switch (i.kind) {
        case 'int': {
          const n = i.n as string;
          if ('encode_use_precision_false' in e) k.eq('encodeInt', () => codec.encodeInt(Number(n)), e.encode_use_precision_false);
          if ('native_encode_i64' in e) k.eq('encodeBigInt', () => codec.encodeBigInt(BigInt(n)), e.native_encode_i64);
          if ('native_decode_i64' in e) {
            k.eq('decodeBigInt', () => codec.decodeBigInt(e.native_encode_i64 as string), BigInt(e.native_decode_i64 as string));
          }
          if ('decode_use_precision_false' in e) {
            k.eq('decodeInt', () => codec.decodeInt(e.native_encode_i64 as string), e.decode_use_precision_false);
          }
          break;
        }
        case 'int_odd':
          k.eq('encodeInt', () => codec.encodeInt(asNumber(fromPythonRepr(i.value_repr as string))), e.encode_use_precision_false);
          break;
        case 'float': {
          const p = i.precision as number;
          k.eq('encode', () => codec.encode(i.x as number, p), e.encoded);
          if ('decoded' in e) k.eq('decode', () => codec.decode(e.encoded as string, p), e.decoded);
          break;
        }
        case 'float_odd':
          k.eq('encode', () => codec.encode(asNumber(fromPythonRepr(i.value_repr as string)), i.precision as number), e.encoded);
          break;
        case 'decode': {
          const p = i.precision as number;
          k.eq('decode', () => codec.decode(i.s as string, p), e.decoded);
          if ('native_i64' in e) k.eq('decodeBigInt', () => codec.decodeBigInt(i.s as string), BigInt(e.native_i64 as string));
          break;
        }
        case 'decode_invalid': {
          const s = fromPythonRepr(i.s_repr as string);
          const text = (typeof s === 'bigint' ? Number(s) : s) as string;
          const run = i.use_precision ? () => codec.decode(text) : () => codec.decodeInt(text);
          if ('raises' in e) k.throws('decode', run, isOurError);
          else k.eq('decode', run, e.returns);
          break;
        }
        default:
          k.fail(`unknown case kind ${String(i.kind)}`);
      }
      return k.result(c.id);
    });
  },
};
