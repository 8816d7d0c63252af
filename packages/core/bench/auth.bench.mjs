// What the authenticated mode costs, against the plain path in the same run: bytes per frame
// (FULL, DIFF, HEART; 1, 4 and 8 sensors) and the time of a transmit (standardize, fuse, seal)
// and of a receive (open, replay window, decode) per frame, plain / legacy XOR-secure /
// authenticated, medians (tinybench) and ratios. The transmit is measured in DIFF steady state
// with one value changing per frame; each receive decodes frames the sender made in order, made
// before the timing (an authenticated frame opens once: a replay would take the cheap refusal
// path), BENCH_RING (300,000) of them per mode; the run stops with an error rather than reuse one.
// Run after the build: `node bench/auth.bench.mjs` (or `pnpm --filter @opensynaptic/core bench:auth`).
import { compare } from '@opensynaptic/config/bench';
import { AuthServer } from '@opensynaptic/handshake';
import { OpenSynaptic } from '../dist/index.js';

const AID = 42;
const SECRET = new Uint8Array(32).map((_, i) => i + 1);
const T0 = 1_700_000_000_000;
const clock = () => T0;
const SENSORS = [
  ['S1', 'OK', 21.5, 'Cel'],
  ['S2', 'OK', 101.325, 'kPa'],
  ['S3', 'OK', 1.25, 'm'],
  ['S4', 'OK', 3600, 's'],
  ['S5', 'OK', 72.5, 'kg'],
  ['S6', 'OK', 50, 'Hz'],
  ['S7', 'OK', 45.5, '%'],
  ['S8', 'OK', 1500, 'W'],
];

/** A sender and its receiver, `mode` plain, secure (the legacy XOR session) or authenticated, past the FULLs. */
function pair(mode, n) {
  const auth = new AuthServer();
  auth.setKey(AID, 0, SECRET);
  const rx = new OpenSynaptic({ assignedId: 1, clock, handshake: { auth: { server: auth } } });
  const tx = new OpenSynaptic({ assignedId: AID, clock, ...(mode === 'authenticated' ? { auth: { secret: SECRET, mode: 'require' } } : {}) });
  if (mode === 'authenticated') {
    const welcome = rx.receive(tx.protocol.authClient.hello(AID)).response;
    tx.receive(welcome);
    if (tx.protocol.authClient.state !== 'established') throw new Error('no authenticated session');
  }
  const a = SENSORS.slice(0, n).map((s) => [...s]);
  let t = T0;
  const send = (values) => {
    t += 1000;
    const out = tx.transmit(values, { t });
    const r = rx.receive(out.frame);
    // Plain stays plain: the receiver's SECURE_DICT_READY would start the legacy XOR session.
    if (r.response && mode !== 'plain') tx.receive(r.response);
    if (r.type !== 'data') throw new Error(`${mode}: the receiver gave ${r.type} ${r.error?.message ?? r.reason ?? ''}`);
    return out;
  };
  const sizes = {};
  for (let i = 0; i < 12; i++) {
    const v = a.map((s) => [...s]);
    // Two changes then two repeats: FULLs first, then DIFFs and HEARTs.
    if (i % 4 < 2) v[0][2] = 20 + i / 10;
    else v[0][2] = 20 + (i - (i % 4) + 1) / 10;
    const out = send(v);
    sizes[out.kind] = out.frame.length;
  }
  const last = send(a);
  if ((mode === 'secure') !== last.secure || (mode === 'authenticated') !== last.authenticated) throw new Error(`${mode}: the frames are not ${mode}`);
  return { tx, rx, a, sizes, nextT: () => (t += 1000) };
}

// ------------------------------------------------------------------------------- bytes
const rows = [];
for (const n of [1, 4, 8]) {
  const row = { sensors: n };
  const plain = pair('plain', n).sizes;
  const secure = pair('secure', n).sizes;
  const auth = pair('authenticated', n).sizes;
  for (const k of ['FULL', 'DIFF', 'HEART']) {
    row[`${k} plain`] = plain[k];
    row[`${k} secure`] = secure[k];
    row[`${k} auth`] = auth[k];
    row[`${k} +bytes`] = auth[k] - plain[k];
  }
  rows.push(row);
}
console.log(`\nbytes per frame: plain, legacy secure (XOR), authenticated (ChaCha20-Poly1305, 16-byte tag, [sid][seq:3]; no CRCs)`);
console.table(rows);

// ------------------------------------------------------------------------------- time
const RING = Number(process.env.BENCH_RING ?? 300_000);
const cases = [];
for (const n of [1, 8]) {
  const impls = { transmit: {}, receive: {} };
  for (const mode of ['plain', 'secure', 'authenticated']) {
    const p = pair(mode, n);
    const b = p.a.map((s) => [...s]);
    let flip = 0;
    impls.transmit[mode] = () => {
      b[0][2] = flip++ & 1 ? 21.6 : 21.5;
      p.tx.transmit(b, { t: p.nextT() });
    };
    // Frames to receive, made in order before any timing.
    const r = pair(mode, n);
    const ring = [];
    for (let i = 0; i < RING; i++) {
      b[0][2] = i & 1 ? 21.6 : 21.5;
      ring.push(r.tx.transmit(b, { t: r.nextT() }).frame);
    }
    let k = 0;
    impls.receive[mode] = () => {
      if (k === RING) throw new Error(`${mode}: all ${RING} frames received; raise BENCH_RING`);
      r.rx.receive(ring[k++]);
    };
  }
  cases.push({ name: `transmit, ${n} sensor(s), DIFF`, inner: 64, impls: impls.transmit });
  cases.push({ name: `receive, ${n} sensor(s), DIFF`, inner: 64, impls: impls.receive });
}
const timed = await compare('time per frame (ns): plain / secure (legacy XOR) / authenticated', cases);
for (const row of timed) {
  const plain = Number(row['plain ns']);
  console.log(`${row.operation}: authenticated ${(Number(row['authenticated ns']) / plain).toFixed(2)}x plain, secure ${(Number(row['secure ns']) / plain).toFixed(2)}x plain`);
}
