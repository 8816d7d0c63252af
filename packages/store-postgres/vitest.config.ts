import { defineConfig } from 'vitest/config';

// One private PostgreSQL server for the whole run (see test/global-setup.ts).
export default defineConfig({ test: { globalSetup: ['test/global-setup.ts'], hookTimeout: 120_000 } });
