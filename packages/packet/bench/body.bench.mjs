import { compare } from '@opensynaptic/config/bench';
import { runReferenceJson, sideBySide } from '@opensynaptic/config/reference';
import { compressFact, decompressBody } from '../dist/body.js';

// Facts as the standardizer produces them: 1 sensor and 8 sensors.
const UNITS = ['temperature', 'pressure', 'length', 'time', 'mass', 'frequency', 'humidity', 'power'];
function fact(n) {
  const f = { id: 'DEV1', s: 'ONLINE', t: 1_700_000_000_000 };
  for (let i = 1; i <= n; i++) Object.assign(f, { [`s${i}_id`]: `S${i}`, [`s${i}_s`]: 'OK', [`s${i}_u`]: UNITS[i - 1], [`s${i}_v`]: 294.65 + i });
  return f;
}
const one = fact(1);
const eight = fact(8);
const oneText = compressFact(one);
const eightText = compressFact(eight);

let sink = 0;
const rows = await compare('@opensynaptic/packet body text: ns per call', [
  { name: 'compress 1 sensor', inner: 1000, impls: { ts: () => { sink += compressFact(one).length; } } },
  { name: 'decompress 1 sensor', inner: 1000, impls: { ts: () => { sink += decompressBody(oneText).t_raw; } } },
  { name: 'compress 8 sensors', inner: 200, impls: { ts: () => { sink += compressFact(eight).length; } } },
  { name: 'decompress 8 sensors', inner: 200, impls: { ts: () => { sink += decompressBody(eightText).t_raw; } } },
]);
if (sink === 0.5) console.log(sink);

// The same workload through the reference (opensynaptic 1.4.2, in a virtualenv made on first use).
const script = `
import sys
from opensynaptic.core.pycore.solidity import OpenSynapticEngine
e = OpenSynapticEngine()
facts = json.loads(sys.argv[1])
out = {}
for name, f in facts.items():
    text = e.compress(f)
    for op, fn in (('compress', lambda: e.compress(f)), ('decompress', lambda: e.decompress(text))):
        out[op + ' ' + name] = per_call_ns(fn)
print(json.dumps(out))
`;
await sideBySide(rows, (python) => runReferenceJson(python, script, [JSON.stringify({ '1 sensor': one, '8 sensors': eight })]));
