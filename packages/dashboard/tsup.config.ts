import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

// The page (src/web) is built by Vite after this, into dist/web (see vite.config.ts).
export default defineConfig(packageBuild({ index: 'src/index.ts' }, { platform: 'node' }));
