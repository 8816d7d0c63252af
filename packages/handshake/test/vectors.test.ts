import { describe, expect, it } from 'vitest';
import { loadCases, replay } from './vector-replay.js';

describe('vectors/handshake.json', () => {
  const cases = loadCases();
  const reports = replay(cases);

  it('replays every case, in file order', () => {
    expect(reports.map((r) => r.id)).toEqual(cases.map((c) => c.id));
    const counts = { pass: 0, partial: 0, deviation: 0, fail: 0 };
    for (const r of reports) counts[r.status]++;
    const lines = reports.filter((r) => r.status !== 'pass').map((r) => `  ${r.status.padEnd(9)} ${r.id}: ${r.detail}`);
    console.log(`handshake.json: ${counts.pass} pass, ${counts.partial} partial, ${counts.deviation} deviation, ${counts.fail} fail\n${lines.join('\n')}`);
  });

  for (const r of reports) {
    it(`${r.id} (${r.status})`, () => {
      expect(r.status, r.detail).not.toBe('fail');
    });
  }
});

describe('the replay itself', () => {
  it('fails a case whose recorded answer differs', () => {
    const cases = loadCases();
    const ping = structuredClone(cases.find((c) => c.id === 'dispatch_ping')!);
    ping.expected.response = '0a0015';
    const session = structuredClone(cases.find((c) => c.id === 'dispatch_secure_dict_ready_with_ts')!);
    (session.expected.state_after as Record<string, unknown>).key = '00';
    const build = structuredClone(cases.find((c) => c.id === 'build_ack')!);
    build.expected.bytes = '050004';
    const [a, b, c] = replay([ping, session, build]);
    expect(a?.status).toBe('fail');
    expect(b?.status).toBe('fail');
    expect(c?.status).toBe('fail');
  });

  it('fails a listed deviation that matches the reference', () => {
    const cases = loadCases();
    const pool = structuredClone(cases.find((c) => c.id === 'dispatch_id_pool_request_3')!);
    pool.expected.result = { status: 'POOL_ASSIGNED', pool: [2000, 2001, 2002], count: 3 };
    pool.expected.response = '04000b0003000007d0000007d1000007d2';
    expect(replay([pool])[0]?.status).toBe('fail');
  });
});
