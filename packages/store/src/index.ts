export * from './background-flush.js';
export * from './batched-store.js';
export * from './contract.js';
export * from './errors.js';
export * from './file-store.js';
export * from './memory-store.js';
export * from './packed.js';
export * from './readings.js';
// The one way to test errors of any @opensynaptic package (bundled per package: not `instanceof`).
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
