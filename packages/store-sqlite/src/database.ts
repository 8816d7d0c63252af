/**
 * One better-sqlite3 connection as the stores use it: WAL journal, the chosen `synchronous`
 * level, a busy timeout for a second connection to the same file, and SQLite's errors turned
 * into the contract's `StoreError`s. better-sqlite3 is synchronous: each statement and each
 * commit runs in the calling thread (a commit with `synchronous: 'full'` waits for its fsync).
 */
import { isStoreError, StoreError, type StoreDurability, type StoreErrorCode } from '@opensynaptic/store';
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

/** Opens (and for a writable one, prepares) the connection; `ERR_STORE_OPTION` for bad options. */
export function openConnection(options: SqliteOptions): SqliteConnection {
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
  } catch (e) {
    db.close();
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
