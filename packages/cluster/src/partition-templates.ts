import type { TemplateKinds, TemplateRecord } from '@opensynaptic/fusion';
import { type Store, StoreError, type StoreWrite } from '@opensynaptic/store';
import type { ClusterDatabase, TemplateChange } from './postgres.js';

/**
 * The template store of one partition's node: reads go to the shared PostgreSQL table, writes
 * are staged here and leave with the partition's next readings commit (`take`), in the same
 * transaction, so a template change and the readings of the frames that made it are durable
 * together before their NATS messages are acknowledged. The registry cache writes through on
 * every change (`syncIntervalMs: 0`), so what is staged is always the state after the last frame.
 * Bounded: one staged record per device of the partition, replaced by each change.
 */
export class PartitionTemplateStore implements Store<TemplateKinds> {
  readonly durability = 'power' as const;
  readonly kinds: readonly string[] = ['templates'];
  readonly #db: ClusterDatabase;
  readonly #staged = new Map<string, TemplateRecord | undefined>();
  #closed = false;

  constructor(db: ClusterDatabase) {
    this.#db = db;
  }

  /** Template records staged since the last `take`. */
  get staged(): number {
    return this.#staged.size;
  }

  /** The staged changes, for the next commit (the staging starts over). */
  take(): TemplateChange[] {
    const out: TemplateChange[] = [];
    for (const [key, record] of this.#staged) out.push({ key, record });
    this.#staged.clear();
    return out;
  }

  /** Puts back what a failed commit took, unless a newer change of the same key came meanwhile. */
  restore(changes: readonly TemplateChange[]): void {
    for (const c of changes) if (!this.#staged.has(c.key)) this.#staged.set(c.key, c.record);
  }

  #check(kind: string): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the partition template store is closed');
    if (kind !== 'templates') throw new StoreError('ERR_STORE_KIND', `unknown kind ${JSON.stringify(kind)}; this store keeps "templates"`);
  }

  async get<N extends keyof TemplateKinds & string>(kind: N, key: string): Promise<TemplateKinds[N] | undefined> {
    return (await this.getMany(kind, [key]))[0];
  }

  async getMany<N extends keyof TemplateKinds & string>(kind: N, keys: readonly string[]): Promise<(TemplateKinds[N] | undefined)[]> {
    this.#check(kind);
    const missing = keys.filter((k) => !this.#staged.has(k));
    const stored = missing.length === 0 ? [] : await this.#db.templates(missing);
    const byKey = new Map(missing.map((k, i) => [k, stored[i]]));
    return keys.map((k) => (this.#staged.has(k) ? this.#staged.get(k) : byKey.get(k))) as (TemplateKinds[N] | undefined)[];
  }

  async keys<N extends keyof TemplateKinds & string>(kind: N): Promise<string[]> {
    this.#check(kind);
    const set = new Set(await this.#db.templateKeys());
    for (const [k, v] of this.#staged) {
      if (v === undefined) set.delete(k);
      else set.add(k);
    }
    return [...set];
  }

  async write(batch: readonly StoreWrite<TemplateKinds>[]): Promise<void> {
    for (const w of batch) this.#check(w.kind);
    for (const w of batch) this.#staged.set(w.key, w.op === 'put' ? w.value : undefined);
  }

  /** Staged changes become durable with the partition's next commit; there is nothing else to wait for. */
  async flush(): Promise<void> {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the partition template store is closed');
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
