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
import type { DeviceSummary, Reading, ReadingFrame, ReadingsSink, ReadingsSinkOptions } from './readings.js';

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

/** How the readings sink suite makes the sink under test. */
export interface ReadingsSinkFactory {
  /** Shown in the test names. */
  name: string;
  /** A fresh, empty location (a file, a schema...). */
  newLocation(): string | Promise<string>;
  /** Opens the sink at `location` with `options` (the suite passes small buffers and batches to some cases). */
  open(location: string, options?: ReadingsSinkOptions): Promise<ReadingsSink>;
  /** Whether what is flushed survives a close and a reopen. */
  persistent: boolean;
  /**
   * Crash test (for sinks whose `durability` is not `none`): a child process writes frames,
   * flushes, prints how many frames it has flushed, and is SIGKILLed at random moments; every
   * flushed reading must be there afterwards, exactly once, and the device row must agree.
   */
  kill?:
    | {
        killLoop: KillLoop;
        /** URL of an ES module exporting `openSink(location)`, runnable by plain Node. */
        moduleUrl: string;
        /** A folder for the child's script. */
        workDir: string;
        /** Rounds (default 5). */
        rounds?: number | undefined;
      }
    | undefined;
}

/** A frame of the suite: device `dev-<aid>`, `sensors` sensors whose values encode `n`. */
export function sampleFrame(aid: number, n: number, options: { sensors?: number; strategy?: ReadingFrame['strategy']; t?: number; templates?: number } = {}): ReadingFrame {
  const sensors = [];
  for (let j = 0; j < (options.sensors ?? 2); j++) sensors.push({ id: `s${j + 1}`, state: 'U', value: n + j / 10, unit: j === 0 ? 'Cel' : 'Pa' });
  const frame: ReadingFrame = {
    aid,
    deviceId: `dev-${aid}`,
    strategy: options.strategy ?? 'FULL',
    timestampMs: options.t ?? 1_700_000_000_000 + n,
    receivedAtMs: 1_700_000_000_500 + n,
    sensors,
    ...(options.templates === undefined ? {} : { templates: options.templates }),
  };
  return frame;
}

async function settledSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  // A few turns of the event loop: an accepted write resolves in a microtask.
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setTimeout(r, 0));
  return settled;
}

/** Registers the readings sink suite for one sink. */
export function abstractReadingsSinkSuite(api: SuiteApi, factory: ReadingsSinkFactory): void {
  const withSink = async (options: ReadingsSinkOptions | undefined, body: (sink: ReadingsSink, location: string) => Promise<void>) => {
    const location = await factory.newLocation();
    const sink = await factory.open(location, options);
    try {
      await body(sink, location);
    } finally {
      await sink.close().catch(() => undefined);
    }
  };

  api.describe(`abstract readings sink suite: ${factory.name}`, () => {
    api.it('starts empty', () =>
      withSink(undefined, async (s) => {
        check((await s.query()).length === 0, 'readings of an empty sink');
        check((await s.devices()).length === 0, 'devices of an empty sink');
        const st = await s.status();
        check(st.stored.readings === 0 && st.stored.devices === 0 && st.stored.lastWriteMs === null, `stored status of an empty sink: ${JSON.stringify(st.stored)}`);
        check(st.buffered === 0 && st.accepted === 0 && st.lost === 0, 'counters of an empty sink');
        check(['none', 'process', 'power'].includes(s.durability) && st.durability === s.durability, `durability ${String(s.durability)}`);
      }));

    api.it('stores every field of every reading and sums the device rows', () =>
      withSink(undefined, async (s) => {
        const odd = { id: `it's, "odd"; DROP TABLE x; -- é 😀 ${'x'.repeat(200)}`, state: 'E,\n', value: -2.5e-300, unit: '' };
        const frames: ReadingFrame[] = [
          sampleFrame(0, 1, { strategy: 'FULL', templates: 1 }),
          { ...sampleFrame(0, 2, { strategy: 'DIFF' }), sensors: [odd, { id: 'big', state: 'U', value: 1.5e308, unit: 'm' }] },
          sampleFrame(0, 3, { strategy: 'HEART', templates: 2 }),
          { ...sampleFrame(4294967295, 4, { sensors: 1 }), timestampMs: 2 ** 53 - 1, receivedAtMs: 0 },
          { ...sampleFrame(7, 5, { sensors: 0 }) },
        ];
        const seq = await s.write(frames);
        check(seq === 5, `write resolved to sequence ${seq}, expected 5`);
        await s.flush();
        const got = await s.query({ limit: 100 });
        check(got.length === 7, `stored ${got.length} readings, expected 7`);
        const want = frames.flatMap((f) => f.sensors.map((x) => ({ aid: f.aid, deviceId: f.deviceId, sensorId: x.id, state: x.state, value: x.value, unit: x.unit, timestampMs: f.timestampMs, receivedAtMs: f.receivedAtMs })));
        const key = (r: object) => JSON.stringify(r, Object.keys(r).sort());
        const wantKeys = new Set(want.map(key));
        for (const r of got) check(wantKeys.has(key({ ...r })), `a stored reading differs from every written one: ${key({ ...r }).slice(0, 300)}`);
        check(Object.is(got.find((r) => r.sensorId === 'big')?.value, 1.5e308), 'value 1.5e308 kept exactly');
        const devices = await s.devices();
        check(devices.length === 3, `devices ${devices.length}, expected 3`);
        const d0 = devices[0]!;
        check(d0.aid === 0 && d0.deviceId === 'dev-0', `first device ${d0.aid} ${d0.deviceId} (devices come by aid)`);
        check(d0.frames.FULL === 1 && d0.frames.DIFF === 1 && d0.frames.HEART === 1, `strategy counts ${JSON.stringify(d0.frames)}`);
        check(d0.readings === 6 && d0.templates === 2, `device 0: readings ${d0.readings}, templates ${d0.templates}`);
        check(d0.firstSeenMs === frames[0]!.receivedAtMs && d0.lastSeenMs === frames[2]!.receivedAtMs, 'first and last seen of device 0');
        const d7 = devices.find((d) => d.aid === 7);
        check(d7 !== undefined && d7.readings === 0 && d7.templates === null && d7.frames.FULL === 1, 'a frame without sensors still makes its device row');
        const st = await s.status();
        check(st.stored.readings === 7 && st.stored.devices === 3, `stored status ${JSON.stringify(st.stored)}`);
        check(st.stored.lastWriteMs !== null && st.accepted === 7 && st.committed === 7 && st.buffered === 0, `status after flush ${JSON.stringify(st)}`);
        await s.write([sampleFrame(0, 9, { strategy: 'DIFF' })]);
        await s.flush();
        const again = (await s.devices({ aid: 0 }))[0]!;
        check(again.frames.DIFF === 2 && again.readings === 8 && again.templates === 2 && again.firstSeenMs === d0.firstSeenMs, `device 0 after one more batch: ${JSON.stringify(again)}`);
      }));

    api.it('queries by device, sensor and time range, with limit and order', () =>
      withSink(undefined, async (s) => {
        const frames: ReadingFrame[] = [];
        for (let n = 0; n < 30; n++) frames.push(sampleFrame(n % 3, n, { sensors: 2, t: 1000 + n * 10 }));
        await s.write(frames);
        await s.flush();
        const byAid = await s.query({ aid: 1, limit: 1000 });
        check(byAid.length === 20 && byAid.every((r) => r.aid === 1), `by aid: ${byAid.length}`);
        const byDev = await s.query({ deviceId: 'dev-2', sensorId: 's2' });
        check(byDev.length === 10 && byDev.every((r) => r.deviceId === 'dev-2' && r.sensorId === 's2'), `by device id and sensor: ${byDev.length}`);
        const range = await s.query({ fromMs: 1050, toMs: 1100 });
        check(range.length === 10 && range.every((r) => r.timestampMs >= 1050 && r.timestampMs < 1100), `range [1050, 1100): ${range.length}`);
        const asc = await s.query({ sensorId: 's1', limit: 5 });
        check(asc.length === 5 && asc.every((r, i) => r.timestampMs === 1000 + i * 10), `oldest 5: ${asc.map((r) => r.timestampMs).join()}`);
        const desc = await s.query({ sensorId: 's1', limit: 3, order: 'desc' });
        check(desc.map((r) => r.timestampMs).join() === '1290,1280,1270', `newest 3: ${desc.map((r) => r.timestampMs).join()}`);
        const all = await s.query({ aid: 0, deviceId: 'dev-0', sensorId: 's1', fromMs: 1000, toMs: 1301 });
        check(all.length === 10, `every filter at once: ${all.length}`);
        check((await s.query({ aid: 0, deviceId: 'dev-1' })).length === 0, 'aid and device id of different devices');
        const devs = await s.devices({ limit: 2 });
        check(devs.map((d) => d.aid).join() === '0,1', `devices limit 2: ${devs.map((d) => d.aid).join()}`);
        check((await s.devices({ deviceId: 'dev-2' })).length === 1, 'devices by id');
      }));

    api.it('rejects bad frames and queries with typed errors naming the field, accepting nothing', () =>
      withSink(undefined, async (s) => {
        const good = sampleFrame(1, 1);
        const bad: [unknown, string][] = [
          [{ ...good, aid: -1 }, 'aid'],
          [{ ...good, aid: 2 ** 32 }, 'aid'],
          [{ ...good, deviceId: '' }, 'deviceId'],
          [{ ...good, deviceId: 'a\u0000b' }, 'deviceId'],
          [{ ...good, deviceId: '\ud800' }, 'deviceId'],
          [{ ...good, strategy: 'PART' }, 'strategy'],
          [{ ...good, timestampMs: 1.5 }, 'timestampMs'],
          [{ ...good, receivedAtMs: Number.NaN }, 'receivedAtMs'],
          [{ ...good, templates: -1 }, 'templates'],
          [{ ...good, sensors: 'x' }, 'sensors'],
          [{ ...good, sensors: [{ id: 's', state: 'U', value: Number.POSITIVE_INFINITY, unit: 'm' }] }, 'value'],
          [{ ...good, sensors: [{ id: 's', state: 'U', value: '1', unit: 'm' }] }, 'value'],
          [{ ...good, sensors: [{ id: 'x'.repeat(257), state: 'U', value: 1, unit: 'm' }] }, 'id'],
          [null, 'frames[1]'],
        ];
        for (const [frame, field] of bad) {
          let error: unknown;
          try {
            await s.write([good, frame as ReadingFrame]);
          } catch (e) {
            error = e;
          }
          check(isStoreError(error, 'ERR_STORE_VALUE'), `a frame with a bad ${field}: expected ERR_STORE_VALUE, got ${String((error as { code?: unknown })?.code ?? error)}`);
          check((error as Error).message.includes(field), `the message names ${field}: ${(error as Error).message}`);
        }
        await rejects(() => s.write(null as unknown as ReadingFrame[]), 'ERR_STORE_BATCH', 'frames that are not a list');
        for (const q of [{ limit: 0 }, { limit: 1.5 }, { aid: 'x' }, { fromMs: -1 }, { order: 'up' }, { deviceId: '' }]) {
          await rejects(() => s.query(q as never), 'ERR_STORE_QUERY', `query ${JSON.stringify(q)}`);
        }
        await rejects(() => s.devices({ limit: 2_000_000 }), 'ERR_STORE_QUERY', 'devices limit over the maximum');
        await s.flush();
        check((await s.query()).length === 0 && (await s.status()).accepted === 0, 'a rejected write accepted part of itself');
      }));

    api.it('holds writes back while the buffer is full (backpressure), then stores them all', () =>
      withSink({ maxBuffered: 10, batchSize: 100, flushIntervalMs: 60_000 }, async (s) => {
        let accepted = 0;
        for (let n = 0; ; n++) {
          const seq = s.tryWrite([sampleFrame(1, n, { sensors: 3 })]);
          if (seq === false) break;
          accepted++;
        }
        check(accepted === 3, `accepted ${accepted} frames of 3 readings into a buffer of 10`);
        await rejects(() => s.write([sampleFrame(1, 0, { sensors: 11 })]), 'ERR_STORE_BATCH', 'one write larger than the whole buffer');
        const waiting = s.write([sampleFrame(1, 100, { sensors: 3 })]);
        check(!(await settledSoon(waiting)), 'a write into a full buffer resolved before anything was committed');
        check(s.tryWrite([sampleFrame(1, 101, { sensors: 1 })]) === false, 'tryWrite overtook a waiting write');
        check((await s.status()).buffered === 9, 'buffered readings while full');
        await s.flush();
        check((await waiting) === 4, 'the waiting write is accepted as the buffer drains, in order');
        await s.flush();
        const st = await s.status();
        check(st.stored.readings === 12 && st.committed === 12 && st.lost === 0 && st.buffered === 0, `after draining: ${JSON.stringify(st)}`);
      }));

    api.it('keeps odd texts and extreme values intact (quotes, backslashes, braces, commas, newlines, non-ASCII, limits)', () =>
      withSink({}, async (s) => {
        const texts = ['"', '\\', '{a,b}', 'x,y', 'line\nbreak\ttab', 'é😀', 'NULL', ' ', '', "'", 'x'.repeat(256)];
        const values = [0, -1.5, 1e-300, 1.7976931348623157e308, -273.15, 123456789.123456, 4294967295];
        const frames: ReadingFrame[] = texts.map((t, i) => ({
          aid: i === 0 ? 4294967295 : i,
          deviceId: t === '' ? 'nonempty' : t,
          strategy: 'FULL',
          timestampMs: 1_700_000_000_000 + i,
          receivedAtMs: 1_700_000_000_500 + i,
          sensors: [{ id: t, state: texts[(i + 1) % texts.length]!, value: values[i % values.length]!, unit: texts[(i + 2) % texts.length]! }],
        }));
        await s.write(frames);
        await s.flush();
        const got = await s.query({ limit: 100 });
        check(got.length === frames.length, `${got.length} readings back`);
        for (let i = 0; i < frames.length; i++) {
          const f = frames[i]!;
          const r = got[i]!;
          const x = f.sensors[0]!;
          const same = r.aid === f.aid && r.deviceId === f.deviceId && r.sensorId === x.id && r.state === x.state && r.unit === x.unit && r.value === x.value && r.timestampMs === f.timestampMs && r.receivedAtMs === f.receivedAtMs;
          check(same, `reading ${i} came back as ${JSON.stringify(r)}, written ${JSON.stringify({ ...f, sensors: undefined, ...x })}`);
        }
      }));

    api.it('commits in batches of batchSize readings and tells each commit in order', () => {
      const events: { frames: number; readings: number; throughSeq: number }[] = [];
      return withSink({ batchSize: 100, onCommit: (e) => events.push(e) }, async (s) => {
        let last = 0;
        for (let n = 0; n < 125; n++) last = await s.write([sampleFrame(n % 5, n, { sensors: 2 })]);
        await s.flush();
        const st = await s.status();
        check(st.batches >= 3 && st.batches === events.length, `batches ${st.batches}, events ${events.length}`);
        check(events.every((e) => e.readings <= 100), `a batch over batchSize: ${events.map((e) => e.readings).join()}`);
        check(events.reduce((n, e) => n + e.readings, 0) === 250, 'readings told by onCommit');
        check(events.every((e, i) => i === 0 || e.throughSeq > events[i - 1]!.throughSeq) && events[events.length - 1]!.throughSeq === last, 'throughSeq in order, ending at the last write');
        check(st.stored.readings === 250, `stored ${st.stored.readings}`);
      });
    });

    api.it(factory.persistent ? 'keeps what was written across a close (which flushes) and a reopen' : 'closes, flushing first', () =>
      withSink({ flushIntervalMs: 60_000 }, async (s, location) => {
        await s.write([sampleFrame(3, 1), sampleFrame(4, 2)]);
        await s.flush();
        await s.write([sampleFrame(3, 3)]);
        await s.close();
        await rejects(() => s.write([sampleFrame(3, 4)]), 'ERR_STORE_CLOSED', 'write after close');
        await rejects(() => s.query(), 'ERR_STORE_CLOSED', 'query after close');
        await s.close();
        if (!factory.persistent) return;
        const again = await factory.open(location);
        try {
          const st = await again.status();
          check(st.stored.readings === 6 && st.stored.devices === 2 && st.stored.lastWriteMs !== null, `reopened: ${JSON.stringify(st.stored)}`);
          check((await again.query({ aid: 3 })).length === 4, 'readings of device 3 after reopening');
        } finally {
          await again.close();
        }
      }));

    const kill = factory.kill;
    if (kill !== undefined) {
      api.it(
        'keeps every flushed reading exactly once across kill -9',
        async () => {
          const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as
            | { writeFileSync(path: string, text: string): void; mkdirSync(path: string, o: { recursive: boolean }): void }
            | undefined;
          check(fs !== undefined, 'the kill test needs Node >= 20.16');
          fs.mkdirSync(kill.workDir, { recursive: true });
          const script = `${kill.workDir}/sink-kill-child.mjs`;
          fs.writeFileSync(script, sinkKillChildSource(kill.moduleUrl));
          const location = await factory.newLocation();
          let total = 0;
          await kill.killLoop({
            script,
            args: (round) => [location, String(round)],
            rounds: kill.rounds ?? 5,
            minMs: 50,
            maxMs: 500,
            seed: 11,
            check: async (round, lines) => {
              const flushed = lines.length === 0 ? 0 : Number(lines[lines.length - 1]);
              total += flushed;
              const s = await factory.open(location);
              try {
                // A database server may still be committing the dead child's last transaction
                // (its COMMIT arrived before the kill): the readings count only when read between
                // two equal device rows, so no commit landed in between.
                let got: Reading[] = [];
                let dev: DeviceSummary | undefined;
                for (let tries = 0; ; tries++) {
                  const before = (await s.devices({ aid: round }))[0]?.readings;
                  got = await s.query({ aid: round, limit: 1_000_000 });
                  dev = (await s.devices({ aid: round }))[0];
                  if (dev?.readings === before) break;
                  check(tries < 50, `round ${round}: the device row still changes 5 s after the kill`);
                  await new Promise<void>((r) => setTimeout(r, 100));
                }
                const seen = new Map<number, number>();
                for (const r of got) seen.set(Math.floor(r.value), (seen.get(Math.floor(r.value)) ?? 0) + 1);
                for (let n = 0; n < flushed; n++) check(seen.get(n) === 3, `round ${round}: frame ${n} of ${flushed} flushed has ${seen.get(n) ?? 0} of its 3 readings after kill -9`);
                for (const [n, c] of seen) check(c === 3, `round ${round}: frame ${n} stored ${c} readings (a batch applied in part or twice)`);
                check(got.length === 0 || (dev !== undefined && dev.readings === got.length), `round ${round}: the device row counts ${dev?.readings} readings, ${got.length} are stored`);
              } finally {
                await s.close();
              }
            },
          });
          check(total > 0, 'the child flushed nothing before it was killed');
        },
        120_000,
      );
    }
  });
}

/**
 * The child of the sink kill test: writes frames of device `<round>` (3 readings each, values
 * encoding the frame number) in growing writes, flushes, and prints how many frames it has
 * flushed once each flush resolved.
 */
export function sinkKillChildSource(moduleUrl: string): string {
  return `import * as m from ${JSON.stringify(moduleUrl)};
const [location, round] = process.argv.slice(2);
const aid = Number(round);
const sink = await m.openSink(location);
process.stdout.write('ready\\n');
let n = 0;
for (let i = 0; ; i++) {
  const frames = [];
  for (let j = 0; j < 1 + (i % 50); j++, n++) {
    frames.push({ aid, deviceId: 'kill-' + aid, strategy: 'DIFF', timestampMs: 1700000000000 + n, receivedAtMs: Date.now(),
      sensors: [0, 1, 2].map((k) => ({ id: 's' + k, state: 'U', value: n + k / 10, unit: 'Cel' })) });
  }
  await sink.write(frames);
  if (i % 3 === 2) {
    await sink.flush();
    process.stdout.write(n + '\\n');
  }
}
`;
}
