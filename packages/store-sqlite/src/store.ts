/**
 * The store contract on SQLite: every kind in one table `os_store (kind, key, value)`, values as
 * text (JSON unless a kind has its own codec). Writes wait in memory (`BatchedStore`) until
 * `flush`, which commits all of them in one transaction.
 */
import { BatchedStore, type BatchedStoreBackend, type BatchedStoreOptions, type StoreChange, type StoreDurability, StoreError } from '@opensynaptic/store';
import { ensureSchema, openConnection, type SqliteConnection, type SqliteOptions, storeError } from './database.js';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions<K extends object> extends SqliteOptions, BatchedStoreOptions<K> {}

const STORE_DDL = 'CREATE TABLE IF NOT EXISTS os_store (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID';

class SqliteStoreBackend implements BatchedStoreBackend {
  readonly durability: StoreDurability;
  readonly location: string;
  readonly #conn: SqliteConnection;
  readonly #get;
  readonly #keys;
  readonly #put;
  readonly #del;
  readonly #commit;

  constructor(conn: SqliteConnection) {
    this.#conn = conn;
    this.durability = conn.durability;
    this.location = conn.path;
    const db = conn.db;
    this.#get = db.prepare<[string, string], { value: string }>('SELECT value FROM os_store WHERE kind = ? AND key = ?');
    this.#keys = db.prepare<[string], { key: string }>('SELECT key FROM os_store WHERE kind = ?');
    this.#put = conn.readonly ? undefined : db.prepare('INSERT INTO os_store (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value');
    this.#del = conn.readonly ? undefined : db.prepare('DELETE FROM os_store WHERE kind = ? AND key = ?');
    this.#commit = db.transaction((changes: readonly StoreChange[]) => {
      for (const c of changes) {
        if (c.text === undefined) this.#del!.run(c.kind, c.key);
        else this.#put!.run(c.kind, c.key, c.text);
      }
    });
  }

  async read(kind: string, keys: readonly string[]): Promise<(string | undefined)[]> {
    try {
      return keys.map((key) => this.#get.get(kind, key)?.value);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', `${kind}: cannot be read`, this.location);
    }
  }

  async keys(kind: string): Promise<string[]> {
    try {
      return this.#keys.all(kind).map((r) => r.key);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', `${kind}: keys cannot be listed`, this.location);
    }
  }

  async commit(changes: readonly StoreChange[]): Promise<void> {
    if (this.#conn.readonly) throw new StoreError('ERR_STORE_WRITE', 'was opened read-only', { path: this.location });
    try {
      this.#commit.immediate(changes);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_WRITE', `${changes.length} changes cannot be committed`, this.location);
    }
  }

  async close(): Promise<void> {
    this.#conn.db.close();
  }
}

/**
 * Opens the store contract on the SQLite file `options.path` (created when missing):
 * templates, sessions and leases by default. `durability` is `'power'` with the default
 * `synchronous: 'full'`, `'process'` with `'normal'`, `'none'` for `':memory:'`.
 */
export async function openSqliteStore<K extends object = Record<string, unknown>>(options: SqliteStoreOptions<K>): Promise<BatchedStore<K>> {
  const conn = openConnection(options);
  try {
    ensureSchema(conn, 'store', 1, STORE_DDL);
    return new BatchedStore<K>(new SqliteStoreBackend(conn), options);
  } catch (e) {
    conn.db.close();
    throw e;
  }
}
