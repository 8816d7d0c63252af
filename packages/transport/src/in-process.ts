import { closedError, onAbort, type Peer, PeerError, type PeerLike, positiveInt, TransportBase, type TransportOptions } from '@opensynaptic/transport/core';

export interface InProcessOptions extends TransportOptions {
  /** Largest frame (default 1 MiB). */
  maxFrameBytes?: number | undefined;
  /**
   * `true` (default): the receiver gets a copy, so the sender may reuse its buffer once `send`
   * resolves. `false`: the receiver gets the sender's own bytes (no copy; neither side may change them).
   */
  copy?: boolean | undefined;
}

export const DEFAULT_IN_PROCESS_MAX_FRAME_BYTES = 1024 * 1024;

interface Blocked {
  frame: Uint8Array;
  resolve: () => void;
  reject: (e: Error) => void;
  cleanup: () => void;
}

/**
 * One end of an in-process pair: what one end sends, the other receives, in order and without
 * loss. A full receiving queue makes the sender wait (backpressure), never drop.
 */
export class InProcessTransport extends TransportBase {
  readonly reliable = true;
  readonly peer: Peer;
  #other: InProcessTransport | undefined;
  readonly #copy: boolean;
  #blocked: Blocked[] = [];
  #pumping = false;

  constructor(name: string, options: InProcessOptions = {}) {
    super('inprocess', positiveInt('maxFrameBytes', options.maxFrameBytes, DEFAULT_IN_PROCESS_MAX_FRAME_BYTES, 'inprocess'), options);
    this.peer = { medium: 'inprocess', key: `inprocess:${name}` };
    this.#copy = options.copy ?? true;
  }

  /** @internal Links the two ends (done by `createInProcessPair`). */
  link(other: InProcessTransport): void {
    this.#other = other;
  }

  protected async open(): Promise<void> {
    if (this.#other?.accepting) {
      this.events.emit('connected', { peer: this.#other.peer });
      this.#other.events.emit('connected', { peer: this.peer });
    }
  }

  protected override connectionCount(): number {
    return this.#other?.accepting ? 1 : 0;
  }

  protected write(frame: Uint8Array, _to: PeerLike | undefined, signal: AbortSignal | undefined): Promise<void> {
    const other = this.#other;
    if (other === undefined || !other.accepting) return Promise.reject(new PeerError('the other end of the in-process pair is not running', { medium: this.medium, peer: other?.peer.key }));
    const bytes = this.#copy ? frame.slice() : frame;
    if (this.#blocked.length === 0 && !other.inbound.isFull) {
      other.deliver(bytes, this.peer, true);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry: Blocked = { frame: bytes, resolve, reject, cleanup: () => undefined };
      entry.cleanup = onAbort(signal, this.medium, 'send', (e) => {
        const i = this.#blocked.indexOf(entry);
        if (i >= 0) this.#blocked.splice(i, 1);
        reject(e);
      });
      this.#blocked.push(entry);
      this.#pump();
    });
  }

  #pump(): void {
    const other = this.#other;
    if (this.#pumping || other === undefined) return;
    while (this.#blocked.length > 0 && other.accepting && !other.inbound.isFull) {
      const b = this.#blocked.shift()!;
      b.cleanup();
      other.deliver(b.frame, this.peer, true);
      b.resolve();
    }
    if (this.#blocked.length === 0) return;
    if (!other.accepting) {
      this.#rejectBlocked(new PeerError('the other end of the in-process pair closed', { medium: this.medium, peer: other.peer.key }));
      return;
    }
    this.#pumping = true;
    void other.inbound.waitForSpace().then(() => {
      this.#pumping = false;
      this.#pump();
    });
  }

  #rejectBlocked(error: Error): void {
    for (const b of this.#blocked.splice(0)) {
      b.cleanup();
      b.reject(error);
    }
  }

  protected async close(_drain: boolean): Promise<void> {
    this.#rejectBlocked(closedError(this.medium, 'the transport closed before the other end took the frame'));
    const other = this.#other;
    if (other?.accepting) {
      other.events.emit('disconnected', { peer: this.peer });
      // The other end's senders waiting for room here learn that this end is gone.
      other.#pump();
    }
    this.inbound.end();
  }
}

/** Two linked in-process transports (not started): `a` sends to `b` and `b` to `a`. */
export function createInProcessPair(options: InProcessOptions = {}, optionsB: InProcessOptions = options): [InProcessTransport, InProcessTransport] {
  const a = new InProcessTransport('a', options);
  const b = new InProcessTransport('b', optionsB);
  a.link(b);
  b.link(a);
  return [a, b];
}
