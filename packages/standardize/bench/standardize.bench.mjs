import { compare } from '@opensynaptic/config/bench';
import { runReferenceJson, sideBySide } from '@opensynaptic/config/reference';
import { OpenSynapticStandardizer } from '../dist/index.js';

// Readings as a device sends them: 1 sensor, and 8 sensors with as many different units.
const one = [['T1', 'OK', 21.5, 'Cel']];
const eight = [
  ['S1', 'OK', 11.111, 'Cel'],
  ['S2', 'OK', 12.222, 'kPa'],
  ['S3', 'OK', 13.333, 'm'],
  ['S4', 'OK', 14.444, 's'],
  ['S5', 'OK', 15.555, 'kg'],
  ['S6', 'OK', 16.666, 'Hz'],
  ['S7', 'OK', 17.777, '%'],
  ['S8', 'OK', 18.888, 'W'],
];
const std = new OpenSynapticStandardizer({ clockMs: () => 1_700_000_000_000 });

let sink = 0;
const rows = await compare('@opensynaptic/standardize: ns per call (units cached after the first call, as in the reference)', [
  { name: 'standardize 1 sensor', inner: 1000, impls: { ts: () => { sink += std.standardize('DEV1', 'ONLINE', one).t; } } },
  { name: 'standardize 8 sensors', inner: 200, impls: { ts: () => { sink += std.standardize('DEV1', 'ONLINE', eight).t; } } },
]);
if (sink === 0.5) console.log(sink);

// The same workload through the reference (opensynaptic 1.4.2, in a virtualenv made on first use).
// The cache file write is switched off: it happens once, on the first call, and would leave a
// file beside the reference's configuration.
const script = `
import sys
from opensynaptic.core.pycore.standardization import OpenSynapticStandardizer
s = OpenSynapticStandardizer()
s._save_cache = lambda: None
cases = json.loads(sys.argv[1])
out = {}
for name, sensors in cases.items():
    fn = lambda: s.standardize('DEV1', 'ONLINE', sensors)
    fn()
    out['standardize ' + name] = per_call_ns(fn)
print(json.dumps(out))
`;
await sideBySide(rows, (python) => runReferenceJson(python, script, [JSON.stringify({ '1 sensor': one, '8 sensors': eight })]));
