import { OSVisualFusionEngine } from '@opensynaptic/fusion';
import { AUTH_SUITE_X25519_CHACHA20_POLY1305, AuthClient, type AuthRejectReason, AuthServer, buildAuthReject, deriveAuthKeys, parseAuthReject, x25519SharedSecret } from '@opensynaptic/handshake';
import type { BackendName, CaseResult, Suite, VectorCase } from '../types.js';
import { bytesToHex, Checker, hexToBytes } from '../util.js';

const NOW = 1_700_000_000_000;

/** One stream case run on a fresh server and device: the key schedule, HELLO, WELCOME, each frame sealed, opened and decoded. */
function stream(c: VectorCase, backend: BackendName, k: Checker): { server: AuthServer; sealed: Uint8Array[]; next: () => Uint8Array } {
  const i = c.input;
  const e = c.expected;
  const clientNonce = hexToBytes(i.clientNonce as string);
  const serverNonce = hexToBytes(i.serverNonce as string);
  const aid = i.aid as number;
  const kid = i.kid as number;
  const x = i.suite === AUTH_SUITE_X25519_CHACHA20_POLY1305;
  let client: AuthClient;
  let server: AuthServer;
  let hello: Uint8Array;
  let keys: ReturnType<typeof deriveAuthKeys>;
  if (x) {
    // Suite 2: ikm = X25519(ephemeral, server static); info gains ephemeral ‖ server public keys.
    const serverPublicKey = hexToBytes(i.serverPublicKey as string);
    const ephemeralPublicKey = hexToBytes(i.ephemeralPublicKey as string);
    const shared = x25519SharedSecret(hexToBytes(i.ephemeralPrivateKey as string), serverPublicKey);
    k.eq('shared', () => bytesToHex(shared), e.shared);
    k.eq('shared (server side)', () => bytesToHex(x25519SharedSecret(hexToBytes(i.serverPrivateKey as string), ephemeralPublicKey)), e.shared);
    const info = new Uint8Array(64);
    info.set(ephemeralPublicKey, 0);
    info.set(serverPublicKey, 32);
    keys = deriveAuthKeys(shared, clientNonce, serverNonce, aid, i.suite as number, kid, i.sid as number, info);
    client = new AuthClient({ serverPublicKey, kid, mode: 'require' });
    hello = client.hello(aid, clientNonce, hexToBytes(i.ephemeralPrivateKey as string));
    server = new AuthServer({ random: () => serverNonce.slice(), x25519: { privateKey: hexToBytes(i.serverPrivateKey as string), kid, accept: 'any' } });
  } else {
    const secret = hexToBytes(i.secret as string);
    keys = deriveAuthKeys(secret, clientNonce, serverNonce, aid, i.suite as number, kid, i.sid as number);
    client = new AuthClient({ secret, kid, mode: 'require' });
    hello = client.hello(aid, clientNonce);
    server = new AuthServer({ random: () => serverNonce.slice() });
    server.setKey(aid, kid, secret);
  }
  k.eq('key', () => bytesToHex(keys.key), e.key);
  k.eq('iv', () => bytesToHex(keys.iv), e.iv);
  k.eq('hello', () => bytesToHex(hello), e.hello);
  const welcome = server.onHello(hello, NOW).response;
  k.eq('welcome', () => bytesToHex(welcome), e.welcome);
  k.eq('client takes the welcome', () => client.onWelcome(welcome), 'established');
  // The receiver's fusion layer of this backend decodes what the authenticated layer opened.
  const engine = new OSVisualFusionEngine({ backend, clock: () => NOW });
  const plain = i.plain as string[];
  const sealed: Uint8Array[] = [];
  for (let n = 0; n < plain.length; n++) {
    const frame = client.seal(hexToBytes(plain[n]!), aid).frame;
    sealed.push(frame);
    k.eq(`sealed[${n}]`, () => bytesToHex(frame), (e.sealed as string[])[n]);
    const opened = server.open(hexToBytes((e.sealed as string[])[n]!), NOW);
    if (!opened.ok) {
      k.fail(`open[${n}]: ${opened.error.code} ${opened.error.message}`);
      continue;
    }
    k.eq(`opened[${n}]`, () => bytesToHex(opened.plain), plain[n]);
    const fact = engine.parse(opened.plain) as unknown as Record<string, unknown>;
    const values = (e.values as number[][])[n]!;
    // The standardizer sent °C as kelvin; the fact carries what the frame holds.
    k.eq(`values[${n}]`, () => values.map((_, j) => (fact[`s${j + 1}_v`] as number).toFixed(4)).join(' '), values.map((v) => (v + 273.15).toFixed(4)).join(' '));
  }
  // One more frame of the session, never delivered: what the refusals damage (a copy of a frame
  // already accepted would be refused as a replay before its tag is looked at).
  const next = () => client.seal(hexToBytes(plain[plain.length - 1]!), aid).frame;
  return { server, sealed, next };
}

const DAMAGE: Record<string, (f: Uint8Array) => Uint8Array> = {
  replay: (f) => f.slice(),
  'flip-first-body-bit': (f) => flip(f, 2 + 4 * f[1]! + 7 + 4),
  'flip-last-tag-bit': (f) => flip(f, f.length - 1),
  'flip-header-ts-bit': (f) => flip(f, 2 + 4 * f[1]! + 6),
  // The seq's middle byte: a higher seq, so the window lets it through to the tag.
  'flip-seq-bit': (f) => flip(f, 2 + 4 * f[1]! + 7 + 2),
  'other-sid': (f) => {
    const g = f.slice();
    g[2 + 4 * f[1]! + 7]! ^= 0x80;
    return g;
  },
  'truncate-1': (f) => f.slice(0, f.length - 1),
  'truncate-to-header': (f) => f.slice(0, 2 + 4 * f[1]! + 7),
  'seq-zero': (f) => {
    const g = f.slice();
    const at = 2 + 4 * f[1]! + 8;
    g[at] = 0;
    g[at + 1] = 0;
    g[at + 2] = 0;
    return g;
  },
};
function flip(f: Uint8Array, at: number): Uint8Array {
  const g = f.slice();
  g[at]! ^= 1;
  return g;
}

/** auth.json: the authenticated mode's key schedule, handshake packets, sealed frames and refusals (our extension). */
export const authSuite: Suite = {
  kind: 'auth',
  sniff: (f) => f.cases.some((c) => c.input?.kind === 'stream' && typeof c.input.clientNonce === 'string'),
  run(file, backend): CaseResult[] {
    const streams = new Map<string, { server: AuthServer; sealed: Uint8Array[]; next: () => Uint8Array }>();
    return file.cases.map((c) => {
      const k = new Checker();
      const kind = c.input.kind;
      if (kind === 'stream') streams.set(c.id, stream(c, backend, k));
      else if (kind === 'reject') k.eq('packet', () => bytesToHex(buildAuthReject(c.input.aid as number, c.input.reason as AuthRejectReason)), c.expected.packet);
      else if (kind === 'refusals') {
        const s = streams.get(c.input.stream as string);
        if (s === undefined) k.fail(`no stream ${String(c.input.stream)} before this case`);
        else {
          const last = s.sealed[s.sealed.length - 1]!;
          const fresh = s.next();
          for (const [what, code] of c.expected.cases as [string, string][]) {
            const damage = DAMAGE[what];
            if (damage === undefined) {
              k.fail(`unknown damage ${what}`);
              continue;
            }
            k.eq(what, () => {
              const r = s.server.open(damage(what === 'replay' ? last : fresh), NOW);
              return r.ok ? 'accepted' : r.error.code;
            }, code);
          }
          // None of that changed the session: the undamaged frame still opens, once.
          k.eq('the undamaged frame', () => (s.server.open(fresh, NOW).ok ? 'accepted' : 'refused'), 'accepted');
        }
      } else if (kind === 'x25519-hello') {
        const s = file.cases.find((x) => x.id === c.input.stream);
        if (s === undefined) k.fail(`no stream ${String(c.input.stream)} in the file`);
        else {
          const server = new AuthServer({ x25519: { privateKey: hexToBytes(s.input.serverPrivateKey as string), kid: s.input.kid as number, accept: 'any' } });
          // The aid of the NO_DOWNGRADE HELLO has a pre-shared secret here.
          server.setKey(4242, 0, new Uint8Array(16).fill(1));
          for (const [helloHex, want] of c.expected.cases as [string, string][]) {
            k.eq(`${helloHex.length / 2}-byte HELLO ${helloHex.slice(10, 14)}…${helloHex.slice(-8)}`, () => {
              try {
                const r = server.onHello(hexToBytes(helloHex), NOW);
                return r.sid === null ? `REJECT ${parseAuthReject(r.response).reason}` : 'WELCOME';
              } catch (err) {
                return (err as { code?: string }).code ?? String(err);
              }
            }, want);
          }
          k.eq('no session was opened', () => server.devices, 0);
        }
      } else k.fail(`unknown kind ${String(kind)}`);
      return k.result(c.id);
    });
  },
};
