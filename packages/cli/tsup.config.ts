import { packageBuild } from '@opensynaptic/config/tsup';
import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

// `os-node --version` prints the package's version.
const define = { __CLI_VERSION__: JSON.stringify(JSON.parse(readFileSync('package.json', 'utf8')).version) };

// The library entry (`run`, the exit codes) in both formats as every package; the bin in ESM
// only, which `node` runs directly (its `#!` line is kept by the bundler).
export default defineConfig([
  packageBuild({ index: 'src/index.ts' }, { platform: 'node', define }),
  packageBuild({ bin: 'src/bin.ts' }, { platform: 'node', format: ['esm'], dts: false, clean: false, define }),
]);
