/**
 * The abstract store suite: every store of the contract (memory, file, and the SQLite and
 * PostgreSQL stores to come) runs these same cases, the way MQTT.js runs each of its stores
 * through one abstract store test. It takes the test framework's `describe` and `it` (vitest,
 * node:test, mocha...) and a factory, and asserts with plain thrown errors, so this module
 * depends on no framework:
 *
 *     import { describe, it } from 'vitest';
 *     import { abstractStoreSuite } from '@opensynaptic/store/testing';
 *     abstractStoreSuite({ describe, it }, { name: 'MyStore', open: (loc) => MyStore.open(loc), ... });
 */
import { brandError } from '@opensynaptic/internal';
import type { Store, StoreWrite } from './contract.js';
import { isStoreError, type StoreErrorCode } from './errors.js';

/** The part of a test framework the suite needs. */
export interface SuiteApi {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>, timeoutMs?: number): unknown;
}

/** The `killLoop` of the repository's crash-test helpers (`@opensynaptic/config/kill-loop`), or one like it. */
export type KillLoop = (options: {
  script: string;
  args?: (round: number) => string[];
  rounds: number;
  minMs?: number;
  maxMs?: number;
  seed?: number;
  check: (round: number, lines: string[]) => void | Promise<void>;
}) => Promise<void>;

/** How the suite makes and inspects the store under test. */
export interface StoreFactory<K extends object> {
  /** Shown in the test names. */
  name: string;
  /** A fresh, empty location (a folder, a database name...). */
  newLocation(): string | Promise<string>;
  /** Opens the store at `location`; opening the same location again must see what was flushed there (for persistent stores). */
  open(location: string): Promise<Store<K>>;
  /** Whether what is flushed survives a close and a reopen (false for memory stores). */
  persistent: boolean;
  /** Two kinds the store keeps (the second may equal the first when it keeps one). */
  kinds: readonly [keyof K & string, keyof K & string];
  /** A valid value of `kind`, to be stored under `key`, that encodes the number `n` (an integer >= 0). */
  sample(kind: keyof K & string, n: number, key: string): unknown;
  /** The `n` a sample value encodes. */
  index(kind: keyof K & string, value: unknown): number;
  /** A key of `kind` for the number `n` (default `k<n>`): for kinds whose keys have a shape (AIDs). */
  key?: ((kind: keyof K & string, n: number) => string) | undefined;
  /** Whether the store takes arbitrary keys (default true); false skips the odd-keys case. */
  arbitraryKeys?: boolean | undefined;
  /**
   * Crash test for stores whose `durability` is not `none`: a child process opens the store,
   * writes and flushes in a loop and prints each flushed write; it is SIGKILLed at random
   * moments, and every write it printed must be there afterwards.
   */
  kill?:
    | {
        killLoop: KillLoop;
        /** URL of an ES module exporting `openStore(location)`, `sample(kind, n, key)` and (when the factory has `key`) `key(kind, n)`, runnable by plain Node. */
        moduleUrl: string;
        /** A folder for the child's script. */
        workDir: string;
        /** Rounds (default 6). */
        rounds?: number | undefined;
      }
    | undefined;
}

class SuiteAssertionError extends Error {
  static {
    brandError(this);
  }
  override readonly name = 'SuiteAssertionError';
  /** A store failed the contract suite (a branded error like every other of the packages). */
  readonly code = 'ERR_STORE_SUITE';
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new SuiteAssertionError(message);
}

async function rejects(promise: () => Promise<unknown>, code: StoreErrorCode, what: string): Promise<void> {
  let error: unknown;
  try {
    await promise();
  } catch (e) {
    error = e;
  }
  check(error !== undefined, `${what}: expected a rejection with ${code}, it resolved`);
  check(isStoreError(error, code), `${what}: expected ${code}, got ${String((error as { code?: unknown })?.code ?? error)}`);
}

/** Registers the abstract suite for one store. */
export function abstractStoreSuite<K extends object>(api: SuiteApi, factory: StoreFactory<K>): void {
  type Kind = keyof K & string;
  const [ka, kb] = factory.kinds;
  const keyOf = (kind: Kind, n: number) => factory.key?.(kind, n) ?? `k${n}`;
  const put = (kind: Kind, n: number, v = n): StoreWrite<K> => ({ op: 'put', kind, key: keyOf(kind, n), value: factory.sample(kind, v, keyOf(kind, n)) as K[Kind] });
  const del = (kind: Kind, n: number): StoreWrite<K> => ({ op: 'delete', kind, key: keyOf(kind, n) });
  const valueIs = (kind: Kind, got: unknown, n: number, what: string) => {
    check(got !== undefined, `${what}: expected the value ${n}, got nothing`);
    const idx = factory.index(kind, got);
    check(idx === n, `${what}: expected the value ${n}, got ${idx}`);
  };
  const withStore = async (body: (store: Store<K>, location: string) => Promise<void>) => {
    const location = await factory.newLocation();
    const store = await factory.open(location);
    try {
      await body(store, location);
    } finally {
      await store.close().catch(() => undefined);
    }
  };

  api.describe(`abstract store suite: ${factory.name}`, () => {
    api.it('reads nothing from an empty store', () =>
      withStore(async (s) => {
        check((await s.get(ka, keyOf(ka, 1))) === undefined, 'get of a missing key');
        check((await s.keys(ka)).length === 0, 'keys of an empty kind');
        const many = await s.getMany(ka, [keyOf(ka, 1), keyOf(ka, 2)]);
        check(many.length === 2 && many[0] === undefined && many[1] === undefined, 'getMany of missing keys');
        check(['none', 'process', 'power'].includes(s.durability), `durability ${String(s.durability)}`);
      }));

    api.it('reads its writes before any flush, getMany in the order asked', () =>
      withStore(async (s) => {
        await s.write([put(ka, 1), put(ka, 2), put(ka, 3)]);
        valueIs(ka, await s.get(ka, keyOf(ka, 2)), 2, 'get after write');
        const many = await s.getMany(ka, [keyOf(ka, 3), keyOf(ka, 9), keyOf(ka, 1)]);
        valueIs(ka, many[0], 3, 'getMany[0]');
        check(many[1] === undefined, 'getMany[1] of a missing key');
        valueIs(ka, many[2], 1, 'getMany[2]');
        check((await s.keys(ka)).sort().join() === [keyOf(ka, 1), keyOf(ka, 2), keyOf(ka, 3)].sort().join(), 'keys after write');
      }));

    api.it('applies a batch in order: later entries win, deletes remove', () =>
      withStore(async (s) => {
        await s.write([put(ka, 1, 10), put(ka, 1, 11), put(ka, 2), del(ka, 2), del(ka, 7)]);
        valueIs(ka, await s.get(ka, keyOf(ka, 1)), 11, 'the last put of a batch');
        check((await s.get(ka, keyOf(ka, 2))) === undefined, 'a key put then deleted in one batch');
        await s.flush();
        await s.write([del(ka, 1)]);
        check((await s.get(ka, keyOf(ka, 1))) === undefined, 'a flushed key deleted');
        await s.flush();
        check((await s.get(ka, keyOf(ka, 1))) === undefined, 'a deleted key after flush');
        check((await s.keys(ka)).length === 0, 'keys after deletes');
      }));

    api.it('keeps kinds apart', () =>
      withStore(async (s) => {
        if (ka === kb) return;
        await s.write([put(ka, 1, 5)]);
        check((await s.get(kb, keyOf(kb, 1))) === undefined, 'a key of another kind');
        await s.write([put(kb, 1, 6)]);
        await s.flush();
        valueIs(ka, await s.get(ka, keyOf(ka, 1)), 5, 'first kind');
        valueIs(kb, await s.get(kb, keyOf(kb, 1)), 6, 'second kind');
      }));

    api.it('rejects bad kinds, keys, values and batches with typed errors, applying nothing', () =>
      withStore(async (s) => {
        await rejects(() => s.get('no-such-kind' as Kind, 'k'), 'ERR_STORE_KIND', 'get of an unknown kind');
        await rejects(() => s.get(ka, ''), 'ERR_STORE_KEY', 'an empty key');
        await rejects(() => s.get(ka, 'x'.repeat(257)), 'ERR_STORE_KEY', 'a key of 257 characters');
        await rejects(() => s.get(ka, 42 as unknown as string), 'ERR_STORE_KEY', 'a number as key');
        await rejects(() => s.getMany(ka, [keyOf(ka, 1), '']), 'ERR_STORE_KEY', 'getMany with an empty key');
        await rejects(() => s.write(null as unknown as StoreWrite<K>[]), 'ERR_STORE_BATCH', 'a batch that is not a list');
        await rejects(() => s.write([{ op: 'merge' } as unknown as StoreWrite<K>]), 'ERR_STORE_BATCH', 'an unknown op');
        await rejects(
          () => s.write([put(ka, 1), { op: 'put', kind: ka, key: keyOf(ka, 2), value: undefined as K[Kind] }]),
          'ERR_STORE_VALUE',
          'a put of undefined',
        );
        await rejects(() => s.write([put(ka, 3), { op: 'put', kind: 'nope' as Kind, key: 'k', value: 1 as K[Kind] }]), 'ERR_STORE_KIND', 'a batch with an unknown kind');
        check((await s.get(ka, keyOf(ka, 1))) === undefined && (await s.get(ka, keyOf(ka, 3))) === undefined, 'a rejected batch applied part of itself');
      }));

    api.it('lets writes issued during a flush wait for the next one', () =>
      withStore(async (s, location) => {
        await s.write([put(ka, 1)]);
        const first = s.flush();
        await s.write([put(ka, 2), put(ka, 1, 100)]);
        const second = s.flush();
        await Promise.all([first, second]);
        valueIs(ka, await s.get(ka, keyOf(ka, 1)), 100, 'the newer value after both flushes');
        if (!factory.persistent) return;
        await s.close();
        const again = await factory.open(location);
        try {
          valueIs(ka, await again.get(ka, keyOf(ka, 1)), 100, 'reopened, key 1');
          valueIs(ka, await again.get(ka, keyOf(ka, 2)), 2, 'reopened, key 2');
        } finally {
          await again.close();
        }
      }));

    api.it(factory.persistent ? 'keeps what was flushed across a close and a reopen' : 'forgets everything across instances (not persistent)', () =>
      withStore(async (s, location) => {
        const batch: StoreWrite<K>[] = [];
        for (let n = 0; n < 40; n++) batch.push(put(ka, n));
        if (ka !== kb) batch.push(put(kb, 1, 77));
        await s.write(batch);
        await s.write([del(ka, 5)]);
        await s.flush();
        await s.close();
        await rejects(() => s.get(ka, keyOf(ka, 1)), 'ERR_STORE_CLOSED', 'get after close');
        await rejects(() => s.write([put(ka, 1)]), 'ERR_STORE_CLOSED', 'write after close');
        await s.close(); // idempotent
        const again = await factory.open(location);
        try {
          if (!factory.persistent) {
            check((await again.keys(ka)).length === 0, 'a new memory store is empty');
            return;
          }
          const keys = new Set(await again.keys(ka));
          check(keys.size === 39 && !keys.has(keyOf(ka, 5)), `reopened keys: ${keys.size}`);
          const many = await again.getMany(ka, Array.from({ length: 40 }, (_, n) => keyOf(ka, n)));
          for (let n = 0; n < 40; n++) {
            if (n === 5) check(many[n] === undefined, 'the deleted key after reopening');
            else valueIs(ka, many[n], n, `reopened key ${n}`);
          }
          if (ka !== kb) valueIs(kb, await again.get(kb, keyOf(kb, 1)), 77, 'reopened second kind');
        } finally {
          await again.close();
        }
      }));

    if (factory.arbitraryKeys !== false) {
      api.it('keeps odd keys apart and intact (case, dots, slashes, percent, non-ASCII)', () =>
        withStore(async (s, location) => {
          const odd = ['A', 'a', '.', '..', '../x', 'a/b', '%41', 'a b', 'é', '😀', '-', 'x'.repeat(256), '\\', 'con', 'k1.json'];
          // A store may refuse a key it cannot name (a file name too long), but only with ERR_STORE_KEY.
          const kept: [string, number][] = [];
          for (let n = 0; n < odd.length; n++) {
            try {
              await s.write([{ op: 'put', kind: ka, key: odd[n]!, value: factory.sample(ka, n, odd[n]!) as K[Kind] }]);
              kept.push([odd[n]!, n]);
            } catch (e) {
              if (!isStoreError(e, 'ERR_STORE_KEY')) throw e;
            }
          }
          check(kept.length >= odd.length - 1, `refused ${odd.length - kept.length} of the odd keys`);
          await s.flush();
          let reader = s;
          if (factory.persistent) {
            await s.close();
            reader = await factory.open(location);
          }
          try {
            const many = await reader.getMany(ka, kept.map(([key]) => key));
            for (let i = 0; i < kept.length; i++) valueIs(ka, many[i], kept[i]![1], `key ${JSON.stringify(kept[i]![0]).slice(0, 20)}`);
            const want = kept.map(([key]) => key).sort().join('\n');
            check((await reader.keys(ka)).sort().join('\n') === want, 'keys of odd keys');
          } finally {
            if (reader !== s) await reader.close();
          }
        }));
    }

    const kill = factory.kill;
    if (kill !== undefined) {
      api.it(
        'keeps every flushed write across kill -9',
        async () => {
          const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as
            | { writeFileSync(path: string, text: string): void; mkdirSync(path: string, o: { recursive: boolean }): void }
            | undefined;
          check(fs !== undefined, 'the kill test needs Node >= 20.16');
          fs.mkdirSync(kill.workDir, { recursive: true });
          const script = `${kill.workDir}/store-kill-child.mjs`;
          fs.writeFileSync(script, killChildSource(kill.moduleUrl, ka, factory.key === undefined));
          const location = await factory.newLocation();
          const acked = new Map<string, number>();
          await kill.killLoop({
            script,
            args: (round) => [location, String(round)],
            rounds: kill.rounds ?? 6,
            minMs: 30,
            maxMs: 400,
            seed: 9,
            check: async (_round, lines) => {
              for (const line of lines) {
                const [key, n] = line.split(' ') as [string, string];
                acked.set(key, Number(n));
              }
              const s = await factory.open(location);
              try {
                const keys = [...acked.keys()];
                const got = await s.getMany(ka, keys);
                for (let i = 0; i < keys.length; i++) {
                  check(got[i] !== undefined, `flushed key ${keys[i]} lost after kill -9`);
                  // A later value is fine: the kill can fall between a flush and its line.
                  check(factory.index(ka, got[i]) >= acked.get(keys[i]!)!, `key ${keys[i]}: flushed value ${acked.get(keys[i]!)} lost after kill -9`);
                }
              } finally {
                await s.close();
              }
            },
          });
          check(acked.size > 0, 'the child flushed nothing before it was killed');
        },
        120_000,
      );
    }
  });
}

/**
 * The child of the kill test: writes batches of a few keys of `kind`, flushes each, and prints
 * `<key> <n>` for every write once its flush resolved.
 */
export function killChildSource(moduleUrl: string, kind: string, plainKeys: boolean): string {
  return `import * as m from ${JSON.stringify(moduleUrl)};
const [location, round] = process.argv.slice(2);
const kind = ${JSON.stringify(kind)};
const key = (n) => ${plainKeys ? "'k' + n" : 'm.key(kind, n)'};
const store = await m.openStore(location);
process.stdout.write('ready\\n');
for (let i = 0; ; i++) {
  const n = Number(round) * 1000000 + i;
  const batch = [];
  for (let j = 0; j < 4; j++) {
    const k = key((i * 4 + j) % 24);
    batch.push({ op: 'put', kind, key: k, value: m.sample(kind, n, k) });
  }
  await store.write(batch);
  await store.flush();
  process.stdout.write(batch.map((w) => w.key + ' ' + n).join('\\n') + '\\n');
}
`;
}
