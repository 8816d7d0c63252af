import { type FusionParseResult, OSVisualFusionEngine } from '@opensynaptic/fusion';
import type { CaseResult, Suite, VectorCase } from '../types.js';
import { bytesToHex, Checker, hexToBytes, isOurError, same } from '../util.js';

/** Recursive equality of JSON-shaped values (numbers through `same`). */
/** Fields of `__packet_meta__` that are ours only (the reference has no such fields). */
const OUR_META_FIELDS = new Set(['timestampMs', 'receiverStamped']);

/**
 * Our `timestampMs` / `receiverStamped` beside the reference's `timestamp_raw` / `server_stamped`:
 * the same instant, always in ms. `null` when they agree (or the meta has no timestamp).
 */
function ourTimestampProblem(g: Record<string, unknown>, path: string): string | null {
  const ms = g.timestampMs;
  const stamped = g.receiverStamped;
  if (!('timestamp_raw' in g)) return ms === undefined && stamped === undefined ? null : `${path}: timestampMs without timestamp_raw`;
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 0 || typeof stamped !== 'boolean') {
    return `${path}: timestampMs ${JSON.stringify(ms)} / receiverStamped ${JSON.stringify(stamped)} are not a time in ms and a boolean`;
  }
  const raw = g.timestamp_raw;
  // Server-stamped: the reference's whole seconds of the same reading.
  if (g.server_stamped === true && !(stamped && Math.floor(ms / 1000) === raw)) return `${path}: timestampMs ${ms} is not the receiver's stamp ${String(raw)} s`;
  if (g.server_stamped !== true && raw !== 0 && (stamped || ms !== raw)) return `${path}: timestampMs ${ms} is not the frame's ${String(raw)} ms`;
  return null;
}

export function deepDiff(got: unknown, want: unknown, path = ''): string | null {
  if (want !== null && typeof want === 'object' && !Array.isArray(want)) {
    if (got === null || typeof got !== 'object' || Array.isArray(got)) return `${path || 'value'}: got ${JSON.stringify(got)}, expected an object`;
    const g = got as Record<string, unknown>;
    const w = want as Record<string, unknown>;
    const isMeta = path === '__packet_meta__' || path.endsWith('.__packet_meta__');
    if (isMeta) {
      const problem = ourTimestampProblem(g, path);
      if (problem) return problem;
    }
    for (const k of new Set([...Object.keys(g), ...Object.keys(w)])) {
      if (k === 'cause') continue; // ours only: the typed error behind `error`
      if (isMeta && OUR_META_FIELDS.has(k) && !(k in w)) continue; // ours only, checked above
      const d = deepDiff(g[k], w[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
    return null;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) return `${path}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
    for (let i = 0; i < want.length; i++) {
      const d = deepDiff(got[i], want[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  return same(got, want) ? null : `${path}: got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`;
}

/**
 * Compares a receiver's answer with the reference's recorded `decoded` dict. An `error` that is
 * an object is the reference's internal-error record (an exception inside it): we must answer
 * with one of our typed errors instead, whose text is ours.
 */
export function checkDecoded(k: Checker, what: string, got: FusionParseResult, want: Record<string, unknown>): void {
  if (want.error !== undefined && typeof want.error === 'object') {
    if (got.error === undefined) k.fail(`${what}: decoded fine, expected an error (the reference raised internally)`);
    else if (!isOurError(got.cause)) k.fail(`${what}: error ${String(got.error)} is not one of our typed errors`);
    return;
  }
  const d = deepDiff(got, want);
  if (d) k.fail(`${what} ${d}${got.error ? ` (${String(got.error)})` : ''}`);
}

interface Step {
  raw: string;
  raw_is_bytes: boolean;
  strategy: 'FULL' | 'DIFF';
  clock: number;
}

interface StepExpected {
  frame?: string;
  cmd?: number;
  tid?: number;
  decoded?: Record<string, unknown>;
  decoded_ok?: boolean;
  raises?: unknown;
}

/**
 * One sequence: a fresh sender (local id from the case) runs every step; each frame it makes goes
 * to a fresh receiver in order. Results are per step (`<case id>/<step index>`), so a listed
 * deviation names exactly the steps it covers.
 */
function runSequence(c: VectorCase, backend: 'ts' | 'native'): CaseResult[] {
  const steps = c.input.steps as Step[];
  const want = (c.expected.steps ?? []) as StepExpected[];
  let clock = 0;
  const sender = new OSVisualFusionEngine({ localId: c.input.sender_local_id as number, clock: () => clock, backend });
  const receiver = new OSVisualFusionEngine({ localId: 1, clock: () => clock, backend });
  return steps.map((s, i) => {
    const e = want[i] ?? {};
    const k = new Checker();
    clock = s.clock * 1000;
    const raw = s.raw_is_bytes ? hexToBytes(s.raw) : s.raw;
    let frame: Uint8Array | undefined;
    try {
      frame = sender.runEngine(raw, s.strategy);
    } catch (x) {
      if (e.raises) {
        if (!isOurError(x)) k.fail(`run_engine threw untyped ${(x as Error)?.name}: ${(x as Error)?.message}`);
      } else k.fail(`run_engine threw ${(x as Error)?.name}: ${(x as Error)?.message}`);
    }
    if (frame) {
      if (e.raises) k.fail(`run_engine returned ${bytesToHex(frame)}, expected a typed error`);
      else {
        k.eq('frame', () => bytesToHex(frame!), e.frame);
        const got = receiver.parse(frame);
        if (e.decoded) checkDecoded(k, 'decoded', got, e.decoded);
        else if (e.decoded_ok && got.error !== undefined) k.fail(`decode failed: ${String(got.error)}`);
      }
    }
    return k.result(`${c.id}/${i}`);
  });
}

/** fusion.json: stateful sender → receiver sequences, step by step. */
export const fusionSuite: Suite = {
  kind: 'fusion',
  sniff: (f) => f.cases.some((c) => 'sender_local_id' in c.input),
  run(file, backend) {
    return file.cases.flatMap((c) => runSequence(c, backend));
  },
};

/** The packet.json decode cases: a fresh receiver, fed `prior_frames` first. */
export function decodeWithFusion(c: VectorCase, backend: 'ts' | 'native'): CaseResult {
  const i = c.input as { frame: string; receiver_session_key_for_aid_42: string | null; prior_frames?: string[]; clock?: number };
  const e = c.expected as { decoded: Record<string, unknown>; prior_results?: { decoded: Record<string, unknown> }[] };
  const key = i.receiver_session_key_for_aid_42;
  const keys = new Map(key ? [[42, hexToBytes(key)]] : []);
  const receiver = new OSVisualFusionEngine({
    localId: 1,
    clock: () => (i.clock ?? 1_700_000_000) * 1000,
    backend,
    security: { keys, getTxKey: () => null },
  });
  const k = new Checker();
  (i.prior_frames ?? []).forEach((p, n) => {
    const got = receiver.parse(hexToBytes(p));
    const want = e.prior_results?.[n]?.decoded;
    if (want) checkDecoded(k, `prior ${n}`, got, want);
  });
  checkDecoded(k, 'decoded', receiver.parse(hexToBytes(i.frame)), e.decoded);
  return k.result(c.id);
}
