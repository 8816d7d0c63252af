import { OpenSynaptic } from '@opensynaptic/core';
import { buildIdRequest, buildPing, parseControlPacket } from '@opensynaptic/handshake';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { osNode } from './helpers/run.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sensors = [
  ['T1', 'OK', 21.5, 'Cel'],
  ['H1', 'OK', 40, '%'],
] as const;

/** A FULL and a DIFF frame of one device, built by the node, and what a receiving node decodes from them. */
function frames() {
  const device = new OpenSynaptic({ assignedId: 42, deviceId: 'NODE_A' });
  const sent = [device.transmit([...sensors].map((s) => [...s])), device.transmit([['T1', 'OK', 22.5, 'Cel'], ['H1', 'OK', 40, '%']])];
  sent.push(...[0, 1].map(() => device.transmit([['T1', 'OK', 23, 'Cel'], ['H1', 'OK', 41, '%']])));
  const receiver = new OpenSynaptic({ assignedId: 1, deviceId: 'R' });
  const decoded = sent.map((s) => receiver.receive(s.frame));
  return { sent, decoded };
}

describe('decode', () => {
  it('decodes frames from stdin, in order, to the facts the node decodes', async () => {
    const { sent, decoded } = frames();
    const r = await osNode(['decode', '--json'], { input: `${sent.map((s) => hex(s.frame)).join('\n')}\n` });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { frames: { type: string; aid: number; fact: unknown; bytes: number; cmd: number }[] };
    expect(out.frames).toHaveLength(sent.length);
    for (const [i, f] of out.frames.entries()) {
      const d = decoded[i];
      if (d?.type !== 'data') throw new Error('the library did not decode the frame');
      expect(f.type).toBe('data');
      expect(f.aid).toBe(42);
      expect(f.cmd).toBe(d.cmd);
      expect(f.bytes).toBe(sent[i]?.frame.length);
      expect(f.fact).toEqual(JSON.parse(JSON.stringify(d.fact)));
    }
  });

  it('decodes hex arguments, a hex file and a raw file alike', async () => {
    const { sent, decoded } = frames();
    const first = sent[0]?.frame as Uint8Array;
    const dir = mkdtempSync(join(tmpdir(), 'os-cli-'));
    writeFileSync(join(dir, 'frames.hex'), `# a comment\n${hex(first)}\n`);
    writeFileSync(join(dir, 'frame.bin'), first);
    const expected = JSON.parse(JSON.stringify(decoded[0]?.type === 'data' ? decoded[0].fact : null));
    for (const args of [['decode', hex(first)], ['decode', '--file', join(dir, 'frames.hex')], ['decode', '--binary', '--file', join(dir, 'frame.bin')]]) {
      const r = await osNode([...args, '--json']);
      expect(r.code, args.join(' ')).toBe(0);
      expect(JSON.parse(r.stdout).frames[0].fact).toEqual(expected);
    }
    // Human output names the device and each sensor.
    const human = await osNode(['decode', hex(first)]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('aid 42');
    expect(human.stdout).toContain('T1 OK 294.65');
  });

  it('parses control packets without acting on them', async () => {
    const request = buildIdRequest(7, { device_id: 'NODE_A' });
    const r = await osNode(['decode', hex(request), hex(buildPing(9)), '--json']);
    expect(r.code).toBe(0);
    const [id, ping] = JSON.parse(r.stdout).frames;
    expect(id).toMatchObject({ type: 'control', cmdName: 'ID_REQUEST', result: JSON.parse(JSON.stringify(parseControlPacket(request))) });
    expect(id.result.meta).toEqual({ device_id: 'NODE_A' });
    expect(ping).toMatchObject({ type: 'control', cmdName: 'PING', result: { seq: 9 } });
  });

  it('refuses bad input with exit code 3 (bad data) or 5 (unreadable file), naming the problem', async () => {
    const { sent } = frames();
    const good = hex(sent[0]?.frame as Uint8Array);
    const corrupt = `${good.slice(0, -2)}${good.endsWith('00') ? '01' : '00'}`;
    const cases: [string[], string | undefined, number, RegExp][] = [
      [['decode', 'zz'], undefined, 3, /not hex/],
      [['decode', 'abc'], undefined, 3, /odd number/],
      [['decode', '3f0100'], undefined, 3, /too short/],
      [['decode', corrupt], undefined, 3, /frame 1 did not decode/],
      [['decode'], '', 3, /no frame/],
      [['decode', '--file', '/nonexistent/frames.hex'], undefined, 5, /cannot read/],
    ];
    for (const [args, input, code, message] of cases) {
      const r = await osNode(args, input === undefined ? {} : { input });
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(message);
      const j = await osNode([...args, '--json'], input === undefined ? {} : { input });
      expect(j.code).toBe(code);
      const err = JSON.parse(j.stderr.trim().split('\n').at(-1) as string);
      expect(err.exitCode).toBe(code);
      expect(err.error.code).toMatch(/^ERR_/);
    }
  });
});

describe('inject', () => {
  it("prints each stage as the library makes it: fact, body, frame and sizes against the reading's JSON", async () => {
    const r = await osNode(['inject', '--aid', '42', '--device', 'NODE_A', 'T1:21.5:Cel', 'H1:40:%', '--count', '5', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { stages } = JSON.parse(r.stdout) as {
      stages: { kind: string; aid: number; fact: unknown; body: string | undefined; frameHex: string; timestampMs: number; json: string; sizes: { frame: number; body: number; json: number } }[];
    };
    expect(stages).toHaveLength(5);
    // The same node, fed the same readings at the same times, makes the same stages byte for byte.
    const node = new OpenSynaptic({ assignedId: 42, deviceId: 'NODE_A' });
    const receiver = new OpenSynaptic({ assignedId: 1, deviceId: 'R' });
    for (const s of stages) {
      const lib = node.transmit([...sensors].map((x) => [...x]), { detail: true, t: s.timestampMs });
      expect(s.kind).toBe(lib.kind);
      expect(s.aid).toBe(lib.aid);
      expect(s.fact).toEqual(lib.fact);
      expect(s.body).toEqual(lib.body);
      expect(s.frameHex).toBe(hex(lib.frame));
      expect(s.sizes.frame).toBe(lib.frame.length);
      expect(s.sizes.body).toBe(Buffer.byteLength(lib.body ?? ''));
      const json = JSON.parse(s.json);
      expect(s.sizes.json).toBe(Buffer.byteLength(s.json));
      expect(json.sensors.map((x: { id: string; value: number; unit: string }) => [x.id, x.value, x.unit])).toEqual([['T1', 21.5, 'Cel'], ['H1', 40, '%']]);
      // And the frame decodes to the standardized values.
      const d = receiver.receive(Buffer.from(s.frameHex, 'hex'));
      if (d.type !== 'data') throw new Error(`frame did not decode: ${d.type}`);
      expect(d.fact.s1_v).toBe(lib.fact?.s1_v);
    }
    expect(stages.map((s) => s.kind)).toEqual(['FULL', 'FULL', 'FULL', 'HEART', 'HEART']);
  });

  it('takes sensors as JSON tuples too, and refuses bad sensors (3) and a missing --aid (2)', async () => {
    const ok = await osNode(['inject', '--aid', '7', '--sensors-json', '[["P1","OK",101.3,"kPa"]]', '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).stages[0].fact.s1_id).toBe('P1');
    const cases: [string[], number, RegExp][] = [
      [['inject', '--aid', '7', 'T1:abc:Cel'], 3, /T1:abc:Cel/],
      [['inject', '--aid', '7', 'T1:1:Furlong'], 3, /dropped/],
      [['inject', '--aid', '7', '--sensors-json', '{'], 3, /not JSON/],
      [['inject', '--aid', '7', '--sensors-json', '[["a"]]'], 3, /sensors-json\[0\]/],
      [['inject', 'T1:1:Cel'], 2, /--aid/],
      [['inject', '--aid', '0', 'T1:1:Cel'], 2, /--aid/],
      [['inject', '--aid', '7'], 2, /no sensors/],
    ];
    for (const [args, code, message] of cases) {
      const r = await osNode(args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr + r.stdout).toMatch(message);
    }
  });
});
