/**
 * The device side over a transport: `linkNode` connects an `OpenSynaptic` node to a transport
 * (its own requests go out to the server, every inbound packet goes to `receive`, replies go back
 * to whoever sent the packet), and `ensureId` / `ensureTime` get an id and the time from the
 * server with a timeout per attempt and a bounded number of retries. Separate entry
 * (`@opensynaptic/server/device`): a device loads none of the server.
 */
import type { OpenSynaptic, ReceiveResult, TimeSync } from '@opensynaptic/core';
import type { Inbound, PeerLike, Transport } from '@opensynaptic/transport';
import { ServerError } from './errors.js';

export interface LinkOptions {
  /** Where the node's own requests go (default: the transport's default peer). */
  server?: PeerLike;
  /** Every packet's result, after the node read it (to watch answers, count, log). */
  onReceive?(result: ReceiveResult, inbound: Inbound): void;
}

export interface NodeLink {
  /** Resolves when the transport's inbound iterator ended (the transport stopped). */
  readonly done: Promise<void>;
  /** Disconnects the node's requests from the transport (the transport keeps running). */
  unlink(): void;
}

/** Connects `node` to `transport` (started by the caller) both ways. */
export function linkNode(node: OpenSynaptic, transport: Transport, options: LinkOptions = {}): NodeLink {
  const server = options.server;
  node.connect((packet) => transport.send(packet, server));
  const done = (async () => {
    try {
      for await (const inbound of transport) {
        const out = node.receive(inbound.frame);
        if (out.response !== null) transport.send(out.response, inbound.peer).catch(() => undefined); // the peer resends its request
        options.onReceive?.(out, inbound);
      }
    } catch {
      // a destroyed transport ends the link
    }
  })();
  return { done, unlink: () => node.connect(null) };
}

export interface EnsureOptions {
  /** Timeout of each attempt, ms (default 2000; the node resends within it). */
  timeoutMs?: number;
  /** Attempts after the first (default 3). */
  retries?: number;
  /** Pause between attempts, ms (default 250, doubled each time, at most 5000). */
  backoffMs?: number;
  signal?: AbortSignal;
  /** For `ensureId`: meta sent with the request (the server keys leases by it, e.g. a MAC or serial). */
  meta?: Parameters<OpenSynaptic['requestId']>[0] extends infer O ? (O extends { meta?: infer M } ? M : never) : never;
}

const UNASSIGNED = 4294967295;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

async function withRetries<T>(what: string, options: EnsureOptions, attempt: (timeoutMs: number) => Promise<T>): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const retries = options.retries ?? 3;
  let backoff = options.backoffMs ?? 250;
  let last: unknown;
  for (let i = 0; i <= retries; i++) {
    if (options.signal?.aborted) throw options.signal.reason;
    try {
      return await attempt(timeoutMs);
    } catch (e) {
      if (options.signal?.aborted) throw e;
      last = e;
    }
    if (i < retries) {
      await sleep(backoff, options.signal);
      backoff = Math.min(backoff * 2, 5000);
    }
  }
  throw new ServerError('ERR_SERVER_TIMEOUT', `${what}: no answer after ${retries + 1} attempt(s) of ${timeoutMs} ms (${last instanceof Error ? last.message : String(last)})`, { cause: last });
}

/**
 * Returns the node's id, asking the server for one (ID_REQUEST → ID_ASSIGN) when it has none
 * (0 or 4294967295). Rejects with `ERR_SERVER_TIMEOUT` after `retries + 1` attempts.
 */
export async function ensureId(node: OpenSynaptic, options: EnsureOptions = {}): Promise<number> {
  if (node.assignedId !== 0 && node.assignedId !== UNASSIGNED) return node.assignedId;
  return withRetries('ensureId', options, (timeoutMs) =>
    node.requestId({ timeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }), ...(options.meta === undefined ? {} : { meta: options.meta }) }),
  );
}

/** Synchronises the node's time with the server (TIME_REQUEST → TIME_RESPONSE), with retries. */
export function ensureTime(node: OpenSynaptic, options: EnsureOptions = {}): Promise<TimeSync> {
  return withRetries('ensureTime', options, (timeoutMs) => node.syncTime({ timeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }) }));
}
