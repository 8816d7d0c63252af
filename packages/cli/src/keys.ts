import { writeFileSync } from 'node:fs';
import { AUTH_MAX_SECRET_BYTES, AUTH_MIN_SECRET_BYTES, type AuthKinds, generateX25519KeyPair, randomBytes, secretToText, type StoredAuthKey } from '@opensynaptic/handshake';
import { loadPostgres, loadSqlite, SERVER_STORE_KINDS } from '@opensynaptic/server';
import pc from 'picocolors';
import { CliError } from './errors.js';
import type { Output } from './output.js';
import { type ConfigSource, readConfig } from './serve.js';

/**
 * The authenticated mode's pre-shared secrets, in the database of a configuration (the store the
 * server keeps its leases and sessions in, kind `keys`): `add` makes (or takes) one for a device
 * and prints it once, for the device's provisioning; `list` shows which devices have which kids,
 * never a secret; `remove` takes one kid or all of a device's. A running server reads a device's
 * secrets again at its next AUTH_HELLO, so no restart is needed. `add --x25519` enrols a device
 * for suite 2 instead (a record without a secret, for `auth.x25519.accept: "known"`), and
 * `server-keypair` makes the server's static X25519 key pair of suite 2.
 */
export interface KeysOptions extends ConfigSource {
  kid?: string;
  secret?: string;
  x25519?: boolean;
}

/** What these commands use of the server's store (the store contract of `@opensynaptic/store`). */
interface KeyStore {
  get<N extends keyof AuthKinds>(kind: N, key: string): Promise<AuthKinds[N] | undefined>;
  getMany<N extends keyof AuthKinds>(kind: N, keys: readonly string[]): Promise<(AuthKinds[N] | undefined)[]>;
  keys(kind: keyof AuthKinds): Promise<string[]>;
  write(batch: readonly ({ op: 'put'; kind: 'keys'; key: string; value: AuthKinds['keys'] } | { op: 'delete'; kind: keyof AuthKinds; key: string })[]): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

async function openKeyStore(source: ConfigSource): Promise<{ store: KeyStore; where: string }> {
  const { config } = await readConfig(source);
  const storage = config.storage;
  if (storage.driver === 'sqlite') {
    const sqlite = await loadSqlite();
    return { store: (await sqlite.openSqliteStore<AuthKinds>({ path: storage.path, kinds: [...SERVER_STORE_KINDS] })) as unknown as KeyStore, where: storage.path };
  }
  if (storage.driver === 'postgres') {
    const postgres = await loadPostgres();
    return { store: (await postgres.openPostgresStore<AuthKinds>({ connection: storage.url!, schema: storage.schema, kinds: [...SERVER_STORE_KINDS] })) as unknown as KeyStore, where: `${storage.schema} at ${storage.url}` };
  }
  throw new CliError('ERR_CLI_USAGE', `storage.driver is ${storage.driver}: secrets need a database the server reads (sqlite or postgres)`);
}

function aidOf(text: string): number {
  const aid = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(aid) || aid < 1 || aid > 4294967294) throw new CliError('ERR_CLI_USAGE', `aid ${text}: an assigned id is 1..4294967294`);
  return aid;
}

function kidOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const kid = Number(text);
  if (!/^\d+$/.test(text) || kid > 255) throw new CliError('ERR_CLI_USAGE', `--kid ${text}: a key id is 0..255`);
  return kid;
}

function bytesOf(hex: string, what: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new CliError('ERR_CLI_USAGE', `${what}: hex digits, two per byte`);
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function secretOf(hex: string | undefined): Uint8Array {
  if (hex === undefined) return randomBytes(32);
  const bytes = bytesOf(hex, '--secret');
  if (bytes.length < AUTH_MIN_SECRET_BYTES || bytes.length > AUTH_MAX_SECRET_BYTES) throw new CliError('ERR_CLI_USAGE', `--secret: ${bytes.length} bytes; a secret is ${AUTH_MIN_SECRET_BYTES}..${AUTH_MAX_SECRET_BYTES} bytes`);
  return bytes;
}

const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

export async function keysAdd(out: Output, aidText: string, options: KeysOptions): Promise<void> {
  if (options.x25519 === true) return enrolX25519(out, aidText, options);
  const aid = aidOf(aidText);
  const secret = secretOf(options.secret);
  const { store, where } = await openKeyStore(options);
  try {
    const row = await store.get('keys', String(aid));
    const keys: StoredAuthKey[] = row?.keys ?? [];
    // Default kid: the next one (0 for a new device), so adding again is a rotation.
    const kid = kidOf(options.kid) ?? (keys.length === 0 ? 0 : Math.max(...keys.map((k) => k.kid)) + 1);
    if (kid > 255) throw new CliError('ERR_CLI_USAGE', `aid ${aid} already has kid 255: remove old kids first`);
    const next = keys.filter((k) => k.kid !== kid);
    next.push({ kid, secret: secretToText(secret), addedMs: Date.now() });
    next.sort((a, b) => a.kid - b.kid);
    await store.write([{ op: 'put', kind: 'keys', key: String(aid), value: { aid, keys: next } }]);
    await store.flush();
    out.result({ aid, kid, secret: hexOf(secret), kids: next.map((k) => k.kid), database: where }, () => {
      out.line(`aid ${aid} kid ${kid}: ${pc.bold(hexOf(secret))}`);
      out.line(`  give the device this secret (OpenSynapticOptions.auth: { secret, kid: ${kid} }); it is not shown again`);
      if (next.length > 1) out.line(`  aid ${aid} now has kids ${next.map((k) => k.kid).join(', ')}: remove the old one once every device uses the new one`);
    });
  } finally {
    await store.close();
  }
}

/** `keys add <aid> --x25519`: a record without a secret, which `accept: "known"` lets use suite 2. */
async function enrolX25519(out: Output, aidText: string, options: KeysOptions): Promise<void> {
  const aid = aidOf(aidText);
  if (options.secret !== undefined || options.kid !== undefined) throw new CliError('ERR_CLI_USAGE', '--x25519 takes no --secret or --kid: the device pins the server\'s public key (its kid is the key pair\'s)');
  const { store, where } = await openKeyStore(options);
  try {
    const row = await store.get('keys', String(aid));
    // The server never lets a device with a secret use suite 2 (no downgrade): say so now.
    if (row !== undefined && row.keys.length > 0) throw new CliError('ERR_CLI_USAGE', `aid ${aid} has pre-shared secrets (kids ${row.keys.map((k) => k.kid).join(', ')}): it must use suite 1; remove them first to move it to X25519`);
    if (row === undefined) {
      await store.write([{ op: 'put', kind: 'keys', key: String(aid), value: { aid, keys: [] } }]);
      await store.flush();
    }
    out.result({ aid, x25519: true, kids: [], database: where }, () => {
      out.line(`aid ${aid}: enrolled for X25519 (suite 2, auth.x25519.accept "known")`);
      out.line('  give the device the server\'s public key and its kid (OpenSynapticOptions.auth: { serverPublicKey, kid })');
    });
  } finally {
    await store.close();
  }
}

export interface ServerKeypairOptions {
  kid?: string;
  /** Take this private key (64 hex digits) instead of making one. */
  privateKey?: string;
  /** Write the private key's hex to this file (mode 0600) for `auth.x25519.privateKeyFile`, and print only the public key. */
  out?: string;
}

/**
 * `keys server-keypair`: the server's static X25519 key pair of suite 2, in hex as `keys add`
 * prints secrets. The private key goes to the server's configuration (`auth.x25519`), the public
 * key to every device (it pins it).
 */
export function keysServerKeypair(out: Output, options: ServerKeypairOptions): void {
  const kid = kidOf(options.kid) ?? 0;
  let given: Uint8Array | undefined;
  if (options.privateKey !== undefined) {
    given = bytesOf(options.privateKey, '--private-key');
    if (given.length !== 32) throw new CliError('ERR_CLI_USAGE', `--private-key: ${given.length} bytes; an X25519 private key is 32 bytes`);
  }
  const pair = generateX25519KeyPair(given);
  const file = options.out;
  if (file !== undefined) {
    try {
      // 0600 and not over an existing file: a private key is not replaced by accident.
      writeFileSync(file, `${hexOf(pair.privateKey)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      throw new CliError('ERR_CLI_UNAVAILABLE', `${file}: cannot write the private key (${(e as Error).message})`, { cause: e });
    }
  }
  const config = file === undefined ? { privateKey: hexOf(pair.privateKey), kid } : { privateKeyFile: file, kid };
  out.result({ kid, publicKey: hexOf(pair.publicKey), ...(file === undefined ? { privateKey: hexOf(pair.privateKey) } : { privateKeyFile: file }), config: { auth: { x25519: config } } }, () => {
    if (file === undefined) out.line(`private key: ${pc.bold(hexOf(pair.privateKey))}`);
    else out.line(`private key written to ${file} (mode 0600)`);
    out.line(`public key:  ${pc.bold(hexOf(pair.publicKey))}  kid ${kid}`);
    out.line(`  the server's configuration: "auth": { "x25519": ${JSON.stringify(config)} } (accept "known" by default)`);
    out.line(`  give every device the public key (OpenSynapticOptions.auth: { serverPublicKey, kid: ${kid} })${file === undefined ? '; the private key is not shown again' : ''}`);
  });
}

export async function keysList(out: Output, options: KeysOptions): Promise<void> {
  const { store, where } = await openKeyStore(options);
  try {
    const aids = (await store.keys('keys')).sort((a, b) => Number(a) - Number(b));
    const rows = await store.getMany('keys', aids);
    const sessions = await store.getMany('auth', aids);
    const devices = rows.flatMap((r, i) => {
      if (r === undefined) return [];
      const current = sessions[i]?.sessions.find((s) => s.state === 'current');
      return [{ aid: r.aid, kids: r.keys.map((k) => k.kid), addedMs: r.keys.map((k) => k.addedMs), session: current === undefined ? null : { sid: current.sid, kid: current.kid, highestSeq: current.highest, lastSeenMs: current.lastSeenMs } }];
    });
    out.result({ database: where, devices }, () => {
      if (devices.length === 0) out.line(`${where}: no secrets (os-node keys add <aid>)`);
      for (const d of devices) {
        out.line(`aid ${d.aid}: ${d.kids.length === 0 ? 'X25519 (suite 2), no secret' : `kid ${d.kids.join(', ')}`}${d.session === null ? ', no session' : `, session ${d.session.sid} (kid ${d.session.kid}, seq ${d.session.highestSeq}, last seen ${new Date(d.session.lastSeenMs).toISOString()})`}`);
      }
    });
  } finally {
    await store.close();
  }
}

export async function keysRemove(out: Output, aidText: string, options: KeysOptions): Promise<void> {
  const aid = aidOf(aidText);
  const kid = kidOf(options.kid);
  const { store } = await openKeyStore(options);
  try {
    const row = await store.get('keys', String(aid));
    if (row === undefined) throw new CliError('ERR_CLI_USAGE', `aid ${aid} has no secret`);
    const left = kid === undefined ? [] : row.keys.filter((k) => k.kid !== kid);
    if (kid !== undefined && left.length === row.keys.length) throw new CliError('ERR_CLI_USAGE', `aid ${aid} has no kid ${kid} (it has ${row.keys.map((k) => k.kid).join(', ')})`);
    await store.write(
      left.length === 0
        ? [
            { op: 'delete', kind: 'keys', key: String(aid) },
            { op: 'delete', kind: 'auth', key: String(aid) },
          ]
        : [{ op: 'put', kind: 'keys', key: String(aid), value: { aid, keys: left } }],
    );
    await store.flush();
    out.result({ aid, removed: kid ?? 'all', kids: left.map((k) => k.kid) }, () => out.line(left.length === 0 ? `aid ${aid}: no secret left; it can no longer authenticate` : `aid ${aid}: kid ${kid} removed, kids ${left.map((k) => k.kid).join(', ')} left`));
  } finally {
    await store.close();
  }
}
