// Fault: kill -9 of a server taking MQTT QoS 1 (a real mosquitto), repeated. The server
// acknowledges a message (its PUBACK to the broker) only once the message's readings are
// committed, and keeps a persistent session: what it had not acknowledged when it died, the broker
// sends again to the next process. So every reading a device published (its own publish
// acknowledged by the broker) is stored, whatever moment the kills came at.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileForChild, killLoop } from '@opensynaptic/config/kill-loop';
import { Mosquitto } from '@opensynaptic/config/mosquitto';
import { OpenSynaptic } from '@opensynaptic/core';
import { openSqliteReadingsSink } from '@opensynaptic/store-sqlite';
import { createTransport } from '@opensynaptic/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureId, linkNode } from '../src/device.js';
import { tick } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'server-faults-kill-mqtt-'));
let broker: Mosquitto;
beforeAll(async () => {
  broker = await Mosquitto.start();
});
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  broker?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Kills at random moments after the first process (each lives 300..800 ms). */
const ROUNDS = 5;
const BASE_MS = 1.7e12;

describe('kill -9 of the server mid-stream, repeated (MQTT QoS 1 through mosquitto, SQLite)', () => {
  it(`${ROUNDS + 1} kills: every reading a device published is stored (acknowledged only once committed; the broker resends the rest)`, async () => {
    const [url] = compileForChild([join(here, 'fixtures', 'server-child.ts')], join(work, 'bundle'));
    const path = join(work, 'os.db');
    const script = fileURLToPath(url!);
    const args = () => [path, '0', '1000', broker.url];

    const link = await createTransport('mqtt', { url: broker.url, qos: 1, reconnectPeriodMs: 50 });
    cleanup.push(() => link.destroy());
    await link.start();
    const node = new OpenSynaptic({ deviceId: 'KILL_MQTT', requestTimeoutMs: 1000 });
    linkNode(node, link);
    const published: number[] = []; // timestamps of the readings the broker acknowledged
    let stop = false;
    const traffic = (async () => {
      for (let k = 0; !stop; k++) {
        try {
          if (node.assignedId === 0 || node.assignedId === 4294967295) await ensureId(node, { timeoutMs: 500, retries: 1, meta: { serial: 'KILL-MQTT' } });
          const t = BASE_MS + k * 1000;
          await link.send(node.transmit([['T1', 'OK', k % 50, 'Cel']], { t }).frame);
          published.push(t);
        } catch {
          // No id yet (the server was down): try again.
        }
        await tick(1);
      }
    })();

    const stored = async () => {
      const reader = await openSqliteReadingsSink({ path, readonly: true });
      try {
        return (await reader.query({ aid: node.assignedId, limit: 1_000_000 })).map((r) => r.timestampMs);
      } finally {
        await reader.close();
      }
    };
    try {
      // The first process lives long enough for the device's id and template to be written behind.
      await killLoop({ script, args, rounds: 1, minMs: 3000, maxMs: 3000, check: async () => undefined });
      await killLoop({ script, args, rounds: ROUNDS, minMs: 300, maxMs: 800, seed: Number(process.env.FAULTS_SEED ?? 7), check: async () => undefined });
    } finally {
      stop = true;
      await traffic;
    }
    // One last process, not killed until the broker has handed it everything it held.
    let rows: number[] = [];
    await killLoop({
      script,
      args,
      rounds: 1,
      minMs: 4000,
      maxMs: 4000,
      check: async () => {
        rows = await stored();
      },
    });
    const have = new Set(rows);
    const missing = published.filter((t) => !have.has(t));
    expect(published.length).toBeGreaterThan(100);
    expect(missing, `${missing.length} of ${published.length} published readings missing`).toEqual([]);
    // At least once: a reading committed just before a kill, its PUBACK not yet out, comes again.
    const duplicates = rows.length - have.size;
    expect(duplicates).toBeLessThanOrEqual(published.length);
  });
});
