/**
 * The ingest on worker threads (`@opensynaptic/server/workers`): `WorkerIngest` routes each
 * device's frames to the worker thread owning its partition through a `FrameRing` (a
 * SharedArrayBuffer ring per worker), each worker decoding and storing its partition.
 */
export * from './frame-ring.js';
export * from './worker-ingest.js';
