import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTransportError, type TransportEvent } from '../src/index.js';
import { createMqttTransport, type MqttOptions, REFERENCE_PUBLISH_TOPIC, REFERENCE_SUBSCRIBE_TOPIC } from '../src/mqtt.js';
import { transportConformanceSuite } from '../src/testing.js';
import { Mosquitto } from './helpers/mosquitto.js';

// A real broker: Debian's mosquitto on a free loopback port, started here (installed by the
// global setup when missing).
let broker: Mosquitto;
beforeAll(async () => {
  broker = await Mosquitto.start();
});
afterAll(() => broker?.close());

let n = 0;
/** Two clients on topics of their own (a prefix per pair keeps tests apart on one broker). */
async function mqttPair(extra: Partial<MqttOptions>, inbound?: { maxFrames?: number | undefined }) {
  const prefix = `t${++n}/`;
  const common: MqttOptions = {
    url: broker.url,
    publishTopic: `${prefix}${REFERENCE_PUBLISH_TOPIC}`,
    subscribe: [`${prefix}${REFERENCE_SUBSCRIBE_TOPIC}`],
    reconnectPeriodMs: 100,
    inbound,
    ...extra,
  };
  const b = createMqttTransport({ ...common, ...(extra.clean === false ? { clientId: `b${n}` } : {}) });
  await b.start();
  const a = createMqttTransport({ ...common, ...(extra.clean === false ? { clientId: `a${n}` } : {}) });
  await a.start();
  return { a, b };
}

transportConformanceSuite({ describe, it }, {
  name: 'mqtt QoS 1 (mosquitto)',
  pair: ({ inbound }) => mqttPair({ qos: 1, clean: false }, inbound),
  interrupt: () => broker.restart(),
  interruptFrames: 2000,
  window: 128,
});

transportConformanceSuite({ describe, it }, {
  name: 'mqtt QoS 0 (mosquitto)',
  pair: ({ inbound }) => mqttPair({ qos: 0 }, inbound),
  pausable: true,
  burst: 5000,
  flood: 5000,
  window: 128,
});

describe('mqtt', () => {
  it('deferAcks: QoS 1 frames carry an ack (calling it twice is harmless) and the stream reads on before it; QoS 0 has nothing to defer; refused after start (what it buys: the server\'s faults-kill-mqtt test)', async () => {
    expect(createMqttTransport({ url: broker.url }).deferAcks()).toBe(false);
    const rx = createMqttTransport({ url: broker.url, qos: 1, subscribe: ['defer/#'] });
    expect(rx.deferAcks()).toBe(true);
    await rx.start();
    expect(() => rx.deferAcks()).toThrow(expect.objectContaining({ code: 'ERR_TRANSPORT_STATE' }));
    const tx = createMqttTransport({ url: broker.url, qos: 1, subscribe: false, publishTopic: 'defer/x' });
    await tx.start();
    try {
      await tx.send(new Uint8Array([1, 2, 3]));
      const got = (await rx.frames().next()).value!;
      expect(got.frame).toEqual(new Uint8Array([1, 2, 3]));
      expect(typeof got.ack).toBe('function');
      // Not acknowledged yet: the next message still comes.
      await tx.send(new Uint8Array([4]));
      const next = (await rx.frames().next()).value!;
      expect(next.frame[0]).toBe(4);
      got.ack!();
      got.ack!();
      next.ack!();
    } finally {
      await Promise.all([rx.destroy(), tx.destroy()]);
    }
  });

  it('uses the reference topics by default', async () => {
    expect([REFERENCE_PUBLISH_TOPIC, REFERENCE_SUBSCRIBE_TOPIC]).toEqual(['os/sensors/raw', 'os/sensors/#']);
    const rx = createMqttTransport({ url: broker.url });
    await rx.start();
    const tx = createMqttTransport({ url: broker.url, subscribe: false });
    await tx.start();
    try {
      await tx.send(new Uint8Array([1, 2]));
      const m = (await rx.frames().next()).value!;
      expect(m.peer.topic).toBe('os/sensors/raw');
      expect([...m.frame]).toEqual([1, 2]);
    } finally {
      await Promise.all([rx.destroy(), tx.destroy()]);
    }
  });

  it('a reference-style publisher (plain MQTT client, QoS 0) reaches our subscriber; per-device topics as an option', async () => {
    const rx = createMqttTransport({ url: broker.url, subscribe: ['dev/os/sensors/#'] });
    await rx.start();
    const tx = createMqttTransport({ url: broker.url, subscribe: false, publishTopic: (frame) => `dev/os/sensors/${frame[0]}` });
    await tx.start();
    const plain = await mqtt.connectAsync(broker.url, { clientId: 'OpenSynapticNode', protocolVersion: 4 });
    try {
      await plain.publishAsync('dev/os/sensors/raw', Buffer.from([9, 9]));
      await tx.send(new Uint8Array([42, 1]));
      const it = rx.frames();
      const got = [(await it.next()).value!, (await it.next()).value!].map((m) => `${m.peer.topic}:${[...m.frame]}`).sort();
      expect(got).toEqual(['dev/os/sensors/42:42,1', 'dev/os/sensors/raw:9,9']);
    } finally {
      await plain.endAsync();
      await Promise.all([rx.destroy(), tx.destroy()]);
    }
  });

  it('MQTT 3.1.1 (protocolVersion 4) works too', async () => {
    const rx = createMqttTransport({ url: broker.url, protocolVersion: 4, subscribe: ['v4/#'] });
    const tx = createMqttTransport({ url: broker.url, protocolVersion: 4, subscribe: false, publishTopic: 'v4/x', qos: 1 });
    await rx.start();
    await tx.start();
    try {
      await tx.send(new Uint8Array([4]));
      expect([...(await rx.frames().next()).value!.frame]).toEqual([4]);
    } finally {
      await Promise.all([rx.destroy(), tx.destroy()]);
    }
  });

  it('reconnects after a broker restart and restores its subscriptions (clean session: nothing kept by the broker)', async () => {
    const rx = createMqttTransport({ url: broker.url, subscribe: ['re/#'], reconnectPeriodMs: 100 });
    const events: string[] = [];
    rx.on('connected', () => events.push('connected'));
    rx.on('disconnected', () => events.push('disconnected'));
    rx.on('reconnecting', () => events.push('reconnecting'));
    await rx.start();
    try {
      await broker.restart();
      const deadline = Date.now() + 10_000;
      while (events.filter((e) => e === 'connected').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(events.slice(0, 3)).toEqual(['connected', 'disconnected', 'reconnecting']);
      expect(events.filter((e) => e === 'connected').length).toBe(2);
      const tx = createMqttTransport({ url: broker.url, subscribe: false, publishTopic: 're/x', qos: 1 });
      await tx.start();
      // mqtt.js resubscribes right after the CONNACK: allow it the round trip.
      await new Promise((r) => setTimeout(r, 200));
      await tx.send(new Uint8Array([7]));
      expect([...(await rx.frames().next()).value!.frame]).toEqual([7]);
      await tx.destroy();
    } finally {
      await rx.destroy();
    }
  });

  it('retries with exponential back-off while the broker is down, then restores its subscriptions', async () => {
    const rx = createMqttTransport({ url: broker.url, subscribe: ['backoff/#'], reconnect: { initialDelayMs: 40, maxDelayMs: 300, factor: 2, jitter: 0 } });
    const delays: number[] = [];
    let connected = 0;
    rx.on('reconnecting', (e) => delays.push(e.delayMs));
    rx.on('connected', () => connected++);
    await rx.start();
    try {
      await broker.stop();
      // Attempts fail while the broker is away: 40, 80, 160, then 300 (the cap) each time.
      const deadline = Date.now() + 10_000;
      while (delays.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await broker.resume();
      while (connected < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(delays.slice(0, 6)).toEqual([40, 80, 160, 300, 300, 300]);
      expect(connected).toBe(2);
      const tx = createMqttTransport({ url: broker.url, subscribe: false, publishTopic: 'backoff/x', qos: 1 });
      await tx.start();
      // mqtt.js resubscribes right after the CONNACK: allow it the round trip.
      await new Promise((r) => setTimeout(r, 200));
      await tx.send(new Uint8Array([9]));
      expect([...(await rx.frames().next()).value!.frame]).toEqual([9]);
      await tx.destroy();
    } finally {
      await broker.resume();
      await rx.destroy();
    }
  });

  it('draws each reconnection delay within its jitter and refuses a bad back-off naming the field', async () => {
    const { backoffDelay, backoffOf } = await import('../src/index.js');
    const b = backoffOf({ initialDelayMs: 1000, maxDelayMs: 8000, factor: 3, jitter: 0.5 }, 'mqtt');
    if (b === false) throw new Error('expected a back-off');
    for (const [attempt, full] of [[1, 1000], [2, 3000], [3, 8000]] as const) {
      expect(backoffDelay(b, attempt, () => 0)).toBe(full);
      expect(backoffDelay(b, attempt, () => 0.999_999)).toBe(Math.round(full * 0.5));
    }
    for (const [reconnect, option] of [
      [{ jitter: 2 }, 'reconnect.jitter'],
      [{ factor: 0.5 }, 'reconnect.factor'],
      [{ initialDelayMs: 0 }, 'reconnect.initialDelayMs'],
    ] as const) {
      let error: unknown;
      try {
        createMqttTransport({ url: broker.url, reconnect });
      } catch (e) {
        error = e;
      }
      expect(isTransportError(error, 'ERR_TRANSPORT_OPTION'), option).toBe(true);
      expect((error as { option: string }).option).toBe(option);
    }
  });

  it('drops received messages over maxFrameBytes (counted, reported), ignores empty ones, keeps serving', async () => {
    const rx = createMqttTransport({ url: broker.url, subscribe: ['big/#'], maxFrameBytes: 1024 });
    const dropped: TransportEvent<'dropped'>[] = [];
    rx.on('dropped', (e) => dropped.push(e));
    await rx.start();
    const plain = await mqtt.connectAsync(broker.url);
    try {
      await plain.publishAsync('big/a', Buffer.alloc(1025), { qos: 1 });
      await plain.publishAsync('big/a', Buffer.alloc(0), { qos: 1 });
      await plain.publishAsync('big/a', Buffer.from([1]), { qos: 1 });
      expect([...(await rx.frames().next()).value!.frame]).toEqual([1]);
      expect(rx.stats().dropped.oversize).toBe(1);
      expect(rx.stats().framesIn).toBe(1);
      await new Promise((r) => setTimeout(r, 20));
      expect(dropped.map((d) => `${d.reason}:${d.count}:${d.peer?.topic}`)).toEqual(['oversize:1:big/a']);
    } finally {
      await plain.endAsync();
      await rx.destroy();
    }
  });

  it('refuses wildcard destinations and bad options with typed errors naming the field', async () => {
    const tx = createMqttTransport({ url: broker.url, subscribe: false });
    await tx.start();
    try {
      const e = await tx.send(new Uint8Array([1]), { topic: 'os/+/raw' }).catch((x: unknown) => x);
      expect(isTransportError(e, 'ERR_TRANSPORT_PEER')).toBe(true);
    } finally {
      await tx.destroy();
    }
    for (const [options, field] of [
      [{ url: 'http://x' }, 'url'],
      [{ qos: 2 }, 'qos'],
      [{ protocolVersion: 3 }, 'protocolVersion'],
      [{ clean: false }, 'clientId'],
      [{ publishTopic: 'a/#' }, 'publishTopic'],
      [{ subscribe: [''] }, 'subscribe[0]'],
      [{ keepaliveSeconds: 70000 }, 'keepaliveSeconds'],
    ] as const) {
      let error: unknown;
      try {
        createMqttTransport(options as never);
      } catch (x) {
        error = x;
      }
      expect(isTransportError(error, 'ERR_TRANSPORT_OPTION'), JSON.stringify(options)).toBe(true);
      expect((error as { option: string }).option).toBe(field);
    }
  });

  it('a broker that is not there: start() rejects with a typed error within connectTimeoutMs, and ends stopped', async () => {
    const t = createMqttTransport({ url: 'mqtt://127.0.0.1:1', connectTimeoutMs: 500, reconnectPeriodMs: 100 });
    const e = await t.start().catch((x: unknown) => x);
    expect(isTransportError(e)).toBe(true);
    expect(['ERR_TRANSPORT_IO', 'ERR_TRANSPORT_TIMEOUT']).toContain((e as { code: string }).code);
    expect(t.state).toBe('stopped');
  });
});
