/**
 * The authenticated mode end to end between two nodes over in-memory links: HELLO / WELCOME,
 * sealed FULL / DIFF / HEART decoding to the same facts as the plain path, the 1-sensor DIFF
 * under 40 bytes, replays, reordering, forgeries, a legacy server (prefer and require), a server
 * that requires authentication, a rotation with frames in flight, and a server restart that
 * resumes the session from its store or, without one, makes the device start a new one.
 */
import { AUTH_DIFF, AUTH_FULL, AUTH_HEART, DATA_DIFF } from '@opensynaptic/cmd';
import { type AuthClientOptions, AuthServer, generateX25519KeyPair, isOpenSynapticError } from '@opensynaptic/handshake';
import { MemoryStore } from '@opensynaptic/store';
import { describe, expect, it } from 'vitest';
import { OpenSynaptic, type ReceiveResult } from '../src/index.js';

const AID = 4242;
const SECRET = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
const T0 = 1_700_000_000_000;

interface Pair {
  server: OpenSynaptic;
  device: OpenSynaptic;
  /** What the server made of every packet the device sent. */
  results: ReceiveResult[];
  /** Packets the device sent (the server saw each, unless `drop` held it back). */
  sent: Uint8Array[];
  drop: { next: boolean };
  tick(ms: number): void;
}

function pair(options: { serverAuth?: AuthServer | null; mode?: 'prefer' | 'require'; server?: OpenSynaptic; auth?: AuthClientOptions } = {}): Pair {
  let now = T0;
  const clock = () => now;
  const auth = options.serverAuth === undefined ? keyedServer() : options.serverAuth;
  const server = options.server ?? new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock, handshake: auth === null ? {} : { auth: { server: auth } } });
  const results: ReceiveResult[] = [];
  const sent: Uint8Array[] = [];
  const drop = { next: false };
  const device: OpenSynaptic = new OpenSynaptic({
    assignedId: AID,
    deviceId: 'DEV',
    clock,
    auth: options.auth ?? { secret: SECRET, mode: options.mode ?? 'prefer' },
    send: (packet) => {
      sent.push(packet);
      if (drop.next) {
        drop.next = false;
        return;
      }
      const out = p.server.receive(packet);
      results.push(out);
      if (out.response) {
        const answer = out.response;
        queueMicrotask(() => device.receive(answer));
      }
    },
  });
  const p = { server, device, results, sent, drop, tick: (ms: number) => (now += ms) };
  return p;
}

function keyedServer(extra: ConstructorParameters<typeof AuthServer>[0] = {}): AuthServer {
  const a = new AuthServer(extra);
  a.setKey(AID, 0, SECRET);
  return a;
}

/** Transmits one reading and hands the frame to the server; returns the frame and what the server made of it. */
function send(p: Pair, value: number, t: number): { frame: Uint8Array; out: ReceiveResult } {
  const r = p.device.transmit([['T1', 'OK', value, 'Cel']], { t });
  return { frame: r.frame, out: p.server.receive(r.frame) };
}

/** The decoded reading in °C (the standardizer stores kelvin). */
const celsiusOf = (out: ReceiveResult): unknown => (out.type === 'data' ? Math.round(((out.fact as unknown as Record<string, unknown>).s1_v as number) * 100 - 27315) / 100 : out);

describe('authenticated mode', () => {
  it('a session, then FULL / DIFF / HEART sealed, decoded to the values sent; a 1-sensor DIFF is 39 bytes', async () => {
    const p = pair();
    expect(await p.device.authenticate()).toBe('authenticated');
    const kinds: number[] = [];
    const values = [21.5, 21.5, 21.5, 22.25, 22.25, 23];
    for (let i = 0; i < values.length; i++) {
      const { frame, out } = send(p, values[i]!, T0 + i * 1000);
      kinds.push(frame[0]!);
      expect(out.type).toBe('data');
      expect(celsiusOf(out)).toBe(values[i]);
      if (frame[0] === AUTH_DIFF) expect(frame.length).toBe(39);
    }
    expect(kinds).toContain(AUTH_FULL);
    expect(kinds).toContain(AUTH_DIFF);
    expect(kinds).toContain(AUTH_HEART);
    // The same readings as plain frames: a DIFF is 22 bytes, so sealing adds 17.
    const plain = new OpenSynaptic({ assignedId: AID, deviceId: 'DEV', clock: () => T0 });
    const sizes = values.map((v, i) => plain.transmit([['T1', 'OK', v, 'Cel']], { t: T0 + i * 1000 }).frame);
    expect(sizes.find((f) => f[0] === DATA_DIFF)!.length).toBe(22);
  });

  it('a replayed frame is ignored, a reordered one within the window decodes, a flipped bit or a cut never does', async () => {
    const p = pair();
    await p.device.authenticate();
    const frames = [20, 21, 22, 23, 24].map((v, i) => p.device.transmit([['T1', 'OK', v, 'Cel']], { t: T0 + i * 1000 }).frame);
    // 0, 2, 1 (reordered), 1 again (replay), 4, 3.
    const order = [0, 2, 1, 1, 4, 3];
    const got = order.map((i) => p.server.receive(frames[i]!));
    expect(got.map((o) => o.type)).toEqual(['data', 'data', 'data', 'ignored', 'data', 'data']);
    expect(got[3]).toMatchObject({ type: 'ignored', code: 'ERR_AUTH_REPLAY' });
    const last = frames[4]!;
    for (let bit = 0; bit < last.length * 8; bit++) {
      const f = last.slice();
      f[bit >> 3]! ^= 1 << (bit & 7);
      const out = p.server.receive(f);
      expect(out.type === 'data', `bit ${bit}`).toBe(false);
    }
    for (let n = 0; n < last.length; n++) expect(p.server.receive(last.subarray(0, n)).type).not.toBe('data');
  });

  it('a legacy server: prefer falls back to legacy frames, require refuses to send', async () => {
    const p = pair({ serverAuth: null });
    expect(await p.device.authenticate()).toBe('legacy');
    const r = p.device.transmit([['T1', 'OK', 1, 'Cel']], { t: T0 });
    expect(r.authenticated).toBe(false);
    expect(p.server.receive(r.frame).type).toBe('data');

    const q = pair({ serverAuth: null, mode: 'require' });
    await expect(q.device.authenticate()).rejects.toMatchObject({ code: 'ERR_AUTH_REJECTED' });
    let thrown: unknown;
    try {
      q.device.transmit([['T1', 'OK', 1, 'Cel']], { t: T0 });
    } catch (e) {
      thrown = e;
    }
    expect(isOpenSynapticError(thrown) && (thrown as { code: string }).code).toBe('ERR_AUTH_REQUIRED');
  });

  it('a server without the device\'s secret rejects the HELLO; a server that requires authentication refuses legacy frames', async () => {
    const p = pair({ serverAuth: new AuthServer() });
    expect(await p.device.authenticate()).toBe('legacy');
    const strict = new AuthServer({ require: true });
    const q = pair({ serverAuth: strict });
    const legacy = new OpenSynaptic({ assignedId: 77, deviceId: 'OLD', clock: () => T0 });
    const out = q.server.receive(legacy.transmit([['T1', 'OK', 1, 'Cel']], { t: T0 }).frame);
    expect(out).toMatchObject({ type: 'error' });
    expect((out as unknown as { error: { code: string } }).error.code).toBe('ERR_AUTH_REQUIRED');
    expect(strict.counters.legacyRefused).toBe(1);
  });

  it('a device refused for want of a secret authenticates once the server has it: the old refusal does not answer the new HELLO', async () => {
    const auth = new AuthServer();
    const server = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock: () => T0, handshake: { auth: { server: auth } } });
    // Answers come a few ms later, as over a network (not within the same microtask).
    const device: OpenSynaptic = new OpenSynaptic({
      assignedId: AID,
      deviceId: 'DEV',
      clock: () => T0,
      auth: { secret: SECRET, mode: 'require' },
      send: (packet) => {
        const answer = server.receive(packet).response;
        if (answer) setTimeout(() => device.receive(answer), 5);
      },
    });
    await expect(device.authenticate({ timeoutMs: 300 })).rejects.toMatchObject({ code: 'ERR_AUTH_REJECTED' });
    auth.setKey(AID, 0, SECRET);
    expect(await device.authenticate({ timeoutMs: 300 })).toBe('authenticated');
    const out = server.receive(device.transmit([['T1', 'OK', 21.5, 'Cel']], { t: T0 }).frame);
    expect(celsiusOf(out)).toBe(21.5);
  });

  it('a rotation keeps frames sealed under the old session decoding while they are in flight', async () => {
    const p = pair();
    await p.device.authenticate();
    const first = p.device.transmit([['T1', 'OK', 1, 'Cel']], { t: T0 }).frame;
    expect(p.server.receive(first).type).toBe('data');
    const inFlight = p.device.transmit([['T1', 'OK', 2, 'Cel']], { t: T0 + 1000 }).frame;
    const oldSid = p.device.protocol.authClient!.sid;
    await p.device.authenticate();
    expect(p.device.protocol.authClient!.sid).not.toBe(oldSid);
    const fresh = p.device.transmit([['T1', 'OK', 3, 'Cel']], { t: T0 + 2000 }).frame;
    expect(celsiusOf(p.server.receive(fresh))).toBe(3);
    // The old session's frame arrives after the new session took over: still within the grace.
    expect(celsiusOf(p.server.receive(inFlight))).toBe(2);
  });

  it('a restarted server resumes the session from its store; one that lost it makes the device start a new one', async () => {
    const store = new MemoryStore<Record<string, unknown>>({ kinds: ['keys', 'auth'] });
    const a = keyedServer({ store: store as never, saveIntervalMs: 0 });
    const first = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock: () => T0, handshake: { auth: { server: a } } });
    await first.open();
    const p = pair({ server: first });
    await p.device.authenticate();
    expect(celsiusOf(send(p, 5, T0).out)).toBe(5);
    await first.flush();
    // A new server process on the same store: no HELLO needed.
    const second = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock: () => T0, handshake: { auth: { server: new AuthServer({ store: store as never }) } } });
    await second.open();
    p.server = second;
    expect(celsiusOf(send(p, 6, T0 + 1000).out)).toBe(6);

    // A server with nothing stored: REJECT UNKNOWN_SESSION, the device authenticates again by itself.
    const third = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock: () => T0, handshake: { auth: { server: keyedServer() } } });
    p.server = third;
    const states: string[] = [];
    p.device.on('auth', (e) => states.push(e.state));
    const r = p.device.transmit([['T1', 'OK', 7, 'Cel']], { t: T0 + 2000 });
    const out = third.receive(r.frame);
    expect(out.type).toBe('error');
    p.device.receive(out.response!);
    await new Promise((r) => setTimeout(r, 10));
    expect(states).toEqual(['lost', 'established']);
    // The next frame goes under the new session (a FULL first: the new server has no template).
    expect(celsiusOf(send(p, 8, T0 + 3000).out)).toBe(8);
  });

  describe('suite 2 (X25519, a pinned server key)', () => {
    const keys = generateX25519KeyPair(new Uint8Array(32).map((_, i) => (i * 11 + 1) & 0xff));
    const x25519Server = (extra: ConstructorParameters<typeof AuthServer>[0] = {}) => new AuthServer({ x25519: { privateKey: keys.privateKey, kid: 2, accept: 'any' }, ...extra });

    it('a session from the pinned key alone (no secret on the device), frames decoded', async () => {
      const server = x25519Server();
      const p = pair({ serverAuth: server, auth: { serverPublicKey: keys.publicKey, kid: 2, mode: 'require' } });
      expect(await p.device.authenticate()).toBe('authenticated');
      expect(p.sent[0]).toHaveLength(55);
      for (const [i, v] of [18, 18.5, 18.5].entries()) {
        const { frame, out } = send(p, v, T0 + i * 1000);
        expect(frame[0]! & 0xf0).toBe(0xc0);
        expect(celsiusOf(out)).toBe(v);
      }
      expect(server.sessionSuite(AID)).toBe(2);
    });

    it('a device pinning another key gets no session: authenticate rejects, naming the WELCOME that did not verify', async () => {
      const p = pair({ serverAuth: x25519Server(), auth: { serverPublicKey: generateX25519KeyPair().publicKey, kid: 2, mode: 'require' } });
      const e = await p.device.authenticate({ timeoutMs: 60, attempts: 2 }).catch((err: unknown) => err);
      expect(isOpenSynapticError(e, 'ERR_AUTH_REJECTED')).toBe(true);
      expect((e as Error).message).toContain('does not verify');
      expect(() => p.device.transmit([['T1', 'OK', 1, 'Cel']], { t: T0 })).toThrow(/no authenticated session/);
    });

    it('a device with a pre-shared secret at the server cannot use suite 2 (REJECT NO_DOWNGRADE)', async () => {
      const server = x25519Server();
      server.setKey(AID, 0, SECRET);
      const p = pair({ serverAuth: server, auth: { serverPublicKey: keys.publicKey, kid: 2, mode: 'require' } });
      const e = await p.device.authenticate().catch((err: unknown) => err);
      expect(isOpenSynapticError(e, 'ERR_AUTH_REJECTED')).toBe(true);
      expect((e as Error).message).toContain('NO_DOWNGRADE');
    });

    it('a restarted server resumes a suite-2 session from its store, suite and all', async () => {
      const store = new MemoryStore<Record<string, unknown>>({ kinds: ['keys', 'auth'] });
      const first = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock: () => T0, handshake: { auth: { server: x25519Server({ store: store as never, saveIntervalMs: 0 }) } } });
      await first.open();
      const p = pair({ server: first, auth: { serverPublicKey: keys.publicKey, kid: 2, mode: 'require' } });
      await p.device.authenticate();
      expect(celsiusOf(send(p, 5, T0).out)).toBe(5);
      await first.flush();
      const again = x25519Server({ store: store as never });
      const second = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock: () => T0, handshake: { auth: { server: again } } });
      await second.open();
      p.server = second;
      expect(celsiusOf(send(p, 6, T0 + 1000).out)).toBe(6);
      expect(again.sessionSuite(AID)).toBe(2);
    });
  });
});
