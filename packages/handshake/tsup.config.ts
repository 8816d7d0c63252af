import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

// @noble/ciphers and @noble/hashes (devDependencies: the authenticated mode's ChaCha20-Poly1305
// and HKDF-SHA-256) are bundled into both formats, as @opensynaptic/crc bundles @noble/hashes:
// their 2.x lines are ESM-only. Their MIT licence asks for the notice to travel with the code.
export default defineConfig(
  packageBuild(
    { index: 'src/index.ts' },
    { banner: { js: '/*! Includes @noble/ciphers 2.4.0 and @noble/hashes 2.4.0: MIT License, Copyright (c) 2022 Paul Miller (https://paulmillr.com) */' } },
  ),
);
