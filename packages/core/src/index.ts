/**
 * OpenSynaptic node core. Today: the UCUM standardizer and its unit library (`./standardize`).
 */
export * from './standardize/index.js';
