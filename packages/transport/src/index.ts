export * from './base.js';
export * from './errors.js';
export * from './framing.js';
export * from './in-process.js';
export * from './manager.js';
export * from './queue.js';
export * from './registry.js';
export type * from './types.js';
// The one way to test errors of any @opensynaptic package (bundled per package: not `instanceof`).
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
