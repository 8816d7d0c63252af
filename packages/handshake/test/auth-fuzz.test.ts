/**
 * The authenticated mode under attack: forged, replayed, reordered, truncated and bit-flipped
 * frames against a server with an established session, AUTH_FUZZ_TRIES tries each (default
 * 20,000 here; `AUTH_FUZZ_TRIES=1000000 pnpm --filter @opensynaptic/handshake fuzz:auth` for the
 * long run). Zero may be accepted: no forgery or damaged frame ever opens, no frame opens twice,
 * a frame later than the window (or, with `order: 'strict'`, any late frame) never opens, and
 * the server never throws. Seeded (AUTH_FUZZ_SEED), so a failure can be repeated.
 */
import { seededRandom } from '@opensynaptic/config/kill-loop';
import { encodeFrame } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { AUTH_REPLAY_WINDOW, AuthClient, AuthServer } from '../src/index.js';

const TRIES = Number(process.env.AUTH_FUZZ_TRIES ?? 20_000);
const AID = 31337;
const SECRET = new Uint8Array(32).map((_, i) => (i * 91 + 3) & 0xff);
const NOW = 1_700_000_000_000;

const rnd = seededRandom(Number(process.env.AUTH_FUZZ_SEED ?? 0x2545f491));
const int = (n: number) => Math.floor(rnd() * n);
const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));

/** A plain 1-sensor DIFF-sized data frame of AID with a varying body. */
function plain(i: number): Uint8Array {
  const body = new TextEncoder().encode(`${i.toString(36)}.x`);
  return encodeFrame({ cmd: 0xaa, routes: [AID], tid: 1, timestamp: NOW + i, body });
}

function session(order: 'window' | 'strict' = 'window') {
  const server = new AuthServer({ order });
  server.setKey(AID, 0, SECRET);
  const client = new AuthClient({ secret: SECRET, mode: 'require' });
  expect(client.onWelcome(server.onHello(client.hello(AID), NOW).response)).toBe('established');
  let n = 0;
  const seal = () => client.seal(plain(n++), AID).frame;
  const open = (f: Uint8Array) => server.open(f, NOW);
  // The session is established once a first frame opens.
  expect(open(seal()).ok).toBe(true);
  return { server, client, seal, open };
}

describe(`authenticated frames under attack (${TRIES.toLocaleString('en-US')} tries each)`, () => {
  it('forged frames (random bytes under the right header) never open', () => {
    const { seal, open } = session();
    const model = seal();
    const headerLen = 2 + 4 * model[1]! + 7 + 4;
    let accepted = 0;
    for (let t = 0; t < TRIES; t++) {
      const f = new Uint8Array(headerLen + int(40) + 16);
      f.set(model.subarray(0, headerLen - 3), 0);
      f.set(bytes(f.length - (headerLen - 3)), headerLen - 3);
      if (open(f).ok) accepted++;
    }
    expect(accepted).toBe(0);
  });

  it('replayed frames never open a second time', () => {
    const { seal, open } = session();
    const seen: Uint8Array[] = [];
    for (let i = 0; i < 200; i++) {
      const f = seal();
      expect(open(f).ok).toBe(true);
      seen.push(f);
    }
    let accepted = 0;
    for (let t = 0; t < TRIES; t++) {
      if (open(seen[int(seen.length)]!).ok) accepted++;
      // Keep the stream moving now and then, so replays land both within and below the window.
      if (t % 97 === 0) {
        const f = seal();
        expect(open(f).ok).toBe(true);
        seen.push(f);
        if (seen.length > 400) seen.splice(0, 100);
      }
    }
    expect(accepted).toBe(0);
  });

  it('reordered frames: each opens at most once, none later than the window; with order strict no late frame opens', () => {
    for (const order of ['window', 'strict'] as const) {
      const { seal, open } = session(order);
      const opened = new Set<number>();
      let twice = 0;
      let beyond = 0;
      let late = 0;
      let highest = 0;
      const batch: { f: Uint8Array; seq: number }[] = [];
      let seq = 1; // the first frame of the session opened in session()
      for (let t = 0; t < TRIES; t++) {
        if (batch.length < 8 || rnd() < 0.5) batch.push({ f: seal(), seq: ++seq });
        // Deliver a random one of the waiting frames, sometimes one delivered before.
        const i = int(batch.length);
        const { f, seq: s } = batch[i]!;
        if (rnd() < 0.8) batch.splice(i, 1);
        const ok = open(f).ok;
        if (!ok) continue;
        if (opened.has(s)) twice++;
        if (highest - s >= AUTH_REPLAY_WINDOW) beyond++;
        if (order === 'strict' && s < highest) late++;
        opened.add(s);
        highest = Math.max(highest, s);
        // Frames never delivered fall far behind: drop them so the test sees old ones too.
        if (batch.length > 200) batch.splice(0, 100);
      }
      expect({ order, twice, beyond, late }).toEqual({ order, twice: 0, beyond: 0, late: 0 });
      expect(opened.size).toBeGreaterThan(0);
    }
  });

  it('truncated frames never open', () => {
    const { seal, open } = session();
    const pool = Array.from({ length: 256 }, () => seal());
    let accepted = 0;
    for (let t = 0; t < TRIES; t++) {
      const f = pool[int(pool.length)]!;
      if (open(f.subarray(0, int(f.length))).ok) accepted++;
    }
    expect(accepted).toBe(0);
    // The untouched frames still open: the cuts changed no state.
    expect(pool.filter((f) => open(f).ok).length).toBe(pool.length);
  });

  it('bit-flipped frames never open (1 to 3 bits anywhere)', () => {
    const { seal, open } = session();
    const pool = Array.from({ length: 256 }, () => seal());
    let accepted = 0;
    for (let t = 0; t < TRIES; t++) {
      const f = pool[int(pool.length)]!.slice();
      const bits = new Set<number>();
      for (let k = 1 + int(3); bits.size < k; ) bits.add(int(f.length * 8));
      for (const bit of bits) f[bit >> 3]! ^= 1 << (bit & 7);
      if (open(f).ok) accepted++;
    }
    expect(accepted).toBe(0);
    expect(pool.filter((f) => open(f).ok).length).toBe(pool.length);
  });
});
