// Readings into PostgreSQL through the sink, batch sizes 1, 100 and 1000, against a private
// server started here (fsync on, as a real one). BENCH_SECONDS per case (default 4).
import { startPostgres } from '@opensynaptic/config/postgres';
import { benchSink } from '@opensynaptic/config/sink-bench';
import { openPostgresReadingsSink } from '@opensynaptic/store-postgres';

const server = await startPostgres({ log: (m) => console.log(`postgres: ${m}`) });
let n = 0;
const open = (options) => openPostgresReadingsSink({ connection: server.url, schema: `bench_${++n}`, ...options });
try {
  await benchSink(`PostgreSQL readings sink (${server.version}, loopback)`, [
    { name: 'postgres', batchSize: 1, open },
    { name: 'postgres', batchSize: 100, open },
    { name: 'postgres', batchSize: 1000, open },
  ]);
} finally {
  server.stop();
}
