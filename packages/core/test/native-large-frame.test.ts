import { DATA_FULL } from '@opensynaptic/cmd';
import { backendInfo } from '@opensynaptic/fusion';
import { encodeFrame } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { OpenSynaptic, type ReceiveResult } from '../src/index.js';
const { nativeAvailable } = backendInfo();

/**
 * Issue 8, item 1, from the network: one 8,211-byte FULL frame through `receive` used
 * to damage a native server's receiver, which then read every later frame with the header and
 * body length of the last good one. A native server must answer every frame as a TypeScript one.
 */
describe.skipIf(!nativeAvailable && !process.env.CI)('a large frame through receive', () => {
  it('leaves a native server answering as a TypeScript one', () => {
    const now = 1_700_000_000_000;
    const clock = () => now;
    const server = (coreBackend: 'ts' | 'native') => new OpenSynaptic({ assignedId: 1, deviceId: 'SERVER', clock, coreBackend });
    const ts = server('ts');
    const nat = server('native');
    const large = encodeFrame({
      cmd: DATA_FULL,
      routes: 7,
      tid: 1,
      timestamp: 0x018bcfe56800,
      body: new TextEncoder().encode(`D.1.AYvP5WgA|${'|'.repeat(8182)}`),
    });
    expect(large.length).toBe(8211);
    const devices = [42, 43, 44, 45, 46, 47].map((aid) => new OpenSynaptic({ assignedId: aid, deviceId: `DEV${aid}`, clock }));
    const frames: Uint8Array[] = [];
    for (let round = 0; round < 5; round++) {
      devices.forEach((d, i) => {
        const sensors: [string, string, number, string][] = [['T1', 'OK', 20 + round, 'Cel']];
        if (i % 2 === 1) sensors.push(['P1', 'OK', 100 + i, 'Pa']);
        frames.push(d.transmit(sensors).frame);
      });
    }
    const seen = (r: ReceiveResult) => {
      if (r.type === 'error') return { type: r.type, cmd: r.cmd, error: r.error.name, code: (r.error as { code?: string }).code };
      if (r.type !== 'data') return r;
      const { __packet_meta__: _meta, ...rest } = r.fact as unknown as Record<string, unknown>;
      return { type: r.type, cmd: r.cmd, fact: rest };
    };
    expect(seen(nat.receive(frames[0]!))).toEqual(seen(ts.receive(frames[0]!)));
    expect(seen(nat.receive(large))).toEqual(seen(ts.receive(large)));
    for (const f of frames.slice(1)) {
      const a = ts.receive(f);
      expect(a.type).toBe('data');
      expect(seen(nat.receive(f))).toEqual(seen(a));
    }
  });
});
