/**
 * One better-sqlite3 connection as the stores use it: WAL journal, the chosen `synchronous`
 * level, a busy timeout for a second connection to the same file, and SQLite's errors turned
 * into the contract's `StoreError`s. better-sqlite3 is synchronous: each statement and each
 * commit runs in the calling thread (a commit with `synchronous: 'full'` waits for its fsync).
 */
import { isStoreError, StoreError, type StoreDurability, type StoreErrorCode } from '@opensynaptic/store';
import { nodeBuiltin } from '@opensynaptic/internal';
import Database from 'better-sqlite3';

/** Options of every SQLite store and sink. */
export interface SqliteOptions {
  /** The database file, created with its folder's permissions when missing; `':memory:'` for a private in-memory database (`durability: 'none'`). */
  path: string;
  /**
   * `'full'` (default): every commit waits for the WAL's fsync, so a resolved `flush` survives a
   * power cut (`durability: 'power'`). `'normal'`: commits skip the fsync (checkpoints still sync),
   * a resolved `flush` survives a kill -9 but maybe not a power cut (`durability: 'process'`),
   * and commits cost less.
   */
  synchronous?: 'full' | 'normal' | undefined;
  /** How long a write waits for another connection's lock on the same file (ms, default 5000). */
  busyTimeoutMs?: number | undefined;
  /**
   * Most pages the file may grow to (SQLite's `max_page_count`; default none: as large as the
   * disk allows). A write past it fails as on a full disk (`ERR_STORE_WRITE`, SQLITE_FULL): for
   * a size cap, and for testing what a full disk does.
   */
  maxPages?: number | undefined;
  /**
   * The connection's page cache, MiB (default 64; SQLite's own default is 2). The readings
   * indexes take pages all over the file; with a small cache each batch reads them back and
   * writes more of them to the WAL. Memory is taken as pages are used, up to this.
   */
  cacheMiB?: number | undefined;
  /** Open an existing database read-only (queries and status only, e.g. beside a running server): every write rejects. */
  readonly?: boolean | undefined;
  /**
   * What is checked when an existing file is opened: `'quick'` (default; SQLite's `quick_check`:
   * every page of the file is read once, so a damaged page in the middle of the file is found now
   * rather than at the first query that reaches it, or never), `'full'` (`integrity_check`: also
   * compares every index with its table; slower), `'none'` (only the header and the schema are
   * read). A file that fails is `ERR_STORE_CORRUPT` (or quarantined, see `onCorrupt`).
   */
  integrityCheck?: 'quick' | 'full' | 'none' | undefined;
  /**
   * What opening a damaged file does: `'throw'` (default): `ERR_STORE_CORRUPT` naming the file and
   * what SQLite found, nothing touched. `'quarantine'`: the file and its `-wal` and `-shm` are
   * renamed to `<file>.corrupt-<ms>` (`-wal`, `-shm` after it), told to `onQuarantine`, and a new
   * empty database is made in its place: opt in only where starting empty beats stopping (the old
   * file stays for recovery).
   */
  onCorrupt?: 'throw' | 'quarantine' | undefined;
  /** Told about each quarantined file (`onCorrupt: 'quarantine'`): where it went and why. */
  onQuarantine?: ((event: SqliteQuarantineEvent) => void) | undefined;
}

/** A damaged database file renamed aside (see `SqliteOptions.onCorrupt`). */
export interface SqliteQuarantineEvent {
  /** The file that was damaged (a new database now has this name). */
  readonly path: string;
  /** Where it went (its `-wal` and `-shm`, when there were any, beside it with those suffixes). */
  readonly movedTo: string;
  /** The `ERR_STORE_CORRUPT` it failed with. */
  readonly error: StoreError;
}

/** An open connection. */
export interface SqliteConnection {
  readonly db: Database.Database;
  readonly path: string;
  readonly durability: StoreDurability;
  readonly readonly: boolean;
}

function sqliteCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** `e` (thrown by better-sqlite3) as a `StoreError`: a damaged file is `ERR_STORE_CORRUPT` whatever was being done. */
export function storeError(e: unknown, code: StoreErrorCode, detail: string, path: string): StoreError {
  const sc = sqliteCode(e);
  const why = e instanceof Error ? e.message : String(e);
  if (sc === 'SQLITE_CORRUPT' || sc === 'SQLITE_NOTADB' || sc.startsWith('SQLITE_CORRUPT_')) {
    return new StoreError('ERR_STORE_CORRUPT', `is not a readable SQLite database (${sc}: ${why})`, { path, cause: e });
  }
  return new StoreError(code, `${detail} (${sc === '' ? why : `${sc}: ${why}`})`, { path, cause: e });
}

/** The pragmas of a writable connection (the caller's, and the sink's writer thread's). */
export function connectionPragmas(options: SqliteOptions): string[] {
  // WAL: readers never block the writer, and a commit appends to one log file.
  const out = ['journal_mode = WAL', `synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`, `cache_size = -${(options.cacheMiB ?? 64) * 1024}`];
  // A page count cap makes SQLite refuse to grow the file past it (SQLITE_FULL), as a full disk would.
  if (options.maxPages !== undefined) out.push(`max_page_count = ${options.maxPages}`);
  return out;
}

/**
 * Opens (and for a writable one, prepares) the connection; `ERR_STORE_OPTION` for bad options,
 * `ERR_STORE_CORRUPT` for a damaged file (or, with `onCorrupt: 'quarantine'`, a new file in place
 * of the damaged one, moved aside).
 */
export function openConnection(options: SqliteOptions): SqliteConnection {
  const check = options?.integrityCheck ?? 'quick';
  if (check !== 'quick' && check !== 'full' && check !== 'none') throw new StoreError('ERR_STORE_OPTION', `integrityCheck must be "quick", "full" or "none", got ${JSON.stringify(check)}`);
  const onCorrupt = options?.onCorrupt ?? 'throw';
  if (onCorrupt !== 'throw' && onCorrupt !== 'quarantine') throw new StoreError('ERR_STORE_OPTION', `onCorrupt must be "throw" or "quarantine", got ${JSON.stringify(onCorrupt)}`);
  if (onCorrupt === 'quarantine' && options?.readonly === true) throw new StoreError('ERR_STORE_OPTION', 'onCorrupt "quarantine" needs a writable database (readonly is true)');
  try {
    return openChecked(options, check);
  } catch (e) {
    if (onCorrupt !== 'quarantine' || !isStoreError(e, 'ERR_STORE_CORRUPT') || options.path === ':memory:') throw e;
    const movedTo = quarantine(options.path);
    options.onQuarantine?.({ path: options.path, movedTo, error: e });
    return openChecked(options, 'none');
  }
}

let quarantined = 0;

/** Renames a damaged database and its WAL and shared-memory files aside; returns the new name of the database. */
function quarantine(path: string): string {
  const fs = nodeBuiltin<typeof import('node:fs')>('node:fs');
  if (fs === undefined) throw new StoreError('ERR_STORE_UNSUPPORTED', 'quarantine needs node:fs', { path });
  const movedTo = `${path}.corrupt-${Date.now()}${quarantined++ === 0 ? '' : `-${quarantined}`}`;
  try {
    fs.renameSync(path, movedTo);
    // The WAL belongs to the damaged file: replayed into a new one it would bring its pages back.
    for (const suffix of ['-wal', '-shm']) if (fs.existsSync(path + suffix)) fs.renameSync(path + suffix, movedTo + suffix);
  } catch (e) {
    throw new StoreError('ERR_STORE_WRITE', `cannot be moved aside to ${movedTo} (${e instanceof Error ? e.message : String(e)})`, { path, cause: e });
  }
  return movedTo;
}

function openChecked(options: SqliteOptions, check: 'quick' | 'full' | 'none'): SqliteConnection {
  if (typeof options !== 'object' || options === null || typeof options.path !== 'string' || options.path === '') {
    throw new StoreError('ERR_STORE_OPTION', 'path must be a non-empty file path (or ":memory:")');
  }
  const sync = options.synchronous ?? 'full';
  if (sync !== 'full' && sync !== 'normal') throw new StoreError('ERR_STORE_OPTION', `synchronous must be "full" or "normal", got ${JSON.stringify(sync)}`);
  const busy = options.busyTimeoutMs ?? 5000;
  if (!Number.isSafeInteger(busy) || busy < 0) throw new StoreError('ERR_STORE_OPTION', `busyTimeoutMs must be an integer >= 0, got ${String(busy)}`);
  if (options.maxPages !== undefined && (!Number.isSafeInteger(options.maxPages) || options.maxPages < 1)) {
    throw new StoreError('ERR_STORE_OPTION', `maxPages must be an integer >= 1, got ${String(options.maxPages)}`);
  }
  if (options.cacheMiB !== undefined && (!Number.isSafeInteger(options.cacheMiB) || options.cacheMiB < 1)) {
    throw new StoreError('ERR_STORE_OPTION', `cacheMiB must be an integer >= 1, got ${String(options.cacheMiB)}`);
  }
  const path = options.path;
  const ro = options.readonly === true;
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: ro, fileMustExist: ro, timeout: busy });
  } catch (e) {
    throw storeError(e, 'ERR_STORE_READ', 'cannot be opened', path);
  }
  try {
    if (!ro) for (const p of connectionPragmas(options)) db.pragma(p);
    // Reading the schema now finds a damaged or foreign file at open, not at the first write.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    if (check !== 'none' && path !== ':memory:') {
      const found = (db.pragma(check === 'quick' ? 'quick_check(8)' : 'integrity_check(8)') as { quick_check?: string; integrity_check?: string }[]).map((r) => r.quick_check ?? r.integrity_check ?? '');
      if (found.length !== 1 || found[0] !== 'ok') {
        throw new StoreError('ERR_STORE_CORRUPT', `is damaged: SQLite's ${check === 'quick' ? 'quick_check' : 'integrity_check'} found ${found.join('; ').slice(0, 500)}`, { path });
      }
    }
  } catch (e) {
    db.close();
    if (isStoreError(e)) throw e;
    throw storeError(e, 'ERR_STORE_READ', 'cannot be opened', path);
  }
  const durability: StoreDurability = path === ':memory:' ? 'none' : sync === 'full' ? 'power' : 'process';
  return { db, path, durability, readonly: ro };
}

/**
 * The schema version this package writes for `part`; creates the part's tables with `ddl` when
 * the file has none, and brings an older version up with `migrations[found]` (SQL taking it to
 * the next version, in one transaction each) when the connection is writable.
 */
export function ensureSchema(conn: SqliteConnection, part: string, version: number, ddl: string, migrations: Record<number, string> = {}): void {
  const { db, path } = conn;
  const readVersion = (): number | undefined => {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'os_meta'").get() !== undefined;
    if (!hasMeta) return undefined;
    const row = db.prepare('SELECT value FROM os_meta WHERE key = ?').get(`${part}_schema`) as { value: string } | undefined;
    return row === undefined ? undefined : Number(row.value);
  };
  try {
    let found = readVersion();
    if (found === undefined && !conn.readonly) {
      db.transaction(() => {
        db.exec('CREATE TABLE IF NOT EXISTS os_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
        db.exec(ddl);
        db.prepare('INSERT OR IGNORE INTO os_meta (key, value) VALUES (?, ?)').run(`${part}_schema`, String(version));
      }).immediate();
      found = readVersion();
    }
    if (found === undefined) throw new StoreError('ERR_STORE_READ', `holds no ${part} tables (open it writable once to create them)`, { path });
    while (found < version && migrations[found] !== undefined) {
      if (conn.readonly) throw new StoreError('ERR_STORE_READ', `holds ${part} tables of schema version ${found}; open it writable once to bring them to version ${version}`, { path });
      const from = found;
      db.transaction(() => {
        db.exec(migrations[from]!);
        db.prepare('UPDATE os_meta SET value = ? WHERE key = ?').run(String(from + 1), `${part}_schema`);
      }).immediate();
      found = readVersion()!;
    }
    if (found !== version) throw new StoreError('ERR_STORE_CORRUPT', `holds ${part} tables of schema version ${found}; this package reads version ${version}`, { path });
  } catch (e) {
    if (isStoreError(e)) throw e;
    throw storeError(e, 'ERR_STORE_READ', `cannot prepare the ${part} tables`, path);
  }
}
