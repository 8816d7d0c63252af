/**
 * Programs the tests start, shared by the packages whose tests need them (transport, server):
 * Debian's mosquitto on a free loopback port, and a socat pseudo-terminal pair. Installed from
 * Debian when missing (`ensureTestPrograms`, from a vitest globalSetup), so a fresh machine needs
 * nothing by hand.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { ensureDebianPackages } from './apt.js';

/** Where Debian installs the programs the tests start. */
export const MOSQUITTO = '/usr/sbin/mosquitto';
export const SOCAT = '/usr/bin/socat';

/** Installs Debian's mosquitto and socat when missing (once per test run, from a globalSetup). */
export function ensureTestPrograms(log = (m) => console.log(m)) {
  ensureDebianPackages(
    [
      { program: MOSQUITTO, pkg: 'mosquitto' },
      { program: SOCAT, pkg: 'socat' },
    ],
    log,
  );
}

/** A free loopback TCP port (bound, read, released). */
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
 * Debian's mosquitto on a free loopback port, started by the test: anonymous, persistent (its
 * database in a temporary folder, written when it stops), queues large enough for the tests'
 * streams. `restart()` stops it with SIGTERM (it saves its database) and starts it again on the
 * same port.
 */
export class Mosquitto {
  #dir;
  #conf;
  #child;
  #log = '';

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

  static async start() {
    const m = new Mosquitto(await freePort());
    await m.#spawn();
    return m;
  }

  async #spawn() {
    const child = spawn(MOSQUITTO, ['-c', this.#conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    child.stderr.on('data', (d) => {
      this.#log = (this.#log + d.toString()).slice(-4000);
    });
    const exited = new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}: ${this.#log}`))));
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

/**
 * A pseudo-terminal pair joined by Debian's socat, started by the test: what is written to one
 * end is read from the other, as over a null-modem cable. `a` and `b` are stable links to the
 * two /dev/pts devices.
 */
export class PtyPair {
  #dir;
  #child;

  constructor(dir, child) {
    this.#dir = dir;
    this.a = join(dir, 'a');
    this.b = join(dir, 'b');
    this.#child = child;
  }

  static async start() {
    const dir = mkdtempSync(join(tmpdir(), 'os-pty-'));
    const child = spawn(SOCAT, [`pty,raw,echo=0,link=${join(dir, 'a')}`, `pty,raw,echo=0,link=${join(dir, 'b')}`], { stdio: 'ignore' });
    const pair = new PtyPair(dir, child);
    const end = Date.now() + 5000;
    while (!(existsSync(pair.a) && existsSync(pair.b))) {
      if (child.exitCode !== null) throw new Error(`socat exited with ${child.exitCode}`);
      if (Date.now() > end) throw new Error('socat made no pty pair within 5 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    return pair;
  }

  async close() {
    if (this.#child.exitCode === null) {
      await new Promise((resolve) => {
        this.#child.once('exit', () => resolve());
        this.#child.kill('SIGTERM');
      });
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
