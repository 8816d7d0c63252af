import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The published build, as a user loads it (ESM and CommonJS), in a child process whose module
// loader reports every module it resolves: creating a UDP transport through the registry must
// load only the package's main entry and its UDP entry, no other driver and no optional
// dependency. A missing optional dependency is simulated by a resolve hook that refuses it.
const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const built = existsSync(`${dist}index.js`) && existsSync(`${dist}udp.cjs`);

const HOOKS = `
let port;
const refused = new Set(JSON.parse(process.env.REFUSE || '[]'));
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  if (refused.has(specifier)) {
    const e = new Error('Cannot find package ' + specifier);
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  }
  const r = await next(specifier, context);
  port.postMessage(r.url);
  return r;
}
`;

function run(body: string, refuse: string[] = [], format: 'esm' | 'cjs' = 'esm'): { urls: string[]; out: Record<string, unknown> } {
  const load = format === 'esm' ? `await import(${JSON.stringify(`${dist}index.js`)})` : `createRequire(import.meta.url)(${JSON.stringify(`${dist}index.cjs`)})`;
  const script = `
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const urls = [];
port1.on('message', (u) => urls.push(u));
port1.unref();
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), { data: { port: port2 }, transferList: [port2] });
const t = ${load};
const out = {};
${body}
await new Promise((r) => setTimeout(r, 50));
const cjs = Object.keys(createRequire(import.meta.url).cache);
console.log(JSON.stringify({ urls: [...urls, ...cjs.map((f) => 'file://' + f)], out }));
`;
  const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, REFUSE: JSON.stringify(refuse) } });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

const ours = (urls: string[]) => [...new Set(urls.filter((u) => u.includes('/transport/dist/')).map((u) => u.slice(u.lastIndexOf('/') + 1)))].sort();
const foreign = (urls: string[]) => urls.filter((u) => /node_modules\/(\.pnpm\/)?(mqtt|ws|serialport|@serialport)/.test(u));

describe.skipIf(!built)('lazy drivers (built package; run `pnpm build` first)', () => {
  it('a UDP user loads the main entry, the shared classes and the UDP entry only: no MQTT, WebSocket or serial code or dependency (ESM)', () => {
    const { urls, out } = run(`
const u = await t.createTransport('udp', { host: '127.0.0.1', port: 0 });
await u.start();
out.port = u.address.port;
await u.destroy();
out.loaded = t.drivers.names().filter((n) => t.drivers.isLoaded(n));
`);
    expect(out.port).toBeGreaterThan(0);
    expect(out.loaded).toEqual(['udp']);
    expect(ours(urls)).toEqual(['core.js', 'index.js', 'udp.js']);
    expect(foreign(urls)).toEqual([]);
  });

  it('the same through the CommonJS build stays on it (index.cjs, core.cjs and udp.cjs only)', () => {
    const { urls } = run(
      `
const u = await t.createTransport('udp', { host: '127.0.0.1', port: 0 });
await u.start();
await u.destroy();
`,
      [],
      'cjs',
    );
    expect(ours(urls)).toEqual(['core.cjs', 'index.cjs', 'udp.cjs']);
    expect(foreign(urls)).toEqual([]);
  });

  it('without the optional mqtt package, the mqtt driver loads but start() says what to install (ERR_TRANSPORT_DEPENDENCY)', () => {
    const { urls, out } = run(
      `
const m = await t.createTransport('mqtt', { url: 'mqtt://127.0.0.1:1' });
const e = await m.start().catch((x) => x);
out.code = e.code;
out.message = e.message;
out.state = m.state;
`,
      ['mqtt'],
    );
    expect(out.code).toBe('ERR_TRANSPORT_DEPENDENCY');
    expect(out.message).toMatch(/npm install mqtt/);
    expect(out.state).toBe('stopped');
    expect(ours(urls)).toEqual(['core.js', 'index.js', 'mqtt.js']);
    expect(foreign(urls)).toEqual([]);
  });

  it('the WebSocket client and the main entry bundle for browsers with no Node built-in (esbuild, platform browser)', async () => {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({
      // The published files (not the sources the package's tsconfig maps the name to).
      tsconfigRaw: '{}',
      stdin: {
        contents: "import { createWebSocketTransport } from '@opensynaptic/transport/websocket'; import { createInProcessPair, drivers } from '@opensynaptic/transport'; globalThis.x = [createWebSocketTransport, createInProcessPair, drivers];",
        resolveDir: fileURLToPath(new URL('..', import.meta.url)),
      },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const imports = Object.values(result.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
    expect(imports.filter((p) => p.startsWith('node:') || ['dgram', 'net', 'fs', 'ws', 'mqtt', 'serialport'].includes(p))).toEqual([]);
    expect(Object.keys(result.metafile.inputs).some((f) => f.endsWith('dist/websocket.js'))).toBe(true);
  });

  it('the WebSocket client alone bundles with the shared classes only: no registry, so no lazy chunk of another driver (esbuild, splitting)', async () => {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({
      tsconfigRaw: '{}',
      stdin: { contents: "import { WebSocketTransport } from '@opensynaptic/transport/websocket'; globalThis.x = WebSocketTransport;", resolveDir: fileURLToPath(new URL('..', import.meta.url)) },
      bundle: true,
      splitting: true,
      outdir: fileURLToPath(new URL('../.bundle-check/', import.meta.url)),
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs).map((f) => f.slice(f.lastIndexOf('/') + 1));
    expect(inputs.filter((f) => f.endsWith('.js')).sort()).toEqual(['core.js', 'websocket.js']);
    // One output file: the page's own (a lazy driver would add a chunk per driver).
    expect(Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'))).toHaveLength(1);
  });
});

it.skipIf(built)('lazy-loading tests need the build', () => {
  throw new Error(`no build in ${dist}: run \`pnpm --filter @opensynaptic/transport build\``);
});
