import { OpenSynaptic } from '@opensynaptic/core';
import { OSVisualFusionEngine } from '@opensynaptic/fusion';
import {
  buildAck,
  buildIdAssign,
  buildIdPoolResponse,
  buildNack,
  buildPong,
  buildSecureChannelAck,
  buildSecureDictReady,
  buildTimeResponse,
  type DispatchOutcome,
  IdAllocator,
  OSHandshakeManager,
  type SessionView,
} from '@opensynaptic/handshake';
import type { CaseResult, Suite, VectorCase } from '../types.js';
import { bytesToHex, Checker, hexToBytes, isOurError, referenceTime } from '../util.js';
import { deepDiff } from './fusion.js';

/** Our values in the vectors' JSON shape: bytes as hex, bigint as number, typed errors dropped. */
export function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return bytesToHex(v);
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Error) return undefined;
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'cause') out[k] = plain(x);
    return out;
  }
  return v;
}

function sessionRecord(s: SessionView | null): unknown {
  if (!s) return null;
  return plain({
    state: s.state,
    dict_ready: s.dictReady,
    decrypt_confirmed: s.decryptConfirmed,
    key: s.key,
    pending_key: s.pendingKey,
    first_plaintext_ts: s.firstPlaintextTs,
    pending_timestamp: s.pendingTimestamp,
  });
}

/** Compares a dispatch outcome with a recorded one, decoded facts of DATA frames included. */
function compareOutcome(k: Checker, where: string, out: DispatchOutcome, exp: Record<string, unknown>): void {
  if (out.type !== exp.type) k.fail(`${where}type ${out.type} != ${String(exp.type)}`);
  if (out.cmd !== exp.cmd) k.fail(`${where}cmd ${out.cmd} != ${String(exp.cmd)}`);
  const response = out.response ? bytesToHex(out.response) : null;
  if (response !== exp.response) k.fail(`${where}response ${response} != ${String(exp.response)}`);
  const want = exp.result as Record<string, unknown> | undefined;
  const got = plain(out.result) as Record<string, unknown>;
  // "No parser attached" records carry the raw frame; an internal-error dict stands for any typed error.
  if (want && typeof want.error === 'object' && want.error !== null) {
    if (got.error === undefined) k.fail(`${where}decoded fine, expected an error`);
    return;
  }
  const d = deepDiff(got, want);
  if (d) k.fail(`${where}result ${d}`);
}

function aidOf(packet: Uint8Array): number {
  const c = packet[0];
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  if (c === 13 || c === 14) return packet.length >= 5 ? view.getUint32(1) : 0;
  const rc = packet[1] ?? 0;
  return rc === 0 || packet.length < 2 + 4 * rc ? 0 : view.getUint32(2 + 4 * (rc - 1));
}

const ALLOCATORS: Record<string, [number, number]> = { hs_srv: [1000, 1010], hs_tiny: [5, 5], hs_pool: [2000, 2100] };

/** What a handshake-format case replays, told by the shape of its input. */
type Shape = 'build' | 'dispatch' | 'timestamps' | 'two-nodes';

/**
 * The shape of a case: `builder` (one CTRL builder call), `manager` (classify_and_dispatch on a
 * named manager), `calls` of `[aid, ts]` (a check_timestamp sequence), or `script` / `node_A` (two
 * real nodes). Any id works; `null` for a case of none of these shapes.
 */
export function handshakeShape(input: Record<string, unknown>): Shape | null {
  if (typeof input.builder === 'string') return 'build';
  if (typeof input.manager === 'string') return 'dispatch';
  if (Array.isArray(input.script) || (typeof input.node_A === 'object' && input.node_A !== null)) return 'two-nodes';
  if (Array.isArray(input.calls) && !('sender' in input)) return 'timestamps';
  return null;
}

/**
 * handshake.json, replayed in file order with one manager per `input.manager`. DATA frames go
 * through an `OSVisualFusionEngine` parser, so decoded facts are compared too; two-node scripts
 * run two `OpenSynaptic` nodes through transmit and their handshake managers' classifyAndDispatch (the reference's receive_via_protocol).
 */
function replay(cases: VectorCase[], backend: 'ts' | 'native'): CaseResult[] {
  // The cases' clocks are the reference's seconds; every clock of ours is ms.
  let clock = 1_700_000_000;
  const ms = () => referenceTime.clockMs(clock);
  const builder = new OSHandshakeManager({ clockMs: ms });
  const managers = new Map<string, { m: OSHandshakeManager; calls: number }>();
  return cases.map((c) => {
    const k = new Checker();
    try {
      const shape = handshakeShape(c.input);
      if (shape === 'build') {
        const { builder: name, args = [], kwargs = {} } = c.input as { builder: string; args: unknown[]; kwargs: Record<string, unknown> };
        // handshake.json's notes: the shared counter was forced to 65534 before this one case.
        if (c.id === 'build_ping_seq_65535') builder.seq.set(65534);
        const a = (i: number) => args[i] as never;
        const built: Record<string, () => Uint8Array> = {
          build_id_request: () => builder.buildIdRequest(a(0)),
          build_id_pool_request: () => (args.length ? builder.buildIdPoolRequest(a(0), a(1)) : builder.buildIdPoolRequest()),
          build_ping: () => builder.buildPing(),
          build_time_request: () => builder.buildTimeRequest(),
          _build_id_assign: () => buildIdAssign(a(0), a(1), kwargs.server_time as number | undefined),
          _build_id_pool_response: () => buildIdPoolResponse(a(0), a(1)),
          _build_ack: () => buildAck(a(0)),
          _build_nack: () => buildNack(a(0), a(1)),
          _build_pong: () => buildPong(a(0)),
          _build_time_response: () => buildTimeResponse(a(0), a(1)),
          _build_secure_dict_ready: () => buildSecureDictReady(a(0), a(1)),
          _build_secure_channel_ack: () => buildSecureChannelAck(a(0)),
        };
        const fn = built[name];
        if (!fn) k.fail(`no builder for ${name}`);
        // The reference raised (struct.error for a field out of range): we must throw a typed error.
        else if (c.expected.raises) k.throws('build', () => bytesToHex(fn()), isOurError);
        else k.eq('bytes', () => bytesToHex(fn()), c.expected.bytes);
      } else if (shape === 'dispatch') {
        const i = c.input as {
          manager: string;
          role: 'duplex' | 'tx_only' | 'rx_only';
          packet: string;
          clock: number;
          has_parser: boolean;
          allocator?: [number, number];
        };
        clock = i.clock;
        let entry = managers.get(i.manager);
        if (!entry) {
          const range = i.allocator ?? ALLOCATORS[i.manager];
          const m = new OSHandshakeManager({
            role: i.role,
            clockMs: ms,
            allocator: range ? new IdAllocator({ start: range[0], end: range[1], clockMs: ms }) : null,
          });
          if (i.has_parser) m.parser = new OSVisualFusionEngine({ localId: 1, clock: ms, security: m, skipTimestamp: i.role === 'rx_only', backend });
          entry = { m, calls: 0 };
          managers.set(i.manager, entry);
        }
        entry.calls++;
        // handshake.json's notes: this manager sent its own plaintext FULL before that packet.
        if (i.manager === 'hs_sd' && entry.calls === 4) entry.m.noteLocalPlaintextSent(45, 1_700_000_000_999);
        const packet = hexToBytes(i.packet);
        compareOutcome(k, '', entry.m.classifyAndDispatch(packet), c.expected);
        const state = c.expected.state_after as Record<string, unknown> | null | undefined;
        if (state !== undefined) {
          // The reference keeps the server's seconds; ours keeps ms.
          if (state && 'last_server_time' in state) k.eq('last_server_time', () => entry.m.lastServerTimeMs, referenceTime.clockMs(state.last_server_time as number));
          else {
            const d = deepDiff(sessionRecord(entry.m.getSession(aidOf(packet))), state);
            if (d) k.fail(`session ${d}`);
          }
        }
      } else if (shape === 'timestamps') {
        const m = new OSHandshakeManager({ clockMs: ms });
        const calls = c.input.calls as [number | string, number | null][];
        const d = deepDiff(
          calls.map(([aid, ts]) => m.checkTimestamp(aid, ts)),
          c.expected.results,
        );
        if (d) k.fail(`results ${d}`);
      } else if (shape === 'two-nodes') {
        twoNodes(c, k, backend);
      } else k.fail('no replay for this case: its input has none of builder, manager, calls, script');
    } catch (e) {
      k.fail(`threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    return k.result(c.id);
  });
}

interface ScriptAction {
  actor: 'A' | 'B';
  action: 'transmit' | 'receive_via_protocol';
  clock: number;
  sensors?: unknown[];
  kwargs?: Record<string, unknown>;
  in?: string;
}

/** The reference's transmit keywords → ours. */
export function transmitOptions(kwargs: Record<string, unknown>): Record<string, unknown> {
  const { device_id, device_status, ...rest } = kwargs;
  // The reference's t is seconds below 1e11 (its compressor's rule), ours ms.
  if (typeof rest.t === 'number') rest.t = referenceTime.tMs(rest.t);
  return {
    ...rest,
    ...(device_id === undefined ? {} : { deviceId: device_id }),
    ...(device_status === undefined ? {} : { status: device_status }),
  };
}

/**
 * Two real nodes, acting as the script says; every byte and both nodes' session for A's id are
 * compared after each step. The actions are `input.script` (handshake.json's recorded steps
 * repeat them, so those serve when it is absent).
 */
function twoNodes(c: VectorCase, k: Checker, backend: 'ts' | 'native'): void {
  type NodeInput = { assigned_id: number | string; device_id: string };
  const input = c.input as { node_A: NodeInput; node_B: NodeInput; script?: ScriptAction[] };
  const steps = (c.expected as { steps: Record<string, unknown>[] }).steps;
  const script = input.script ?? (steps as unknown as ScriptAction[]);
  let clock = 0;
  const ms = () => clock * 1000;
  const A = new OpenSynaptic({ assignedId: input.node_A.assigned_id, deviceId: input.node_A.device_id, clock: ms, coreBackend: backend });
  const B = new OpenSynaptic({ assignedId: input.node_B.assigned_id, deviceId: input.node_B.device_id, clock: ms, coreBackend: backend });
  const aid = A.assignedId;
  if (script.length !== steps.length) k.fail(`${script.length} script actions, ${steps.length} recorded steps`);
  script.forEach((action, n) => {
    const step = steps[n] ?? {};
    clock = action.clock;
    const where = `step ${n} (${action.actor} ${action.action}): `;
    const node = action.actor === 'A' ? A : B;
    try {
      if (action.action === 'transmit') {
        const r = node.transmit(action.sensors as never, transmitOptions(action.kwargs ?? {}) as never);
        if (bytesToHex(r.frame) !== step.out) k.fail(`${where}frame ${bytesToHex(r.frame)} != ${String(step.out)}`);
        if (r.strategy !== step.strategy) k.fail(`${where}strategy ${r.strategy} != ${String(step.strategy)}`);
        if (r.frame[0] !== step.cmd) k.fail(`${where}cmd ${r.frame[0]} != ${String(step.cmd)}`);
      } else if (action.action === 'receive_via_protocol') {
        compareOutcome(k, where, node.protocol.classifyAndDispatch(hexToBytes(action.in as string)), step);
      } else k.fail(`${where}unknown action`);
    } catch (e) {
      k.fail(`${where}threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    for (const [name, nd] of [
      [`A_session_${aid}`, A],
      [`B_session_${aid}`, B],
    ] as const) {
      const d = deepDiff(sessionRecord(nd.protocol.getSession(aid)), step[name]);
      if (d) k.fail(`${where}${name} ${d}`);
    }
  });
}

/** handshake.json and files of its format: builders, dispatch (stateful, in order), timestamp checks, two-node scripts. */
export const handshakeSuite: Suite = {
  kind: 'handshake',
  sniff: (f) => f.cases.some((c) => handshakeShape(c.input) !== null),
  run(file, backend) {
    return replay(file.cases, backend);
  },
};
