import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { compressFact } from '@opensynaptic/packet/body';
import { afterAll, describe, expect, it } from 'vitest';
import { OSVisualFusionEngine, openFileTemplateStore, registryFilePath } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const bodyUrl = pathToFileURL(join(here, '..', '..', 'packet', 'dist', 'body.js')).href;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const DEVICES = 8;
const fact = (aid: number, v: number) => ({ id: `N${aid}`, s: 'ONLINE', t: 1_700_000_000_000, s1_id: 'T', s1_s: 'OK', s1_u: 'Cel', s1_v: v });

// A receiver with `syncIntervalMs: 0` decodes FULL and DIFF frames from 8 devices as fast as it
// can, awaits flush() after each (write-behind: a value is durable once a flush covered it) and
// prints each value it returned: a decoded, flushed frame is acknowledged state.
const CHILD = (indexUrl: string) => `import { openFileTemplateStore, OSVisualFusionEngine } from '${indexUrl}';
import { compressFact } from '${bodyUrl}';
const [root, round] = process.argv.slice(2);
const rx = new OSVisualFusionEngine({ localId: 1, registry: { store: await openFileTemplateStore(root), syncIntervalMs: 0 } });
await rx.registry.preload();
const senders = new Map();
process.stdout.write('ready\\n');
for (let i = 0; ; i++) {
  const aid = 100 + (i % ${DEVICES});
  const v = Number(round) * 1_000_000 + i;
  let tx = senders.get(aid);
  if (!tx) senders.set(aid, (tx = new OSVisualFusionEngine({ localId: aid })));
  const f = { id: 'N' + aid, s: 'ONLINE', t: 1_700_000_000_000, s1_id: 'T', s1_s: 'OK', s1_u: 'Cel', s1_v: v };
  const got = rx.decompress(tx.runEngine(aid + ';' + compressFact(f), 'DIFF'));
  if (got.s1_v !== v) throw new Error('decoded ' + JSON.stringify(got));
  await rx.flush();
  process.stdout.write(aid + ' ' + v + '\\n');
}
`;

describe('templates and last values across kill -9', () => {
  it('keeps every template and value a receiver returned after flush() covered it', { timeout: 60_000 }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'fusion-kill-'));
    dirs.push(work);
    const [indexUrl] = compileForChild([join(here, '..', 'src', 'index.ts')], join(work, 'bundle'));
    const script = join(work, 'child.mjs');
    writeFileSync(script, CHILD(indexUrl!));
    const root = join(work, 'registry');
    const last = new Map<number, number>();
    let decoded = 0;
    let lost = 0;
    const kills = 10;
    await killLoop({
      script,
      args: (round) => [root, String(round)],
      rounds: kills,
      minMs: 30,
      maxMs: 600,
      seed: 5,
      check: async (_round, lines) => {
        for (const line of lines) {
          const [aid, v] = line.split(' ').map(Number) as [number, number];
          last.set(aid, v);
          decoded++;
        }
        // A restarted receiver decodes each device's HEART with its last acknowledged value (or
        // a later one the kill cut before its line was printed).
        const store = await openFileTemplateStore(root);
        const rx = new OSVisualFusionEngine({ localId: 1, registry: { store } });
        await rx.registry.preload();
        for (const [aid, v] of last) {
          const tx = new OSVisualFusionEngine({ localId: aid });
          tx.runEngine(`${aid};${compressFact(fact(aid, v))}`, 'DIFF'); // FULL: teaches tx only
          const heart = tx.runEngine(`${aid};${compressFact(fact(aid, v))}`, 'DIFF');
          expect(heart[0]).toBe(127);
          const got = rx.decompress(heart) as { s1_v?: unknown };
          // A later value of this device is fine: the kill can fall between its save and its line.
          const ok = typeof got.s1_v === 'number' && got.s1_v >= v && ((got.s1_v % 1_000_000) - (aid - 100)) % DEVICES === 0;
          if (!ok) lost++;
        }
        await store.close();
      },
    });
    console.log(`registry kill test: ${kills} kills, ${decoded} frames decoded, ${lost} acknowledged values missing after a kill`);
    expect(last.size).toBe(DEVICES);
    expect(lost).toBe(0);
  });
});

describe('a registry file with an invalid value', () => {
  it('fails the restart that would read it, instead of decoding a wrong value later', async () => {
    const work = mkdtempSync(join(tmpdir(), 'fusion-star-'));
    dirs.push(work);
    const root = join(work, 'registry');
    const rx = new OSVisualFusionEngine({ localId: 1, registry: { store: await openFileTemplateStore(root), syncIntervalMs: 0 } });
    await rx.registry.preload();
    const tx = new OSVisualFusionEngine({ localId: 77 });
    const text = `77;${compressFact(fact(77, 21))}`;
    expect(rx.decompress(tx.runEngine(text, 'DIFF'))).toMatchObject({ s1_s: 'OK', s1_v: 21 });
    await rx.flush();
    const path = registryFilePath(root, 77);
    const file = readFileSync(path, 'utf8');
    // The first stored value (sensor 1's state) replaced by "*", which lenient base64 reads as "".
    writeFileSync(path, file.replace(/("last_vals_bin": \[\s*)"[^"]*"/, '$1"*"'));
    expect(readFileSync(path, 'utf8')).not.toBe(file);
    const restarted = new OSVisualFusionEngine({ localId: 1, registry: { store: await openFileTemplateStore(root) } });
    await expect(restarted.registry.preload()).rejects.toMatchObject({ code: 'ERR_FUSION_STORE_CORRUPT', message: expect.stringContaining('last_vals_bin[0]') });
  });
});
