// The gateway on one nats-server: data frames go to their partition's subject with a message id
// and count as acknowledged once JetStream's PubAck came; control packets are answered by the
// gateway's node (a PING gets its PONG); junk is counted, never published; bad options are typed.
import { NatsCluster } from '@opensynaptic/config/nats';
import { until } from '@opensynaptic/config/until';
import { OpenSynaptic } from '@opensynaptic/core';
import { framePartition, linkNode } from '@opensynaptic/server';
import { createInProcessPair, TransportBase } from '@opensynaptic/transport';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterGateway, type GatewayAck, isOpenSynapticError, streamName } from '../src/index.js';

let nats: NatsCluster;
beforeAll(async () => {
  nats = await NatsCluster.start({ nodes: 1 });
});
afterAll(async () => {
  await nats?.close();
});

/** A medium whose frames are acknowledged by the receiver of them (as MQTT QoS 1 is, after `deferAcks`). */
class AckingTransport extends TransportBase {
  readonly reliable = true;
  constructor() {
    super('acking', 4 << 20);
  }
  protected async open(): Promise<void> {}
  protected async write(): Promise<void> {}
  protected async close(): Promise<void> {}
  deferAcks(): boolean {
    return true;
  }
  inject(frame: Uint8Array, ack: () => void): void {
    this.deliver(frame, { medium: 'acking', key: 'acking:device' }, true, Date.now(), ack);
  }
}

describe('ClusterGateway', () => {
  it('publishes data frames to their partition with a message id, answers a PING, counts junk', async () => {
    const [device, edge] = createInProcessPair();
    const gateway = new ClusterGateway({ id: 'gw', nats: { servers: nats.urls }, transports: [edge], prefix: 'gw', partitions: 4 });
    const acks: GatewayAck[] = [];
    gateway.on('ack', (a) => acks.push(a));
    await device.start();
    await gateway.start();
    const node = new OpenSynaptic({ assignedId: 77, deviceId: 'pinger', requestTimeoutMs: 2000 });
    linkNode(node, device);
    const frames: Uint8Array[] = [];
    for (let k = 0; k < 5; k++) {
      const { frame } = node.transmit([['T1', 'OK', k, 'Cel']]);
      frames.push(frame);
      await device.send(frame);
    }
    expect(await node.ping()).toBeGreaterThanOrEqual(0);
    await device.send(new Uint8Array([0xee]));
    await until(() => acks.length === 5 && gateway.status().invalid === 1, 'the acknowledgements and the junk count', 10_000);
    const st = gateway.status();
    expect(st).toMatchObject({ frames: 5, acked: 5, failed: 0, control: 1, invalid: 1, queued: 0 });
    const p = framePartition(frames[0]!, 4)!;
    expect(acks.map((a) => a.partition)).toEqual([p, p, p, p, p]);
    expect(new Set(acks.map((a) => a.msgId)).size).toBe(5);
    expect(acks.map((a) => a.seq)).toEqual([...acks.map((a) => a.seq)].sort((x, y) => x - y));

    // On the stream: the frames in order on the partition's subject, each with its id and peer.
    const nc = await connect({ servers: nats.urls });
    try {
      const jsm = await nc.jetstreamManager();
      for (const [i, a] of acks.entries()) {
        const m = await jsm.streams.getMessage(streamName('gw'), { seq: a.seq });
        expect(m.subject).toBe(`gw.frames.${p}`);
        expect([...m.data]).toEqual([...frames[i]!]);
        expect(m.header.get('Nats-Msg-Id')).toBe(a.msgId);
        expect(m.header.get('Os-Peer')).toMatch(/^inprocess:/);
      }
    } finally {
      await nc.close();
    }
    await gateway.stop();
    await device.destroy();
  });

  it('refuses bad options with ERR_CLUSTER_OPTION', () => {
    const [, edge] = createInProcessPair();
    const base = { id: 'g', nats: { servers: nats.urls }, transports: [edge] };
    for (const bad of [{ id: 'a b' }, { partitions: 0 }, { prefix: 'A' }, { maxQueued: 0 }, { transports: [] }, { publishAttempts: 0 }]) {
      try {
        new ClusterGateway({ ...base, ...bad });
        expect.unreachable(JSON.stringify(bad));
      } catch (e) {
        expect(isOpenSynapticError(e, 'ERR_CLUSTER_OPTION'), String(e)).toBe(true);
      }
    }
  });

  // Last: it kills the file's nats-server.
  it('stop() during start() waits for it, then stops what it started', async () => {
    const [device, edge] = createInProcessPair();
    const gateway = new ClusterGateway({ id: 'gr', nats: { servers: nats.urls }, transports: [edge], prefix: 'gr', partitions: 2 });
    await device.start();
    const started = gateway.start();
    await gateway.stop();
    await started;
    expect(gateway.status().state).toBe('stopped');
    expect(edge.state).not.toBe('running');
    // Before, the start went on after the stop: its NATS connection stayed open, still taking
    // receivers' answers on its reply subject.
    const nc = await connect({ servers: nats.urls });
    try {
      nc.publish('gr.reply.gr', new Uint8Array([1]));
      await nc.flush();
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await nc.close();
    }
    expect(gateway.status().repliesDropped).toBe(0);
    await device.destroy();
  });

  it('a frame the medium acknowledges that no publish can take (over max_payload) is given up at once and acknowledged; the next goes on', async () => {
    const edge = new AckingTransport();
    const gateway = new ClusterGateway({ id: 'gm', nats: { servers: nats.urls }, transports: [edge], prefix: 'gm', partitions: 2 });
    const errors: string[] = [];
    gateway.on('publish-error', (e) => errors.push(e.error.message));
    await gateway.start();
    const node = new OpenSynaptic({ assignedId: 80, deviceId: 'big' });
    const full = node.transmit([['T1', 'OK', 1, 'Cel']]).frame;
    // A data header and 1.1 MB after it: more than nats-server's default max_payload (1 MiB).
    const big = new Uint8Array(1_100_000);
    big.set(full);
    let acks = 0;
    edge.inject(big, () => acks++);
    edge.inject(node.transmit([['T1', 'OK', 2, 'Cel']]).frame, () => acks++);
    await until(() => gateway.status().acked === 1 && gateway.status().failed === 1, 'the big frame given up and the next published', 10_000, 10);
    expect(gateway.status().retries).toBe(0);
    expect(acks).toBe(2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/can never be published/);
    await gateway.stop();
  });

  it('a frame the medium acknowledges is retried past publishAttempts until NATS is back, then acknowledged', async () => {
    const edge = new AckingTransport();
    const gateway = new ClusterGateway({ id: 'gq', nats: { servers: nats.urls }, transports: [edge], prefix: 'gq', partitions: 2, publishTimeoutMs: 200, publishAttempts: 2 });
    await gateway.start();
    await nats.kill(0);
    const node = new OpenSynaptic({ assignedId: 79, deviceId: 'held' });
    let acks = 0;
    for (let k = 0; k < 3; k++) edge.inject(node.transmit([['T1', 'OK', k, 'Cel']]).frame, () => acks++);
    // Far longer than two attempts (about 0.5 s): a frame that is not acknowledged medium-side is
    // given up then; this one waits, holding its device's slot at the broker.
    await new Promise((r) => setTimeout(r, 2500));
    expect(gateway.status()).toMatchObject({ frames: 3, acked: 0, failed: 0 });
    expect(acks).toBe(0);
    await nats.restart(0);
    await until(() => gateway.status().acked === 3, 'the held frames to be published once NATS is back', 20_000, 20);
    expect(gateway.status()).toMatchObject({ failed: 0, queued: 0 });
    expect(acks).toBe(3);
    await gateway.stop();
  });

  it('stop() with NATS gone gives the frames up after stopTimeoutMs, intake blocked on a full queue included: failed, never acknowledged', async () => {
    const [device, edge] = createInProcessPair();
    const gateway = new ClusterGateway({ id: 'gs', nats: { servers: nats.urls }, transports: [edge], prefix: 'gs', partitions: 2, publishTimeoutMs: 200, stopTimeoutMs: 500, maxQueued: 2 });
    const errors: string[] = [];
    gateway.on('publish-error', (e) => errors.push(e.error.code));
    let acked = 0;
    gateway.on('ack', () => acked++);
    await device.start();
    await gateway.start();
    await nats.kill(0);
    const node = new OpenSynaptic({ assignedId: 78, deviceId: 'lost' });
    // Eight frames into a queue of two: the intake waits for room that publishes to a dead NATS
    // make only after their ten attempts each (before, stop() waited for all of them, about a
    // minute, before its timeout even started).
    const sends = Array.from({ length: 8 }, (_, k) => device.send(node.transmit([['T1', 'OK', k, 'Cel']]).frame).catch(() => undefined));
    await until(() => gateway.status().frames === 2, 'the gateway to fill its queue', 5000);
    const t0 = Date.now();
    await gateway.stop();
    await Promise.all(sends);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(acked).toBe(0);
    const st = gateway.status();
    expect(st).toMatchObject({ acked: 0, queued: 0, state: 'stopped' });
    expect(st.frames).toBeGreaterThanOrEqual(2);
    expect(st.failed).toBe(st.frames);
    expect(errors).toEqual(Array.from({ length: st.frames }, () => 'ERR_CLUSTER_PUBLISH'));
    await device.destroy();
  });

  it('a gateway that cannot reach NATS fails to start with ERR_CLUSTER_NATS', async () => {
    const [, edge] = createInProcessPair();
    const gateway = new ClusterGateway({ id: 'g', nats: { servers: ['nats://127.0.0.1:1'], connectTimeoutMs: 500 }, transports: [edge] });
    await expect(gateway.start()).rejects.toMatchObject({ code: 'ERR_CLUSTER_NATS' });
  });
});
