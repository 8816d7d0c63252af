// Writes the seed inputs of every fuzz target (TypeScript: fuzz/corpus/<target>/, Rust:
// crates/fuzz/corpus/<target>/) from the golden vectors and the adversarial inputs of issue 8.
// Seeds are named `seed-*`; inputs the fuzzers added are named by their hash. Re-run after the
// vectors change: `node fuzz/make-seeds.mjs` (needs the packages built).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeFrame } from '../packages/packet/dist/index.js';
import { joinLengths } from './targets/common.mjs';

const root = new URL('..', import.meta.url).pathname;
const enc = (s) => new TextEncoder().encode(s);
const fromHex = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const TS = 0x018bcfe56800;

// ------------------------------------------------------------------ material from the vectors
const hexes = new Set();
const texts = new Set();
function walk(v) {
  if (typeof v === 'string') {
    if (v.length >= 10 && v.length % 2 === 0 && /^[0-9a-f]+$/.test(v)) hexes.add(v);
    else if (v.includes('|') && v.includes('.') && v.length < 2000) texts.add(v);
  } else if (Array.isArray(v)) v.forEach(walk);
  else if (v && typeof v === 'object') Object.values(v).forEach(walk);
}
for (const f of readdirSync(join(root, 'vectors'))) if (f.endsWith('.json') && f !== 'deviations.json') walk(JSON.parse(readFileSync(join(root, 'vectors', f), 'utf8')));
const DATA = new Set([63, 64, 170, 171, 127, 128]);
const CTRL = new Set([1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14]);
const frames = [...hexes].map(fromHex).filter((b) => DATA.has(b[0]) && b.length >= 12);
const ctrls = [...hexes].map(fromHex).filter((b) => CTRL.has(b[0]));
// A few of each is enough: the fuzzer finds the rest; more would only slow the seed pass.
const pick = (list, n) => list.filter((_, i) => i % Math.max(1, Math.floor(list.length / n)) === 0).slice(0, n);

// ------------------------------------------------------------------ the issue's inputs
const bigBody = enc(`D.1.AYvP5WgA|${'|'.repeat(8182)}`);
const bigFull = encodeFrame({ cmd: 63, routes: 7, tid: 1, timestamp: TS, body: bigBody });
if (bigFull.length !== 8211) throw new Error(`big frame is ${bigFull.length} bytes`);
// Sized so that the quadratic decoders of issue 8 item 2 take well over the 100 ms budget.
const spaces = enc(`D.1.AYvP5WgA|S1>K.1,x${' '.repeat(12000)}y:1|`);
const ones = enc(`D.1.AYvP5WgA|S1>K.1,x${'1'.repeat(12000)}a1:1|`);
const colons = enc(`D.1.AYvP5WgA|S1>K.1:1|${'S>a|'.repeat(3000)}`);
const dictReady = fromHex('0d0000002a0000011f71fb04cb');

const out = {};
const push = (sets, target, name, bytes) => {
  if (!sets[target]) sets[target] = [];
  sets[target].push([name, bytes]);
};
const add = (target, name, bytes) => push(out, target, name, bytes);

pick(frames, 24).forEach((f, i) => {
  add('packet-frame', `vector-${i}`, f);
});
add('packet-frame', 'issue8-full-8211', bigFull);
add('packet-frames', 'vectors', joinLengths(pick(frames, 8)));
add('packet-frames', 'issue8-full-8211-then-small', joinLengths([bigFull, pick(frames, 1)[0]]));
pick([...texts], 24).forEach((t, i) => {
  add('body-decompress', `vector-${i}`, enc(t));
});
add('body-decompress', 'issue8-item2-spaces', spaces);
add('body-decompress', 'issue8-item2-ones', ones);
add('body-decompress', 'issue8-item2-colons', colons);
add('body-decompress', 'issue8-full-8211-body', bigBody);
add('fusion-frame', 'vectors', joinLengths(pick(frames, 8)));
add('fusion-frame', 'issue8-item1-big-then-diff', joinLengths([bigFull, ...frames.filter((f) => f[0] === 170).slice(0, 2)]));
add('fusion-frame', 'issue8-item2-spaces', joinLengths([encodeFrame({ cmd: 63, routes: 7, tid: 1, timestamp: TS, body: spaces })]));
const fullThenDiff = (text, diffs) => new Uint8Array([...enc(text), 0, ...joinLengths(diffs)]);
add('fusion-diff', 'one-sensor', fullThenDiff('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|', [Uint8Array.of(2, 4, ...enc('cnOQ'))]));
add('fusion-diff', 'two-sensors', fullThenDiff('D.1.AYvP5WgA|S1>OK.Cel:1B3|S2>OK.Pa:Zz|', [Uint8Array.of(5, 2, ...enc('WA'), 3, ...enc('1B4')), Uint8Array.of(0)]));
add('fusion-diff', 'issue8-item3-control-id', fullThenDiff('D\x01X.1.AYvP5WgA|S1>OK.Cel:1B3|', [Uint8Array.of(2, 3, ...enc('1B4'))]));
add('fusion-diff', 'issue8-full-8211-body', fullThenDiff(new TextDecoder().decode(bigBody), [Uint8Array.of(0)]));
pick(ctrls, 20).forEach((c, i) => {
  add('handshake-control', `vector-${i}`, joinLengths([c]));
});
add('handshake-control', 'issue8-item4-dict-ready', joinLengths([dictReady, dictReady]));
add('handshake-control', 'id-request-then-data', joinLengths([ctrls[0] ?? Uint8Array.of(1, 0, 1), frames[0]]));
const registry = (body) => enc(body);
add('fusion-store', 'valid', registry('{\n    "aid": "4242",\n    "templates": {\n        "01": {\n            "sig": "D.1.{TS}|S1>\\u0001:\\u0001|",\n            "last_vals_bin": ["T0suQQ==", "Y213Yw=="]\n        }\n    }\n}'));
for (const [name, body] of [['empty-object', '{}'], ['array', '[]'], ['null', 'null'], ['number', '5']]) add('fusion-store', `issue8-item8-${name}`, registry(body));
add('fusion-store', 'issue8-item8-star-value', registry('{"aid": "4242", "templates": {"01": {"sig": "D.1.{TS}|S1>\\u0001:\\u0001|", "last_vals_bin": ["*", "Y213Yw=="]}}}'));
add('fusion-store', 'renamed-keys', registry('{"AID": "4242", "tpl": {"01": {"sig": "x"}}}'));
const session = (aid, state, key) =>
  `"${aid}": {"state": "${state}", "dictReady": true, "decryptConfirmed": true, "key": ${key}, "pendingKey": null, "firstPlaintextTs": 1700000000000, "pendingTimestamp": null, "lastSeen": 1700000000}`;
const sessionsFile = `{"version": 1, "sessions": {${session(42, 'SECURE', `"${'ab'.repeat(32)}"`)}, ${session(7, 'PLAINTEXT_SENT', 'null')}}}`;
const leasesFile = '{"version": 1, "start": 1, "end": 4294967294, "next": 5, "leases": [{"id": 3, "key": "aa:bb", "expiresAt": 1800000000}, {"id": 4, "key": "cc", "expiresAt": 1}], "released": [2]}';
add('handshake-store', 'valid', new Uint8Array([...enc(sessionsFile), 0, ...enc(leasesFile)]));
// Found by fuzzing: a number that overflows to Infinity loads, is saved as null, and the next
// open refuses the file (regression seeds; see fuzz/known.json).
add('handshake-store', 'found-sessions-lastseen-overflow', enc('{"version":1,"sessions":{"7":{"state":"INIT","lastSeen":1e400}}}'));
add('handshake-store', 'found-leases-expiry-overflow', enc('{"version":1,"sessions":{}}\0{"version":1,"leases":[{"id":3,"key":"a","expiresAt":1e400}],"released":[]}'));
add('handshake-store', 'empty', new Uint8Array([...enc('{}'), 0, ...enc('{}')]));
for (const [name, body] of [['array', '[]'], ['null', 'null'], ['number', '5'], ['star', '"*"']]) add('handshake-store', `shape-${name}`, new Uint8Array([...enc(body), 0, ...enc(body)]));

// Rust targets: raw frames, batches, bodies, DIFF bodies.
const rust = {};
const addR = (target, name, bytes) => push(rust, target, name, bytes);
pick(frames, 24).forEach((f, i) => {
  addR('frame_decode', `vector-${i}`, f);
});
addR('frame_decode', 'issue8-full-8211', bigFull);
const rustBatch = (fs) => {
  const lens = fs.flatMap((f) => [f.length & 255, f.length >> 8]);
  return new Uint8Array([fs.length, ...lens, ...fs.flatMap((f) => [...f])]);
};
addR('frame_batch', 'vectors', rustBatch(pick(frames, 8)));
addR('frame_batch', 'issue8-full-8211-then-small', rustBatch([bigFull, frames[0]]));
['0', 'zz', '-aZl8N0y58M8', 'aZl8N0y58M7', 'aZl8N0y58M8', '1B3', 'cmwc', '-', ''].forEach((s, i) => {
  addR('base62_decode', `text-${i}`, enc(s));
});
pick([...texts], 16).forEach((t, i) => {
  addR('fusion_decompose', `vector-${i}`, enc(t));
});
addR('fusion_decompose', 'issue8-item2-spaces', spaces);
addR('fusion_decompose', 'issue8-item2-colons', colons);
addR('fusion_decompose', 'issue8-full-8211-body', bigBody);
addR('fusion_diff', 'four-values', Uint8Array.of(4, 0, 0x0a, 4, ...enc('cmxc'), 0));
addR('fusion_diff', 'sixteen-values', Uint8Array.of(16, 0, 0x80, 0x01, 1, 65, 2, 66, 67));
addR('fusion_sender', 'diff', new Uint8Array([...enc('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|'), 0, ...enc('42;NODE_A.1.AYvP5Wvo|T1>K.A:cnOQ|')]));
addR('fusion_sender', 'heart', new Uint8Array([...enc('D.1.AYvP5WgA|S1>OK.Cel:1B3|S2>OK.Pa:Zz|'), 0, ...enc('D.1.AYvP5Wvo|S1>OK.Cel:1B3|S2>OK.Pa:Zz|')]));
addR('security_xor', 'key', new Uint8Array([4, 0xde, 0xad, 0xbe, 0xef, ...enc('hello')]));

function write(base, sets) {
  for (const [target, list] of Object.entries(sets)) {
    const dir = join(root, base, target);
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of list) writeFileSync(join(dir, `seed-${name}`), bytes);
  }
}
write('fuzz/corpus', out);
write('crates/fuzz/corpus', rust);
console.log(`seeds: ${Object.values(out).flat().length} TypeScript, ${Object.values(rust).flat().length} Rust`);
