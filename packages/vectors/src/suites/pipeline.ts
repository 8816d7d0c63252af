import { OpenSynaptic } from '@opensynaptic/core';
import type { Suite } from '../types.js';
import { bytesToHex, Checker } from '../util.js';
import { deepDiff } from './fusion.js';
import { plain } from './handshake.js';

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
      const i = c.input as { sender: { assigned_id: number; device_id: string }; receiver: { assigned_id: number }; calls: PipelineCall[] };
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
          // The reference's keyword names → ours.
          const { device_id, device_status, ...rest } = call.kwargs;
          const options = {
            ...rest,
            ...(device_id === undefined ? {} : { deviceId: device_id }),
            ...(device_status === undefined ? {} : { status: device_status }),
          } as never;
          const r = call.notimestamp ? A.transmitNoTimestamp(call.sensors as never, options) : A.transmit(call.sensors as never, options);
          k.eq('packet', () => bytesToHex(r.frame), e.packet);
          k.eq('length', () => r.frame.length, e.length);
          k.eq('cmd', () => r.frame[0], e.cmd);
          k.eq('src_aid', () => r.aid, e.src_aid);
          k.eq('strategy', () => r.strategy, e.strategy);
          const d = deepDiff(plain(B.fusion.parse(r.frame)), e.decoded);
          if (d) k.fail(`decoded ${d}`);
        } catch (x) {
          k.fail(`threw ${x instanceof Error ? `${x.name}: ${x.message}` : String(x)}`);
        }
        return k.result(`${c.id}/${n}`);
      });
    });
  },
};
