import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SECURE_DICT_READY } from '@opensynaptic/cmd';
import { OpenSynaptic, type SensorTuple } from '@opensynaptic/core';
import { type OpenSynapticServer, type ServerReading, serverFromConfig } from '@opensynaptic/server';
import { validateConfig } from '@opensynaptic/server/config';
import { ensureId, linkNode } from '@opensynaptic/server/device';
import { createTransport, type Transport } from '@opensynaptic/transport';
import pc from 'picocolors';
import { CliError } from './errors.js';
import type { Output } from './output.js';
import { type AttachedDashboard, addDashboard, DeviceTally, shellQuote, statusDocument, stopAndReport, writeStatusFile } from './serve.js';
import { intOption, readingJson } from './util.js';

export interface DemoOptions {
  seconds?: string;
  devices?: string;
  secure?: string;
  intervalMs?: string;
  db?: string;
  /** A broker URL, or `false` (`--no-mqtt`); default: start Debian's mosquitto when installed. */
  mqtt?: string | boolean;
  /** The dashboard's port (default 0: any free one), or `false` (`--no-dashboard`). */
  dashboard?: boolean;
  dashboardPort?: string;
  /** The dashboard map's tile server (default none: a plain grid). */
  dashboardTiles?: string;
}

/** One simulated sensor device: its own node and socket, its id from the server. */
interface SimDevice {
  name: string;
  medium: 'udp' | 'mqtt';
  /** Takes the server's secure-session offer; a plain device declines it (ignores SECURE_DICT_READY). */
  wantsSecure: boolean;
  node: OpenSynaptic;
  transport: Transport;
  aid: number;
  sent: number;
  kinds: { FULL: number; DIFF: number; HEART: number };
  secureFrames: number;
  wireBytes: number;
  jsonBytes: number;
  values: number[];
  /** Where it is, sent with each reading (the dashboard's map); two devices in three know it. */
  geohash: string | undefined;
}

/** The demo devices' places: cells of a few hundred metres in one town, one per device. */
function demoGeohash(index: number): string | undefined {
  if (index % 3 === 2) return undefined;
  const base32 = '0123456789bcdefghjkmnpqrstuvwxyz';
  return `u1zr2${base32[(index * 7 + 3) % 32]}${base32[(index * 11 + 5) % 32]}`;
}

/** The sensors a simulated device carries: a thermometer, a hygrometer, a barometer. */
const PROFILE: readonly { id: string; unit: string; base: number; step: number }[] = [
  { id: 'T1', unit: 'Cel', base: 21, step: 0.5 },
  { id: 'H1', unit: '%', base: 40, step: 1 },
  { id: 'P1', unit: 'kPa', base: 101, step: 0.2 },
];

/** Starts Debian's mosquitto when installed, else null and why (the demo then runs over UDP only). */
async function startBroker(mqtt: string | boolean | undefined): Promise<{ url: string | null; note: string; close: () => Promise<void> }> {
  const none = async () => {};
  if (mqtt === false) return { url: null, note: 'MQTT off (--no-mqtt)', close: none };
  if (typeof mqtt === 'string') return { url: mqtt, note: `MQTT broker ${mqtt}`, close: none };
  const { hasMosquitto, Mosquitto } = await import('@opensynaptic/config/mosquitto');
  if (!hasMosquitto()) return { url: null, note: 'MQTT skipped: no broker (apt-get install mosquitto, or --mqtt <url>)', close: none };
  try {
    const broker = await Mosquitto.start();
    return { url: broker.url, note: `MQTT through mosquitto started on ${broker.url}`, close: () => broker.close() };
  } catch (e) {
    return { url: null, note: `MQTT skipped: mosquitto did not start (${(e as Error).message.split('\n')[0]})`, close: none };
  }
}

/** The device's socket, linked to its node: requests out, the server's answers in. */
function link(d: Pick<SimDevice, 'node' | 'transport' | 'wantsSecure'>): Promise<void> {
  if (d.wantsSecure) return linkNode(d.node, d.transport).done;
  d.node.connect((packet) => d.transport.send(packet));
  return (async () => {
    try {
      for await (const { frame, peer } of d.transport) {
        // Declining the session: the server's offer is never taken, so the device stays plaintext.
        if (frame[0] === SECURE_DICT_READY) continue;
        const r = d.node.receive(frame);
        if (r.response !== null) d.transport.send(r.response, peer).catch(() => undefined);
      }
    } catch {
      // a destroyed transport ends the link
    }
  })();
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolveSleep) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolveSleep();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * The main job in one command: a server on loopback (UDP, and MQTT when a broker is there)
 * storing into SQLite, and simulated sensor devices that get their ids through the handshake and
 * stream readings (FULL, then DIFF as values change and HEART as they stay), some in secure
 * sessions. Shows each decoded reading live with its bytes on the wire against the same reading
 * as JSON, and the count stored; stops after `--seconds` (or Ctrl-C) and says where the data is.
 */
export async function demo(out: Output, options: DemoOptions, signal: AbortSignal): Promise<void> {
  const seconds = intOption(options.seconds, '--seconds', 1, 86_400) ?? 20;
  const count = intOption(options.devices, '--devices', 1, 200) ?? 4;
  const secureCount = intOption(options.secure, '--secure', 0, count) ?? Math.ceil(count / 2);
  const intervalMs = intOption(options.intervalMs, '--interval-ms', 10, 60_000) ?? 250;
  const db = resolve(options.db ?? join(mkdtempSync(join(tmpdir(), 'os-demo-')), 'demo.db'));
  mkdirSync(dirname(db), { recursive: true });
  const broker = await startBroker(options.mqtt);
  const transports: object[] = [{ name: 'udp', medium: 'udp', options: { host: '127.0.0.1', port: 0 } }];
  if (broker.url !== null) transports.push({ name: 'mqtt', medium: 'mqtt', options: { url: broker.url, subscribe: ['os/demo/+'], qos: 1 } });
  const { config } = validateConfig({ deviceId: 'DEMO_SERVER', server: { startId: 1000, endId: 1999 }, transports, storage: { driver: 'sqlite', path: db, synchronous: 'normal' } });
  const tally = new DeviceTally();
  let server: OpenSynapticServer;
  const meta = { config: null, database: db, startedAtMs: Date.now(), intervalMs: 1000 };
  let dashboard: AttachedDashboard | null = null;
  try {
    server = await serverFromConfig(config, { services: [tally] });
    const s = server;
    if (options.dashboard !== false) dashboard = await addDashboard(s, { port: options.dashboardPort, defaultPort: 0, tileUrl: options.dashboardTiles }, () => statusDocument(s, tally, meta));
    await server.start();
  } catch (e) {
    await broker.close();
    throw e;
  }
  const udpPort = (server.transport('udp') as unknown as { address: { port: number } }).address.port;
  const statusFile = `${db}.status.json`;
  const dashboardUrl = dashboard?.url({ withToken: true }) ?? null;
  out.event({ event: 'started', database: db, statusFile, udp: { host: '127.0.0.1', port: udpPort }, mqtt: broker.url, note: broker.note, seconds, dashboard: dashboardUrl });
  out.line(`${pc.bold('OpenSynaptic demo')}: a server on udp 127.0.0.1:${udpPort}${broker.url === null ? '' : ` and mqtt ${broker.url}`}, storing into ${db}`);
  if (dashboardUrl !== null) out.line(`${pc.green('dashboard')} ${pc.bold(dashboardUrl)} (open it in a browser while the demo runs)`);
  out.line(pc.dim(`${broker.note}; ${count} UDP device(s), ${secureCount} of them in secure sessions${broker.url === null ? '' : ', and 1 over MQTT in a secure session'}; ${seconds} s (Ctrl-C stops)`));

  const live = out.live('{counters}');
  // What each frame sent weighed, to show beside its decoded reading (by device and timestamp).
  const sentBytes = new Map<string, { wire: number; json: number; kind: string }>();
  const decoded = { frames: 0, values: 0, secure: 0, kinds: { FULL: 0, DIFF: 0, HEART: 0 } };
  const readingsLoop = (async () => {
    for await (const r of server.readings() as AsyncIterable<ServerReading>) {
      decoded.frames++;
      decoded.values += r.sensors.length;
      decoded.kinds[r.strategy]++;
      if (r.secure) decoded.secure++;
      const key = `${r.aid}:${r.timestampMs}`;
      const size = sentBytes.get(key);
      sentBytes.delete(key);
      if (out.json) out.event({ event: 'reading', aid: r.aid, deviceId: r.deviceId, via: r.via, strategy: r.strategy, secure: r.secure, timestampMs: r.timestampMs, sensors: r.sensors, wireBytes: size?.wire ?? null, jsonBytes: size?.json ?? null });
      else {
        const sizes = size === undefined ? '' : pc.dim(` ${String(size.wire).padStart(3)} B wire / ${size.json} B JSON`);
        const values = r.sensors.map((s) => `${s.id}=${Number(s.value.toFixed(2))} ${s.unit}`).join('  ');
        live.log(`${pc.cyan(`aid ${r.aid}`)} ${r.deviceId.padEnd(8)} ${r.via.padEnd(4)} ${r.strategy.padEnd(5)} ${r.secure ? pc.green('secure') : pc.dim('plain ')}${sizes}  ${values}`);
      }
    }
  })();

  const devices: SimDevice[] = [];
  const links: Promise<void>[] = [];
  const stopAll = new AbortController();
  const onAbort = () => stopAll.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => stopAll.abort(), seconds * 1000);
  let failure: unknown = null;
  try {
    const specs: { medium: 'udp' | 'mqtt'; index: number }[] = Array.from({ length: count }, (_, index) => ({ medium: 'udp' as const, index }));
    if (broker.url !== null) specs.push({ medium: 'mqtt', index: count });
    for (const { medium, index } of specs) {
      const name = `dev-${index + 1}`;
      const transport =
        medium === 'udp'
          ? await createTransport('udp', { host: '127.0.0.1', port: 0, remote: { address: '127.0.0.1', port: udpPort } })
          : await createTransport('mqtt', { url: broker.url, publishTopic: `os/demo/${name}`, subscribe: [`os/demo/${name}`], qos: 1 });
      await transport.start();
      const node = new OpenSynaptic({ deviceId: name, requestTimeoutMs: 1000 });
      // The MQTT device and the first `--secure` UDP devices take the session; the others decline.
      const d: SimDevice = { name, medium, wantsSecure: medium === 'mqtt' || index < secureCount, node, transport, aid: 0, sent: 0, kinds: { FULL: 0, DIFF: 0, HEART: 0 }, secureFrames: 0, wireBytes: 0, jsonBytes: 0, values: PROFILE.map((p) => p.base + index), geohash: demoGeohash(index) };
      devices.push(d);
      links.push(link(d));
    }
    // Every device starts with no id and asks the server for one (ID_REQUEST → ID_ASSIGN).
    await Promise.all(
      devices.map(async (d) => {
        d.aid = await ensureId(d.node, { timeoutMs: 1000, retries: 4, meta: { device_id: d.name }, signal: stopAll.signal });
        out.event({ event: 'device', name: d.name, aid: d.aid, medium: d.medium, wantsSecure: d.wantsSecure });
        live.log(`${pc.green('id')} ${d.name} got aid ${d.aid} over ${d.medium} (${d.wantsSecure ? 'takes' : 'declines'} a secure session)`);
      }),
    );
    const counters = () => {
      const sent = devices.reduce((n, d) => n + d.sent, 0);
      const wire = devices.reduce((n, d) => n + d.wireBytes, 0);
      const json = devices.reduce((n, d) => n + d.jsonBytes, 0);
      return `sent ${sent} | decoded ${decoded.frames} (FULL ${decoded.kinds.FULL} DIFF ${decoded.kinds.DIFF} HEART ${decoded.kinds.HEART}, secure ${decoded.secure}) | wire ${wire} B vs JSON ${json} B (${json === 0 ? 0 : ((wire / json) * 100).toFixed(1)}%) | stored ${stored}`;
    };
    let stored = 0;
    const statusTimer = setInterval(() => {
      void statusDocument(server, tally, meta).then((doc) => {
        stored = (doc.services.storage as { committed?: number } | undefined)?.committed ?? stored;
        try {
          writeStatusFile(statusFile, doc);
        } catch {
          // the demo goes on without its status file
        }
      });
    }, 500);
    const counterTimer = setInterval(() => live.update({ counters: counters() }), 200);
    try {
      await Promise.all(
        devices.map(async (d, i) => {
          // Staggered, so the devices do not all send in the same millisecond.
          await sleep((intervalMs / devices.length) * i, stopAll.signal);
          for (let step = 0; !stopAll.signal.aborted; step++) {
            // Every third reading repeats the last values (HEART); the others move one sensor (DIFF).
            if (step > 0 && step % 3 !== 0) {
              const k = step % PROFILE.length;
              const p = PROFILE[k] as (typeof PROFILE)[number];
              d.values[k] = Number(((d.values[k] as number) + (step % 2 === 0 ? p.step : -p.step / 2)).toFixed(2));
            }
            const sensors: SensorTuple[] = PROFILE.map((p, k) => [p.id, 'OK', d.values[k] as number, p.unit]);
            // Stamped in ms: two frames of the same values are still distinct (a secure receiver drops a replay).
            const r = d.node.transmit(sensors, d.geohash === undefined ? { t: Date.now() } : { t: Date.now(), geohash: d.geohash });
            const json = Buffer.byteLength(readingJson(d.name, sensors, r.timestampMs));
            sentBytes.set(`${d.aid}:${r.timestampMs}`, { wire: r.frame.length, json, kind: r.kind });
            await d.transport.send(r.frame);
            d.sent++;
            d.kinds[r.kind]++;
            if (r.secure) d.secureFrames++;
            d.wireBytes += r.frame.length;
            d.jsonBytes += json;
            await sleep(intervalMs, stopAll.signal);
          }
        }),
      );
    } finally {
      clearInterval(statusTimer);
      clearInterval(counterTimer);
    }
    // What was sent in the last moment reaches the server before it stops (bounded wait).
    const sentTotal = devices.reduce((n, d) => n + d.sent, 0);
    for (let waited = 0; decoded.frames < sentTotal && waited < 3000; waited += 20) await new Promise((r) => setTimeout(r, 20));
  } catch (e) {
    if (!stopAll.signal.aborted) failure = e;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    for (const d of devices) {
      d.node.connect(null);
      await d.node.close().catch(() => undefined);
      await d.transport.stop().catch(() => undefined);
    }
    await Promise.all(links);
  }
  const { doc, stopError } = await stopAndReport(server, readingsLoop, tally, meta, live, statusFile);
  await broker.close();
  if (failure !== null) throw failure;
  if (stopError !== null) throw stopError;

  // What SQLite holds now that the server flushed and closed it.
  const sqlite = await import('@opensynaptic/store-sqlite');
  const sink = await sqlite.openSqliteReadingsSink({ path: db, readonly: true });
  const stored = (await sink.status()).stored;
  await sink.close();
  const wire = devices.reduce((n, d) => n + d.wireBytes, 0);
  const json = devices.reduce((n, d) => n + d.jsonBytes, 0);
  const first = devices[0];
  // `npm run demo` has no os-node on PATH: scripts/demo.sh names the command that runs it.
  const osNode = process.env.OS_NODE_COMMAND ?? 'os-node';
  const query = `${osNode} db query ${shellQuote(db)}${first ? ` --aid ${first.aid}` : ''} --limit 20`;
  const summary = {
    interrupted: signal.aborted,
    seconds,
    database: db,
    statusFile,
    mqtt: broker.url,
    note: broker.note,
    devices: devices.map((d) => ({ name: d.name, aid: d.aid, medium: d.medium, wantsSecure: d.wantsSecure, secureSession: d.secureFrames > 0, sent: d.sent, kinds: d.kinds, secureFrames: d.secureFrames, wireBytes: d.wireBytes, jsonBytes: d.jsonBytes })),
    sent: devices.reduce((n, d) => n + d.sent, 0),
    decoded,
    stored: { readings: stored.readings, devices: stored.devices },
    server: { frames: doc.server.frames, readings: doc.server.readings, control: doc.server.control, errors: doc.server.errors, ignored: doc.server.ignored, dropped: doc.server.dropped },
    wireBytes: wire,
    jsonBytes: json,
    query,
  };
  out.summary(summary, () => {
    out.line('');
    out.line(`${pc.bold('done')}: ${summary.sent} reading(s) sent by ${devices.length} device(s), ${decoded.frames} decoded (FULL ${decoded.kinds.FULL}, DIFF ${decoded.kinds.DIFF}, HEART ${decoded.kinds.HEART}; ${decoded.secure} secure)`);
    out.line(`on the wire ${wire} B against ${json} B as JSON: ${json === 0 ? '-' : ((wire / json) * 100).toFixed(1)}%`);
    out.line(`stored in SQLite: ${stored.readings} sensor value(s) of ${decoded.values} decoded, ${stored.devices} device(s)`);
    out.line(`the data: ${db}`);
    out.line(`query it: ${pc.bold(query)}`);
    out.line(`          ${osNode} snapshot --db ${shellQuote(db)}`);
  });
  if (signal.aborted) throw new CliError('ERR_CLI_USAGE', 'interrupted');
}
