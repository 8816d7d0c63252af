/** Browser entry of the consumer check: runs the round trip and leaves its outcome on the page. */
import { createInProcessPair, drivers } from '@opensynaptic/transport';
import { createWebSocketTransport } from '@opensynaptic/transport/websocket';
import { roundTrip } from './round-trip.js';

const g = globalThis as { consumerResult?: unknown; process?: unknown };
try {
  // The transports' browser-safe parts are bundled too (the WebSocket client, the in-process pair, the registry).
  const transport = [typeof createWebSocketTransport, typeof createInProcessPair(), drivers.names().length];
  g.consumerResult = { ok: true, hasProcess: typeof g.process !== 'undefined', transport, ...roundTrip() };
} catch (e) {
  g.consumerResult = { ok: false, error: String((e as Error)?.stack ?? e) };
}
