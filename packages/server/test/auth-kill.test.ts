/**
 * The authenticated mode across kill -9: a device process streams authenticated frames to a
 * server in this process and is killed at random moments, again and again; every restart sets up
 * a new session. This process watches every frame on the wire and derives each session's key
 * and nonces itself (from the HELLO and WELCOME it relayed and the secret): no (key, nonce) pair
 * is ever used twice, every restart got a new session with no manual step, and no frame that
 * arrived failed to open.
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AUTH_HELLO, AUTH_WELCOME, isAuthData } from '@opensynaptic/cmd';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { OpenSynaptic } from '@opensynaptic/core';
import { type AuthHello, AuthServer, authNonce, type AuthSessionKeys, deriveAuthKeys, parseAuthFrame, parseAuthHello, parseAuthWelcome } from '@opensynaptic/handshake';
import { afterAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'server-auth-kill-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const AID = 7001;
const SECRET = new Uint8Array(32).map((_, i) => (i * 53 + 17) & 0xff);
const ROUNDS = 6;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('authenticated mode across kill -9 of the device', () => {
  it(`${ROUNDS} kills: a new session after each restart, no (key, nonce) used twice, every frame that arrived opened`, async () => {
    const [url] = compileForChild([join(here, 'fixtures', 'auth-device-child.ts')], join(work, 'bundle'));
    const auth = new AuthServer();
    auth.setKey(AID, 0, SECRET);
    const server = new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', handshake: { auth: { server: auth } } });
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let hello: AuthHello | null = null;
    const sessions = new Map<number, AuthSessionKeys>();
    const used = new Set<string>();
    let reused = 0;
    let opened = 0;
    let failed = 0;
    const welcomes: number[] = [];
    sock.on('message', (m, from) => {
      const p = new Uint8Array(m);
      if (p[0] === AUTH_HELLO) hello = parseAuthHello(p);
      if (isAuthData(p[0]!)) {
        const h = parseAuthFrame(p);
        const keys = sessions.get(h.sid);
        if (keys !== undefined) {
          const id = `${hex(keys.key)}/${hex(authNonce(keys.iv, h.seq))}`;
          if (used.has(id)) reused++;
          used.add(id);
        }
      }
      const out = server.receive(p);
      if (isAuthData(p[0]!)) {
        if (out.type === 'data') opened++;
        else failed++;
      }
      if (out.response !== null) {
        if (out.response[0] === AUTH_WELCOME && hello !== null) {
          const w = parseAuthWelcome(out.response);
          sessions.set(w.sid, deriveAuthKeys(SECRET, hello.clientNonce, w.serverNonce, AID, w.suite, w.kid, w.sid));
          welcomes.push(w.sid);
        }
        sock.send(out.response, from.port, from.address);
      }
    });
    const port = (sock.address() as { port: number }).port;
    const before: number[] = [];
    await killLoop({
      script: fileURLToPath(url!),
      args: () => [String(port), String(AID), hex(SECRET)],
      rounds: ROUNDS,
      minMs: 300,
      maxMs: 900,
      seed: 5,
      check: async () => {
        await new Promise((r) => setTimeout(r, 20));
        before.push(opened);
      },
    });
    sock.close();
    console.log(`auth kill test: ${ROUNDS} kills, ${welcomes.length} sessions, ${opened} frames opened, ${used.size} distinct (key, nonce), ${reused} reused, ${failed} refused`);
    expect(reused).toBe(0);
    expect(failed).toBe(0);
    // One new session per process, each of them used.
    expect(new Set(welcomes).size).toBeGreaterThanOrEqual(ROUNDS);
    for (let i = 1; i < before.length; i++) expect(before[i]!).toBeGreaterThan(before[i - 1]!);
    expect(used.size).toBe(opened);
  });
});
