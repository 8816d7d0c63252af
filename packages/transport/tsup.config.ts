import { packageBuild } from '@opensynaptic/config/tsup';
import { defineConfig } from 'tsup';

// Each driver is its own entry point, loaded on demand by the registry through the package's own
// name (`@opensynaptic/transport/udp`...), and each driver reaches the shared classes the same way,
// so the package name stays external: one copy of the base classes, and the UDP user loads no MQTT code.
const self = /^@opensynaptic\/transport(\/.*)?$/;
const entries = { index: 'src/index.ts', core: 'src/core.ts', testing: 'src/testing.ts', udp: 'src/udp.ts', tcp: 'src/tcp.ts', mqtt: 'src/mqtt.ts', websocket: 'src/websocket.ts', serial: 'src/serial.ts' };

export default defineConfig(
  packageBuild(entries, {
    external: [self],
    // The CommonJS build loads drivers and their optional dependencies with require(), so a
    // CommonJS program stays on the CommonJS build (one copy of the classes, not the ESM one too).
    esbuildOptions(options, context) {
      if (context.format === 'cjs') options.supported = { ...options.supported, 'dynamic-import': false };
    },
    dts: {
      compilerOptions: {
        baseUrl: '.',
        paths: { '@opensynaptic/internal': ['../internal/src/index.ts'], '@opensynaptic/transport': ['./src/index.ts'], '@opensynaptic/transport/*': ['./src/*.ts'] },
      },
    },
  }),
);
