import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = fileURLToPath(new URL('./src/', import.meta.url));

export default defineConfig({
  resolve: {
    // The drivers and the registry reach each other through the package's own name (as the
    // published build does); the tests run them from source.
    alias: [
      { find: /^@opensynaptic\/transport$/, replacement: `${src}index.ts` },
      { find: /^@opensynaptic\/transport\/(.*)$/, replacement: `${src}$1.ts` },
    ],
  },
  test: {
    globalSetup: ['./test/setup/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
