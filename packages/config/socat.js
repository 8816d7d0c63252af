// A pseudo-terminal pair joined by Debian's socat, for the serial tests (the transport's and the
// server's interop with the reference's UART listener): what is written to one end is read from
// the other, as over a null-modem cable.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian installs socat. */
export const SOCAT = '/usr/bin/socat';

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
