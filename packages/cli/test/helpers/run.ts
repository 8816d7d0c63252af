import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built bin, run as a user runs it (`node dist/bin.js`); `pnpm build` makes it. */
export const BIN = fileURLToPath(new URL('../../dist/bin.js', import.meta.url));
if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run \`pnpm --filter @opensynaptic/cli build\` first`);

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `os-node args…` to its end, with `input` on stdin. */
export function osNode(args: readonly string[], options: { input?: string | Uint8Array; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...options.env }, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Starts `os-node args…` and hands back the child and its stdout lines as they come. */
export function startOsNode(args: readonly string[], options: { cwd?: string } = {}): { child: ChildProcess; lines: AsyncIterator<string>; done: Promise<Ran> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1' }, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  let partial = '';
  let ended = false;
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    queue.push(...parts);
    wake?.();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
  const done = new Promise<Ran>((resolve) =>
    child.on('close', (code) => {
      ended = true;
      wake?.();
      resolve({ code, stdout, stderr });
    }),
  );
  const lines: AsyncIterator<string> = {
    async next() {
      while (queue.length === 0 && !ended) await new Promise<void>((r) => {
        wake = r;
      });
      const line = queue.shift();
      return line === undefined ? { done: true, value: undefined } : { done: false, value: line };
    },
  };
  return { child, lines, done };
}
