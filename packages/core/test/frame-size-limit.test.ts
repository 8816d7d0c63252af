import { encodeFrame, FrameTooLargeError } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { OpenSynaptic } from '../src/index.js';

const clock = () => 1_700_000_000_000;
const utf8 = (s: string) => new TextEncoder().encode(s);
const full = (body: string) => encodeFrame({ cmd: 63, routes: 42, tid: 1, timestamp: clock(), body: utf8(body) });

for (const coreBackend of ['ts', 'native'] as const) {
  describe(`${coreBackend}: the node's maxFrameSize`, () => {
    it('reaches receive and the fusion engine: a longer frame is refused with FrameTooLargeError', () => {
      let node: OpenSynaptic;
      try {
        node = new OpenSynaptic({ assignedId: 1, clock, coreBackend, maxFrameSize: 64 });
      } catch (e) {
        if (coreBackend === 'native') return; // the addon is not built here
        throw e;
      }
      expect(node.fusion.maxFrameSize).toBe(64);
      expect(node.protocol.maxFrameSize).toBe(64);
      const ok = full(`D.U.AAAAAAAA|&${'u'.repeat(33)}|`);
      expect(ok.length).toBe(64);
      expect(node.fusion.decompress(ok).geohash).toBe('u'.repeat(33));
      const big = full(`D.U.AAAAAAAA|&${'u'.repeat(34)}|`);
      expect(() => node.fusion.decompress(big)).toThrow(FrameTooLargeError);
      const out = node.receive(big);
      expect(out.type).toBe('error');
      expect(out.type === 'error' && out.error).toBeInstanceOf(FrameTooLargeError);
      expect(node.receive(ok)).toMatchObject({ type: 'data', fact: { geohash: 'u'.repeat(33) } });
    });

    it('defaults to 65,507 bytes; a layer option wins over it', () => {
      let node: OpenSynaptic;
      try {
        node = new OpenSynaptic({ assignedId: 1, clock, coreBackend, maxFrameSize: 1000, fusion: { maxFrameSize: 2000 } });
      } catch (e) {
        if (coreBackend === 'native') return;
        throw e;
      }
      expect(node.fusion.maxFrameSize).toBe(2000);
      expect(node.protocol.maxFrameSize).toBe(1000);
      const d = new OpenSynaptic({ clock, coreBackend });
      expect([d.fusion.maxFrameSize, d.protocol.maxFrameSize]).toEqual([65_507, 65_507]);
    });
  });
}
