import { backendReport } from '@opensynaptic/core';
import { backendInfo as udpBackendInfo } from '@opensynaptic/transport/udp';
import { ensureDebianPackages } from '@opensynaptic/config/apt';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allCommands, buildProgram } from '../src/cli.js';
import { BIN, osNode } from './helpers/run.js';

// Every command path the program defines (from its own definition, so a new command is covered).
const program = buildProgram({ stdout: process.stdout, stderr: process.stderr }, new AbortController().signal, () => {});
const paths = allCommands(program).map((c) => {
  const names: string[] = [];
  for (let cmd: typeof c | null = c; cmd?.parent; cmd = cmd.parent) names.unshift(cmd.name());
  return names;
});

describe('--help and usage errors', () => {
  it('every command has --help (exit 0, its usage on stdout)', async () => {
    expect(paths.length).toBeGreaterThanOrEqual(19);
    for (const cmd of ['demo', 'serve', 'snapshot', 'transport-status', 'config get', 'config set', 'config validate']) expect(paths.map((p) => p.join(' '))).toContain(cmd);
    for (const path of [[], ...paths]) {
      const r = await osNode([...path, '--help']);
      expect(r.code, path.join(' ')).toBe(0);
      expect(r.stdout).toContain(`Usage: os-node${path.length > 0 ? ` ${path.join(' ')}` : ''}`);
      // Every command but the help ones takes --json.
      if (path.length > 0 && path[0] !== 'completion' && path.join(' ') !== 'db' && path.join(' ') !== 'config' && path.join(' ') !== 'keys') expect(r.stdout, path.join(' ')).toContain('--json');
    }
  });

  it('an unknown command or option, or a bad argument, exits 2', async () => {
    for (const args of [['frobnicate'], ['decode', '--frobnicate'], ['watch', '--port', 'eighty'], ['transmit', '--aid', '1', '--port', '70000', 'T1:1:Cel'], ['completion', 'fish']]) {
      const r = await osNode(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.length).toBeGreaterThan(0);
    }
  });
});

describe('native-check and bench', () => {
  it('native-check --json is the backendReport() of core and the transport UDP backendInfo() in the same environment', async () => {
    for (const mode of ['ts', undefined]) {
      const env = { ...process.env };
      if (mode === undefined) delete env.OPENSYNAPTIC_CORE;
      else env.OPENSYNAPTIC_CORE = mode;
      const r = await osNode(['native-check', '--json'], { env });
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout);
      if (mode === 'ts') for (const info of Object.values(report) as { backend: string; backendMode: string }[]) expect([info.backendMode, info.backend]).toEqual(['ts', 'ts']);
      else if (process.env.OPENSYNAPTIC_CORE === undefined) expect(report).toEqual(JSON.parse(JSON.stringify({ ...backendReport(), transport: udpBackendInfo() })));
      const human = await osNode(['native-check'], { env });
      expect(human.stdout).toContain('@opensynaptic/fusion');
      expect(human.stdout).toContain('@opensynaptic/transport');
    }
  });

  it('bench measures transmit and receive in ns/op, every received frame decoded', async () => {
    const r = await osNode(['bench', '--ms', '100', '--json']);
    expect(r.code).toBe(0);
    const b = JSON.parse(r.stdout);
    for (const op of [b.transmit, b.receive]) {
      expect(op.ops).toBeGreaterThan(0);
      expect(op.nsPerOp).toBeGreaterThan(0);
    }
    expect(b.receive.decoded).toBe(b.receive.ops);
  });
});

describe('shell completion', () => {
  it('the bash script completes commands, subcommands and options', () => {
    const complete = (words: string[]) =>
      execFileSync('bash', ['-c', `eval "$(${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} completion bash)"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _os_node; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).trim().split(/\s+/);
    expect(complete(['os-node', 'd'])).toEqual(['decode', 'db', 'demo']);
    expect(complete(['os-node', 'db', 'q'])).toEqual(['query']);
    expect(complete(['os-node', 'db', 'query', 'x.db', '--fo'])).toEqual(['--format']);
    expect(complete(['os-node', 'watch', '--port', '9', '--co'])).toEqual(['--count']);
    // The server commands: serve, snapshot, transport-status, demo, config and its subcommands.
    expect(complete(['os-node', 's'])).toEqual(['serve', 'snapshot']);
    expect(complete(['os-node', 't'])).toEqual(['transmit', 'time-sync', 'transport-status']);
    expect(complete(['os-node', 'de'])).toEqual(['decode', 'demo']);
    expect(complete(['os-node', 'config', ''])).toEqual(['get', 'set', 'validate', '--help']);
    expect(complete(['os-node', 'config', 'set', '--c'])).toEqual(['--config']);
    expect(complete(['os-node', 'serve', '--status-'])).toEqual(['--status-file', '--status-interval-ms']);
    expect(complete(['os-node', 'demo', '--no'])).toEqual(['--no-mqtt', '--no-dashboard']);
  });

  it('the zsh script completes the same way', () => {
    // Debian's zsh, installed with apt-get where it is missing (as every tool the tests need).
    ensureDebianPackages([{ program: '/usr/bin/zsh', pkg: 'zsh' }]);
    // bashcompinit hands the words over as a zsh array from 1, COMP_CWORD counted from 0.
    const complete = (words: string[]) =>
      execFileSync('zsh', ['-fc', `eval "$(${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} completion zsh)"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _os_node; echo "\${COMPREPLY[@]}"`], { encoding: 'utf8' }).trim().split(/\s+/);
    expect(complete(['os-node', 'd'])).toEqual(['decode', 'db', 'demo']);
    expect(complete(['os-node', 'db', 'q'])).toEqual(['query']);
    expect(complete(['os-node', 'watch', '--port', '9', '--co'])).toEqual(['--count']);
    expect(complete(['os-node', 'config', 'v'])).toEqual(['validate']);
    expect(complete(['os-node', 'transport-status', '--st'])).toEqual(['--status-file']);
  });
});
