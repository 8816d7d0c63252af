import { deriveSessionKey, getCodec, type SessionKeyInput, sessionSeed } from '@opensynaptic/crc';
import type { Suite } from '../types.js';
import { bytesToHex, Checker, fromPythonRepr, hexToBytes } from '../util.js';

/** security.json: session-key derivation and the XOR body transform. */
export const securitySuite: Suite = {
  kind: 'security',
  sniff: (f) => typeof f.cases[0]?.input?.fn === 'string',
  run(file, backend) {
    const codec = getCodec(backend);
    return file.cases.map((c) => {
      const i = c.input;
      const e = c.expected;
      const k = new Checker();
      if (i.fn === 'derive_session_key') {
        const aid = fromPythonRepr(i.assigned_id_repr as string) as SessionKeyInput;
        const ts = fromPythonRepr(i.timestamp_raw_repr as string) as SessionKeyInput;
        k.eq('seed', () => sessionSeed(aid, ts), BigInt(e.seed_u64 as string));
        k.eq('key', () => bytesToHex(codec.digestSeed(sessionSeed(aid, ts))), e.key);
        k.eq('deriveSessionKey', () => bytesToHex(deriveSessionKey(aid, ts)), e.key);
      } else if (i.fn === 'xor_payload') {
        const payload = hexToBytes(i.payload as string);
        const key = i.key === null ? new Uint8Array(0) : hexToBytes(i.key as string);
        k.eq('xor', () => bytesToHex(codec.xorPayload(payload, key, i.offset as number)), e.out);
      } else {
        k.fail(`unknown fn ${String(i.fn)}`);
      }
      return k.result(c.id);
    });
  },
};
