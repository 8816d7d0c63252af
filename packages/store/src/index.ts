export * from './contract.js';
export * from './errors.js';
export * from './file-store.js';
export * from './memory-store.js';
