import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The tests run the built bin as child processes (as a user does), so each needs a few seconds.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
