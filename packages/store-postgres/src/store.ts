/**
 * The store contract on PostgreSQL: every kind in one table `os_store (kind, key, value)` of the
 * schema, values as text (JSON unless a kind has its own codec). Writes wait in memory
 * (`BatchedStore`) until `flush`, which commits all of them in one transaction.
 */
import { BatchedStore, type BatchedStoreBackend, type BatchedStoreOptions, type StoreChange, type StoreDurability } from '@opensynaptic/store';
import { ensureSchema, inTransaction, openPool, type PostgresOptions, type PostgresPool, storeError } from './database.js';

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions<K extends object> extends PostgresOptions, BatchedStoreOptions<K> {}

const STORE_DDL = 'CREATE TABLE IF NOT EXISTS $schema.os_store (kind text NOT NULL, key text NOT NULL, value text NOT NULL, PRIMARY KEY (kind, key))';

class PostgresStoreBackend implements BatchedStoreBackend {
  // A committed transaction of a server that syncs its WAL (fsync and synchronous_commit on, the defaults).
  readonly durability: StoreDurability = 'power';
  readonly location: string;
  readonly #p: PostgresPool;

  constructor(p: PostgresPool) {
    this.#p = p;
    this.location = p.location;
  }

  async read(kind: string, keys: readonly string[]): Promise<(string | undefined)[]> {
    try {
      const r = await this.#p.pool.query<{ key: string; value: string }>(`SELECT key, value FROM ${this.#p.schema}.os_store WHERE kind = $1 AND key = ANY($2::text[])`, [kind, keys]);
      const byKey = new Map(r.rows.map((row) => [row.key, row.value]));
      return keys.map((k) => byKey.get(k));
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', `${kind}: cannot be read`, this.location);
    }
  }

  async keys(kind: string): Promise<string[]> {
    try {
      const r = await this.#p.pool.query<{ key: string }>(`SELECT key FROM ${this.#p.schema}.os_store WHERE kind = $1`, [kind]);
      return r.rows.map((row) => row.key);
    } catch (e) {
      throw storeError(e, 'ERR_STORE_READ', `${kind}: keys cannot be listed`, this.location);
    }
  }

  async commit(changes: readonly StoreChange[]): Promise<void> {
    const puts = changes.filter((c) => c.text !== undefined);
    const dels = changes.filter((c) => c.text === undefined);
    const s = this.#p.schema;
    try {
      await inTransaction(this.#p, async (c) => {
        // Each key appears once in a commit (its last change), so the order of the two does not matter.
        if (dels.length > 0) {
          await c.query(`DELETE FROM ${s}.os_store WHERE (kind, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, [dels.map((d) => d.kind), dels.map((d) => d.key)]);
        }
        if (puts.length > 0) {
          await c.query(
            `INSERT INTO ${s}.os_store (kind, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`,
            [puts.map((d) => d.kind), puts.map((d) => d.key), puts.map((d) => d.text)],
          );
        }
      });
    } catch (e) {
      throw storeError(e, 'ERR_STORE_WRITE', `${changes.length} changes cannot be committed`, this.location);
    }
  }

  async close(): Promise<void> {
    await this.#p.pool.end();
  }
}

/**
 * Opens the store contract in `options.schema` (default `public`) of a PostgreSQL database:
 * templates, sessions and leases by default. `durability: 'power'`: a resolved `flush` is a
 * committed transaction (as durable as the server's `fsync` and `synchronous_commit`, on by
 * default, make it). Rejects with `ERR_STORE_READ` when the server cannot be reached.
 */
export async function openPostgresStore<K extends object = Record<string, unknown>>(options: PostgresStoreOptions<K>): Promise<BatchedStore<K>> {
  const p = openPool(options);
  try {
    const store = new BatchedStore<K>(new PostgresStoreBackend(p), options);
    await ensureSchema(p, 'store', 1, STORE_DDL);
    return store;
  } catch (e) {
    await p.pool.end().catch(() => undefined);
    throw e;
  }
}
