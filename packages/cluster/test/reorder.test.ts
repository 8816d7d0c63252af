// Frames of one device that reach JetStream out of order (two gateways behind one MQTT shared
// subscription, each publishing part of the device's stream) and frames that come again after
// JetStream's duplicate window. The frames are published straight to the stream here, in the
// order a race between two gateways would leave, so each case is exact rather than left to luck.
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { partitionOf } from '@opensynaptic/server';
import { connect, headers, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterReceiver, type ReceiverEvents, frameMessageId, framesSubject } from '../src/index.js';
import { clusterEnv } from './fixtures/cluster-env.js';
import { ensureFramesStream } from '../src/nats.js';

const SCHEMA = 'reorder';
const env = clusterEnv(SCHEMA);
const { pgUrl, unavailable } = env;
const PARTITIONS = 4;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  if (unavailable) return;
  nc = await connect({ servers: env.nats.urls });
});
afterAll(async () => {
  await nc?.close();
});

/**
 * A device whose clock the test moves (frames 1 s apart unless told). Its first three frames are
 * FULLs whatever changed (the reference's strategy), so `warm` sends those first.
 */
function device(aid: number, t = 1, h = 1, startMs = 1_764_806_400_000) {
  let now = startMs - 1000;
  const node = new OpenSynaptic({ assignedId: aid, deviceId: `r${aid}`, clock: () => now });
  const send = (tv: number, hv: number, at?: number) => {
    now = at ?? now + 1000;
    const r = node.transmit([['T1', 'OK', tv, 'Cel'], ['H1', 'OK', hv, 'Cel']]);
    return { frame: r.frame, kind: r.kind, ts: r.timestampMs, id: frameMessageId(r.frame)! };
  };
  const fulls = [send(t, h), send(t, h), send(t, h)];
  return { aid, fulls, send };
}

/** Publishes `frame` as a gateway would (shared: marked as from an unordered edge). */
async function publish(prefix: string, frame: Uint8Array, id: string, shared = true): Promise<void> {
  const aid = new DataView(frame.buffer, frame.byteOffset).getUint32(2);
  const h = headers();
  h.set('Os-Received', String(Date.now()));
  if (shared) h.set('Os-Order', 'shared');
  await nc!.jetstream().publish(framesSubject(prefix, partitionOf(aid, PARTITIONS)), frame, { msgID: id, headers: h });
}

const celsius = (v: number) => Math.round((v - 273.15) * 100) / 100;

async function readings(msgId: string): Promise<Record<string, number>> {
  const rows = await env.db.query<{ sensor_id: string; value: number }>('SELECT sensor_id, value FROM $schema.os_cluster_readings WHERE msg_id = $1', [msgId]);
  return Object.fromEntries(rows.map((r) => [r.sensor_id, celsius(Number(r.value))]));
}

const receiver = (id: string, prefix: string, extra: Partial<ConstructorParameters<typeof ClusterReceiver>[0]> = {}) =>
  new ClusterReceiver({ id, nats: { servers: env.nats.urls }, postgres: { connection: pgUrl, schema: SCHEMA }, prefix, partitions: PARTITIONS, leaseTtlMs: 60_000, ...extra });

describe.skipIf(unavailable !== '')('frames of one device out of order, and again after the duplicate window', () => {
  it('within the reorder window, a DIFF that overtook its predecessor decodes after it, both to the right values', async () => {
    const prefix = 'ro';
    await ensureFramesStream(await nc!.jetstreamManager(), prefix);
    const r = receiver('ro1', prefix, { reorderWindowMs: 800 });
    await r.start();
    try {
      const d = device(5001);
      const d2 = d.send(2, 1);
      const d3 = d.send(2, 3);
      expect([...d.fulls.map((f) => f.kind), d2.kind, d3.kind]).toEqual(['FULL', 'FULL', 'FULL', 'DIFF', 'DIFF']);
      for (const f of d.fulls) await publish(prefix, f.frame, f.id);
      // d3 went through the faster gateway.
      await publish(prefix, d3.frame, d3.id);
      await publish(prefix, d2.frame, d2.id);
      await until(async () => (await r.status()).totals.acked === 5, 'the five frames stored and acknowledged', 15_000, 50);
      expect(await readings(d.fulls[2]!.id)).toEqual({ T1: 1, H1: 1 });
      expect(await readings(d2.id)).toEqual({ T1: 2, H1: 1 });
      expect(await readings(d3.id)).toEqual({ T1: 2, H1: 3 });
      const st = await r.status();
      expect(st.totals.reordered).toBe(2);
      expect(st.totals.late).toBe(0);
      expect(st.totals.errors).toBe(0);
    } finally {
      await r.stop();
    }
  });

  it('without a window, the overtaken DIFF is refused as late (ERR_CLUSTER_LATE), never decoded against the newer state', async () => {
    const prefix = 'rz';
    await ensureFramesStream(await nc!.jetstreamManager(), prefix);
    const r = receiver('rz1', prefix, { reorderWindowMs: 0 });
    const events: ReceiverEvents['undecodable'][] = [];
    r.on('undecodable', (e) => events.push(e));
    await r.start();
    try {
      const d = device(5002);
      const d2 = d.send(2, 1);
      const d3 = d.send(2, 3);
      for (const f of d.fulls) await publish(prefix, f.frame, f.id);
      await publish(prefix, d3.frame, d3.id);
      await until(async () => (await r.status()).totals.acked === 4, 'the FULLs and the overtaking DIFF acknowledged', 15_000, 50);
      await publish(prefix, d2.frame, d2.id);
      await until(async () => (await r.status()).totals.acked === 5, 'the late frame acknowledged', 15_000, 50);
      const st = await r.status();
      expect(st.totals.late).toBe(1);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ aid: 5002, code: 'ERR_CLUSTER_LATE' });
      expect(events[0]!.message).toContain('older than its state');
      expect(await readings(d2.id)).toEqual({});
      // d3 decoded before d2 arrived: its unchanged T1 came from the FULL. The window is what
      // prevents that; the refusal keeps the late frame from making it worse.
      expect(await readings(d3.id)).toEqual({ T1: 1, H1: 3 });
    } finally {
      await r.stop();
    }
  });

  it('a copy after the duplicate window is not decoded twice, the clocks survive a takeover, and a clock that went back starts over with its FULL', async () => {
    const prefix = 'rd';
    // A 200 ms duplicate window: JetStream stores the copies that come later.
    await ensureFramesStream(await nc!.jetstreamManager(), prefix, { duplicateWindowMs: 200 });
    const d = device(5003, 10, 10);
    const d2 = d.send(11, 10);
    const a = receiver('rd1', prefix, { clockResetMs: 3_600_000 });
    await a.start();
    for (const f of d.fulls) await publish(prefix, f.frame, f.id, false);
    await publish(prefix, d2.frame, d2.id, false);
    await until(async () => (await a.status()).totals.acked === 4, 'the first four frames', 15_000, 50);
    await a.stop();

    // The next owner starts from the stored clock (d2's) and templates.
    const b = receiver('rd2', prefix, { clockResetMs: 3_600_000 });
    const events: ReceiverEvents['undecodable'][] = [];
    b.on('undecodable', (e) => events.push(e));
    await b.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      // Again, past the duplicate window: d2 is the device's state, the first FULL is stored.
      await publish(prefix, d2.frame, d2.id, false);
      await publish(prefix, d.fulls[0]!.frame, d.fulls[0]!.id, false);
      // A DIFF from before d2 (half a second before it) that was never stored: late.
      const early = device(5003, 10, 10);
      const stale = early.send(10, 12, d2.ts - 500);
      expect(stale.kind).toBe('DIFF');
      await publish(prefix, stale.frame, stale.id, false);
      const d3 = d.send(12, 10);
      await publish(prefix, d3.frame, d3.id, false);
      await until(async () => (await b.status()).totals.acked === 4, 'the four frames', 15_000, 50);
      let st = await b.status();
      expect(st.totals.repeated).toBe(2);
      expect(st.totals.late).toBe(1);
      expect(events.map((e) => e.code)).toEqual(['ERR_CLUSTER_LATE']);
      expect(st.totals.duplicates).toBe(0);
      expect(await readings(d3.id)).toEqual({ T1: 12, H1: 10 });
      const stored = await env.db.query<{ n: number }>('SELECT count(*)::int AS n FROM $schema.os_cluster_readings WHERE aid = 5003');
      expect(stored[0]!.n).toBe(2 * 5);

      // The device restarts with its clock a day back: its FULLs start the state over, and its
      // DIFFs decode from them.
      const reborn = device(5003, 20, 20, d.fulls[0]!.ts - 86_400_000);
      const rd = reborn.send(21, 20);
      for (const f of reborn.fulls) await publish(prefix, f.frame, f.id, false);
      await publish(prefix, rd.frame, rd.id, false);
      await until(async () => (await b.status()).totals.acked === 8, 'the restarted device', 15_000, 50);
      st = await b.status();
      expect(st.totals.late).toBe(1);
      expect(await readings(rd.id)).toEqual({ T1: 21, H1: 20 });
      const clock = await env.db.deviceClocks([5003]);
      expect(clock).toEqual([{ aid: 5003, partition: partitionOf(5003, PARTITIONS), tsMs: rd.ts, msgId: rd.id }]);
    } finally {
      await b.stop();
    }
  });
});
