// What a suite-2 HELLO costs the server: the X25519 shared secret through the handshake's portable
// default (@noble/curves) against node:crypto's (`nodeX25519`, what a configured server uses), and
// the whole `AuthServer.onHello` (parse, X25519, HKDF, WELCOME) with each; medians (tinybench),
// side by side in one run, and the ratio. `node bench/x25519.bench.mjs` after the build.
import { compare } from '@opensynaptic/config/bench';
import { AuthClient, AuthServer, generateX25519KeyPair, x25519SharedSecret } from '@opensynaptic/handshake';
import { nodeX25519 } from '../dist/index.js';

const server = generateX25519KeyPair();
const peers = Array.from({ length: 64 }, () => generateX25519KeyPair().publicKey);
let i = 0;
const nextPeer = () => peers[i++ & 63];
const servers = {
  noble: new AuthServer({ x25519: { privateKey: server.privateKey, kid: 1, accept: 'any' }, maxDevices: 1_000_000 }),
  node: new AuthServer({ x25519: { privateKey: server.privateKey, kid: 1, accept: 'any', sharedSecret: nodeX25519 }, maxDevices: 1_000_000 }),
};
const client = new AuthClient({ serverPublicKey: server.publicKey, kid: 1, mode: 'require' });
const hellos = Array.from({ length: 64 }, (_, k) => client.hello(1000 + k));
let h = 0;

const rows = await compare('per call (ns): @noble/curves / node:crypto', [
  { name: 'X25519 shared secret', inner: 1, impls: { noble: () => x25519SharedSecret(server.privateKey, nextPeer()), node: () => x25519SharedSecret(server.privateKey, nextPeer(), null, nodeX25519) } },
  { name: 'AuthServer.onHello (suite 2)', inner: 1, impls: { noble: () => servers.noble.onHello(hellos[h++ & 63], 0), node: () => servers.node.onHello(hellos[h++ & 63], 0) } },
]);
for (const r of rows) console.log(`${r.operation}: node:crypto ${(Number(r['noble ns']) / Number(r['node ns'])).toFixed(1)}x faster (${(Number(r['noble ns']) / 1000).toFixed(0)} µs against ${(Number(r['node ns']) / 1000).toFixed(0)} µs)`);
