import { accessSync, constants } from 'node:fs';
import { resolve } from 'node:path';
import { isOpenSynapticError } from '@opensynaptic/internal';
import pc from 'picocolors';
import { CliError } from './errors.js';
import type { Output } from './output.js';
import { type ConfigSource, readConfig, readStatusFile, statusFileOf } from './serve.js';

/** A session as the snapshot shows it: its state, never its key. */
interface SessionView {
  aid: string;
  state: unknown;
  dictReady: unknown;
  decryptConfirmed: unknown;
  hasKey: boolean;
  lastSeenMs: unknown;
}

/**
 * Devices, templates, sessions and id leases of a server's database (read-only, safe beside a
 * running server): devices and their template counts from the readings tables, sessions and
 * leases (and templates, when a template store shares the file) from the store table. The
 * session keys are never printed.
 */
export async function snapshot(out: Output, options: ConfigSource & { statusFile?: string }): Promise<void> {
  const loaded = await readConfig(options);
  const { storage } = loaded.config;
  if (storage.driver !== 'sqlite') throw new CliError('ERR_CLI_USAGE', `storage.driver is ${storage.driver}: nothing on disk to read (give --db <file> for a SQLite file)`);
  const path = resolve(storage.path);
  try {
    accessSync(path, constants.R_OK);
  } catch (e) {
    throw new CliError('ERR_CLI_UNAVAILABLE', `${path}: cannot open the database (${(e as Error).message})`, { cause: e });
  }
  const sqlite = await import('@opensynaptic/store-sqlite');
  const sink = await sqlite.openSqliteReadingsSink({ path, readonly: true });
  const [devices, stored] = await (async () => {
    try {
      return [await sink.devices({}), (await sink.status()).stored] as const;
    } finally {
      await sink.close();
    }
  })();
  const sessions: SessionView[] = [];
  const leases: { id: number; device: string; expiresAtMs: number }[] = [];
  const templates: { aid: number; templates: unknown[] }[] = [];
  const auth = new Map<number, { kids: number[]; session: { sid: number; kid: number; suite: number; highestSeq: number; lastSeenMs: number } | null }>();
  let storeNote: string | null = null;
  try {
    const store = await sqlite.openSqliteStore<Record<string, unknown>>({ path, readonly: true, kinds: ['templates', 'sessions', 'leases', 'keys', 'auth'] });
    try {
      for (const key of (await store.keys('sessions')).sort((a, b) => Number(a) - Number(b))) {
        const s = (await store.get('sessions', key)) as Record<string, unknown> | undefined;
        if (s !== undefined) sessions.push({ aid: key, state: s.state, dictReady: s.dictReady, decryptConfirmed: s.decryptConfirmed, hasKey: typeof s.key === 'string', lastSeenMs: s.lastSeenMs });
      }
      for (const key of await store.keys('leases')) {
        if (!/^\d+$/.test(key)) continue; // the allocator's own state record
        const l = (await store.get('leases', key)) as { key?: string; expiresAtMs?: number } | undefined;
        if (l !== undefined) leases.push({ id: Number(key), device: String(l.key ?? ''), expiresAtMs: Number(l.expiresAtMs) });
      }
      leases.sort((a, b) => a.id - b.id);
      for (const key of await store.keys('templates')) {
        const t = (await store.get('templates', key)) as { aid?: number; templates?: unknown[] } | undefined;
        if (t !== undefined) templates.push({ aid: Number(t.aid ?? key), templates: t.templates ?? [] });
      }
      // The authenticated mode: which kids each device has (never a secret) and its current session.
      for (const key of await store.keys('keys')) {
        const k = (await store.get('keys', key)) as { keys?: { kid: number }[] } | undefined;
        auth.set(Number(key), { kids: (k?.keys ?? []).map((x) => x.kid), session: null });
      }
      for (const key of await store.keys('auth')) {
        const a = (await store.get('auth', key)) as { sessions?: { state: string; sid: number; kid: number; suite?: number; highest: number; lastSeenMs: number }[] } | undefined;
        const current = a?.sessions?.find((x) => x.state === 'current');
        const entry = auth.get(Number(key)) ?? { kids: [], session: null };
        // A session stored before suite 2 has no suite: it is suite 1's.
        if (current !== undefined) entry.session = { sid: current.sid, kid: current.kid, suite: current.suite ?? 1, highestSeq: current.highest, lastSeenMs: current.lastSeenMs };
        auth.set(Number(key), entry);
      }
    } finally {
      await store.close();
    }
  } catch (e) {
    // A file written by a readings sink alone has no store table: no sessions or leases to show.
    if (!isOpenSynapticError(e, 'ERR_STORE_READ')) throw e;
    storeNote = 'no store table (sessions, leases): the file holds readings only';
  }
  // The mode in force per device: auth-psk / auth-x25519 (a current session of the authenticated
  // mode, by its suite), secure (a legacy XOR session that decoded a frame), else plain.
  const modeOf = (aid: number): 'auth-psk' | 'auth-x25519' | 'secure' | 'plain' => {
    const session = auth.get(aid)?.session;
    if (session != null) return session.suite === 2 ? 'auth-x25519' : 'auth-psk';
    return sessions.some((s) => Number(s.aid) === aid && s.decryptConfirmed === true) ? 'secure' : 'plain';
  };
  const live = readStatusFile(statusFileOf(loaded.config, options.statusFile));
  const result = {
    database: path,
    stored,
    devices: devices.map((d) => ({ ...d, templateCount: d.templates, mode: modeOf(d.aid) })),
    auth: [...auth].sort((a, b) => a[0] - b[0]).map(([aid, a]) => ({ aid, ...a })),
    templates,
    sessions,
    leases,
    server: live.live,
    ...(live.live === 'running' && live.doc ? { live: live.doc.devices } : {}),
    ...(storeNote === null ? {} : { note: storeNote }),
  };
  out.result(result, () => {
    out.line(`${pc.bold(path)}: ${stored.readings} reading(s), ${stored.devices} device(s); server ${live.live}`);
    out.line(pc.bold('devices'));
    for (const d of devices) out.line(`  aid ${d.aid} ${d.deviceId}: ${modeOf(d.aid)}, templates ${d.templates ?? '-'}, FULL ${d.frames.FULL} DIFF ${d.frames.DIFF} HEART ${d.frames.HEART}, ${d.readings} reading(s), last seen ${new Date(d.lastSeenMs).toISOString()}`);
    if (templates.length > 0) {
      out.line(pc.bold('templates'));
      for (const t of templates) out.line(`  aid ${t.aid}: ${t.templates.length} template(s)`);
    }
    out.line(pc.bold('sessions'));
    if (sessions.length === 0) out.line(`  ${storeNote ?? 'none'}`);
    for (const s of sessions) out.line(`  aid ${s.aid}: ${String(s.state)}${s.dictReady ? ', dictionary ready' : ''}${s.decryptConfirmed ? ', confirmed' : ''}${s.hasKey ? ', keyed' : ''}`);
    if (auth.size > 0) {
      out.line(pc.bold('authenticated mode'));
      for (const [aid, a] of [...auth].sort((x, y) => x[0] - y[0])) out.line(`  aid ${aid}: ${a.kids.length === 0 ? 'X25519, no secret' : `kid ${a.kids.join(', ')}`}${a.session === null ? ', no session' : `, session ${a.session.sid} (${a.session.suite === 2 ? 'auth-x25519' : 'auth-psk'}, kid ${a.session.kid}, seq ${a.session.highestSeq})`}`);
    }
    out.line(pc.bold('leases'));
    if (leases.length === 0) out.line('  none');
    for (const l of leases) out.line(`  id ${l.id}: ${l.device}, until ${new Date(l.expiresAtMs).toISOString()}`);
  });
}
