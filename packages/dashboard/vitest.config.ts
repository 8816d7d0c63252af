import { defineConfig } from 'vitest/config';

// Its own file, so the tests do not take the page's Vite root (src/web).
export default defineConfig({ test: { include: ['test/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000 } });
