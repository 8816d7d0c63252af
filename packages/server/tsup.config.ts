import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

// `ingest-worker` is the worker threads' program, loaded by `WorkerIngest` from beside its own module.
export default defineConfig(packageBuild({ index: 'src/index.ts', config: 'src/config.ts', device: 'src/device.ts', workers: 'src/workers.ts', 'ingest-worker': 'src/ingest-worker.ts' }));
