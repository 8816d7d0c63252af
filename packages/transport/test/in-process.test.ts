import { describe, it } from 'vitest';
import { createInProcessPair } from '../src/index.js';
import { transportConformanceSuite } from '../src/testing.js';

transportConformanceSuite({ describe, it }, {
  name: 'in-process pair',
  connectionOriented: true,
  pair: async (options) => {
    const [a, b] = createInProcessPair({ inbound: options.inbound });
    await Promise.all([a.start(), b.start()]);
    return { a, b };
  },
});
