import { accessSync, constants, readFileSync } from 'node:fs';
import { DATA_CMDS, cmdName } from '@opensynaptic/cmd';
import { backendReport, OpenSynaptic, type SensorTuple, type TransmitResult } from '@opensynaptic/core';
import { parseControlPacket } from '@opensynaptic/handshake';
import { createTransport, type Transport } from '@opensynaptic/transport';
import { backendInfo as udpBackendInfo } from '@opensynaptic/transport/udp';
import pc from 'picocolors';
import { CliError } from './errors.js';
import type { Output } from './output.js';
import { cmdLabel, type Described, describeReceive, errorJson, type SensorView, fromHex, intOption, parseSensors, readingJson, toHex } from './util.js';

/** The receiving node the decoding commands use: it only decodes (no allocator, no store). */
function receiver(): OpenSynaptic {
  return new OpenSynaptic({ assignedId: 1, deviceId: 'os-node' });
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

// ------------------------------------------------------------------------------------- decode

export interface DecodeOptions {
  file?: string;
  binary?: boolean;
}

/**
 * Decodes frames in order through one receiving node, so a DIFF or HEART after its FULL
 * decodes as a server would. Hex input holds one frame per line (or per argument); `--binary`
 * reads one raw frame.
 */
export async function decode(out: Output, hex: readonly string[], options: DecodeOptions): Promise<void> {
  let frames: Uint8Array[];
  if (options.binary) {
    const bytes = options.file === undefined || options.file === '-' ? await readStdin() : readInput(options.file);
    if (bytes.length === 0) throw new CliError('ERR_CLI_INPUT', 'no frame: the input is empty');
    frames = [new Uint8Array(bytes)];
  } else {
    let lines: string[];
    if (hex.length > 0) lines = [...hex];
    else {
      const text = (options.file === undefined || options.file === '-' ? await readStdin() : readInput(options.file)).toString('utf8');
      lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    }
    if (lines.length === 0) throw new CliError('ERR_CLI_INPUT', 'no frame: give hex as an argument, with --file, or on stdin');
    frames = lines.map((l, i) => fromHex(l, `frame ${i + 1}`));
  }
  const node = receiver();
  const results: (Described & { index: number; bytes: number })[] = frames.map((frame, i) => ({ index: i + 1, bytes: frame.length, ...decodeOne(node, frame) }));
  out.result({ frames: results }, () => {
    for (const r of results) {
      const head = `${pc.bold(`#${r.index}`)} ${r.cmdName} (${r.bytes} bytes)`;
      if (r.type === 'data') {
        out.line(`${head} aid ${r.aid} device ${String(r.deviceId)} at ${new Date(r.timestampMs as number).toISOString()}`);
        for (const s of r.sensors as SensorView[]) out.line(`  ${s.id} ${s.state} ${String(s.value)} ${s.unit}`);
      } else if (r.type === 'control') out.line(`${head} control: ${JSON.stringify(r.result)}`);
      else if (r.type === 'ignored') out.line(`${head} ${pc.yellow('ignored')}: ${String(r.reason)} (${String(r.code)})`);
      else out.line(`${head} ${pc.red('error')}: ${(r.error as { message: string }).message}`);
    }
  });
  const bad = results.find((r) => r.type === 'error' || r.type === 'ignored');
  if (bad) throw new CliError('ERR_CLI_INPUT', `frame ${bad.index} did not decode: ${bad.type === 'error' ? (bad.error as { message: string }).message : String(bad.reason)}`);
}

/**
 * A data frame goes through the node (it needs the templates of the frames before it); a
 * control packet is parsed, not executed (a node would answer an ID_REQUEST, for instance).
 */
function decodeOne(node: OpenSynaptic, frame: Uint8Array): Described {
  const cmd = frame[0] as number;
  if (DATA_CMDS.has(cmd) || cmdName(cmd) === undefined) return describeReceive(node.receive(frame));
  try {
    return { type: 'control', cmd, cmdName: cmdLabel(cmd), result: parseControlPacket(frame) };
  } catch (error) {
    return { type: 'error', cmd, cmdName: cmdLabel(cmd), error: errorJson(error) };
  }
}

function readInput(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CliError('ERR_CLI_UNAVAILABLE', `${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
}

// ------------------------------------------------------------------------------------- inject

export interface ReadingOptions {
  aid: string;
  device: string;
  sensorsJson?: string;
  count?: string;
}

function sendingNode(options: ReadingOptions): OpenSynaptic {
  const aid = intOption(options.aid, '--aid', 1, 0xffff_fffe) as number;
  return new OpenSynaptic({ assignedId: aid, deviceId: options.device });
}

/** Each stage of `count` consecutive readings: standardized fact, body text, frame, sizes. */
export async function inject(out: Output, specs: readonly string[], options: ReadingOptions): Promise<void> {
  const sensors = parseSensors(specs, options.sensorsJson);
  const count = intOption(options.count, '--count', 1, 10_000) ?? 1;
  const node = sendingNode(options);
  // In order: each transmit moves the node on (FULL, then DIFF or HEART).
  const stages = Array.from({ length: count }, (_, i) => {
    const r = node.transmit(sensors, { detail: true });
    const json = readingJson(options.device, sensors, r.timestampMs);
    const jsonBytes = Buffer.byteLength(json);
    const bodyBytes = Buffer.byteLength(r.body ?? '');
    return {
      index: i + 1,
      kind: r.kind,
      strategy: r.strategy,
      aid: r.aid,
      secure: r.secure,
      timestampMs: r.timestampMs,
      fact: r.fact,
      body: r.body,
      frameHex: toHex(r.frame),
      sizes: { json: jsonBytes, body: bodyBytes, frame: r.frame.length, frameToJson: Number((r.frame.length / jsonBytes).toFixed(4)) },
      json,
      dropped: r.dropped.map((d) => ({ index: d.index, code: (d.error as { code?: string }).code, message: d.error.message })),
    };
  });
  out.result({ stages }, () => {
    for (const s of stages) {
      out.line(pc.bold(`#${s.index} ${s.kind} (${s.strategy}) aid ${s.aid}`));
      out.line(`  ${pc.dim('fact ')} ${JSON.stringify(s.fact)}`);
      out.line(`  ${pc.dim('body ')} ${s.body ?? '(none: steady-state frame built without body text)'}`);
      out.line(`  ${pc.dim('frame')} ${s.frameHex}`);
      out.line(`  ${pc.dim('json ')} ${s.json}`);
      out.line(`  ${pc.dim('sizes')} frame ${s.sizes.frame} B, body ${s.sizes.body} B, JSON ${s.sizes.json} B: frame is ${(s.sizes.frameToJson * 100).toFixed(1)}% of JSON`);
      for (const d of s.dropped) out.line(`  ${pc.yellow('dropped')} sensor ${d.index}: ${d.message}`);
    }
  });
  if (stages.some((s) => s.dropped.length > 0)) throw new CliError('ERR_CLI_INPUT', 'some sensors were dropped (see above)');
}

// ----------------------------------------------------------------------------------- transmit

export interface NetOptions {
  host: string;
  port: string;
}

export interface TransmitOptions extends ReadingOptions, NetOptions {
  intervalMs?: string;
}

function remoteOf(options: NetOptions): { address: string; port: number } {
  return { address: options.host, port: intOption(options.port, '--port', 1, 65535) as number };
}

/** A UDP socket on a free port, whose inbound frames go to the node (answers, secure-session replies). */
async function deviceSocket(node: OpenSynaptic, remote: { address: string; port: number }): Promise<{ transport: Transport; done: Promise<void> }> {
  const transport = await createTransport('udp', { port: 0, host: remote.address.includes(':') ? '::' : '0.0.0.0', remote });
  await transport.start();
  node.connect((packet) => transport.send(packet));
  const done = (async () => {
    for await (const { frame } of transport) {
      const r = node.receive(frame);
      if (r.response) await transport.send(r.response).catch(() => {});
    }
  })();
  return { transport, done };
}

/** Sends `count` readings (FULL, then DIFF or HEART as values change) to a host over UDP. */
export async function transmit(out: Output, specs: readonly string[], options: TransmitOptions, signal: AbortSignal): Promise<void> {
  const sensors = parseSensors(specs, options.sensorsJson);
  const count = intOption(options.count, '--count', 1, 100_000_000) ?? 1;
  const intervalMs = intOption(options.intervalMs, '--interval-ms', 0, 3_600_000) ?? 100;
  const remote = remoteOf(options);
  const node = sendingNode(options);
  const { transport, done } = await deviceSocket(node, remote);
  const bar = out.progress(count, 'sent');
  const kinds = { FULL: 0, DIFF: 0, HEART: 0 };
  let sent = 0;
  let bytes = 0;
  try {
    for (let i = 0; i < count && !signal.aborted; i++) {
      // The sensors as given, the first one's value stepping every other reading, as a device's
      // values change and stay: FULL first, then DIFF (changed) and HEART (unchanged) in turn.
      const step = Math.floor(i / 2) % 10;
      const reading = sensors.map((s, j) => (j === 0 && step > 0 ? ([s[0], s[1], Number(s[2]) + step / 10, s[3]] as SensorTuple) : s));
      // Stamped in ms: two frames of the same values within one second are then different frames
      // (a secure receiver drops a repeated frame as a replay).
      const r: TransmitResult = node.transmit(reading, { t: Date.now() });
      await transport.send(r.frame);
      kinds[r.kind]++;
      sent++;
      bytes += r.frame.length;
      if (out.json) out.event({ event: 'sent', index: i + 1, kind: r.kind, secure: r.secure, bytes: r.frame.length, frameHex: toHex(r.frame) });
      bar?.update(sent);
      if (i + 1 < count && intervalMs > 0) await sleep(intervalMs, signal);
    }
  } finally {
    bar?.stop();
    await transport.stop();
    await done;
  }
  out.summary({ sent, bytes, kinds, to: `${remote.address}:${remote.port}`, interrupted: signal.aborted }, () => {
    out.line(`${pc.green('sent')} ${sent} frame(s), ${bytes} bytes to ${remote.address}:${remote.port} (FULL ${kinds.FULL}, DIFF ${kinds.DIFF}, HEART ${kinds.HEART})`);
  });
  if (signal.aborted) throw new CliError('ERR_CLI_USAGE', 'interrupted');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

// -------------------------------------------------------------------------------------- watch

export interface WatchOptions {
  host: string;
  port: string;
  count?: string;
  timeoutMs?: string;
  reply: boolean;
}

/** Listens on UDP and prints each decoded reading as it arrives; answers control traffic with `--reply`. */
export async function watch(out: Output, options: WatchOptions, signal: AbortSignal): Promise<void> {
  const port = intOption(options.port, '--port', 0, 65535) as number;
  const count = intOption(options.count, '--count', 1, Number.MAX_SAFE_INTEGER);
  const timeoutMs = intOption(options.timeoutMs, '--timeout-ms', 1, 2_147_483_647);
  const node = receiver();
  const transport = await createTransport('udp', { port, host: options.host });
  const stop = () => void transport.stop();
  signal.addEventListener('abort', stop, { once: true });
  const timer = timeoutMs === undefined ? undefined : setTimeout(stop, timeoutMs);
  await transport.start();
  const at = (transport as unknown as { address?: { address: string; port: number } }).address;
  out.event({ event: 'listening', address: at?.address, port: at?.port });
  if (!out.json) out.status(`listening on udp ${at?.address}:${at?.port}`);
  let readings = 0;
  let frames = 0;
  let errors = 0;
  let ignored = 0;
  try {
    for await (const { frame, peer, receivedAt } of transport) {
      frames++;
      const r = node.receive(frame);
      if (options.reply && r.response) await transport.send(r.response, peer).catch(() => {});
      const d = describeReceive(r);
      if (r.type === 'data') readings++;
      else if (r.type === 'error') errors++;
      else if (r.type === 'ignored') ignored++;
      if (out.json) out.event({ event: 'frame', from: peer.key, receivedAt, bytes: frame.length, ...d });
      else if (r.type === 'data') {
        const sensors = (d.sensors as SensorView[]).map((s) => `${s.id}=${String(s.value)} ${s.unit}`).join('  ');
        out.line(`${pc.dim(new Date(r.timestampMs).toISOString())} ${pc.cyan(`aid ${r.aid}`)} ${cmdLabel(r.cmd)} ${String(r.fact.id)}  ${sensors}`);
      } else out.line(pc.dim(`${new Date(receivedAt).toISOString()} ${peer.key} ${d.cmdName} ${r.type}${r.type === 'error' ? `: ${r.error.message}` : r.type === 'ignored' ? `: ${r.reason}` : ''}`));
      if (count !== undefined && readings >= count) break;
    }
  } finally {
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', stop);
    await transport.stop();
  }
  out.summary({ frames, readings, ignored, errors }, () => out.status(`${frames} frame(s): ${readings} reading(s), ${ignored} ignored, ${errors} error(s)`));
  if (count !== undefined && readings < count) {
    if (signal.aborted) throw new CliError('ERR_CLI_USAGE', 'interrupted');
    throw new CliError('ERR_CLI_TIMEOUT', `received ${readings} of ${count} reading(s) before --timeout-ms ${timeoutMs}`);
  }
}

// --------------------------------------------------------------------------- ensure-id, time-sync

export interface RequestCliOptions extends NetOptions {
  device: string;
  timeoutMs?: string;
}

async function withRequester<T>(options: RequestCliOptions, run: (node: OpenSynaptic, timeoutMs: number) => Promise<T>): Promise<T> {
  const timeoutMs = intOption(options.timeoutMs, '--timeout-ms', 1, 600_000) ?? 5000;
  const node = new OpenSynaptic({ deviceId: options.device, requestTimeoutMs: timeoutMs });
  const { transport, done } = await deviceSocket(node, remoteOf(options));
  try {
    return await run(node, timeoutMs);
  } finally {
    await node.close().catch(() => {});
    await transport.stop();
    await done;
  }
}

/** ID_REQUEST → ID_ASSIGN against a server over UDP. */
export async function ensureId(out: Output, options: RequestCliOptions): Promise<void> {
  // The device id in the meta is what the server's allocator knows the device by: the same
  // device asking again gets its id back, another device another id.
  const aid = await withRequester(options, (node, timeoutMs) => node.requestId({ timeoutMs, meta: { device_id: options.device } }));
  out.result({ aid, device: options.device, server: `${options.host}:${options.port}` }, () => out.line(`${pc.green('assigned')} aid ${aid} to ${options.device}`));
}

/** TIME_REQUEST → TIME_RESPONSE against a server over UDP. */
export async function timeSync(out: Output, options: RequestCliOptions): Promise<void> {
  const sync = await withRequester(options, (node, timeoutMs) => node.syncTime({ timeoutMs }));
  out.result({ ...sync, server: `${options.host}:${options.port}` }, () =>
    out.line(`server time ${new Date(sync.serverTimeMs).toISOString()}, offset ${sync.offsetMs.toFixed(1)} ms, round trip ${sync.rttMs.toFixed(1)} ms`),
  );
}

// ----------------------------------------------------------------------------------------- db

async function openDb(path: string) {
  try {
    // Read-only never creates the file: say so plainly rather than as a driver error.
    accessSync(path, constants.R_OK);
  } catch (e) {
    throw new CliError('ERR_CLI_UNAVAILABLE', `${path}: cannot open the database (${(e as Error).message})`, { cause: e });
  }
  // Loaded here: only the db commands need the SQLite driver (a native addon) at start-up.
  const { openSqliteReadingsSink } = await import('@opensynaptic/store-sqlite');
  return openSqliteReadingsSink({ path, readonly: true });
}

/** What the SQLite file holds. */
export async function dbStatus(out: Output, path: string): Promise<void> {
  const sink = await openDb(path);
  try {
    const status = await sink.status();
    const devices = await sink.devices({});
    out.result({ backend: status.backend, location: status.location, stored: status.stored, devices }, () => {
      const s = status.stored;
      out.line(`${pc.bold(status.location)}: ${s.readings} reading(s), ${s.devices} device(s), ${s.sizeBytes ?? '?'} bytes, last write ${s.lastWriteMs === null ? 'never' : new Date(s.lastWriteMs).toISOString()}`);
      for (const d of devices) out.line(`  aid ${d.aid} ${d.deviceId}: ${d.readings} reading(s), FULL ${d.frames.FULL} DIFF ${d.frames.DIFF} HEART ${d.frames.HEART}, last seen ${new Date(d.lastSeenMs).toISOString()}`);
    });
  } finally {
    await sink.close();
  }
}

export interface QueryCliOptions {
  aid?: string;
  device?: string;
  sensor?: string;
  from?: string;
  to?: string;
  limit?: string;
  order?: string;
  format?: string;
}

/** A time bound: Unix ms, or an ISO 8601 date. */
function timeOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new CliError('ERR_CLI_USAGE', `${name}: ${JSON.stringify(value)} is neither Unix ms nor an ISO 8601 date`);
  return ms;
}

function csvField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_COLUMNS = ['aid', 'deviceId', 'sensorId', 'state', 'value', 'unit', 'timestampMs', 'receivedAtMs'] as const;

/** Readings by device, sensor and time range, as CSV, JSON or a table. */
export async function dbQuery(out: Output, path: string, options: QueryCliOptions): Promise<void> {
  const format = options.format ?? (out.json ? 'json' : 'table');
  if (!['csv', 'json', 'table'].includes(format)) throw new CliError('ERR_CLI_USAGE', `--format: ${JSON.stringify(format)} is not one of csv, json, table`);
  if (options.order !== undefined && options.order !== 'asc' && options.order !== 'desc') throw new CliError('ERR_CLI_USAGE', `--order: ${JSON.stringify(options.order)} is not asc or desc`);
  const query = {
    aid: intOption(options.aid, '--aid', 0, 0xffff_ffff),
    deviceId: options.device,
    sensorId: options.sensor,
    fromMs: timeOption(options.from, '--from'),
    toMs: timeOption(options.to, '--to'),
    limit: intOption(options.limit, '--limit', 1, 1_000_000),
    order: options.order as 'asc' | 'desc' | undefined,
  };
  const sink = await openDb(path);
  try {
    const readings = await sink.query(query);
    if (format === 'csv') {
      out.raw(`${CSV_COLUMNS.join(',')}\n${readings.map((r) => `${CSV_COLUMNS.map((c) => csvField(r[c])).join(',')}\n`).join('')}`);
    } else if (format === 'json') out.raw(`${JSON.stringify({ readings })}\n`);
    else {
      for (const r of readings) out.line(`${new Date(r.timestampMs).toISOString()}  aid ${r.aid} ${r.deviceId}  ${r.sensorId} ${r.state} ${r.value} ${r.unit}`);
      out.status(`${readings.length} reading(s)`);
    }
  } finally {
    await sink.close();
  }
}

// ------------------------------------------------------------------------------- native-check

export function nativeCheck(out: Output): void {
  // Core's accelerated packages, and the transport's UDP socket (node:dgram or the addon's batched one).
  const report = { ...backendReport(), transport: udpBackendInfo() };
  out.result(report, () => {
    for (const info of Object.values(report)) {
      const why =
        info.backendMode === 'auto'
          ? info.nativeAvailable
            ? 'auto: each operation runs where it was measured faster'
            : `auto: the native addon is unavailable (${info.nativeUnavailable?.reason ?? 'unknown'}: ${info.nativeUnavailable?.message ?? ''}), so TypeScript`
          : `OPENSYNAPTIC_CORE=${info.backendMode} asks for it`;
      out.line(`${pc.bold(info.package)} ${info.backend} (${why})`);
      for (const [op, b] of Object.entries(info.backends)) out.line(`  ${op.padEnd(18)} ${b === 'native' ? pc.green(b) : b}`);
    }
  });
}

// -------------------------------------------------------------------------------------- bench

/** A short in-process measurement: steady-state transmit and receive, ns per operation. */
export function bench(out: Output, options: { sensors?: string; ms?: string }): void {
  const n = intOption(options.sensors, '--sensors', 1, 64) ?? 1;
  const ms = intOption(options.ms, '--ms', 50, 30_000) ?? 500;
  const sensors: SensorTuple[] = Array.from({ length: n }, (_, i) => [`S${i + 1}`, 'OK', 20 + i, 'Cel']);
  const device = new OpenSynaptic({ assignedId: 42, deviceId: 'BENCH' });
  const server = receiver();
  const frames: Uint8Array[] = [];
  // FULL first (the template learned), then the steady state that a device spends its life in:
  // plain frames (the server's secure-session offer is not taken), so that the receive loop can
  // replay the recorded frames (a secure receiver drops a repeated frame as a replay).
  for (let i = 0; i < 4; i++) server.receive(device.transmit(sensors).frame);
  const bar = out.progress(2, 'phases');
  const measure = (op: (i: number) => void): { ops: number; nsPerOp: number } => {
    let ops = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(ms) * 1_000_000n;
    let now = start;
    while (now < end) {
      for (let k = 0; k < 256; k++) op(ops++);
      now = process.hrtime.bigint();
    }
    return { ops, nsPerOp: Number(now - start) / ops };
  };
  const kinds = { FULL: 0, DIFF: 0, HEART: 0 };
  const tx = measure((i) => {
    const r = device.transmit(i % 4 === 0 ? sensors : sensors.map((s) => [s[0], s[1], Number(s[2]) + (i % 100) / 10, s[3]] as SensorTuple));
    kinds[r.kind]++;
    if (frames.length < 4096) frames.push(r.frame);
  });
  bar?.update(1);
  let decoded = 0;
  const rx = measure((i) => {
    if (server.receive(frames[i % frames.length] as Uint8Array).type === 'data') decoded++;
  });
  bar?.update(2);
  bar?.stop();
  const result = { sensors: n, msPerOperation: ms, transmit: { ...tx, kinds }, receive: { ...rx, decoded }, backends: { fusion: backendReport().fusion.backend, packet: backendReport().packet.backend } };
  out.result(result, () => {
    out.line(`transmit (${n} sensor${n === 1 ? '' : 's'}): ${tx.nsPerOp.toFixed(0)} ns/op (${tx.ops} ops: FULL ${kinds.FULL}, DIFF ${kinds.DIFF}, HEART ${kinds.HEART})`);
    out.line(`receive  (${n} sensor${n === 1 ? '' : 's'}): ${rx.nsPerOp.toFixed(0)} ns/op (${rx.ops} ops, ${decoded} decoded)`);
  });
}
