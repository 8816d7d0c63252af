import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { MOSQUITTO } from './programs.js';

/** A free loopback port (bound, read, released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function accepting(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
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
 * Debian's mosquitto on a free loopback port, started by the test: anonymous, persistent (its
 * database in a temporary folder, written when it stops), queues large enough for the tests'
 * streams. `restart()` stops it with SIGTERM (it saves its database) and starts it again on the
 * same port.
 */
export class Mosquitto {
  readonly port: number;
  readonly url: string;
  readonly #dir: string;
  readonly #conf: string;
  #child: ChildProcess | undefined;
  #log = '';

  private constructor(port: number) {
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
        // Run as whoever runs the tests (mosquitto started as root would switch to its own user).
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

  static async start(): Promise<Mosquitto> {
    const m = new Mosquitto(await freePort());
    await m.#spawn();
    return m;
  }

  async #spawn(): Promise<void> {
    const child = spawn(MOSQUITTO, ['-c', this.#conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.#log = (this.#log + d.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}: ${this.#log}`))));
    await Promise.race([accepting(this.port, 10_000), exited]);
    exited.catch(() => undefined);
  }

  /** Stops the broker (SIGTERM: it saves its database) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  /** Starts the broker again on its port after `stop()`. */
  async resume(): Promise<void> {
    if (this.#child !== undefined) return;
    await this.#spawn();
  }

  async restart(pauseMs = 200): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, pauseMs));
    await this.#spawn();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
