import { OpenSynaptic } from '@opensynaptic/core';
import type { Suite } from '../types.js';
import { bytesToHex, Checker } from '../util.js';
import { checkDecoded, deepDiff } from './fusion.js';
import { plain, transmitOptions } from './handshake.js';

interface PipelineCall {
  sensors: unknown[];
  kwargs: Record<string, unknown>;
  notimestamp: boolean;
  clock: number;
}

/** pipeline.json: `transmit` on node A, `receive` on node B, call by call (`<case id>/<call>`). */
export const pipelineSuite: Suite = {
  kind: 'pipeline',
  sniff: (f) => f.cases.some((c) => 'calls' in c.input && 'sender' in c.input),
  run(file, backend) {
    return file.cases.flatMap((c) => {
      const i = c.input as { sender: { assigned_id: number | string; device_id: string }; receiver: { assigned_id: number }; calls: PipelineCall[] };
      const want = (c.expected as { steps: Record<string, unknown>[] }).steps;
      let clock = 0;
      const ms = () => clock * 1000;
      const A = new OpenSynaptic({ assignedId: i.sender.assigned_id, deviceId: i.sender.device_id, clock: ms, coreBackend: backend });
      const B = new OpenSynaptic({ assignedId: i.receiver.assigned_id, clock: ms, coreBackend: backend });
      return i.calls.map((call, n) => {
        const k = new Checker();
        const e = want[n] ?? {};
        clock = call.clock;
        try {
          const options = transmitOptions(call.kwargs) as never;
          const r = call.notimestamp ? A.transmitNoTimestamp(call.sensors as never, options) : A.transmit(call.sensors as never, options);
          k.eq('packet', () => bytesToHex(r.frame), e.packet);
          k.eq('length', () => r.frame.length, e.length);
          k.eq('cmd', () => r.frame[0], e.cmd);
          k.eq('src_aid', () => r.aid, e.src_aid);
          k.eq('strategy', () => r.strategy, e.strategy);
          const got = B.fusion.parse(r.frame);
          const want = e.decoded as Record<string, unknown> | undefined;
          // An error record of the reference (an exception inside its receiver) asks for one of our typed errors.
          if (want && typeof want.error === 'object' && want.error !== null) checkDecoded(k, 'decoded', got, want);
          else {
            const d = deepDiff(plain(got), want);
            if (d) k.fail(`decoded ${d}`);
          }
        } catch (x) {
          k.fail(`threw ${x instanceof Error ? `${x.name}: ${x.message}` : String(x)}`);
        }
        return k.result(`${c.id}/${n}`);
      });
    });
  },
};
