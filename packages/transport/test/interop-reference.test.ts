import { type ChildProcess, spawn } from 'node:child_process';
import { referencePython } from '@opensynaptic/config/reference';
import { describe, expect, it } from 'vitest';
import { createTcpTransport, type StreamSocketTransport } from '../src/tcp.js';
import { createUdpTransport } from '../src/udp.js';

// Interoperability with the reference implementation (opensynaptic 1.4.2, Python): its own UDP and
// TCP transporters (core/transport_layer/protocols) send to ours and receive from ours.
const found = await referencePython();
const python = found.python;
if (python === null) console.log(`reference interop tests skipped: no Python with opensynaptic 1.4.2 (${found.reason})`);

// Prints "READY" when listening and "RESULT <json>" at the end (the reference's logger may print too).
const PY = `
import sys, json, threading, time, logging
logging.disable(logging.CRITICAL)
from opensynaptic.core.transport_layer.protocols import tcp, udp
args = json.loads(sys.argv[1])
proto = {'tcp': tcp, 'udp': udp}[args['proto']]
if args['mode'] == 'send':
    cfg = {'transport_options': {'host': '127.0.0.1', 'port': args['port']}}
    ok = [bool(proto.send(bytes.fromhex(h), cfg)) for h in args['frames']]
    print('RESULT ' + json.dumps({'ok': ok}), flush=True)
else:
    got = []
    done = threading.Event()
    def on_frame(data, addr):
        got.append(bytes(data).hex())
        if len(got) >= args['count']:
            done.set()
    cfg = {'transport_options': {'listen_host': '127.0.0.1', 'listen_port': args['port']}}
    threading.Thread(target=proto.listen, args=(cfg, on_frame), daemon=True).start()
    time.sleep(0.3)
    print('READY', flush=True)
    done.wait(10)
    print('RESULT ' + json.dumps({'got': got}), flush=True)
`;

function runPy(args: object): { child: ChildProcess; ready: Promise<void>; result: Promise<Record<string, unknown>> } {
  const child = spawn(python!, ['-c', PY, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('READY')) onReady();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line) resolve(JSON.parse(line.slice(7)));
      else reject(new Error(`reference script exited ${code}: ${err.slice(-800)}${out.slice(-400)}`));
    });
  });
  return { child, ready, result };
}

async function freePort(): Promise<number> {
  const t = createTcpTransport({ listen: { host: '127.0.0.1', port: 0 } });
  await t.start();
  const port = (t.address as { port: number }).port;
  await t.destroy();
  return port;
}

// Frames of the shapes the reference sends (a FULL frame's first bytes, binary with 0x00/0x03).
const FRAMES = ['3f010000002a00000001', '00010203ff', 'aa'.repeat(300)];
const hex = (f: Uint8Array) => Buffer.from(f).toString('hex');

describe.skipIf(python === null)('interop with the reference (opensynaptic 1.4.2)', () => {
  it('UDP: the reference sender reaches our receiver, and ours reaches its listener', async () => {
    const ours = createUdpTransport({ host: '127.0.0.1', port: 0 });
    await ours.start();
    try {
      const sent = await runPy({ mode: 'send', proto: 'udp', port: ours.address!.port, frames: FRAMES }).result;
      expect(sent.ok).toEqual([true, true, true]);
      const it = ours.frames();
      const got: string[] = [];
      for (let i = 0; i < FRAMES.length; i++) got.push(hex((await it.next()).value!.frame));
      expect(got).toEqual(FRAMES);

      const port = await freePort();
      const listener = runPy({ mode: 'listen', proto: 'udp', port, count: FRAMES.length });
      await listener.ready;
      for (const f of FRAMES) await ours.send(Buffer.from(f, 'hex'), { address: '127.0.0.1', port });
      expect((await listener.result).got).toEqual(FRAMES);
    } finally {
      await ours.destroy();
    }
  });

  it('TCP reference mode: the reference sender reaches our receiver, and ours reaches its listener (one frame per connection)', async () => {
    const ours: StreamSocketTransport = createTcpTransport({ mode: 'reference', listen: { host: '127.0.0.1', port: 0 } });
    await ours.start();
    try {
      const sent = await runPy({ mode: 'send', proto: 'tcp', port: (ours.address as { port: number }).port, frames: FRAMES }).result;
      expect(sent.ok).toEqual([true, true, true]);
      const it = ours.frames();
      const got: string[] = [];
      for (let i = 0; i < FRAMES.length; i++) got.push(hex((await it.next()).value!.frame));
      expect(got).toEqual(FRAMES);

      const port = await freePort();
      const listener = runPy({ mode: 'listen', proto: 'tcp', port, count: FRAMES.length });
      await listener.ready;
      for (const f of FRAMES) await ours.send(Buffer.from(f, 'hex'), { address: '127.0.0.1', port });
      expect((await listener.result).got).toEqual(FRAMES);
    } finally {
      await ours.destroy();
    }
  });
});
