import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

export default defineConfig(packageBuild({ index: 'src/index.ts', pool: 'src/pool.ts' }));
