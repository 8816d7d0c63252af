// µs per ID_REQUEST from a new device with the allocator at its lease cap (65,536 leases held,
// none expired), against the same requests with 1,024 leases held below the cap. The rate limit
// is lifted so each request reaches the allocator; the last row keeps the default limit.
// Runs in a few seconds: node bench/lease-cap.bench.mjs (after the build).
import { MemoryStore } from '@opensynaptic/store';
import { buildIdRequest, IdAllocator, leaseSnapshotWrites, OSHandshakeManager } from '../dist/index.js';

const t = 1_700_000_000_000;
const clockMs = () => t;
const unlimited = { max: 1e9, windowMs: 60_000 };

function setup(held, maxLeases, newLeaseLimit) {
  const allocator = new IdAllocator({ clockMs, maxLeases, newLeaseLimit });
  const server = new OSHandshakeManager({ clockMs, allocator });
  for (let i = 0; i < held; i++) server.classifyAndDispatch(buildIdRequest(i & 0xffff, { device_id: `held-${i}` }));
  if (allocator.size !== held) throw new Error(`${allocator.size} leases held, ${held} wanted`);
  return server;
}

function usPerRequest(server, n) {
  const requests = Array.from({ length: n }, (_, i) => buildIdRequest(i & 0xffff, { device_id: `new-${i}-${Math.random()}` }));
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (const r of requests) sink ^= server.classifyAndDispatch(r).response.length;
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink < 0) console.log(sink);
  return ns / n / 1000;
}

const rows = [];
const below = setup(1024, 65536, unlimited);
usPerRequest(below, 2000); // warm-up
rows.push({ case: '1,024 leases held (below the cap): new lease', 'µs per ID_REQUEST': usPerRequest(below, 20_000).toFixed(2) });
const cap = setup(65536, 65536, unlimited);
usPerRequest(cap, 200);
rows.push({ case: '65,536 leases held (at the cap): EXHAUSTED', 'µs per ID_REQUEST': usPerRequest(cap, 5_000).toFixed(2) });
// The same full table loaded from a store into an allocator with the default limit.
const full = new MemoryStore({ kinds: ['leases'] });
await full.write(leaseSnapshotWrites({ version: 2, start: 1, end: 4294967294, next: 65537, released: [], leases: Array.from({ length: 65536 }, (_, i) => ({ id: i + 1, key: `device_id=held-${i}`, expiresAtMs: t + 86_400_000 })) }));
const capLimited = new OSHandshakeManager({ clockMs, allocator: new IdAllocator({ clockMs, store: full }) });
await capLimited.open();
rows.push({ case: '65,536 leases held, default rate limit (1024/60 s)', 'µs per ID_REQUEST': usPerRequest(capLimited, 5_000).toFixed(2) });
console.table(rows);
