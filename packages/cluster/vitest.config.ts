import { defineConfig } from 'vitest/config';

// One private PostgreSQL server for the whole run (see test/global-setup.ts); NATS servers are
// started by each test file. Tests get 60 s as in every package: a hang guard, not a speed check.
export default defineConfig({ test: { globalSetup: ['test/global-setup.ts'], hookTimeout: 120_000, testTimeout: 60_000, fileParallelism: false } });
