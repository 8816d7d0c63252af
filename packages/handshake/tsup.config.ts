import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

// @noble/ciphers, @noble/hashes and @noble/curves (devDependencies: the authenticated mode's
// ChaCha20-Poly1305, HKDF-SHA-256 and X25519) are bundled into both formats, as @opensynaptic/crc
// bundles @noble/hashes: their 2.x lines are ESM-only. Their MIT licence asks for the notice to
// travel with the code.
export default defineConfig(
  packageBuild(
    { index: 'src/index.ts' },
    { banner: { js: '/*! Includes @noble/ciphers 2.4.0, @noble/hashes 2.4.0 and @noble/curves 2.4.0: MIT License, Copyright (c) 2022 Paul Miller (https://paulmillr.com) */' } },
  ),
);
