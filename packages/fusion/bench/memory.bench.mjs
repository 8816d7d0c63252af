// Bytes per device held by a receiver that learned one 4-sensor template from each of 100,000
// devices (run with --expose-gc; `pnpm bench` does).
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

// The cache in front of a memory store of the contract: what leaves the cache is kept as records there.
const store = new MemoryStore({ kinds: ['templates'] });
const registry = new RegistryCache({ store, maxEntries: 1024, clock: () => 1_700_000_000_000 });
await registry.preload([]);
const rx = new OSVisualFusionEngine({ localId: 1, registry, clock: () => 1_700_000_000_000 });
const before = heap();
for (const frame of frames) rx.decompress(frame);
const after = heap();
const perDevice = (after - before) / DEVICES;
console.log(`${DEVICES} devices, one 4-sensor template each: ${perDevice.toFixed(0)} bytes per device (heap ${(before / 2 ** 20).toFixed(1)} → ${(after / 2 ** 20).toFixed(1)} MiB; target ≤ 1024)`);
await registry.flush();
if (store.size('templates') !== DEVICES) throw new Error(`store holds ${store.size('templates')} registries, expected ${DEVICES}`);
