// Debian's nats-server on free loopback ports, for tests and benches: one node, or a JetStream
// cluster of three (routes between them on loopback), each node's JetStream store in its own
// temporary folder. `kill(i)` is a real SIGKILL of one node, `restart(i)` starts it again on the
// same ports and folder (it catches up from the others), `close()` ends them all and removes the
// folders. `nats-server` is installed with apt-get when missing (packages/config/apt.js).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackages } from './apt.js';
import { freePort } from './mosquitto.js';

/** Where Debian's package puts the server. */
export const NATS_SERVER_PATHS = ['/usr/bin/nats-server', '/usr/sbin/nats-server'];

/** The installed `nats-server`, or `undefined`. */
export function findNatsServer() {
  return NATS_SERVER_PATHS.find((p) => existsSync(p));
}

/** Installs Debian's `nats-server` with apt-get when missing; returns its path. */
export function installNatsServer(log = () => {}) {
  ensureDebianPackages([{ program: 'nats-server', pkg: 'nats-server', present: () => findNatsServer() !== undefined }], log);
  return /** @type {string} */ (findNatsServer());
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Whether the node's monitoring endpoint says it is healthy (JetStream current with its meta leader). */
async function healthy(monitorPort) {
  try {
    const r = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, { signal: AbortSignal.timeout(1000) });
    return r.status === 200;
  } catch {
    return false;
  }
}

/**
 * The servers. `NatsCluster.start({ nodes })` runs them; `urls` are the client URLs of every
 * node (give them all to a client: it fails over between them).
 */
export class NatsCluster {
  #dir;
  #bin;
  /** @type {{ name: string, port: number, clusterPort: number, monitorPort: number, conf: string, child: import('node:child_process').ChildProcess | undefined, log: string }[]} */
  nodes = [];

  constructor(dir, bin) {
    this.#dir = dir;
    this.#bin = bin;
  }

  get urls() {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  }

  /** The last 4,000 characters of node `i`'s output (its errors and warnings). */
  log(i) {
    return this.nodes[i]?.log ?? '';
  }

  /**
   * Starts `nodes` (1 or 3) servers with JetStream and waits until every node reports healthy
   * (`/healthz`: its JetStream caught up with the meta leader). Options: `log(msg)`,
   * `timeoutMs` (default 30000).
   */
  static async start({ nodes = 1, log = () => {}, timeoutMs = 30_000 } = {}) {
    if (nodes !== 1 && nodes !== 3) throw new Error(`nodes must be 1 or 3, got ${nodes}`);
    const bin = installNatsServer(log);
    const dir = mkdtempSync(join(tmpdir(), 'os-nats-'));
    const c = new NatsCluster(dir, bin);
    try {
      for (let i = 0; i < nodes; i++) c.nodes.push({ name: `n${i + 1}`, port: await freePort(), clusterPort: await freePort(), monitorPort: await freePort(), conf: '', child: undefined, log: '' });
      for (const n of c.nodes) {
        const store = join(dir, n.name);
        mkdirSync(store);
        const lines = [
          `server_name: "${n.name}"`,
          `listen: "127.0.0.1:${n.port}"`,
          `http: "127.0.0.1:${n.monitorPort}"`,
          `jetstream { store_dir: "${store}", max_memory_store: 268435456, max_file_store: 17179869184 }`,
        ];
        if (nodes > 1) {
          const routes = c.nodes.filter((o) => o !== n).map((o) => `"nats://127.0.0.1:${o.clusterPort}"`);
          lines.push(`cluster { name: "os-test", listen: "127.0.0.1:${n.clusterPort}", routes: [${routes.join(', ')}] }`);
        }
        n.conf = join(dir, `${n.name}.conf`);
        writeFileSync(n.conf, `${lines.join('\n')}\n`);
      }
      for (let i = 0; i < nodes; i++) c.#spawn(i);
      await c.waitHealthy(timeoutMs);
      log(`nats-server ${nodes === 1 ? 'node' : 'cluster'} on ${c.urls.join(', ')} (${dir})`);
      return c;
    } catch (e) {
      await c.close();
      throw e;
    }
  }

  #spawn(i) {
    const n = this.nodes[i];
    const child = spawn(this.#bin, ['-c', n.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    n.child = child;
    child.stderr.on('data', (d) => {
      n.log = (n.log + d.toString()).slice(-4000);
    });
    child.on('error', (e) => {
      n.log += `\nspawn failed: ${e.message}`;
    });
  }

  /** Waits until every running node is healthy. */
  async waitHealthy(timeoutMs = 30_000) {
    const end = Date.now() + timeoutMs;
    for (const [i, n] of this.nodes.entries()) {
      if (n.child === undefined) continue;
      while (!(await healthy(n.monitorPort))) {
        if (n.child.exitCode !== null) throw new Error(`nats-server ${n.name} exited with ${n.child.exitCode}: ${n.log}`);
        if (Date.now() > end) throw new Error(`nats-server ${n.name} (node ${i}) not healthy within ${timeoutMs} ms: ${n.log}`);
        await sleep(50);
      }
    }
  }

  /** SIGKILLs node `i` and waits for it to exit. */
  async kill(i) {
    const child = this.nodes[i]?.child;
    if (child === undefined) return;
    this.nodes[i].child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** Starts node `i` again after `kill(i)`, on its ports and folder; resolves once it is healthy. */
  async restart(i, timeoutMs = 30_000) {
    if (this.nodes[i]?.child !== undefined) return;
    this.#spawn(i);
    const end = Date.now() + timeoutMs;
    while (!(await healthy(this.nodes[i].monitorPort))) {
      if (Date.now() > end) throw new Error(`nats-server ${this.nodes[i].name} not healthy within ${timeoutMs} ms after restart: ${this.nodes[i].log}`);
      await sleep(50);
    }
  }

  /** Kills every node and removes the folders. */
  async close() {
    for (let i = 0; i < this.nodes.length; i++) await this.kill(i);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
