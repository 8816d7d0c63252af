// What grew between two V8 heap snapshots (.heapsnapshot, e.g. the page bench's
// BENCH_HEAP_SNAPSHOTS): self sizes and counts summed by node type and name, the 25 largest
// growths printed. `node bench/heap-diff.mjs before.heapsnapshot after.heapsnapshot`
import { readFileSync } from 'node:fs';

function summary(path) {
  const snap = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [T, N, S] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const by = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + T]];
    // Strings and numbers by type alone: their names are their contents.
    const name = type === 'string' || type === 'number' || type === 'concatenated string' || type === 'sliced string' ? '' : snap.strings[nodes[i + N]];
    const key = `${type}\u0000${name.slice(0, 80)}`;
    const e = by.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += nodes[i + S];
    by.set(key, e);
  }
  return by;
}

const [a, b] = process.argv.slice(2);
if (a === undefined || b === undefined) throw new Error('usage: node bench/heap-diff.mjs before.heapsnapshot after.heapsnapshot');
const before = summary(a);
const after = summary(b);
const rows = [];
for (const [key, e] of after) {
  const o = before.get(key) ?? { count: 0, size: 0 };
  const [type, name] = key.split('\u0000');
  rows.push({ type, name, 'count +': e.count - o.count, 'bytes +': e.size - o.size, 'bytes after': e.size });
}
rows.sort((x, y) => y['bytes +'] - x['bytes +']);
const total = (m) => [...m.values()].reduce((n, e) => n + e.size, 0);
console.log(`self sizes: ${total(before).toLocaleString('en-US')} B → ${total(after).toLocaleString('en-US')} B`);
console.table(rows.slice(0, 25));
