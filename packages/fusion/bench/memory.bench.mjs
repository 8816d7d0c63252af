// Bytes per device held by a receiver that learned one 4-sensor template from each of 100,000
// devices (run with --expose-gc; `pnpm bench` does). STORE=memory measures them kept in a MemoryStore.
import { compressFact } from '@opensynaptic/packet/body';
import { encodeFrame } from '@opensynaptic/packet';
import { MemoryStore } from '@opensynaptic/store';
import { OSVisualFusionEngine, RegistryCache } from '../dist/index.js';

const DEVICES = Number(process.env.DEVICES ?? 100_000);
const gc = globalThis.gc;
if (!gc) throw new Error('run with node --expose-gc');
const UNITS = ['temperature', 'pressure', 'humidity', 'length'];

// Frames built up front so only the receiver's state is measured.
const frames = [];
for (let d = 0; d < DEVICES; d++) {
  const f = { id: `DEV${d}`, s: 'ONLINE', t: 1_700_000_000_000 };
  for (let i = 1; i <= 4; i++) Object.assign(f, { [`s${i}_id`]: `S${i}`, [`s${i}_s`]: 'OK', [`s${i}_u`]: UNITS[i - 1], [`s${i}_v`]: 20 + ((d * 7 + i) % 50) / 4 });
  const body = new TextEncoder().encode(`${d + 1};${compressFact(f)}`);
  frames.push(encodeFrame({ cmd: 63, routes: d + 1, tid: 1, timestamp: 1_700_000_000_000, body }));
}

function heap() {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

// Default: the cache holds every registry itself (no store behind it, the default). STORE=memory:
// a 1024-entry cache in front of a memory store of the contract, which keeps what leaves the cache
// as a record (a plain copy, as every store of the contract keeps it).
const withStore = process.env.STORE === 'memory';
const store = withStore ? new MemoryStore({ kinds: ['templates'] }) : null;
const registry = withStore ? new RegistryCache({ store, maxEntries: 1024, clock: () => 1_700_000_000_000 }) : new RegistryCache({ clock: () => 1_700_000_000_000 });
await registry.preload([]);
const rx = new OSVisualFusionEngine({ localId: 1, registry, clock: () => 1_700_000_000_000 });
const before = heap();
for (const frame of frames) rx.decompress(frame);
await registry.flush();
const after = heap();
const where = withStore ? 'as records of a MemoryStore behind a 1024-entry cache' : 'in the cache (no store)';
console.log(`${DEVICES} devices, one 4-sensor template each, ${where}: ${((after - before) / DEVICES).toFixed(0)} bytes per device (heap ${(before / 2 ** 20).toFixed(1)} → ${(after / 2 ** 20).toFixed(1)} MiB; target ≤ 1024)`);
const held = withStore ? store.size('templates') : registry.size;
if (held !== DEVICES) throw new Error(`${held} registries held, expected ${DEVICES}`);
