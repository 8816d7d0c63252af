/**
 * The OpenSynaptic server: transports in, the node's receive path, responses back, decoded
 * readings out to an async iterator and to sinks with backpressure; services by name (storage
 * sink, port forwarder, yours); the validated configuration; the device-side helpers.
 */
export * from './config.js';
export * from './device.js';
export * from './errors.js';
export * from './from-config.js';
export * from './partition.js';
export * from './server.js';
export * from './services.js';
export { nodeX25519 } from './x25519-node.js';
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
