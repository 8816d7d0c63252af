/**
 * Frames per second and one-way latency (p50/p99) on loopback for UDP, TCP streaming, WebSocket
 * and MQTT QoS 0 through mosquitto, with 22- and 138-byte frames, beside the plain library each
 * one stands on (node:dgram, node:net with the same framing, ws, mqtt.js) measured in the same
 * run, so that our overhead is a ratio. The sender runs in a child process (BENCH_THREAD=1: a
 * worker thread), so that the receiver has its own core and its CPU time per frame, printed
 * beside the rates, is its own: on a shared machine that is steadier than a rate. UDP runs our transport on each backend (`native`, the
 * addon's recvmmsg/sendmmsg socket, and `ts`, node:dgram) beside plain node:dgram.
 *
 * - throughput: the sender sends `N` frames as fast as the medium takes them (UDP: paced at
 *   BENCH_UDP_RATE frames/s, default 200,000, and the loss at that rate is reported);
 *   frames/s = frames received / (last received - first sent).
 * - latency: one frame in flight at a time (the next leaves once the receiver has the previous),
 *   one-way time from the sender's clock stamp in the frame to its arrival.
 * Medians of BENCH_RUNS runs (default 3) on one connection per case. Under a minute by default; BENCH_LONG=1 sends five
 * times as many frames and makes 5 runs.
 */
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData as threadData } from 'node:worker_threads';

// The sender's parameters and channel: a worker thread's, or a child process's (UDP).
const CHILD = process.env.BENCH_SENDER;
const workerData = CHILD ? JSON.parse(CHILD) : threadData;
const channel = CHILD
  ? { on: (f) => process.on('message', f), post: (m) => process.send(m) }
  : { on: (f) => parentPort?.on('message', f), post: (m) => parentPort.postMessage(m) };

const LONG = process.env.BENCH_LONG === '1';
/** BENCH_THREAD=1: the sender in a worker thread of the receiver's process, as before (default: a child process). */
const IN_THREAD = process.env.BENCH_THREAD === '1';
const RUNS = Number(process.env.BENCH_RUNS ?? (LONG ? 5 : 3));
const SCALE = LONG ? 5 : 1;
const UDP_RATE = Number(process.env.BENCH_UDP_RATE ?? 200_000);
const UDP_BURST = 256;
const SIZES = (process.env.BENCH_SIZES ?? '22,138').split(',').map(Number);
const MEDIA = (process.env.BENCH_MEDIA ?? 'udp,tcp,websocket,mqtt').split(',');
const now = () => performance.timeOrigin + performance.now();

/** Frames per medium and phase (kept small: each run takes well under a second). */
const FRAMES = { udp: 30_000, tcp: 150_000, websocket: 50_000, mqtt: 20_000 };
const LATENCY_FRAMES = 500;
/** Sends in flight during a throughput phase (mqtt.js adds a listener per blocked publish). */
const WINDOW = { udp: 0, tcp: 2048, websocket: 2048, mqtt: 256 };

/** A frame: the send time (ms, float64), the phase and the index. */
function frameOf(size, phase, i, stamp) {
  const f = new Uint8Array(size);
  const v = new DataView(f.buffer);
  v.setFloat64(0, stamp, true);
  v.setUint32(8, phase, true);
  v.setUint32(12, i, true);
  return f;
}

// ---------------------------------------------------------------------------------------------
// The sender (worker thread)

async function sender() {
  const { medium, impl, size, target, rate } = workerData;
  const send = await openSender(medium, impl, target);
  const inbox = [];
  let wake;
  channel.on((m) => {
    inbox.push(m);
    wake?.();
  });
  const next = async () => {
    while (inbox.length === 0) await new Promise((r) => (wake = r));
    return inbox.shift();
  };
  channel.post({ ready: true });
  for (;;) {
    const { phase, mode, n } = await next();
    if (mode === 'end') break;
    const t0 = now();
    const cpu0 = process.cpuUsage();
    if (mode === 'latency') {
      // One frame in flight end to end: the next leaves once the receiver has the previous.
      for (let i = 0; i < n; i++) {
        await send.one(frameOf(size, phase, i, now()));
        await next();
      }
    } else if (medium === 'udp') {
      // Paced: \`rate\` frames/s, in small bursts.
      let i = 0;
      while (i < n) {
        // At most UDP_BURST per turn: a sender that fell behind catches up in steps, not in one
        // burst of thousands of pending sends (whose promises and GC then cost more than the sends).
        const due = Math.min(n, i + UDP_BURST, Math.floor(((now() - t0) / 1000) * rate) + 1);
        while (i < due) send.fire(frameOf(size, phase, i++, now()));
        await new Promise((r) => setImmediate(r));
      }
      await send.flush();
    } else {
      // A window of sends in flight: a counter and one waiter (a race over the window would cost O(window) per frame).
      let inflight = 0;
      let room;
      const settled = () => {
        inflight--;
        room?.();
      };
      for (let i = 0; i < n; i++) {
        inflight++;
        send.one(frameOf(size, phase, i, now())).then(settled, settled);
        while (inflight >= WINDOW[medium]) await new Promise((r) => (room = r));
      }
      while (inflight > 0) await new Promise((r) => (room = r));
    }
    const cpu = process.cpuUsage(cpu0);
    // The sending process's CPU per frame sent, and its pace (frames/s offered).
    channel.post({ t0, txCpu: (cpu.user + cpu.system) / n, offered: n / ((now() - t0) / 1000) });
  }
  await send.close();
  channel.post({ closed: true });
}

async function openSender(medium, impl, target) {
  if (impl !== 'plain') {
    const dist = new URL('../dist/', import.meta.url);
    let t;
    if (medium === 'udp') t = (await import(new URL('udp.js', dist))).createUdpTransport({ host: '127.0.0.1', port: 0, remote: target, maxPendingSends: 1 << 20, sendBufferSize: 4 << 20, backend: BACKEND[impl], gso: impl !== 'ours-native-nogso' });
    if (medium === 'tcp') t = (await import(new URL('tcp.js', dist))).createTcpTransport({ connect: target, maxPendingSends: 1 << 20 });
    if (medium === 'websocket') {
      const { WebSocket } = await import('ws');
      t = (await import(new URL('websocket.js', dist))).createWebSocketTransport({ url: target.url, WebSocket, maxPendingSends: 1 << 20, maxPendingBytes: 64 << 20 });
    }
    if (medium === 'mqtt') t = (await import(new URL('mqtt.js', dist))).createMqttTransport({ url: target.url, subscribe: false, publishTopic: 'bench/os/sensors/raw', maxPendingSends: 1 << 20 });
    await t.start();
    let last = Promise.resolve();
    return {
      one: (f) => t.send(f),
      fire: (f) => {
        last = t.send(f).catch(() => undefined);
      },
      flush: () => last,
      close: () => t.destroy(),
    };
  }
  // The plain libraries, used as directly as they allow.
  if (medium === 'udp') {
    const dgram = await import('node:dgram');
    const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    await new Promise((r) => s.bind(0, '127.0.0.1', r));
    let last = Promise.resolve();
    return {
      one: (f) => new Promise((r) => s.send(f, target.port, target.address, r)),
      fire: (f) => {
        last = new Promise((r) => s.send(f, target.port, target.address, r));
      },
      flush: () => last,
      close: () => new Promise((r) => s.close(r)),
    };
  }
  if (medium === 'tcp') {
    const net = await import('node:net');
    const s = net.connect({ host: target.host, port: target.port, noDelay: true });
    await new Promise((r) => s.once('connect', r));
    // The same framing as ours (u32 BE length), batched per tick the same way.
    let batch = [];
    let waiters = [];
    const flush = () => {
      const frames = batch;
      const ws = waiters;
      batch = [];
      waiters = [];
      let size = 0;
      for (const f of frames) size += 4 + f.length;
      const out = Buffer.allocUnsafe(size);
      let at = 0;
      for (const f of frames) {
        out.writeUInt32BE(f.length, at);
        out.set(f, at + 4);
        at += 4 + f.length;
      }
      s.write(out, () => {
        for (const w of ws) w();
      });
    };
    return {
      one: (f) =>
        new Promise((r) => {
          if (batch.length === 0) queueMicrotask(flush);
          batch.push(f);
          waiters.push(r);
        }),
      close: () => s.destroy(),
    };
  }
  if (medium === 'websocket') {
    const { WebSocket } = await import('ws');
    const ws = new WebSocket(target.url);
    await new Promise((r) => ws.once('open', r));
    return {
      one: (f) => new Promise((r) => ws.send(f, { binary: true }, r)),
      close: () => ws.terminate(),
    };
  }
  const mqtt = (await import('mqtt')).default;
  const c = await mqtt.connectAsync(target.url, { protocolVersion: 5 });
  return {
    one: (f) => new Promise((r) => c.publish('bench/os/sensors/raw', Buffer.from(f.buffer, f.byteOffset, f.length), { qos: 0 }, r)),
    close: () => c.endAsync(),
  };
}

// ---------------------------------------------------------------------------------------------
// The receiver (main thread)

/** Our transport's UDP backend per implementation name. */
const BACKEND = { ours: 'auto', 'ours-native': 'native', 'ours-native-nogso': 'native', 'ours-ts': 'ts' };

async function openReceiver(medium, impl, broker) {
  const dist = new URL('../dist/', import.meta.url);
  if (impl !== 'plain') {
    let t;
    let target;
    const inbound = { maxFrames: 1 << 16, maxBytes: 64 << 20 };
    if (medium === 'udp') {
      t = (await import(new URL('udp.js', dist))).createUdpTransport({ host: '127.0.0.1', port: 0, recvBufferSize: 4 << 20, inbound, backend: BACKEND[impl] });
      await t.start();
      target = { address: '127.0.0.1', port: t.address.port };
    } else if (medium === 'tcp') {
      t = (await import(new URL('tcp.js', dist))).createTcpTransport({ listen: { host: '127.0.0.1', port: 0 }, inbound });
      await t.start();
      target = { host: '127.0.0.1', port: t.address.port };
    } else if (medium === 'websocket') {
      t = (await import(new URL('websocket.js', dist))).createWebSocketTransport({ listen: { host: '127.0.0.1', port: 0 }, inbound });
      await t.start();
      target = { url: `ws://127.0.0.1:${t.address.port}` };
    } else {
      t = (await import(new URL('mqtt.js', dist))).createMqttTransport({ url: broker.url, subscribe: ['bench/os/sensors/#'], inbound });
      await t.start();
      target = { url: broker.url };
    }
    return {
      target,
      consume(onFrame) {
        void (async () => {
          for await (const m of t) onFrame(m.frame);
        })();
      },
      close: () => t.destroy(),
    };
  }
  if (medium === 'udp') {
    const dgram = await import('node:dgram');
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    await new Promise((r) => s.bind(0, '127.0.0.1', r));
    return { target: { address: '127.0.0.1', port: s.address().port }, consume: (on) => s.on('message', (m) => on(m)), close: () => new Promise((r) => s.close(r)) };
  }
  if (medium === 'tcp') {
    const net = await import('node:net');
    let on = () => undefined;
    const server = net.createServer((sock) => {
      let pending = Buffer.alloc(0);
      sock.on('data', (chunk) => {
        let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        let at = 0;
        while (buf.length - at >= 4) {
          const n = buf.readUInt32BE(at);
          if (buf.length - at - 4 < n) break;
          on(buf.subarray(at + 4, at + 4 + n));
          at += 4 + n;
        }
        pending = buf.subarray(at);
        buf = undefined;
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return {
      target: { host: '127.0.0.1', port: server.address().port },
      consume: (fn) => {
        on = fn;
      },
      close: () => new Promise((r) => server.close(r)),
    };
  }
  if (medium === 'websocket') {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise((r) => wss.once('listening', r));
    let on = () => undefined;
    wss.on('connection', (ws) => ws.on('message', (d) => on(d)));
    return {
      target: { url: `ws://127.0.0.1:${wss.address().port}` },
      consume: (fn) => {
        on = fn;
      },
      close: () => {
        for (const c of wss.clients) c.terminate();
        return new Promise((r) => wss.close(r));
      },
    };
  }
  const mqtt = (await import('mqtt')).default;
  const c = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  await c.subscribeAsync('bench/os/sensors/#', { qos: 0 });
  return { target: { url: broker.url }, consume: (on) => c.on('message', (_t, p) => on(p)), close: () => c.endAsync() };
}

/** One medium, implementation and size: RUNS throughput phases and RUNS latency phases on one connection. */
async function runCase(medium, impl, size, broker) {
  const rx = await openReceiver(medium, impl, broker);
  const data = { medium, impl, size, target: rx.target, rate: UDP_RATE };
  const worker = IN_THREAD ? new Worker(new URL(import.meta.url), { workerData: data }) : childSender(data);
  const replies = [];
  let wake;
  worker.on('message', (m) => {
    replies.push(m);
    wake?.();
  });
  let failed;
  worker.on('error', (e) => {
    failed = e;
    wake?.();
  });
  const reply = async () => {
    while (replies.length === 0 && !failed) await new Promise((r) => (wake = r));
    if (failed) throw failed;
    return replies.shift();
  };
  let phase = 0;
  let mode = 'throughput';
  let got = 0;
  let last = 0;
  let lat;
  let done = () => undefined;
  rx.consume((f) => {
    const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
    if (v.getUint32(8, true) !== phase) return; // a late frame of an earlier phase
    const t = now();
    if (mode === 'latency') {
      lat[got] = t - v.getFloat64(0, true);
      worker.postMessage('next');
    }
    got++;
    last = t;
    if (got === lat?.length || got === expected) done();
  });
  let expected = 0;
  const out = { rate: [], lost: [], p50: [], p99: [], cpu: [], txCpu: [], offered: [] };
  try {
    await reply();
    for (const m of ['throughput', 'latency']) {
      for (let r = 0; r < RUNS; r++) {
        phase++;
        mode = m;
        got = 0;
        expected = (m === 'latency' ? LATENCY_FRAMES : FRAMES[medium]) * SCALE;
        lat = m === 'latency' ? new Float64Array(expected) : undefined;
        const all = new Promise((resolve) => {
          done = resolve;
        });
        const cpu0 = process.cpuUsage();
        worker.postMessage({ phase, mode: m, n: expected });
        const { t0, txCpu, offered } = await reply();
        // UDP may lose frames: wait until they stop coming.
        const deadline = now() + 20_000;
        while (got < expected && now() < deadline) {
          const before = got;
          await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 200))]);
          if (medium === 'udp' && got === before) break;
        }
        if (m === 'throughput') {
          const cpu = process.cpuUsage(cpu0);
          out.rate.push(got / ((last - t0) / 1000));
          out.lost.push((expected - got) / expected);
          // The receiver's CPU (every thread of its process) per frame: steadier than a rate on a shared machine.
          if (!IN_THREAD && got > 0) out.cpu.push((cpu.user + cpu.system) / got);
          if (!IN_THREAD) out.txCpu.push(txCpu);
          out.offered.push(offered);
        } else {
          const sorted = Array.from(lat.subarray(0, got)).sort((a, b) => a - b);
          out.p50.push(sorted[Math.floor(sorted.length * 0.5)] * 1000);
          out.p99.push(sorted[Math.floor(sorted.length * 0.99)] * 1000);
        }
      }
    }
    worker.postMessage({ mode: 'end' });
    await reply();
  } finally {
    await worker.terminate();
    await rx.close();
  }
  return { rate: median(out.rate), lost: median(out.lost), p50: median(out.p50), p99: median(out.p99), cpu: out.cpu.length ? median(out.cpu) : Number.NaN, txCpu: out.txCpu.length ? median(out.txCpu) : Number.NaN, offered: median(out.offered) };
}

/** A sender in a child process with a worker's interface (UDP: the receiver keeps its core). */
function childSender(data) {
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, BENCH_SENDER: JSON.stringify(data) }, stdio: 'inherit' });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  return {
    on(event, f) {
      if (event === 'message') child.on('message', f);
      else if (event === 'error') child.on('error', f);
    },
    postMessage: (m) => child.send(m),
    terminate: async () => {
      if (!exited) {
        child.kill();
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function startBroker() {
  const { ensureDebianPackages } = await import('@opensynaptic/config/apt');
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir, userInfo } = await import('node:os');
  const { join } = await import('node:path');
  const net = await import('node:net');
  ensureDebianPackages([{ program: '/usr/sbin/mosquitto', pkg: 'mosquitto' }]);
  const probe = net.createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const dir = mkdtempSync(join(tmpdir(), 'os-bench-mosquitto-'));
  writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nuser ${userInfo().username}\nmax_queued_messages 1000000\nlog_dest stderr\nlog_type error\n`);
  const child = spawn('/usr/sbin/mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const c = net.connect({ port, host: '127.0.0.1' });
      c.once('connect', () => {
        c.destroy();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main() {
  const started = Date.now();
  const { loadavg } = await import('node:os');
  const loadBefore = loadavg();
  const broker = MEDIA.includes('mqtt') ? await startBroker() : undefined;
  const plainName = { udp: 'node:dgram', tcp: 'node:net', websocket: 'ws', mqtt: 'mqtt.js' };
  // UDP: our transport on each backend (the addon's batched socket, node:dgram), beside plain dgram.
  // ours-native-nogso: one datagram per message, as from many devices (nothing for the kernel to coalesce).
  const ours = { udp: ['ours-native', 'ours-native-nogso', 'ours-ts'], tcp: ['ours'], websocket: ['ours'], mqtt: ['ours'] };
  const rows = [];
  try {
    for (const medium of MEDIA) {
      for (const size of SIZES) {
        const res = {};
        for (const impl of [...ours[medium], 'plain']) res[impl] = await runCase(medium, impl, size, broker);
        const p = res.plain;
        for (const impl of ours[medium]) {
          const o = res[impl];
          const label = { udp: `udp (${impl.slice(5).replace('-nogso', ', no GSO')})`, tcp: 'tcp stream', websocket: 'websocket', mqtt: 'mqtt QoS0 (mosquitto)' }[medium];
          rows.push({
            medium: label,
            bytes: size,
            'frames/s': Math.round(o.rate).toLocaleString('en-US'),
            [`plain frames/s`]: `${Math.round(p.rate).toLocaleString('en-US')} (${plainName[medium]})`,
            'ours/plain': (o.rate / p.rate).toFixed(2),
            'rx CPU µs/frame (ours/plain)': `${o.cpu.toFixed(2)} / ${p.cpu.toFixed(2)}`,
            'tx CPU µs/frame (ours/plain)': `${o.txCpu.toFixed(2)} / ${p.txCpu.toFixed(2)}`,
            ...(medium === 'udp' ? { 'offered/s (ours/plain)': `${Math.round(o.offered / 1000)}k / ${Math.round(p.offered / 1000)}k` } : {}),
            'p50 µs': o.p50.toFixed(0),
            'p99 µs': o.p99.toFixed(0),
            'plain p50/p99 µs': `${p.p50.toFixed(0)} / ${p.p99.toFixed(0)}`,
            ...(medium === 'udp' ? { 'udp loss (ours/plain)': `${(o.lost * 100).toFixed(2)}% / ${(p.lost * 100).toFixed(2)}%` } : {}),
          });
        }
        console.error(`bench: ${medium} ${size} B done (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      }
    }
  } finally {
    await broker?.close();
  }
  const load = (l) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`\nTransports on loopback, medians of ${RUNS} runs; UDP paced at ${UDP_RATE.toLocaleString('en-US')} frames/s offered; the sender in ${IN_THREAD ? 'a worker thread' : 'a child process'}; rx CPU: the receiving process's CPU time per frame received.`);
  console.table(rows);
  console.log(`${((Date.now() - started) / 1000).toFixed(1)} s; load average before ${load(loadBefore)}, after ${load(loadavg())}`);
}

if (isMainThread && !CHILD) await main();
else {
  await sender();
  if (CHILD) process.exit(0);
}
