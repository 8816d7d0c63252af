import type { TemplateKinds, TemplateRecord } from '@opensynaptic/fusion';
import { type Store, StoreError, type StoreWrite } from '@opensynaptic/store';
import type { ClusterDatabase, TemplateChange } from './postgres.js';
import { Staging } from './staging.js';

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
  readonly #staged = new Staging<TemplateRecord>();
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
    return this.#staged.take().map(([key, record]) => ({ key, record }));
  }

  /** Puts back what a failed commit took, unless a newer change of the same key came meanwhile. */
  restore(changes: readonly TemplateChange[]): void {
    this.#staged.restore(changes.map((c) => [c.key, c.record] as const));
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
    return (await this.#staged.read(keys, (missing) => this.#db.templates(missing))) as (TemplateKinds[N] | undefined)[];
  }

  async keys<N extends keyof TemplateKinds & string>(kind: N): Promise<string[]> {
    this.#check(kind);
    return this.#staged.keys(await this.#db.templateKeys());
  }

  async write(batch: readonly StoreWrite<TemplateKinds>[]): Promise<void> {
    for (const w of batch) this.#check(w.kind);
    for (const w of batch) this.#staged.stage(w.key, w.op === 'put' ? w.value : undefined);
  }

  /** Staged changes become durable with the partition's next commit; there is nothing else to wait for. */
  async flush(): Promise<void> {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the partition template store is closed');
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
