import { Command, CommanderError, Option } from 'commander';
import pc from 'picocolors';
import * as c from './commands.js';
import { completionScript } from './completion.js';
import { configGet, configSet, configValidate } from './config-cmd.js';
import { demo, type DemoOptions } from './demo.js';
import { serve, type ServeOptions, transportStatus, type TransportStatusOptions } from './serve.js';
import { keysAdd, keysList, type KeysOptions, keysRemove, keysServerKeypair, type ServerKeypairOptions } from './keys.js';
import { snapshot } from './snapshot.js';
import { CliError, EXIT, type ExitCode } from './errors.js';
import { Output, type OutputStreams } from './output.js';
import { errorJson, exitCodeOf, stringify } from './util.js';

const EXIT_HELP = `
Exit codes:
  0    done
  1    unexpected failure
  2    bad command line (unknown command or option, malformed argument)
  3    bad input data (a frame that does not decode, a refused reading, bad hex or JSON)
  4    timeout (no answer from the server; watch got too few readings)
  5    unavailable (file or database missing or damaged, socket cannot bind or send)
  6    refused by the peer (NACK)
  130  interrupted (Ctrl-C; serve ends with 0 on SIGTERM)`;

/** Builds the `os-node` program; `run` gives it its streams, its signal and the exit code. */
export function buildProgram(io: OutputStreams, signal: AbortSignal, done: (code: ExitCode) => void): Command {
  const program = new Command('os-node')
    .description('OpenSynaptic from the command line: decode and build frames, send and watch readings, query the store')
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_HELP)
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  const json = (cmd: Command) => cmd.option('--json', 'machine-readable output (JSON; NDJSON for streams)', false);
  const net = (cmd: Command, port: string) => cmd.option('--host <host>', 'server address', '127.0.0.1').option('--port <port>', 'server UDP port', port);
  const reading = (cmd: Command) =>
    cmd
      .argument('[sensors...]', 'sensors as ID:VALUE:UNIT[:STATE] (state OK by default), e.g. T1:21.5:Cel H1:40:%')
      .option('--sensors-json <json>', 'sensors as a JSON array of [id, state, value, unit]')
      .requiredOption('--aid <aid>', 'the device id number on the wire (1..4294967294)')
      .option('--device <id>', 'device id text of the FULL body', 'os-node')
      .option('--count <n>', 'readings to build', '1');
  const act = <A extends unknown[]>(fn: (out: Output, ...args: A) => unknown) =>
    async function (this: Command, ...args: unknown[]) {
      const out = new Output(this.opts().json === true, io);
      // commander passes the positional arguments, then the options, then the command.
      await fn(out, ...(args.slice(0, -1) as A));
      done(EXIT.OK);
    };

  json(program.command('decode').description('decode frames (hex arguments, --file, or stdin; one frame per line) to facts'))
    .argument('[hex...]', 'frames as hex, decoded in order (a DIFF after its FULL)')
    .option('--file <path>', 'read frames from a file ("-": stdin)')
    .option('--binary', 'the input is one raw frame, not hex text', false)
    .action(act((out, hex: string[], opts: c.DecodeOptions) => c.decode(out, hex, opts)));

  json(reading(program.command('inject').description('show each stage of a reading: standardized fact, body text, frame bytes, sizes against the same reading as JSON')))
    .action(act((out, specs: string[], opts: c.ReadingOptions) => c.inject(out, specs, opts)));

  json(net(reading(program.command('transmit').description('send readings to a host over UDP (FULL, then DIFF and HEART)')), '8080'))
    .option('--interval-ms <ms>', 'pause between readings', '100')
    .action(act((out, specs: string[], opts: c.TransmitOptions) => c.transmit(out, specs, opts, signal)));

  json(program.command('watch').description('listen on UDP and print decoded readings live'))
    .option('--host <host>', 'address to listen on', '0.0.0.0')
    .option('--port <port>', 'UDP port to listen on (0: any free port)', '8080')
    .option('--count <n>', 'stop after this many readings')
    .option('--timeout-ms <ms>', 'stop after this long (exit 4 if --count was not reached)')
    .option('--no-reply', 'do not answer control traffic and secure-session offers')
    .action(act((out, opts: c.WatchOptions) => c.watch(out, opts, signal)));

  for (const [name, description, fn] of [
    ['ensure-id', 'ask a server for a device id over UDP (ID_REQUEST, ID_ASSIGN)', c.ensureId],
    ['time-sync', "ask a server for its time over UDP (TIME_REQUEST, TIME_RESPONSE)", c.timeSync],
  ] as const) {
    json(net(program.command(name).description(description), '8080'))
      .option('--device <id>', 'device id text', 'os-node')
      .option('--timeout-ms <ms>', 'give up after this long (the request is resent meanwhile)', '5000')
      .action(act((out, opts: c.RequestCliOptions) => fn(out, opts)));
  }

  const db = program.command('db').description('the SQLite readings store (opened read-only)');
  json(db.command('status').description('readings, devices, size and last write of a database file'))
    .argument('<file>', 'the SQLite file')
    .action(act((out, file: string) => c.dbStatus(out, file)));
  json(db.command('query').description('readings by device, sensor and time range'))
    .argument('<file>', 'the SQLite file')
    .option('--aid <aid>', 'device id number')
    .option('--device <id>', 'device id text')
    .option('--sensor <id>', 'sensor id')
    .option('--from <time>', 'earliest timestamp, inclusive (Unix ms or ISO 8601)')
    .option('--to <time>', 'latest timestamp, exclusive (Unix ms or ISO 8601)')
    .option('--limit <n>', 'most readings (default 1000)')
    .addOption(new Option('--order <order>', 'by timestamp').choices(['asc', 'desc']))
    .addOption(new Option('--format <format>', 'output format (default table, or json with --json)').choices(['csv', 'json', 'table']))
    .action(act((out, file: string, opts: c.QueryCliOptions) => c.dbQuery(out, file, opts)));

  const configured = (cmd: Command) =>
    cmd
      .option('--config <file>', 'configuration file, ours or a reference Config.json (default: os-node.json when present, else the defaults)')
      .option('--db <file>', 'the SQLite file (overrides storage.path)');
  const statusFileOpt = (cmd: Command) => cmd.option('--status-file <file>', 'the status file (default: <storage.path>.status.json)');

  json(program.command('demo').description('a server and simulated sensor devices on loopback (UDP, and MQTT with a broker): ids, FULL/DIFF/HEART, secure sessions, stored in SQLite'))
    .option('--seconds <n>', 'stop after this long', '20')
    .option('--devices <n>', 'simulated UDP devices', '4')
    .option('--secure <n>', 'how many of them take a secure session (default: half, rounded up)')
    .option('--interval-ms <ms>', 'pause between a device\'s readings', '250')
    .option('--db <file>', 'the SQLite file (default: a new one in a temporary folder)')
    .option('--mqtt <url>', 'an MQTT broker to use (default: start Debian\'s mosquitto when installed)')
    .option('--no-mqtt', 'UDP only')
    .option('--dashboard-port <port>', 'port of the live dashboard (default: any free one; the URL is printed)')
    .option('--no-dashboard', 'no live dashboard')
    .option('--dashboard-tiles <url>', 'tile server of the dashboard map, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (default none: a plain lat/lon grid)')
    .action(act((out, opts: DemoOptions) => demo(out, opts, signal)));

  json(statusFileOpt(configured(program.command('serve').description('run the server of a configuration: its transports, SQLite storage, live counters; Ctrl-C or SIGTERM stops it cleanly'))))
    .option('--host <host>', 'address of the default transport (server.host)')
    .option('--port <port>', 'port of the default transport (server.port; 0: any free port)')
    .option('--status-interval-ms <ms>', 'how often the counters and the status file are updated', '1000')
    .option('--seconds <n>', 'stop after this long (default: run until stopped)')
    .option('--readings', 'print every decoded reading', false)
    .option('--dashboard', 'serve the live dashboard (web page, JSON API, live feed); a non-loopback --dashboard-host needs OS_NODE_DASHBOARD_TOKEN', false)
    .option('--dashboard-host <host>', 'address of the dashboard', '127.0.0.1')
    .option('--dashboard-port <port>', 'port of the dashboard (0: any free port)', '8090')
    .option('--dashboard-tiles <url>', 'tile server of the dashboard map, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (default none: a plain lat/lon grid)')
    .action(act((out, opts: ServeOptions) => serve(out, opts, signal)));

  json(statusFileOpt(configured(program.command('snapshot').description('devices, templates, sessions and id leases in the database of a configuration (read-only)'))))
    .action(act((out, opts: { config?: string; db?: string; statusFile?: string }) => snapshot(out, opts)));

  const keys = program.command('keys').description('pre-shared secrets (and X25519 enrolments) of the authenticated mode, in the database of a configuration (kind keys); the server\'s X25519 key pair');
  json(configured(keys.command('add').description('make (or take, --secret) a secret for a device and print it once; adding again rotates (the next kid)')))
    .argument('<aid>', 'the device\'s assigned id')
    .option('--kid <n>', 'key id 0..255 (default: the next one, 0 for a new device)')
    .option('--secret <hex>', 'the secret, 16..64 bytes in hex (default: 32 random bytes)')
    .option('--x25519', 'no secret: enrol the device for X25519 (suite 2, auth.x25519.accept "known")', false)
    .action(act((out, aid: string, opts: KeysOptions) => keysAdd(out, aid, opts)));
  json(configured(keys.command('list').description('devices with secrets: their kids and current session (never a secret)'))).action(act((out, opts: KeysOptions) => keysList(out, opts)));
  json(configured(keys.command('remove').description('remove one kid of a device (--kid) or all of its secrets and sessions')))
    .argument('<aid>', 'the device\'s assigned id')
    .option('--kid <n>', 'only this key id')
    .action(act((out, aid: string, opts: KeysOptions) => keysRemove(out, aid, opts)));
  json(keys.command('server-keypair').description('make the server\'s static X25519 key pair (suite 2): the private key for auth.x25519, the public key for every device'))
    .option('--kid <n>', 'the key id devices name it by, 0..255', '0')
    .option('--private-key <hex>', 'take this private key (32 bytes in hex) instead of making one')
    .option('--out <file>', 'write the private key to this new file (mode 0600, for auth.x25519.privateKeyFile) and print only the public key')
    .action(act((out, opts: ServerKeypairOptions) => keysServerKeypair(out, opts)));

  json(statusFileOpt(configured(program.command('transport-status').description('each configured transport, its state and counters, from the status file of the running server (exit 5 when none runs)'))))
    .action(act((out, opts: TransportStatusOptions) => transportStatus(out, opts)));

  const config = program.command('config').description('read, change and check a configuration file (default os-node.json)');
  json(config.command('get').description('the value of a dotted key (defaults filled in; --raw: as the file has it)'))
    .argument('<key>', 'dotted key, e.g. server.port or transports.0.options.port')
    .option('--config <file>', 'the configuration file (default: os-node.json; missing: the defaults)')
    .option('--raw', 'the key of the file as written (a reference Config.json\'s own keys)', false)
    .action(act((out, key: string, opts: { config?: string; raw?: boolean }) => configGet(out, key, opts)));
  json(config.command('set').description('set a dotted key (value as JSON, else text), validate, write the file back keeping the rest'))
    .argument('<key>', 'dotted key, e.g. server.port')
    .argument('<value>', 'the value: JSON (9000, true, [1,2], "text") or plain text')
    .option('--config <file>', 'the configuration file (created when missing)', 'os-node.json')
    .action(act((out, key: string, value: string, opts: { config?: string }) => configSet(out, key, value, opts)));
  json(config.command('validate').description('check a file (ours or a reference Config.json): every bad key with its value and what is allowed (exit 3)'))
    .argument('[file]', 'the file (default: --config)')
    .option('--config <file>', 'the configuration file', 'os-node.json')
    .action(act((out, file: string | undefined, opts: { config?: string }) => configValidate(out, file, opts)));

  json(program.command('native-check').description('which backend (TypeScript or native) each operation uses, and why'))
    .action(act((out) => c.nativeCheck(out)));

  json(program.command('bench').description('a short in-process transmit and receive measurement (ns/op)'))
    .option('--sensors <n>', 'sensors per reading', '1')
    .option('--ms <ms>', 'time per operation', '500')
    .action(act((out, opts: { sensors?: string; ms?: string }) => c.bench(out, opts)));

  program
    .command('completion')
    .description('print a shell completion script (bash or zsh): eval "$(os-node completion bash)"')
    .addArgument(new Command().createArgument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      io.stdout.write(completionScript(program, shell));
      done(EXIT.OK);
    });

  for (const cmd of [program, ...allCommands(program)]) cmd.exitOverride();
  return program;
}

/** Every command below `cmd`, depth first. */
export function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((sub) => [sub, ...allCommands(sub)]);
}

declare const __CLI_VERSION__: string | undefined;
const VERSION = typeof __CLI_VERSION__ === 'string' ? __CLI_VERSION__ : '0.0.0';

/**
 * Runs `os-node` with `argv` (without the node and script paths) and resolves to the exit code;
 * never throws. Errors go to stderr: a line of text, or `{"error":{code,message}}` with `--json`.
 */
export async function run(argv: readonly string[], io: OutputStreams = { stdout: process.stdout, stderr: process.stderr }, signal: AbortSignal = new AbortController().signal): Promise<ExitCode> {
  let code: ExitCode = EXIT.OK;
  const program = buildProgram(io, signal, (c) => {
    code = c;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version end with exit code 0 through the same path; every other parse error is usage.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const exit = signal.aborted ? EXIT.INTERRUPTED : exitCodeOf(e);
    if (argv.includes('--json')) io.stderr.write(`${stringify({ error: errorJson(e), exitCode: exit })}\n`);
    else io.stderr.write(`${pc.red('error')}: ${e instanceof Error ? e.message : String(e)}${exit === EXIT.FAILURE && e instanceof Error && !(e instanceof CliError) ? `\n${e.stack ?? ''}` : ''}\n`);
    return exit;
  }
}
