import type { AuthKinds, SessionKinds } from '@opensynaptic/handshake';
import { type Store, StoreError, type StoreWrite } from '@opensynaptic/store';
import type { ClusterDatabase, SessionChange, SessionKind } from './postgres.js';
import { Staging } from './staging.js';

/** The kinds one partition's node keeps here: legacy secure sessions, authenticated sessions, and (read only) secrets. */
export type PartitionSessionKinds = SessionKinds & AuthKinds;

const KINDS: readonly string[] = ['sessions', 'auth', 'keys'];

/**
 * The session store of one partition's node, the twin of `PartitionTemplateStore`: legacy secure
 * sessions (`sessions`) and authenticated sessions with their replay windows (`auth`) are read
 * from `os_cluster_sessions` rows of this partition, and writes are staged here and leave with
 * the partition's next readings commit (`take`), in the same transaction. So the replay window
 * the next owner inherits is the one of the frames it will not see again: frames delivered again
 * after a takeover (never committed) still open, and every committed one is a replay.
 *
 * Secrets (`keys`) are the cluster's key store, `os_store` kind `keys` in the same schema (what
 * an `AuthServer` over `openPostgresStore` writes, e.g. `os-node keys add`). They are not listed
 * at load (`keys('keys')` is empty: a partition needs only its devices' secrets, and only at a
 * HELLO); the receiver reads a device's record before it answers its HELLO (`reloadKeys`).
 * Bounded: one staged record per device of the partition and kind, replaced by each change.
 */
export class PartitionSessionStore implements Store<PartitionSessionKinds> {
  readonly durability = 'power' as const;
  readonly kinds = KINDS;
  readonly partition: number;
  readonly #db: ClusterDatabase;
  /** One staging per kind, by aid in decimal. */
  readonly #staged: Record<SessionKind, Staging<object>> = { sessions: new Staging(), auth: new Staging() };
  #closed = false;

  constructor(db: ClusterDatabase, partition: number) {
    this.#db = db;
    this.partition = partition;
  }

  /** Records staged since the last `take`. */
  get staged(): number {
    return this.#staged.sessions.size + this.#staged.auth.size;
  }

  /** The staged changes, for the next commit (the staging starts over). */
  take(): SessionChange[] {
    const out: SessionChange[] = [];
    for (const kind of ['sessions', 'auth'] as const) for (const [key, record] of this.#staged[kind].take()) out.push({ kind, aid: Number(key), partition: this.partition, record });
    return out;
  }

  /** Puts back what a failed commit took, unless a newer change of the same record came meanwhile. */
  restore(changes: readonly SessionChange[]): void {
    for (const c of changes) this.#staged[c.kind].restore([[String(c.aid), c.record]]);
  }

  #check(kind: string): SessionKind | 'keys' {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the partition session store is closed');
    if (!KINDS.includes(kind)) throw new StoreError('ERR_STORE_KIND', `unknown kind ${JSON.stringify(kind)}; this store keeps "sessions", "auth" and "keys"`);
    return kind as SessionKind | 'keys';
  }

  async get<N extends keyof PartitionSessionKinds & string>(kind: N, key: string): Promise<PartitionSessionKinds[N] | undefined> {
    return (await this.getMany(kind, [key]))[0];
  }

  async getMany<N extends keyof PartitionSessionKinds & string>(kind: N, keys: readonly string[]): Promise<(PartitionSessionKinds[N] | undefined)[]> {
    const k = this.#check(kind);
    if (k === 'keys') return (await this.#db.authKeys(keys)) as (PartitionSessionKinds[N] | undefined)[];
    return (await this.#staged[k].read(keys, (missing) => this.#db.sessionRecords(k, missing))) as (PartitionSessionKinds[N] | undefined)[];
  }

  async keys<N extends keyof PartitionSessionKinds & string>(kind: N): Promise<string[]> {
    const k = this.#check(kind);
    if (k === 'keys') return [];
    return this.#staged[k].keys((await this.#db.partitionSessionAids(this.partition, k)).map(String));
  }

  async write(batch: readonly StoreWrite<PartitionSessionKinds>[]): Promise<void> {
    for (const w of batch) {
      if (this.#check(w.kind) === 'keys') throw new StoreError('ERR_STORE_KIND', 'secrets are not written by a receiver: add them to the cluster key store (os_store kind "keys") with an AuthServer over openPostgresStore, or os-node keys');
      const aid = Number(w.key);
      if (!Number.isInteger(aid) || aid < 0 || aid > 0xffff_ffff) throw new StoreError('ERR_STORE_KEY', `session key ${JSON.stringify(w.key)} is not an aid`);
    }
    for (const w of batch) this.#staged[w.kind as SessionKind].stage(w.key, w.op === 'put' ? (w.value as object) : undefined);
  }

  /** Staged changes become durable with the partition's next commit; there is nothing else to wait for. */
  async flush(): Promise<void> {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the partition session store is closed');
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
