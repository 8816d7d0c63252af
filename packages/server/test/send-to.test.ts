import { HANDSHAKE_ACK, PONG, TIME_RESPONSE } from '@opensynaptic/cmd';
import { buildIdAssign, buildPing, buildTimeRequest } from '@opensynaptic/handshake';
import { isOpenSynapticError } from '@opensynaptic/internal';
import type { Transport } from '@opensynaptic/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureId } from '../src/device.js';
import { OpenSynapticServer, type ServerControl, type ServerReading, type Service } from '../src/index.js';
import { type Device, device, portOf, until } from './helpers.js';

/** A service that records the control packets the server handled. */
class ControlWatch implements Service {
  readonly name = 'watch';
  readonly seen: ServerControl[] = [];
  onControl(control: ServerControl): void {
    this.seen.push(control);
  }
}

describe('sendTo and onControl: packets to a device through the transport it was heard on', () => {
  let server: OpenSynapticServer;
  let devices: Device[] = [];
  afterEach(async () => {
    for (const d of devices) {
      d.node.connect(null);
      await d.node.close().catch(() => undefined);
      await d.transport.stop().catch(() => undefined);
    }
    devices = [];
    await server?.destroy();
  });

  async function setup(options: { maxDevicePeers?: number } = {}) {
    const watch = new ControlWatch();
    server = new OpenSynapticServer({ transports: [{ name: 'udp', medium: 'udp', options: { host: '127.0.0.1', port: 0 } }], services: [watch], ...options });
    const readings: ServerReading[] = [];
    await server.start();
    void (async () => {
      for await (const r of server.readings()) readings.push(r);
    })();
    const port = portOf(server.transport('udp') as Transport);
    return { watch, readings, port };
  }

  it('sends PING, TIME_REQUEST and ID_ASSIGN to a device and the services see its answers', async () => {
    const { watch, readings, port } = await setup();
    const d = await device('NODE_C', port);
    devices.push(d);
    const aid = await ensureId(d.node, { timeoutMs: 2000 });
    // Not heard yet: the ID_REQUEST carries no aid.
    await expect(server.sendTo(aid, buildPing(1))).rejects.toMatchObject({ code: 'ERR_SERVER_UNKNOWN_DEVICE' });
    await d.transport.send(d.node.transmit([['T1', 'OK', 21.5, 'Cel']], { geohash: 'u4pruydqqvj' }).frame);
    await until(() => readings.length === 1, 'the reading');
    expect(readings[0]?.geohash).toBe('u4pruydqqvj');
    const at = server.peerOf(aid);
    expect(at?.via).toBe('udp');
    expect(at?.peer.port).toBe(portOf(d.transport));

    const sent = await server.sendTo(aid, buildPing(4242));
    expect(sent.peer.key).toBe(at?.peer.key);
    await until(() => watch.seen.some((c) => c.cmd === PONG), 'the PONG');
    const pong = watch.seen.find((c) => c.cmd === PONG) as ServerControl;
    expect(pong.result).toEqual({ status: 'PONG', seq: 4242 });
    expect(pong.peer.key).toBe(at?.peer.key);
    expect(pong.via).toBe('udp');

    await server.sendTo(aid, buildTimeRequest(7));
    await until(() => watch.seen.some((c) => c.cmd === TIME_RESPONSE), 'the TIME_RESPONSE');
    expect(watch.seen.find((c) => c.cmd === TIME_RESPONSE)?.result).toMatchObject({ status: 'TIME_RESPONSE', seq: 7 });

    await server.sendTo(aid, buildIdAssign(9, 1234));
    // The device acknowledges it (the ACK of ensureId's own ID_ASSIGN came before).
    await until(() => watch.seen.some((c) => c.cmd === HANDSHAKE_ACK && (c.result as { seq?: number }).seq === 9), 'the ACK');
    expect(watch.seen.filter((c) => c.cmd === HANDSHAKE_ACK).at(-1)?.peer.key).toBe(at?.peer.key);
    // A DIFF of the same device carries its template's geohash.
    await d.transport.send(d.node.transmit([['T1', 'OK', 22.5, 'Cel']], { geohash: 'u4pruydqqvj' }).frame);
    await until(() => readings.length === 2, 'the second reading');
    expect(readings[1]?.strategy).not.toBe('FULL');
    expect(readings[1]?.geohash).toBe('u4pruydqqvj');
  });

  it('refuses bad input with typed errors', async () => {
    const { readings, port } = await setup();
    const d = await device('NODE_D', port);
    devices.push(d);
    const aid = await ensureId(d.node, { timeoutMs: 2000 });
    await d.transport.send(d.node.transmit([['T1', 'OK', 1, 'Cel']]).frame);
    await until(() => readings.length === 1, 'the reading');
    expect(readings[0]?.geohash).toBeUndefined();
    const code = async (p: Promise<unknown>) => p.then(() => 'resolved', (e: unknown) => (isOpenSynapticError(e) ? e.code : String(e)));
    expect(await code(server.sendTo(aid, new Uint8Array(0)))).toBe('ERR_SERVER_PACKET');
    expect(await code(server.sendTo(aid, 'ff' as unknown as Uint8Array))).toBe('ERR_SERVER_PACKET');
    expect(await code(server.sendTo(-1, buildPing(1)))).toBe('ERR_SERVER_PACKET');
    expect(await code(server.sendTo(2 ** 32, buildPing(1)))).toBe('ERR_SERVER_PACKET');
    expect(await code(server.sendTo(aid, new Uint8Array(65_508)))).toBe('ERR_SERVER_PACKET_SIZE');
    expect(await code(server.sendTo(aid + 1, buildPing(1)))).toBe('ERR_SERVER_UNKNOWN_DEVICE');
    await server.transport('udp')?.stop();
    expect(await code(server.sendTo(aid, buildPing(1)))).toBe('ERR_SERVER_TRANSPORT');
    await server.stop().catch(() => undefined);
    expect(await code(server.sendTo(aid, buildPing(1)))).toBe('ERR_SERVER_STATE');
  });

  it('remembers at most maxDevicePeers devices, forgetting the oldest', async () => {
    const { readings, port } = await setup({ maxDevicePeers: 1 });
    const a = await device('NODE_E', port);
    const b = await device('NODE_F', port);
    devices.push(a, b);
    const aidA = await ensureId(a.node, { timeoutMs: 2000 });
    const aidB = await ensureId(b.node, { timeoutMs: 2000 });
    await a.transport.send(a.node.transmit([['T1', 'OK', 1, 'Cel']]).frame);
    await until(() => readings.length === 1, 'A heard');
    await b.transport.send(b.node.transmit([['T1', 'OK', 1, 'Cel']]).frame);
    await until(() => readings.length === 2, 'B heard');
    expect(server.peerOf(aidA)).toBeUndefined();
    expect(server.peerOf(aidB)?.peer.port).toBe(portOf(b.transport));
    expect(() => new OpenSynapticServer({ transports: [{ medium: 'udp' }], maxDevicePeers: 0 })).toThrow(/maxDevicePeers/);
  });
});
