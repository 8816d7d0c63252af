// Through the package's own name, as the drivers reach them: one copy of the shared classes.
export * from '@opensynaptic/transport/core';
export * from './in-process.js';
export * from './manager.js';
export * from './registry.js';
// The one way to test errors of any @opensynaptic package (bundled per package: not `instanceof`).
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
