import { nativeCallError } from '@opensynaptic/internal';
import type { Base62Codec } from './codec.js';
import { Base62RangeError, Base62TypeError, InvalidBase62Error } from './errors.js';
import { DEFAULT_PRECISION, MAX_PRECISION } from './ts-codec.js';

/** The part of `@opensynaptic/binding` this package calls. */
export interface Base62Binding {
  b62EncodeBigint(value: bigint): string;
  b62EncodeNumber(value: number): string;
  b62EncodeFixed(value: number, precision: number): string;
  b62DecodeBigint(text: string): bigint;
  b62DecodeNumber(text: string): number;
  b62DecodeFixed(text: string, precision: number): number;
  b62EncodeFixedBatch(values: Float64Array, precision: number): string[];
  b62DecodeFixedBatch(texts: string[], precision: number): Float64Array;
}

const TAG = /^\[([a-z0-9:-]+)\]\s*(.*)$/s;

/** Turns the addon's tagged error messages into this package's typed errors. */
function rethrow(error: unknown, input: unknown): never {
  const message = error instanceof Error ? error.message : String(error);
  const m = TAG.exec(message);
  const tag = m?.[1];
  if (tag === 'base62:invalid') {
    const text = typeof input === 'string' ? input : String(input);
    const pos = /position (\d+)/.exec(message);
    throw new InvalidBase62Error(text, pos ? Number(pos[1]) : -1);
  }
  if (tag === 'base62:range' || tag === 'base62:not-finite') throw new Base62RangeError('value', m![2]!);
  // The arguments were checked before the call: anything else is the addon's own failure.
  throw nativeCallError('@opensynaptic/base62', 'base62', error);
}

function checkPrecision(precision: number): void {
  if (!Number.isInteger(precision) || precision < 0 || precision > MAX_PRECISION) {
    throw new Base62RangeError('precision', `${precision} is not an integer in 0..${MAX_PRECISION}`);
  }
}

function need(type: 'number' | 'string' | 'bigint', value: unknown): void {
  if (typeof value !== type) throw new Base62TypeError(type === 'bigint' ? 'a bigint' : `a ${type}`, value);
}

/** Wraps the addon in the codec interface, with the same argument checks and error types. */
export function nativeCodec(binding: unknown): Base62Codec | null {
  const b = binding as Partial<Base62Binding> | null;
  if (!b || typeof b.b62EncodeFixed !== 'function') return null;
  const n = b as Base62Binding;
  return {
    backend: 'native',
    encodeBigInt(value) {
      need('bigint', value);
      try {
        return n.b62EncodeBigint(value);
      } catch (e) {
        rethrow(e, value);
      }
    },
    decodeBigInt(text) {
      need('string', text);
      try {
        return n.b62DecodeBigint(text);
      } catch (e) {
        rethrow(e, text);
      }
    },
    encodeInt(value) {
      need('number', value);
      try {
        return n.b62EncodeNumber(value);
      } catch (e) {
        rethrow(e, value);
      }
    },
    decodeInt(text) {
      need('string', text);
      try {
        return n.b62DecodeNumber(text) + 0;
      } catch (e) {
        rethrow(e, text);
      }
    },
    encode(value, precision = DEFAULT_PRECISION) {
      need('number', value);
      checkPrecision(precision);
      try {
        return n.b62EncodeFixed(value, precision);
      } catch (e) {
        rethrow(e, value);
      }
    },
    decode(text, precision = DEFAULT_PRECISION) {
      need('string', text);
      checkPrecision(precision);
      try {
        return n.b62DecodeFixed(text, precision) + 0;
      } catch (e) {
        rethrow(e, text);
      }
    },
    encodeBatch(values, precision = DEFAULT_PRECISION) {
      checkPrecision(precision);
      const arr = values instanceof Float64Array ? values : Float64Array.from(values);
      try {
        return n.b62EncodeFixedBatch(arr, precision);
      } catch (e) {
        rethrow(e, undefined);
      }
    },
    decodeBatch(texts, precision = DEFAULT_PRECISION) {
      checkPrecision(precision);
      for (const t of texts) need('string', t);
      try {
        return n.b62DecodeFixedBatch(texts as string[], precision);
      } catch (e) {
        const item = /item (\d+)/.exec(e instanceof Error ? e.message : '');
        rethrow(e, item ? texts[Number(item[1])] : undefined);
      }
    },
  };
}
