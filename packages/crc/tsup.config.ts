import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

// @noble/hashes (a devDependency) is bundled into both formats: its 2.x line is ESM-only and
// `require` of ESM needs Node 20.19, so a dependency would break our CJS build on older Node 20.
// Its MIT licence asks for the notice to travel with the code.
export default defineConfig(
  packageBuild(
    { index: 'src/index.ts' },
    { banner: { js: '/*! Includes @noble/hashes 2.4.0: MIT License, Copyright (c) 2022 Paul Miller (https://paulmillr.com) */' } },
  ),
);
