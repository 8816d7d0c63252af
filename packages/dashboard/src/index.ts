/**
 * The OpenSynaptic live dashboard: a service of `@opensynaptic/server` that serves a JSON API
 * (devices, history, CSV, health), a live feed over WebSocket and a prebuilt page.
 */
export * from './console.js';
export * from './dashboard.js';
export { type DecodedFields, type DecodedSensor, FrameDecoder } from './decoded.js';
export { decodeGeohash, type GeoPosition, MAX_GEOHASH_LENGTH } from './geohash.js';
export * from './devices.js';
export * from './errors.js';
export { FrameLog, type InspectedFrame, inspectFrame, KeptFrame } from './frames.js';
export { CSV_HEADER, readingQueryOf } from './query.js';
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
export * from './alerts.js';
export { AlertHttpError, listAlerts } from './alerts-http.js';
export { type GaugeRange, type GaugeRanges, gaugeRangesOf, NATURAL_RANGES } from './gauge-ranges.js';
export { type HealthRates, RateMeter } from './rates.js';
