import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

export default defineConfig(packageBuild({ index: 'src/index.ts', config: 'src/config.ts', device: 'src/device.ts' }));
