/**
 * The cluster's PostgreSQL half: one pool per receiver for the readings table and the shared
 * template state, committed together. The templates are the `templates` kind of the project's
 * PostgreSQL store (`os_store (kind, key, value)`, JSON values: what `openPostgresStore` of
 * `@opensynaptic/store-postgres` reads and writes), so a single server pointed at the same schema
 * sees the same templates. Readings go to `os_cluster_readings`, one row per sensor reading keyed
 * by (message id, sensor index): a frame delivered again after a failover inserts nothing
 * (`ON CONFLICT DO NOTHING`), and the transaction that stores a batch's readings also stores the
 * template state those frames left, so a receiver that takes the partition over finds both or
 * neither.
 */
import type { TemplateRecord } from '@opensynaptic/fusion';
import { isStoreError } from '@opensynaptic/store';
import { openPostgresStore, type PostgresConnection } from '@opensynaptic/store-postgres';
import { inTransaction, openPool, type PostgresPool } from '@opensynaptic/store-postgres/pool';
import type pg from 'pg';
import { ClusterError, intOption, messageOf, optionError } from './errors.js';

/** Where the database is and how the pool behaves. */
export interface ClusterPostgresOptions {
  /** `postgres://user:password@host:port/database`, or its fields. */
  connection: string | PostgresConnection;
  /** The schema of the tables (created when missing; default `public`). */
  schema?: string | undefined;
  /** Most connections of the pool (default 4). */
  maxConnections?: number | undefined;
  /** How long one query may take, ms (default 30000). */
  queryTimeoutMs?: number | undefined;
}

/** One decoded reading of one frame, as stored. */
export interface ClusterReadingRow {
  /** The frame's message id (the gateway's `Nats-Msg-Id`). */
  msgId: string;
  /** The sensor's index in the frame (0-based): with `msgId`, the row's key. */
  index: number;
  /** The frame's JetStream stream sequence. */
  streamSeq: number;
  partition: number;
  aid: number;
  deviceId: string;
  strategy: 'FULL' | 'DIFF' | 'HEART';
  sensorId: string;
  state: string;
  value: number;
  unit: string;
  timestampMs: number;
  /** When the gateway received the frame, Unix ms. */
  receivedAtMs: number;
}

/**
 * The last frame a device's state took: its device timestamp and message id. Kept per device
 * (`os_cluster_devices`), committed with the batch that applied the frame, so the next owner of
 * the partition knows which frames are older than the state it inherits.
 */
export interface DeviceClock {
  aid: number;
  partition: number;
  /** The frame's header timestamp (device ms). */
  tsMs: number;
  msgId: string;
}

/** The session kinds a partition keeps in `os_cluster_sessions`: legacy secure sessions and authenticated sessions. */
export type SessionKind = 'sessions' | 'auth';

/** A commit's owner check: refused unless `partition`'s recorded claim is still at `revision`. */
export interface Fence {
  partition: number;
  revision: number;
}

/** A session record staged for the next commit: the record of `aid` of `kind`, or its deletion. */
export interface SessionChange {
  kind: SessionKind;
  aid: number;
  partition: number;
  record: object | undefined;
}

/** A template change staged for the next commit: the record of `aid`, or its deletion. */
export interface TemplateChange {
  key: string;
  record: TemplateRecord | undefined;
}

const READINGS_DDL = (s: string) => `
CREATE TABLE IF NOT EXISTS ${s}.os_cluster_readings (
  msg_id text NOT NULL,
  idx int NOT NULL,
  stream_seq bigint NOT NULL,
  partition int NOT NULL,
  aid bigint NOT NULL,
  device_id text NOT NULL,
  strategy text NOT NULL,
  sensor_id text NOT NULL,
  state text NOT NULL,
  value double precision NOT NULL,
  unit text NOT NULL,
  ts_ms bigint NOT NULL,
  received_ms bigint NOT NULL,
  receiver text NOT NULL,
  stored_ms bigint NOT NULL,
  PRIMARY KEY (msg_id, idx)
);
CREATE INDEX IF NOT EXISTS os_cluster_readings_device ON ${s}.os_cluster_readings (aid, ts_ms);
CREATE TABLE IF NOT EXISTS ${s}.os_cluster_devices (
  aid bigint PRIMARY KEY,
  partition int NOT NULL,
  ts_ms bigint NOT NULL,
  msg_id text NOT NULL,
  updated_ms bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS os_cluster_devices_partition ON ${s}.os_cluster_devices (partition);
CREATE TABLE IF NOT EXISTS ${s}.os_cluster_sessions (
  kind text NOT NULL,
  aid bigint NOT NULL,
  partition int NOT NULL,
  value text NOT NULL,
  updated_ms bigint NOT NULL,
  PRIMARY KEY (kind, aid)
);
CREATE INDEX IF NOT EXISTS os_cluster_sessions_partition ON ${s}.os_cluster_sessions (partition, kind);
CREATE TABLE IF NOT EXISTS ${s}.os_cluster_owners (
  partition int PRIMARY KEY,
  receiver text NOT NULL,
  revision bigint NOT NULL,
  claimed_ms bigint NOT NULL
);`;

/** What one commit stored. */
export interface CommitResult {
  /** Reading rows inserted (the others were there already: a redelivered frame's). */
  inserted: number;
  /** Template records written. */
  templates: number;
  /** Session records written or deleted. */
  sessions: number;
}

/**
 * The readings table and the template state of the cluster on one pool. `open` creates the
 * tables (the store's `os_store` through `openPostgresStore`, so its schema version is recorded
 * as that package expects).
 */
export class ClusterDatabase {
  readonly schema: string;
  readonly #p: PostgresPool;
  readonly #pool: pg.Pool;
  readonly #q: string;
  #closed = false;

  private constructor(p: PostgresPool, schema: string) {
    this.#p = p;
    this.#pool = p.pool;
    this.schema = schema;
    this.#q = p.schema;
  }

  /** The latest error of an idle connection (the pool replaces it). */
  get lastIdleError(): Error | undefined {
    return this.#p.lastIdleError;
  }

  /** Opens the pool and creates the tables when missing. Rejects with `ERR_CLUSTER_STORE` when the server cannot be reached. */
  static async open(options: ClusterPostgresOptions): Promise<ClusterDatabase> {
    const schema = options.schema ?? 'public';
    if (typeof schema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw optionError('postgres.schema', `${JSON.stringify(schema)} is not 1..63 characters a-z, 0-9 or _`);
    const max = intOption('postgres.maxConnections', options.maxConnections, 4, 1, 1000);
    const queryTimeout = intOption('postgres.queryTimeoutMs', options.queryTimeoutMs, 30_000, 1);
    const conn = options.connection;
    if (!(typeof conn === 'string' && conn !== '') && (typeof conn !== 'object' || conn === null)) throw optionError('postgres.connection', 'a postgres:// URL or {host, port, user, password, database} is needed');
    // The store package makes os_store and records its schema version (closed again at once).
    try {
      const store = await openPostgresStore({ connection: conn, schema, kinds: ['templates'], maxConnections: 1 });
      await store.close();
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the template store cannot be opened: ${messageOf(e)}`, { cause: e });
    }
    let p: PostgresPool;
    try {
      p = openPool({ connection: conn, schema, maxConnections: max, queryTimeoutMs: queryTimeout });
    } catch (e) {
      throw isStoreError(e) ? optionError('postgres', e.message) : e;
    }
    const db = new ClusterDatabase(p, schema);
    try {
      await inTransaction(p, async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`opensynaptic cluster ${schema}`]);
        await c.query(READINGS_DDL(db.#q));
      });
    } catch (e) {
      await p.pool.end().catch(() => undefined);
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the readings table cannot be created: ${messageOf(e)}`, { cause: e });
    }
    return db;
  }

  /**
   * Stores `rows` (skipping those already there), `templates`, the `devices`' clocks and the
   * `sessions` records in one transaction. Rejects with `ERR_CLUSTER_STORE`; nothing is stored then.
   */
  async commit(rows: readonly ClusterReadingRow[], templates: readonly TemplateChange[], receiver: string, devices: readonly DeviceClock[] = [], sessions: readonly SessionChange[] = [], fence?: Fence): Promise<CommitResult> {
    if (this.#closed) throw new ClusterError('ERR_CLUSTER_STATE', 'the database is closed');
    const s = this.#q;
    const now = Date.now();
    try {
      return await inTransaction(this.#p, async (c) => {
        if (fence !== undefined) {
          // Held to the end of the transaction: a newer claim (claimPartition) waits for it, and
          // this commit sees any claim that came first.
          const o = await c.query<{ revision: number; receiver: string }>(`SELECT revision, receiver FROM ${s}.os_cluster_owners WHERE partition = $1 FOR UPDATE`, [fence.partition]);
          const row = o.rows[0];
          if (row === undefined || row.revision !== fence.revision) {
            throw new ClusterError('ERR_CLUSTER_FENCED', `partition ${fence.partition} was claimed by ${row?.receiver ?? 'nobody'} at lease revision ${row?.revision ?? '-'} after this receiver's claim (${fence.revision}): its commit is refused`);
          }
        }
        let inserted = 0;
        if (rows.length > 0) {
          const r = await c.query(
            `INSERT INTO ${s}.os_cluster_readings (msg_id, idx, stream_seq, partition, aid, device_id, strategy, sensor_id, state, value, unit, ts_ms, received_ms, receiver, stored_ms)
             SELECT u.*, $14::text, $15::bigint FROM unnest($1::text[], $2::int[], $3::bigint[], $4::int[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::float8[], $11::text[], $12::bigint[], $13::bigint[]) AS u
             ON CONFLICT (msg_id, idx) DO NOTHING`,
            [
              rows.map((x) => x.msgId),
              rows.map((x) => x.index),
              rows.map((x) => x.streamSeq),
              rows.map((x) => x.partition),
              rows.map((x) => x.aid),
              rows.map((x) => x.deviceId),
              rows.map((x) => x.strategy),
              rows.map((x) => x.sensorId),
              rows.map((x) => x.state),
              rows.map((x) => x.value),
              rows.map((x) => x.unit),
              rows.map((x) => x.timestampMs),
              rows.map((x) => x.receivedAtMs),
              receiver,
              now,
            ],
          );
          inserted = r.rowCount ?? 0;
        }
        const puts = templates.filter((t) => t.record !== undefined);
        const dels = templates.filter((t) => t.record === undefined);
        if (puts.length > 0) {
          await c.query(
            `INSERT INTO ${s}.os_store (kind, key, value) SELECT 'templates', k, v FROM unnest($1::text[], $2::text[]) AS u (k, v) ORDER BY k ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`,
            [puts.map((t) => t.key), puts.map((t) => JSON.stringify(t.record))],
          );
        }
        if (dels.length > 0) await c.query(`DELETE FROM ${s}.os_store WHERE kind = 'templates' AND key = ANY($1::text[])`, [dels.map((t) => t.key)]);
        if (devices.length > 0) {
          await c.query(
            `INSERT INTO ${s}.os_cluster_devices (aid, partition, ts_ms, msg_id, updated_ms)
             SELECT u.*, $5::bigint FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[]) AS u ORDER BY 1
             ON CONFLICT (aid) DO UPDATE SET partition = excluded.partition, ts_ms = excluded.ts_ms, msg_id = excluded.msg_id, updated_ms = excluded.updated_ms`,
            [devices.map((d) => d.aid), devices.map((d) => d.partition), devices.map((d) => d.tsMs), devices.map((d) => d.msgId), now],
          );
        }
        const sPuts = sessions.filter((x) => x.record !== undefined);
        const sDels = sessions.filter((x) => x.record === undefined);
        if (sPuts.length > 0) {
          await c.query(
            `INSERT INTO ${s}.os_cluster_sessions (kind, aid, partition, value, updated_ms)
             SELECT u.*, $5::bigint FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[]) AS u ORDER BY 1, 2
             ON CONFLICT (kind, aid) DO UPDATE SET partition = excluded.partition, value = excluded.value, updated_ms = excluded.updated_ms`,
            [sPuts.map((x) => x.kind), sPuts.map((x) => x.aid), sPuts.map((x) => x.partition), sPuts.map((x) => JSON.stringify(x.record)), now],
          );
        }
        for (const kind of ['sessions', 'auth'] as const) {
          const aids = sDels.filter((x) => x.kind === kind).map((x) => x.aid);
          if (aids.length > 0) await c.query(`DELETE FROM ${s}.os_cluster_sessions WHERE kind = $1 AND aid = ANY($2::bigint[])`, [kind, aids]);
        }
        return { inserted, templates: templates.length, sessions: sessions.length };
      });
    } catch (e) {
      if (e instanceof ClusterError && e.code === 'ERR_CLUSTER_FENCED') throw e;
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: a batch of ${rows.length} readings, ${templates.length} template and ${sessions.length} session records cannot be committed: ${messageOf(e)}`, { cause: e });
    }
  }

  /**
   * Records `receiver`'s claim of `partition` at lease revision `revision` (the claim's, from
   * the lease bucket, which only grows), unless a newer claim is recorded: from then on every
   * commit fenced with an older revision is refused (`ERR_CLUSTER_FENCED`). Resolves false when
   * a newer claim is there (this one is stale, or the row is from a lease bucket made anew, whose
   * revisions started over: `force` then records this claim anyway, for a receiver that checked
   * it still holds the lease).
   */
  async claimPartition(partition: number, receiver: string, revision: number, force = false): Promise<boolean> {
    try {
      const r = await this.#pool.query(
        `INSERT INTO ${this.#q}.os_cluster_owners (partition, receiver, revision, claimed_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (partition) DO UPDATE SET receiver = excluded.receiver, revision = excluded.revision, claimed_ms = excluded.claimed_ms
         ${force ? '' : 'WHERE os_cluster_owners.revision <= excluded.revision'}`,
        [partition, receiver, revision, Date.now()],
      );
      return r.rowCount === 1;
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the claim of partition ${partition} cannot be recorded: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Which of the message ids `ids` have readings stored (frames a previous delivery committed). */
  async storedIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    try {
      const r = await this.#pool.query<{ msg_id: string }>(`SELECT DISTINCT msg_id FROM ${this.#q}.os_cluster_readings WHERE msg_id = ANY($1::text[])`, [ids]);
      return new Set(r.rows.map((row) => row.msg_id));
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: stored message ids cannot be read: ${messageOf(e)}`, { cause: e });
    }
  }

  /** The stored clocks of partition `partition`'s devices (what a takeover starts from), at most `limit`. */
  async partitionDevices(partition: number, limit: number): Promise<DeviceClock[]> {
    try {
      const r = await this.#pool.query<{ aid: number; ts_ms: number; msg_id: string }>(`SELECT aid, ts_ms, msg_id FROM ${this.#q}.os_cluster_devices WHERE partition = $1 LIMIT $2`, [partition, limit]);
      return r.rows.map((row) => ({ aid: row.aid, partition, tsMs: row.ts_ms, msgId: row.msg_id }));
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the devices of partition ${partition} cannot be read: ${messageOf(e)}`, { cause: e });
    }
  }

  /** The stored clocks of the devices `aids` (those without one are absent from the result). */
  async deviceClocks(aids: readonly number[]): Promise<DeviceClock[]> {
    if (aids.length === 0) return [];
    try {
      const r = await this.#pool.query<{ aid: number; partition: number; ts_ms: number; msg_id: string }>(`SELECT aid, partition, ts_ms, msg_id FROM ${this.#q}.os_cluster_devices WHERE aid = ANY($1::bigint[])`, [aids]);
      return r.rows.map((row) => ({ aid: row.aid, partition: row.partition, tsMs: row.ts_ms, msgId: row.msg_id }));
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: device clocks cannot be read: ${messageOf(e)}`, { cause: e });
    }
  }

  /**
   * Up to `limit` devices whose frames were stored (by any receiver) at `sinceMs` or later, with
   * aids above `afterAid`, in aid order: what renews their id leases, a page at a time. Paged on
   * the primary key rather than on `updated_ms`, which has no index: an index there would be
   * written by every commit for every device it touches, and at typical rates nearly every
   * device is seen between two passes, so a pass reads the table through once either way.
   * Measured on 1,000,000 devices (bench/renewal.bench.mjs): 598 ms a pass, against 17.6 s paged
   * on `(updated_ms, aid)` without the index (each page sorts the table) and 967 ms with it, which
   * made the devices upsert of a 4,096-device commit 1.39x slower (41.4 against 29.7 ms).
   */
  async devicesSeenSince(sinceMs: number, afterAid: number, limit: number): Promise<number[]> {
    try {
      const r = await this.#pool.query<{ aid: number }>(`SELECT aid FROM ${this.#q}.os_cluster_devices WHERE aid > $2 AND updated_ms >= $1 ORDER BY aid LIMIT $3`, [sinceMs, afterAid, limit]);
      return r.rows.map((row) => row.aid);
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the devices seen cannot be read: ${messageOf(e)}`, { cause: e });
    }
  }

  /** The aids with a `kind` session record in partition `partition` (what its node loads on takeover). */
  async partitionSessionAids(partition: number, kind: SessionKind): Promise<number[]> {
    try {
      const r = await this.#pool.query<{ aid: number }>(`SELECT aid FROM ${this.#q}.os_cluster_sessions WHERE partition = $1 AND kind = $2`, [partition, kind]);
      return r.rows.map((row) => row.aid);
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: the ${kind} of partition ${partition} cannot be listed: ${messageOf(e)}`, { cause: e });
    }
  }

  /** The stored `kind` session records of `keys` (aids in decimal), in order. */
  async sessionRecords(kind: SessionKind, keys: readonly string[]): Promise<(object | undefined)[]> {
    try {
      const r = await this.#pool.query<{ key: string; value: string }>(`SELECT aid::text AS key, value FROM ${this.#q}.os_cluster_sessions WHERE kind = $1 AND aid = ANY($2::bigint[])`, [kind, keys.map(Number)]);
      return inKeyOrder<object>(keys, r.rows);
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: ${kind} records cannot be read: ${messageOf(e)}`, { cause: e });
    }
  }

  /** The devices' secrets of `keys` (aids in decimal) from the cluster key store (`os_store` kind `keys`), in order. */
  authKeys(keys: readonly string[]): Promise<(object | undefined)[]> {
    return this.#storeRecords<object>('keys', keys, 'secrets');
  }

  /** The stored template records of `keys` (aids in decimal), in order. */
  templates(keys: readonly string[]): Promise<(TemplateRecord | undefined)[]> {
    return this.#storeRecords<TemplateRecord>('templates', keys, 'templates');
  }

  /** The `os_store` records of `kind` under `keys`, in order (`what` names them in the error). */
  async #storeRecords<T>(kind: 'keys' | 'templates', keys: readonly string[], what: string): Promise<(T | undefined)[]> {
    try {
      const r = await this.#pool.query<{ key: string; value: string }>(`SELECT key, value FROM ${this.#q}.os_store WHERE kind = $1 AND key = ANY($2::text[])`, [kind, keys]);
      return inKeyOrder<T>(keys, r.rows);
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: ${what} cannot be read: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Every aid (decimal key) with stored templates. */
  async templateKeys(): Promise<string[]> {
    try {
      const r = await this.#pool.query<{ key: string }>(`SELECT key FROM ${this.#q}.os_store WHERE kind = 'templates'`);
      return r.rows.map((row) => row.key);
    } catch (e) {
      throw new ClusterError('ERR_CLUSTER_STORE', `PostgreSQL: template keys cannot be listed: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Runs a query, `$schema` standing for the quoted schema (for status, tests and benches). */
  async query<R = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.#pool.query(sql.replaceAll('$schema', this.#q), params)).rows as R[];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/** The JSON values of `rows` in the order of `keys` (`undefined` for a key without a row). */
function inKeyOrder<T>(keys: readonly string[], rows: readonly { key: string; value: string }[]): (T | undefined)[] {
  const byKey = new Map(rows.map((row) => [row.key, row.value]));
  return keys.map((k) => {
    const text = byKey.get(k);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  });
}
