/**
 * OpenSynaptic node core. Today: the UCUM standardizer and its unit library (`./standardize`).
 */
export * from './standardize/index.js';
export { IdNotAssignedError, OpenSynaptic, type OpenSynapticOptions, type TransmitOptions, type TransmitResult, UNASSIGNED_ID } from './node.js';
export { backendReport, type BackendReport } from './backends.js';
export { type BackendInfo, isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
