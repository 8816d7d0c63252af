/**
 * The pg pool as the stores use it: 64-bit integers read as numbers (every one the stores
 * write is a safe integer), idle-client errors caught (a server restart must not crash the
 * process), one schema per store, created at open under an advisory lock so that several
 * processes may open the same schema at once, and pg's errors turned into `StoreError`s.
 */
import { isStoreError, StoreError, type StoreErrorCode } from '@opensynaptic/store';
import pg from 'pg';

/** Where the server is, when not given as a connection string. */
export interface PostgresConnection {
  host?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  password?: string | undefined;
  database?: string | undefined;
  /** TLS to the server (`true`: verified against the system's CAs). */
  ssl?: boolean | undefined;
}

/** Options of every PostgreSQL store and sink. */
export interface PostgresOptions {
  /** `postgres://user:password@host:port/database`, or its fields. */
  connection: string | PostgresConnection;
  /** The schema holding the tables, created when missing (1..63 characters a-z, 0-9, _, starting with a letter or _; default `public`). */
  schema?: string | undefined;
  /** Most connections the pool opens (integer >= 1, default 4). */
  maxConnections?: number | undefined;
  /** How long a connection attempt may take (ms, default 10000). */
  connectTimeoutMs?: number | undefined;
  /** How long one query may take before the client gives up on it (ms, default 30000). */
  queryTimeoutMs?: number | undefined;
}

/** An open pool. */
export interface PostgresPool {
  readonly pool: pg.Pool;
  /** The quoted schema, to prefix table names with. */
  readonly schema: string;
  /** `postgres://user@host:port/database#schema`, never the password. */
  readonly location: string;
  /** The latest error of an idle client (the pool reconnects on the next query). */
  lastIdleError: Error | undefined;
}

const int8 = 20;
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === int8 && format !== 'binary') return (text: string) => Number(text);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

function pgCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** `e` (from pg or the socket) as a `StoreError`. */
export function storeError(e: unknown, code: StoreErrorCode, detail: string, location: string): StoreError {
  if (isStoreError(e)) return e;
  const c = pgCode(e);
  const why = e instanceof Error ? e.message : String(e);
  // XX001/XX002: data or index corrupted on the server.
  if (c === 'XX001' || c === 'XX002') return new StoreError('ERR_STORE_CORRUPT', `${detail}: the server reports corrupted data (${c}: ${why})`, { path: location, cause: e });
  return new StoreError(code, `${detail} (${c === '' ? why : `${c}: ${why}`})`, { path: location, cause: e });
}

function checkCount(name: string, v: unknown, def: number, min: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new StoreError('ERR_STORE_OPTION', `${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

/** Opens a pool (no connection yet); `ERR_STORE_OPTION` for bad options. */
export function openPool(options: PostgresOptions): PostgresPool {
  if (typeof options !== 'object' || options === null) throw new StoreError('ERR_STORE_OPTION', 'options must be an object with a connection');
  const conn = options.connection;
  if (!(typeof conn === 'string' && conn !== '') && (typeof conn !== 'object' || conn === null)) {
    throw new StoreError('ERR_STORE_OPTION', 'connection must be a postgres:// connection string or {host, port, user, password, database}');
  }
  const schemaName = options.schema ?? 'public';
  if (typeof schemaName !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(schemaName)) {
    throw new StoreError('ERR_STORE_OPTION', `schema must be 1..63 characters a-z, 0-9 or _, starting with a letter or _, got ${JSON.stringify(schemaName)}`);
  }
  const max = checkCount('maxConnections', options.maxConnections, 4, 1);
  const connectTimeout = checkCount('connectTimeoutMs', options.connectTimeoutMs, 10_000, 1);
  const queryTimeout = checkCount('queryTimeoutMs', options.queryTimeoutMs, 30_000, 1);
  const fields = typeof conn === 'string' ? { connectionString: conn } : { ...conn, ssl: conn.ssl === true ? true : undefined };
  let where: string;
  if (typeof conn === 'string') {
    try {
      const u = new URL(conn);
      where = `${u.protocol}//${u.username === '' ? '' : `${decodeURIComponent(u.username)}@`}${u.host}${u.pathname}`;
    } catch {
      throw new StoreError('ERR_STORE_OPTION', 'connection is not a valid postgres:// URL');
    }
  } else {
    where = `postgres://${conn.user === undefined ? '' : `${conn.user}@`}${conn.host ?? 'localhost'}:${conn.port ?? 5432}/${conn.database ?? ''}`;
  }
  const pool = new pg.Pool({ ...fields, max, connectionTimeoutMillis: connectTimeout, query_timeout: queryTimeout, types: typeParsers });
  const out: PostgresPool = { pool, schema: `"${schemaName}"`, location: `${where}#${schemaName}`, lastIdleError: undefined };
  pool.on('error', (e) => {
    out.lastIdleError = e;
  });
  return out;
}

/** Runs `body` in one transaction on one client (rolled back when it throws; a client that failed is discarded, not reused). */
export async function inTransaction<T>(p: PostgresPool, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await p.pool.connect();
  // A connection that dies while checked out emits 'error' on the client, which would crash the
  // process without a listener; the query in flight (if any) rejects on its own.
  const onError = (e: Error) => {
    p.lastIdleError = e;
  };
  client.on('error', onError);
  let failed: unknown;
  try {
    await client.query('BEGIN');
    const out = await body(client);
    await client.query('COMMIT');
    return out;
  } catch (e) {
    failed = e;
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.off('error', onError);
    client.release(failed === undefined ? undefined : true);
  }
}

/** Creates the schema and a part's tables (`ddl`, with `$schema` for the quoted schema) unless there; checks the part's schema version. */
export async function ensureSchema(p: PostgresPool, part: string, version: number, ddl: string): Promise<void> {
  const s = p.schema;
  try {
    const found = await inTransaction(p, async (c) => {
      // One opener at a time creates the tables (CREATE ... IF NOT EXISTS races otherwise).
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`opensynaptic ${p.location}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${s}.os_meta (key text PRIMARY KEY, value text NOT NULL)`);
      const row = await c.query<{ value: string }>(`SELECT value FROM ${s}.os_meta WHERE key = $1`, [`${part}_schema`]);
      if (row.rows.length > 0) return Number(row.rows[0]!.value);
      await c.query(ddl.replaceAll('$schema', s));
      await c.query(`INSERT INTO ${s}.os_meta (key, value) VALUES ($1, $2)`, [`${part}_schema`, String(version)]);
      return version;
    });
    if (found !== version) throw new StoreError('ERR_STORE_CORRUPT', `holds ${part} tables of schema version ${found}; this package reads version ${version}`, { path: p.location });
  } catch (e) {
    throw storeError(e, 'ERR_STORE_READ', `cannot prepare the ${part} tables`, p.location);
  }
}
