// Debian's mosquitto on a free loopback port, for tests and the CLI's demo: anonymous,
// persistent (its database in a temporary folder, written when it stops), queues large enough
// for the tests' streams. The transport tests and `os-node demo` both start their broker here.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** Where Debian installs the broker. */
export const MOSQUITTO = '/usr/sbin/mosquitto';

/** Whether Debian's mosquitto is installed (`apt-get install mosquitto`). */
export function hasMosquitto() {
  return existsSync(MOSQUITTO);
}

/** A free loopback port (bound, read, released). */
export async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(() => r()));
  return port;
}

async function accepting(port, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = connect({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`mosquitto did not accept connections on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The broker. `Mosquitto.start()` runs it; `restart()` stops it with SIGTERM (it saves its
 * database) and starts it again on the same port; `close()` stops it and removes its folder.
 */
export class Mosquitto {
  #dir;
  #conf;
  #child;
  #log = '';

  /** Use `Mosquitto.start()`. */
  constructor(port) {
    this.port = port;
    this.url = `mqtt://127.0.0.1:${port}`;
    this.#dir = mkdtempSync(join(tmpdir(), 'os-mosquitto-'));
    this.#conf = join(this.#dir, 'mosquitto.conf');
    writeFileSync(
      this.#conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${this.#dir}/`,
        // Run as whoever runs it (mosquitto started as root would switch to its own user).
        `user ${userInfo().username}`,
        'max_queued_messages 100000',
        'max_inflight_messages 100',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        '',
      ].join('\n'),
    );
  }

  /** The broker's last 4,000 characters of stderr (errors and warnings: refused clients, full queues). */
  get log() {
    return this.#log;
  }

  static async start() {
    const m = new Mosquitto(await freePort());
    try {
      await m.#spawn();
    } catch (e) {
      rmSync(m.#dir, { recursive: true, force: true });
      throw e;
    }
    return m;
  }

  async #spawn() {
    const child = spawn(MOSQUITTO, ['-c', this.#conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    child.stderr.on('data', (d) => {
      this.#log = (this.#log + d.toString()).slice(-4000);
    });
    const exited = new Promise((_, reject) => {
      child.once('error', (e) => reject(new Error(`mosquitto did not start: ${e.message}`)));
      child.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}: ${this.#log}`)));
    });
    await Promise.race([accepting(this.port, 10_000), exited]);
    exited.catch(() => undefined);
  }

  /** Stops the broker (SIGTERM: it saves its database) and waits for it to exit. */
  async stop() {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  /** Starts the broker again on its port after `stop()`. */
  async resume() {
    if (this.#child !== undefined) return;
    await this.#spawn();
  }

  async restart(pauseMs = 200) {
    await this.stop();
    await new Promise((r) => setTimeout(r, pauseMs));
    await this.#spawn();
  }

  async close() {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
