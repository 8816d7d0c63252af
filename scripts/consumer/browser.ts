/** Browser entry of the consumer check: runs the round trip and leaves its outcome on the page. */
import { roundTrip } from './round-trip.js';

const g = globalThis as { consumerResult?: unknown; process?: unknown };
try {
  g.consumerResult = { ok: true, hasProcess: typeof g.process !== 'undefined', ...roundTrip() };
} catch (e) {
  g.consumerResult = { ok: false, error: String((e as Error)?.stack ?? e) };
}
