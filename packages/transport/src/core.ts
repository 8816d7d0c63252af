// The shared classes of every transport, without the driver registry: the drivers import them
// from here (`@opensynaptic/transport/core`), so a bundle of one driver (the dashboard's page
// takes only the WebSocket client) carries no lazy chunks of the others. The package's main
// entry re-exports all of it.
export * from './base.js';
export * from './errors.js';
export * from './framing.js';
export * from './queue.js';
export type * from './types.js';
