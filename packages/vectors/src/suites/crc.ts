import { getCodec } from '@opensynaptic/crc';
import type { Suite } from '../types.js';
import { Checker, hexToBytes } from '../util.js';

/** crc.json: CRC-8/SMBUS and CRC-16/CCITT-FALSE over recorded inputs. */
export const crcSuite: Suite = {
  kind: 'crc',
  sniff: (f) => typeof f.cases[0]?.input?.data === 'string' && 'crc8' in (f.cases[0]?.expected ?? {}),
  run(file, backend) {
    const codec = getCodec(backend);
    return file.cases.map((c) => {
      const data = hexToBytes(c.input.data as string);
      const k = new Checker();
      if ('crc8' in c.expected) k.eq('crc8', () => codec.crc8(data), c.expected.crc8);
      if ('crc16_ccitt' in c.expected) k.eq('crc16', () => codec.crc16(data), c.expected.crc16_ccitt);
      return k.result(c.id);
    });
  },
};
