/**
 * The requester inside the node and its typed events: a device with no id asks a server node
 * for one over a pair of in-memory links, gets it, syncs its time, pings, streams readings and
 * goes secure, with each state change reported once.
 */
import { IdAllocator } from '@opensynaptic/handshake';
import { describe, expect, it } from 'vitest';
import { isOpenSynapticError, NoSendError, OpenSynaptic, type OpenSynapticEvents, type ReceiveResult } from '../src/index.js';

function link() {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const server = new OpenSynaptic({ assignedId: 9999, deviceId: 'SERVER', clock, handshake: { allocator: new IdAllocator({ clockMs: clock }) } });
  const results: ReceiveResult[] = [];
  // The device's packets reach the server, whose answers come back on a later turn, as over a network.
  const device: OpenSynaptic = new OpenSynaptic({
    deviceId: 'DEV',
    clock,
    send: (packet) => {
      const out = server.receive(packet, '10.0.0.7:5000');
      results.push(out);
      if (out.response) {
        const answer = out.response;
        queueMicrotask(() => device.receive(answer));
      }
    },
  });
  return { server, device, results, tick: (ms: number) => (now += ms) };
}

function record(node: OpenSynaptic) {
  const seen: { name: keyof OpenSynapticEvents; event: unknown }[] = [];
  for (const name of ['id-assigned', 'session-secure', 'template-learned', 'time-synced'] as const) {
    node.on(name, (event) => seen.push({ name, event }));
  }
  return seen;
}

describe('node requests and events', () => {
  it('requestId gets an id from the server and sets it before the next transmit; events come once each', async () => {
    const { server, device, tick } = link();
    const deviceEvents = record(device);
    const serverEvents = record(server);
    expect(device.idMissing).toBe(true);
    const aid = await device.requestId({ meta: { name: 'DEV' } });
    expect(aid).toBeGreaterThan(0);
    expect(device.assignedId).toBe(aid);
    expect(deviceEvents).toEqual([{ name: 'id-assigned', event: { aid, previous: 0, serverTimeMs: expect.any(Number) } }]);

    const sync = await device.syncTime();
    expect(sync.serverTimeMs).toBe(1_700_000_000_000);
    expect(sync.rttMs).toBeGreaterThanOrEqual(0);
    // The same clock on both sides: no offset beyond the round trip.
    expect(Math.abs(sync.offsetMs)).toBeLessThanOrEqual(sync.rttMs);
    expect(deviceEvents.at(-1)).toEqual({ name: 'time-synced', event: sync });
    expect(await device.ping()).toBeGreaterThanOrEqual(0);

    // Readings: the first FULL teaches the server the template and starts the secure session.
    for (let i = 0; i < 6; i++) {
      tick(1000);
      const { frame } = device.transmit([['T1', 'OK', 20 + i, 'Cel']]);
      const out = server.receive(frame);
      expect(out.type).toBe('data');
      if (out.response) device.receive(out.response);
    }
    expect(serverEvents.filter((e) => e.name === 'template-learned')).toEqual([{ name: 'template-learned', event: { aid, tid: 1 } }]);
    expect(deviceEvents.filter((e) => e.name === 'session-secure')).toEqual([{ name: 'session-secure', event: { aid, role: 'sender' } }]);
    expect(serverEvents.filter((e) => e.name === 'session-secure')).toEqual([{ name: 'session-secure', event: { aid, role: 'receiver' } }]);
  });

  it('an ID_ASSIGN nobody asked for changes nothing', async () => {
    const a = link();
    const b = link();
    await a.device.requestId();
    // b's device never asked: the same answer packet is not a reason to take an id.
    const assign = a.results.find((r) => r.type === 'control' && r.result.status === 'ASSIGNED')!.response!;
    const seen = record(b.device);
    const out = b.device.receive(assign);
    expect(out.type).toBe('control');
    expect(b.device.idMissing).toBe(true);
    expect(seen).toEqual([]);
  });

  it('fails a request with NoSendError when the node has nowhere to send it', async () => {
    const node = new OpenSynaptic({ clock: () => 1_700_000_000_000 });
    const error = await node.requestId().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoSendError);
    expect(isOpenSynapticError(error, 'ERR_NODE_NO_SEND')).toBe(true);
  });

  it('receive never throws: junk, truncated and unknown packets come back as typed errors', () => {
    const node = new OpenSynaptic({ assignedId: 1, clock: () => 1_700_000_000_000 });
    for (const packet of [new Uint8Array(0), Uint8Array.of(63, 1, 0), Uint8Array.of(13, 0), Uint8Array.of(0xee, 1, 2, 3), Uint8Array.of(170, 1, 0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)]) {
      const out = node.receive(packet);
      expect(out.type, String(packet)).toBe('error');
      if (out.type === 'error') expect(isOpenSynapticError(out.error), `${String(packet)}: ${out.error.message}`).toBe(true);
    }
    expect(node.receive('junk' as unknown as Uint8Array).type).toBe('error');
  });

  it('a listener that throws does not break receive; its error is reported, not lost', async () => {
    const { server, device } = link();
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      device.on('id-assigned', () => {
        throw new Error('listener bug');
      });
      const aid = await device.requestId();
      await new Promise((r) => setTimeout(r, 0));
      expect(device.assignedId).toBe(aid);
      expect(errors.map((e) => (e as Error).message)).toEqual(['listener bug']);
      expect(server.protocol.allocator).not.toBeNull();
    } finally {
      process.off('uncaughtException', onError);
    }
  });
});
