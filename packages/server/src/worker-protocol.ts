/** What `WorkerIngest` and its worker threads tell each other (messages are rare: frames go through the ring). */
import type { ReadingFrame } from '@opensynaptic/store';

/** The ring's stat slots each worker fills (Float64, written by the worker only). */
export const STAT = {
  /** Records taken off the ring and given to the node. */
  frames: 0,
  /** Data frames decoded into readings. */
  readings: 1,
  /** Frames the node refused (CRC, a DIFF of a device whose FULL this worker never saw...). */
  errors: 2,
  ignored: 3,
  /** Responses sent back through the main thread. */
  responses: 4,
  /** Readings the sink accepted (`write`), and those it reported committed. */
  written: 5,
  committed: 6,
  /** Readings the sink refused (counted, reported with a `sink-error` message). */
  rejected: 7,
  /** Forwarded batches the main thread has handled: the one slot the main thread writes (the worker waits while 64 are outstanding). */
  forwardDone: 15,
} as const;

/** Forwarded batches a worker may have in flight to the main thread before it waits (bounded memory). */
export const MAX_FORWARD_BATCHES = 64;

/** Where a worker's sink comes from: a module it imports and the function it calls with `options` (structured-cloneable). */
export interface WorkerSinkSpec {
  /** A package name or file URL the worker can import (e.g. `@opensynaptic/store-sqlite`). */
  module: string;
  /** The export that opens the sink (default `default`), e.g. `openSqliteReadingsSink`. */
  export?: string;
  options?: Record<string, unknown>;
}

export interface WorkerData {
  index: number;
  ring: SharedArrayBuffer;
  node: Record<string, unknown>;
  sink: WorkerSinkSpec | null;
  forward: boolean;
  sinkBatch: number;
}

/** A reading as a worker hands it over: the sink's frame, and the indexes the main thread turns back into `via` and `peer`. */
export interface WorkerReading extends ReadingFrame {
  secure: boolean;
  transport: number;
  peerId: number;
  geohash?: string;
}

export type WorkerToMain =
  | { type: 'ready' }
  | { type: 'failed'; message: string; code: string }
  | { type: 'respond'; peerId: number; transport: number; bytes: Uint8Array }
  | { type: 'readings'; readings: WorkerReading[] }
  | { type: 'sink-error'; message: string }
  /** Aids whose frames the worker decoded since its last report: the main thread renews their id leases. */
  | { type: 'touch'; aids: number[] }
  | { type: 'status'; id: number; elu: number; errors: Record<string, number>; sink: { committed: number; lost: number; buffered: number } | null }
  | { type: 'stopped' };

export type MainToWorker = { type: 'stop' } | { type: 'status'; id: number };
