import { OpenSynaptic } from '@opensynaptic/core';
import type { ReadingFrame, ReadingsSink, ReadingsSinkStatus } from '@opensynaptic/store';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { linkNode, type NodeLink } from '../src/device.js';

export const portOf = (t: Transport): number => (t as unknown as { address: { port: number } }).address.port;

export async function udp(options: object = {}): Promise<Transport> {
  const t = await createTransport('udp', { host: '127.0.0.1', port: 0, ...options });
  await t.start();
  return t;
}

export interface Device {
  node: OpenSynaptic;
  transport: Transport;
  link: NodeLink;
}

/** A device node with no id, on its own UDP socket, linked to the server at `serverPort`. */
export async function device(name: string, serverPort: number): Promise<Device> {
  const transport = await udp({ remote: { address: '127.0.0.1', port: serverPort } });
  const node = new OpenSynaptic({ deviceId: name, requestTimeoutMs: 2000 });
  const link = linkNode(node, transport);
  return { node, transport, link };
}

export const tick = (ms = 1) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` holds, polling (bounded: fails the test rather than hanging). */
export { until } from '@opensynaptic/config/until';

/**
 * A sink that refuses everything while `blocked` (tryWrite false, write waits), then stores in
 * memory: the slow database of the backpressure tests.
 */
export class GateSink implements ReadingsSink {
  readonly durability = 'none' as const;
  readonly frames: ReadingFrame[] = [];
  blocked = true;
  writesWaiting = 0;
  #waiters: (() => void)[] = [];

  open(): void {
    this.blocked = false;
    for (const w of this.#waiters.splice(0)) w();
  }

  async write(frames: readonly ReadingFrame[]): Promise<number> {
    while (this.blocked) {
      this.writesWaiting++;
      await new Promise<void>((r) => this.#waiters.push(r));
      this.writesWaiting--;
    }
    this.frames.push(...frames);
    return this.frames.length;
  }

  tryWrite(frames: readonly ReadingFrame[]): number | false {
    if (this.blocked) return false;
    this.frames.push(...frames);
    return this.frames.length;
  }

  async flush(): Promise<void> {}
  async query(): Promise<never[]> {
    return [];
  }
  async devices(): Promise<never[]> {
    return [];
  }
  async status(): Promise<ReadingsSinkStatus> {
    const n = this.frames.length;
    return { backend: 'gate', location: 'memory', durability: 'none', stored: { readings: n, devices: 0, sizeBytes: 0, lastWriteMs: null }, buffered: 0, maxBuffered: 0, accepted: n, committed: n, lost: 0, batches: 0, failedAttempts: 0, lastError: null } as unknown as ReadingsSinkStatus;
  }
  async close(): Promise<void> {}
}
