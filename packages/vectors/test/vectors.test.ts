import { join } from 'node:path';
import { backendInfo } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DIR, loadDeviations, readVectorFile, runFile, suiteFor, vectorFiles } from '../src/index.js';
const { nativeAvailable } = backendInfo();

const deviations = loadDeviations(DEFAULT_DIR);
const files = vectorFiles(DEFAULT_DIR);

it('finds the golden vector files', () => {
  expect(files).toEqual(expect.arrayContaining(['base62.json', 'cmd.json', 'crc.json', 'packet.json', 'security.json']));
});

it('lists only deviations that name real cases', () => {
  const ids = new Set<string>();
  for (const name of files) for (const c of readVectorFile(join(DEFAULT_DIR, name))?.cases ?? []) ids.add(`${name}#${c.id}`);
  // Stepped suites (fusion.json) report `<case id>/<step>`; the case id must exist.
  for (const key of deviations.keys()) expect(ids.has(key.replace(/\/\d+$/, '')), key).toBe(true);
});

for (const backend of ['ts', 'native'] as const) {
  describe.skipIf(backend === 'native' && !nativeAvailable && !process.env.CI)(`${backend} backend (skipped only when the addon is not built)`, () => {
    for (const name of files) {
      const file = readVectorFile(join(DEFAULT_DIR, name));
      if (!file || !suiteFor(name, file)) continue;
      it(`${name}: every case matches or is a listed deviation`, () => {
        const report = runFile(name, file, backend, deviations);
        expect(report.failed).toEqual([]);
        expect(report.passed + report.partial + report.deviations).toBe(report.results.length);
        expect(report.results.length).toBeGreaterThanOrEqual(file.cases.length);
      });
    }
  });
}

it('fails a case that does not match and is not listed', () => {
  const file = { cases: [{ id: 'x', input: { data: '313233343536373839' }, expected: { crc8: 0, crc16_ccitt: 0x29b1 } }] };
  const report = runFile('crc-extra.json', file, 'ts', new Map());
  expect(report.failed.map((r) => r.id)).toEqual(['x']);
});

it('fails a listed deviation that has started to match', () => {
  const file = { cases: [{ id: 'y', input: { data: '' }, expected: { crc8: 0 } }] };
  const listed = new Map([['crc.json#y', { file: 'crc.json', ids: ['y'], reference: '', ours: '', why: '' }]]);
  expect(runFile('crc.json', file, 'ts', listed).failed[0]?.detail).toMatch(/remove it/);
});

it('fails stateful cases whose recorded answer, session or transmitted bytes differ', () => {
  const file = readVectorFile(join(DEFAULT_DIR, 'handshake.json'))!;
  const pick = (id: string) => structuredClone(file.cases.find((c) => c.id === id)!);
  const ping = pick('dispatch_ping');
  ping.expected.response = '0a0015';
  const session = pick('dispatch_secure_dict_ready_with_ts');
  (session.expected.state_after as Record<string, unknown>).key = '00';
  const flow = pick('secure_session_flow_two_nodes');
  const steps = (flow.expected as { steps: Record<string, unknown>[] }).steps;
  steps[3]!.out = '80010000002a01018bcfe56be800874d';
  const report = runFile('handshake.json', { cases: [ping, session, flow] }, 'ts', new Map());
  expect(report.failed.map((r) => r.id)).toEqual(['dispatch_ping', 'dispatch_secure_dict_ready_with_ts', 'secure_session_flow_two_nodes']);
});

it('fails a fusion step whose frame or decoded fact differs', () => {
  const file = readVectorFile(join(DEFAULT_DIR, 'fusion.json'))!;
  const seq = structuredClone(file.cases.find((c) => c.id === 'seq_single_temp_full_diff_heart')!);
  const steps = (seq.expected as { steps: { frame: string; decoded: Record<string, unknown> }[] }).steps;
  steps[1]!.decoded.s1_v = 1;
  steps[2]!.frame = '00';
  const report = runFile('fusion.json', { cases: [seq] }, 'ts', new Map());
  expect(report.failed.map((r) => r.id)).toEqual(['seq_single_temp_full_diff_heart/1', 'seq_single_temp_full_diff_heart/2']);
});

it('replays handshake-format cases by the shape of their input, under any id', () => {
  const file = readVectorFile(join(DEFAULT_DIR, 'handshake.json'))!;
  const pick = (id: string, as: string) => ({ ...structuredClone(file.cases.find((c) => c.id === id)!), id: as });
  const seq = pick('check_timestamp_sequence', 'my_timestamps');
  const flow = pick('secure_session_flow_two_nodes', 'my_flow');
  const wrongSeq = pick('check_timestamp_sequence', 'my_timestamps_wrong');
  (wrongSeq.expected.results as string[])[1] = 'ACCEPT';
  const odd = { id: 'my_odd', input: { something: 1 }, expected: {} };
  const report = runFile('handshake-mine.json', { cases: [seq, flow, wrongSeq, odd] }, 'ts', new Map());
  expect(report.results.map((r) => [r.id, r.status])).toEqual([
    ['my_timestamps', 'pass'],
    ['my_flow', 'pass'],
    ['my_timestamps_wrong', 'fail'],
    ['my_odd', 'fail'],
  ]);
  expect(report.results[3]!.detail).toMatch(/no replay for this case/);
});

it('expects a typed error where the reference builder raised', () => {
  const file = readVectorFile(join(DEFAULT_DIR, 'handshake-extra.json'))!;
  const raising = file.cases.filter((c) => 'raises' in c.expected);
  expect(raising.length).toBeGreaterThan(0);
  expect(runFile('handshake-extra.json', { cases: raising }, 'ts', new Map()).failed).toEqual([]);
});

it('fails a standardize case whose value, type, unit, key order, compressed text or dropped sensor differs', () => {
  const file = readVectorFile(join(DEFAULT_DIR, 'standardize.json'))!;
  const pick = (id: string) => structuredClone(file.cases.find((c) => c.id === id)!);
  const fact = (c: { expected: Record<string, unknown> }) => c.expected.fact as Record<string, unknown>;
  const value = pick('std_001_kPa_21.5');
  fact(value).s1_v = 21501;
  const type = pick('std_001_kPa_21.5');
  (type.expected.types as Record<string, string>).s1_v = 'float';
  const unit = pick('std_010_Cel_21.5');
  fact(unit).s1_u = 'temperature2';
  const order = pick('std_010_Cel_21.5');
  const { s1_v, ...rest } = fact(order);
  order.expected.fact = { ...rest, s1_v };
  const text = pick('std_sensorid_off_one');
  text.expected.compressed = 'DEV1.1.AYvP5WgA|T1>';
  const kept = pick('std_129_foo_21.5');
  kept.input.sensors = [['S1', 'OK', 21.5, 'm']];
  const cases = [value, type, unit, order, text, kept];
  const report = runFile('standardize.json', { cases }, 'ts', new Map());
  expect(report.failed.map((r) => r.id)).toEqual(cases.map((c) => c.id));
});
