import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveSessionKey } from '@opensynaptic/crc';
import { encodeFrame } from '@opensynaptic/packet';
import { FileStore, MemoryStore } from '@opensynaptic/store';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildIdPoolRequest,
  buildIdRequest,
  buildSecureChannelAck,
  buildSecureDictReady,
  type DataFrameParser,
  frameLevelParser,
  IdAllocator,
  isOpenSynapticError,
  type LeaseKinds,
  OSHandshakeManager,
  type SessionKinds,
  sessionSnapshotWrites,
  StoreError,
  type StoredSession,
} from '../src/index.js';

const T0 = 1_700_000_000;
const hex = (b: Uint8Array | null): string => (b ? Buffer.from(b).toString('hex') : 'null');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const body = new TextEncoder().encode('42;NODE_A.1.AYvP5WgA|T1>K.A:cmwc|');

function frame(aid: number, ts: number, cmd = 63, key?: Uint8Array) {
  return encodeFrame({ cmd, routes: aid, tid: 1, timestamp: ts, body: cmd === 127 ? new Uint8Array(0) : body, key });
}

function node(options: ConstructorParameters<typeof OSHandshakeManager>[0] = {}) {
  let t = T0;
  const clock = {
    now: () => t,
    advance: (s: number) => {
      t += s;
    },
  };
  const m = new OSHandshakeManager({ clockMs: () => clock.now() * 1000, parser: frameLevelParser(), ...options });
  return { m, clock };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('classifyAndDispatch: control packets', () => {
  it('answers each control packet', () => {
    const { m } = node();
    expect(m.classifyAndDispatch(bytes('090102'))).toEqual({ type: 'CTRL', cmd: 9, result: { status: 'PING', seq: 258 }, response: bytes('0a0102') });
    expect(m.classifyAndDispatch(bytes('0b0005')).response).toEqual(bytes('0c0005000000006553f100'));
    expect(m.classifyAndDispatch(bytes('050009')).result).toEqual({ status: 'ACK_RECEIVED', seq: 9 });
    expect(m.classifyAndDispatch(bytes('0600016e6f')).result).toEqual({ status: 'NACK_RECEIVED', seq: 1, reason: 'no' });
  });
  it('never throws, whatever it is given', () => {
    const { m } = node();
    for (const p of [null, undefined, 'ping', [9, 0, 1], new Uint16Array(3), {}] as unknown[]) {
      expect(m.classifyAndDispatch(p as Uint8Array)).toMatchObject({ type: 'ERROR', cmd: 0 });
    }
    const truncated = m.classifyAndDispatch(bytes('0d00'));
    expect(truncated).toMatchObject({ type: 'ERROR', cmd: 13, result: { error: 'Truncated SECURE_DICT_READY' }, response: null });
    // Every ERROR carries its typed error beside the reference's text.
    expect(truncated.type === 'ERROR' && truncated.result.cause).toMatchObject({ code: 'ERR_HANDSHAKE_TRUNCATED', packet: 'SECURE_DICT_READY', length: 2, needed: 5 });
    for (const p of [null, 'ping', new Uint8Array(0)] as unknown[]) {
      const out = m.classifyAndDispatch(p as Uint8Array);
      expect(out.type === 'ERROR' && isOpenSynapticError(out.result.cause)).toBe(true);
    }
    expect(m.classifyAndDispatch(bytes('0e'))).toMatchObject({ type: 'ERROR', cmd: 14 });
  });
  it('answers unknown commands with NACK "Unknown CMD 0xNN" at seq 0', () => {
    const { m } = node();
    const out = m.classifyAndDispatch(bytes('ff0102'));
    expect(out).toMatchObject({ type: 'UNKNOWN', cmd: 255, result: { error: 'Unknown command 0xFF' } });
    expect(new TextDecoder().decode(out.response!.subarray(3))).toBe('Unknown CMD 0xFF');
    expect(hex(out.response!.subarray(0, 3))).toBe('060000');
  });
  it('learns the server time only above the sync threshold', () => {
    const { m } = node();
    m.classifyAndDispatch(bytes('0c0001000000000000000a'));
    expect(m.lastServerTimeMs).toBe(0);
    m.classifyAndDispatch(bytes('0200020000002a000000006553f2f4'));
    expect(m.lastServerTimeMs).toBe(1_700_000_500_000);
    m.classifyAndDispatch(bytes('0c0017000000006553f409'));
    expect(m.lastServerTimeMs).toBe(1_700_000_777_000);
  });
  it('numbers its own requests with the 16-bit counter', () => {
    const { m } = node({ seq: 65534 });
    expect(hex(m.buildPing())).toBe('09ffff');
    expect(hex(m.buildTimeRequest())).toBe('0b0000');
    expect(hex(m.buildIdRequest({ device_id: 'A' })).slice(0, 6)).toBe('010001');
    expect(hex(m.buildIdPoolRequest(3)).slice(0, 10)).toBe('0300020003');
  });
});

describe('roles', () => {
  it('tx_only ignores data and requests, accepts answers', () => {
    const { m } = node({ role: 'tx_only' });
    expect(m.classifyAndDispatch(frame(42, T0 * 1000))).toEqual({ type: 'IGNORED', cmd: 63, result: { reason: 'tx_only: inbound DATA ignored' }, response: null });
    expect(m.classifyAndDispatch(bytes('0b0001')).result).toEqual({ reason: 'tx_only: CTRL 0x0B ignored' });
    expect(m.classifyAndDispatch(bytes('0c0001000000006553f100')).type).toBe('CTRL');
    expect(m.getSession(42)).toBeNull();
  });
  it('rx_only answers ping and time, takes data, ignores other control', () => {
    const { m } = node({ role: 'rx_only', parser: frameLevelParser({ skipTimestamp: true }) });
    expect(m.classifyAndDispatch(bytes('090001')).type).toBe('CTRL');
    expect(m.classifyAndDispatch(bytes('0d0000002a0000018bcfe56800')).result).toEqual({ reason: 'rx_only: CTRL 0x0D ignored' });
    const out = m.classifyAndDispatch(frame(42, T0 * 1000));
    expect(out.type).toBe('DATA');
    // rx_only sees ts 0: no key, and it says so.
    expect(hex(out.response)).toBe('0d0000002a0000000000000000');
    expect(m.getSession(42)).toMatchObject({ state: 'DICT_READY', key: null });
  });
  it('refuses an unknown role', () => {
    expect(() => new OSHandshakeManager({ role: 'both' as never })).toThrow(/duplex/);
  });
});

describe('ID requests', () => {
  it('answers NACK META_TOO_LARGE above maxMetaBytes', () => {
    const { m, clock } = node({ allocator: new IdAllocator({ start: 1, end: 100, clockMs: () => T0 * 1000 }), maxMetaBytes: 64 });
    const big = buildIdRequest(5, { device_id: 'A', pad: 'x'.repeat(100) }, { maxMetaBytes: 1000 });
    const out = m.classifyAndDispatch(big);
    expect(out.result).toEqual({ status: 'REJECTED', reason: 'Meta too large' });
    expect(new TextDecoder().decode(out.response!.subarray(3))).toBe('META_TOO_LARGE');
    const pool = m.classifyAndDispatch(buildIdPoolRequest(6, 3, { pad: 'x'.repeat(100) }, { maxMetaBytes: 1000 }));
    expect(pool.result).toEqual({ status: 'REJECTED', reason: 'Meta too large' });
    clock.advance(1);
    expect(m.classifyAndDispatch(buildIdRequest(7, { device_id: 'A' })).result).toMatchObject({ status: 'ASSIGNED', assigned_id: 1 });
  });
  it('answers NACK ID_RATE_LIMITED to a flood of new devices', () => {
    let t = T0;
    const allocator = new IdAllocator({ start: 1, end: 100000, clockMs: () => t * 1000, newLeaseLimit: { max: 10, windowMs: 60000 } });
    const m = new OSHandshakeManager({ clockMs: () => t * 1000, allocator });
    const reasons = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const out = m.classifyAndDispatch(buildIdRequest(i, { device_id: `fake${i}` }), `10.0.0.1:${i}`);
      const r = out.result as { status: string; reason?: string };
      reasons.set(r.reason ?? r.status, (reasons.get(r.reason ?? r.status) ?? 0) + 1);
    }
    expect(Object.fromEntries(reasons)).toEqual({ ASSIGNED: 10, 'Rate limited': 90 });
    t += 60;
    expect(m.classifyAndDispatch(buildIdRequest(1, { device_id: 'real' })).result).toMatchObject({ status: 'ASSIGNED', assigned_id: 11 });
  });
  it('keeps the lease file bounded under a flood', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-flood-'));
    dirs.push(dir);
    let t = T0;
    const store = await FileStore.open<LeaseKinds>({ root: dir, kinds: ['leases'], layouts: { leases: { type: 'snapshot' } }, durable: false });
    const allocator = new IdAllocator({ start: 1, end: 0xfffffffe, clockMs: () => t * 1000, store, maxLeases: 200, newLeaseLimit: { max: 1000, windowMs: 1000 } });
    const m = new OSHandshakeManager({ clockMs: () => t * 1000, allocator });
    await m.open();
    for (let i = 0; i < 5000; i++) {
      if (i % 100 === 0) t += 1;
      await m.classifyAndDispatchAsync(buildIdRequest(i & 0xffff, { device_id: `fake-${i}-${'x'.repeat(3000)}` }));
    }
    await m.close();
    expect(allocator.size).toBe(200);
    const file = JSON.parse(readFileSync(join(dir, 'leases.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(file).length).toBe(201); // the leases and the state record
    expect(readFileSync(join(dir, 'leases.json')).length).toBeLessThan(200 * 200);
    await store.close();
  });
  it('renews the lease of the source of every valid data frame', () => {
    let t = T0;
    const allocator = new IdAllocator({ start: 42, end: 50, clockMs: () => t * 1000, leaseMs: 100_000 });
    const m = new OSHandshakeManager({ clockMs: () => t * 1000, allocator, parser: frameLevelParser() });
    m.classifyAndDispatch(buildIdRequest(1, { device_id: 'A' }));
    t += 90;
    m.classifyAndDispatch(frame(42, T0 * 1000));
    expect(allocator.leaseOf(42)?.expiresAtMs).toBe((t + 100) * 1000);
    t += 50;
    const bad = frame(42, T0 * 1000);
    bad[bad.length - 1]! ^= 1;
    m.classifyAndDispatch(bad);
    expect(allocator.leaseOf(42)?.expiresAtMs).toBe((t + 50) * 1000);
  });
});

describe('secure sessions', () => {
  it('runs INIT → PLAINTEXT_SENT → DICT_READY → SECURE on both sides', () => {
    const A = node().m;
    const B = node().m;
    const ts = T0 * 1000;
    expect(A.getStrategy(42, false)).toBe('FULL_PACKET');
    A.noteLocalPlaintextSent(42, ts);
    A.commitSuccess(42);
    expect(A.getSession(42)).toMatchObject({ state: 'PLAINTEXT_SENT', key: null });
    expect(A.getTxKey(42)).toBeNull();
    const r1 = B.classifyAndDispatch(frame(42, ts));
    expect(hex(r1.response)).toBe(hex(buildSecureDictReady(42, ts)));
    expect(A.classifyAndDispatch(r1.response!).result).toMatchObject({ status: 'DICT_READY' });
    const key = A.getTxKey(42)!;
    expect(key).toEqual(deriveSessionKey(42, ts));
    expect(A.shouldEncrypt(42)).toBe(true);
    expect(A.getStrategy(42, true)).toBe('DIFF_PACKET');
    const r2 = B.classifyAndDispatch(frame(42, ts + 1000, 127, key));
    expect(r2.response).toEqual(buildSecureChannelAck(42));
    expect(B.getSession(42)).toMatchObject({ state: 'SECURE', decryptConfirmed: true });
    A.classifyAndDispatch(r2.response!);
    expect(A.getSession(42)).toMatchObject({ state: 'SECURE', decryptConfirmed: true });
    // Later secure frames get no answer.
    expect(B.classifyAndDispatch(frame(42, ts + 2000, 127, key)).response).toBeNull();
  });
  it('does not create or confirm a session from an unsolicited SECURE_CHANNEL_ACK', () => {
    const { m } = node();
    m.classifyAndDispatch(buildSecureChannelAck(7));
    expect(m.getSession(7)).toBeNull();
    m.classifyAndDispatch(bytes('0d000000070000000000000005'));
    m.classifyAndDispatch(buildSecureChannelAck(7));
    expect(m.getSession(7)).toBeNull();
    // A receiver's session is confirmed by a secure frame it decodes, not by someone's ACK.
    m.classifyAndDispatch(frame(8, T0 * 1000));
    m.classifyAndDispatch(buildSecureChannelAck(8));
    expect(m.getSession(8)).toMatchObject({ state: 'DICT_READY', decryptConfirmed: false });
  });
  it('keeps its own key when SECURE_DICT_READY brings another timestamp', () => {
    const { m } = node();
    m.noteLocalPlaintextSent(9, 2_000_000);
    m.classifyAndDispatch(buildSecureDictReady(9, 2_000_000));
    m.classifyAndDispatch(buildSecureChannelAck(9));
    m.classifyAndDispatch(buildSecureDictReady(9, 2_000_000));
    expect(m.getSession(9)).toMatchObject({ state: 'SECURE' });
    m.classifyAndDispatch(buildSecureDictReady(9, 3_000_000));
    expect(m.getSession(9)).toMatchObject({ state: 'SECURE', decryptConfirmed: true, firstPlaintextTs: 2_000_000 });
    expect(m.getTxKey(9)).toEqual(deriveSessionKey(9, 2_000_000));
  });
  it('derives keys from hostile 8-byte timestamps exactly', () => {
    const { m } = node();
    m.noteLocalPlaintextSent(1, 2n ** 64n - 1n);
    m.classifyAndDispatch(bytes('0d00000001ffffffffffffffff'));
    expect(m.getSession(1)?.key).toEqual(deriveSessionKey(1, 2n ** 64n - 1n));
    expect(m.getSession(1)?.firstPlaintextTs).toBe(2n ** 64n - 1n);
  });
  it('expires idle sessions and strategy counters after sessionExpireMs', () => {
    const { m, clock } = node({ sessionExpireMs: 1_000_000 });
    m.classifyAndDispatch(frame(42, T0 * 1000));
    m.commitSuccess(42);
    m.commitSuccess(42);
    m.commitSuccess(42);
    expect(m.getStrategy(42, true)).toBe('DIFF_PACKET');
    clock.advance(999);
    m.getTxKey(42);
    clock.advance(999);
    m.classifyAndDispatch(bytes('090001'));
    expect(m.getSession(42)).not.toBeNull();
    clock.advance(1001);
    m.classifyAndDispatch(bytes('090001'));
    expect(m.getSession(42)).toBeNull();
    expect(m.sessionCount).toBe(0);
    // The counter went too: counting starts again.
    expect(m.commitSuccess(42)).toBe(1);
  });
  it('keeps at most maxPendingSessions and maxSessions, refusing new ones rather than evicting', () => {
    const { m } = node({ maxSessions: 3, maxPendingSessions: 10 });
    for (let aid = 1; aid <= 100; aid++) m.classifyAndDispatch(frame(aid, T0 * 1000 + aid));
    expect(m.pendingSessionCount).toBe(10);
    expect(m.getSession(1)).not.toBeNull();
    expect(m.getSession(11)).toBeNull();
    // Beyond the budget a plain FULL still decodes but is not answered SECURE_DICT_READY.
    expect(m.classifyAndDispatch(frame(200, T0 * 1000))).toMatchObject({ type: 'DATA', response: null });
    // Secure frames promote pending sessions while the established table has room.
    const acks = [];
    for (let aid = 1; aid <= 5; aid++) {
      acks.push(m.classifyAndDispatch(frame(aid, T0 * 1000 + 1000, 127, deriveSessionKey(aid, T0 * 1000 + aid))).response);
    }
    expect(acks.map((r) => r !== null)).toEqual([true, true, true, false, false]);
    expect(m.sessionCount).toBe(10);
    expect(m.pendingSessionCount).toBe(7);
    expect(m.getSession(4)?.state).toBe('DICT_READY');
  });
  it('persists sessions to a store, one record each, throttled, and reads them back', async () => {
    let t = T0;
    const store = new MemoryStore<SessionKinds>({ kinds: ['sessions'] });
    const opts = { clockMs: () => t * 1000, parser: frameLevelParser(), sessionStore: store };
    const m = new OSHandshakeManager(opts);
    await m.open();
    m.classifyAndDispatch(frame(42, T0 * 1000));
    m.classifyAndDispatch(frame(43, T0 * 1000));
    await Promise.resolve();
    expect(await store.keys('sessions')).toEqual(['42']);
    t += 5;
    m.noteLocalPlaintextSent(44, 2n ** 60n);
    m.classifyAndDispatch(buildSecureDictReady(44, 2n ** 60n));
    await Promise.resolve();
    expect((await store.keys('sessions')).sort()).toEqual(['42', '43', '44']);
    expect((await store.get('sessions', '44'))?.pendingTimestamp).toBe((2n ** 60n).toString());
    expect((await store.get('sessions', '44'))?.lastSeenMs).toBe((T0 + 5) * 1000);
    await m.flush();
    const again = new OSHandshakeManager(opts);
    expect(() => again.getTxKey(42)).toThrow(expect.objectContaining({ code: 'ERR_HANDSHAKE_NOT_OPEN' }));
    expect(again.classifyAndDispatch(frame(42, T0 * 1000))).toMatchObject({ type: 'ERROR', result: { cause: expect.objectContaining({ code: 'ERR_HANDSHAKE_NOT_OPEN' }) } });
    await again.open();
    expect(again.getSession(42)).toEqual(m.getSession(42));
    expect(again.getSession(44)?.firstPlaintextTs).toBe(2n ** 60n);
    expect(again.getTxKey(42)).toEqual(deriveSessionKey(42, T0 * 1000));
  });
  it('writes what the throttle held back on sweep() (it runs no timer), and deletes expired sessions', async () => {
    let t = T0;
    const store = new MemoryStore<SessionKinds>({ kinds: ['sessions'] });
    const m = new OSHandshakeManager({ clockMs: () => t * 1000, parser: frameLevelParser(), sessionStore: store, sessionExpireMs: 100_000 });
    await m.open();
    m.classifyAndDispatch(frame(42, T0 * 1000));
    m.classifyAndDispatch(frame(43, T0 * 1000));
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.keys('sessions')).toEqual(['42']);
    t += 5;
    m.sweep();
    await Promise.resolve();
    expect((await store.keys('sessions')).sort()).toEqual(['42', '43']);
    t += 200;
    m.sweep();
    await m.flush();
    expect(await store.keys('sessions')).toEqual([]);
  });
  it('keeps sessions and leases in one file store and reopens them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-sessions-'));
    dirs.push(dir);
    const open = () => FileStore.open<SessionKinds & LeaseKinds>({ root: dir, kinds: ['sessions', 'leases'], layouts: { sessions: { type: 'snapshot' }, leases: { type: 'snapshot' } } });
    const store = await open();
    const clockMs = () => T0 * 1000;
    const m = new OSHandshakeManager({ clockMs, parser: frameLevelParser(), sessionStore: store, allocator: new IdAllocator({ clockMs, store }) });
    await m.open();
    m.classifyAndDispatch(frame(42, T0 * 1000));
    expect((await m.classifyAndDispatchAsync(buildIdRequest(1, { device_id: 'N' }))).result).toMatchObject({ status: 'ASSIGNED', assigned_id: 1 });
    await m.close();
    await store.close();
    const again = await open();
    const n = new OSHandshakeManager({ clockMs, parser: frameLevelParser(), sessionStore: again, allocator: new IdAllocator({ clockMs, store: again }) });
    await n.open();
    expect(n.getTxKey(42)).toEqual(deriveSessionKey(42, T0 * 1000));
    expect(n.allocator?.idFor('device_id=N')).toBe(1);
    await again.close();
  });
  it('refuses a store holding something that is not a session', async () => {
    const store = new MemoryStore<Record<string, unknown>>({ kinds: ['sessions'] });
    await store.write([{ op: 'put', kind: 'sessions', key: 'x', value: {} }]);
    const m = new OSHandshakeManager({ sessionStore: store as never });
    await expect(m.open()).rejects.toThrow(StoreError);
    expect(m.opened).toBe(false);
  });
  it('refuses sessions whose values would not survive the next save', async () => {
    // JSON reads 1e400 as Infinity, which the next save writes as null: refused at load instead.
    const good: StoredSession = { state: 'SECURE', dictReady: true, decryptConfirmed: true, key: '11'.repeat(32), pendingKey: null, firstPlaintextTs: 1, pendingTimestamp: null, lastSeenMs: T0 * 1000 };
    const open = async (s: object) => {
      const store = new MemoryStore<Record<string, unknown>>({ kinds: ['sessions'] });
      await store.write([{ op: 'put', kind: 'sessions', key: '7', value: JSON.parse(JSON.stringify(s).replace('"@INF@"', '1e400')) }]);
      await new OSHandshakeManager({ sessionStore: store as never }).open();
    };
    await expect(open(good)).resolves.toBeUndefined();
    await expect(open({ ...good, lastSeenMs: '@INF@' })).rejects.toThrow(/bad session for aid 7/);
    await expect(open({ ...good, lastSeenMs: '5' })).rejects.toThrow(/bad session for aid 7/);
    // Session keys are SHA-256 digests: any other length is not a key this node wrote.
    await expect(open({ ...good, key: '11'.repeat(200) })).rejects.toThrow(StoreError);
    await expect(open({ ...good, pendingKey: '11'.repeat(31) })).rejects.toThrow(StoreError);
  });
  it('converts session files of earlier versions (lastSeen in seconds) to records', async () => {
    const v1 = { version: 1, sessions: { 7: { state: 'SECURE', dictReady: true, decryptConfirmed: true, key: '11'.repeat(32), pendingKey: null, firstPlaintextTs: 1, pendingTimestamp: null, lastSeen: T0 } } };
    const store = new MemoryStore<SessionKinds>({ kinds: ['sessions'] });
    await store.write(sessionSnapshotWrites(v1));
    expect((await store.get('sessions', '7'))?.lastSeenMs).toBe(T0 * 1000);
    const m = new OSHandshakeManager({ clockMs: () => T0 * 1000, sessionStore: store });
    await m.open();
    expect(m.getSession(7)?.lastSeenMs).toBe(T0 * 1000);
    for (const bad of [{ version: 3, sessions: {} }, { version: 1, sessions: { x: {} } }, { version: 1, sessions: { 7: { ...v1.sessions[7], lastSeen: '5' } } }, { version: 2, sessions: { 7: v1.sessions[7] } }]) {
      expect(() => sessionSnapshotWrites(bad)).toThrow(StoreError);
    }
  });
  it('refuses the options of earlier versions that took seconds', () => {
    for (const [field, options] of [
      ['clock', { clock: () => 1 }],
      ['sessionExpireSeconds', { sessionExpireSeconds: 86400 }],
      ['sessionSaveIntervalSeconds', { sessionSaveIntervalSeconds: 5 }],
    ] as const) {
      expect(() => new OSHandshakeManager(options as never)).toThrow(expect.objectContaining({ code: 'ERR_HANDSHAKE_FIELD', field }));
    }
  });
  it('forgets a session on resetSession', () => {
    const { m } = node();
    m.classifyAndDispatch(frame(42, T0 * 1000));
    expect(m.resetSession(42)).toBe(true);
    expect(m.resetSession(42)).toBe(false);
    expect(hex(m.classifyAndDispatch(frame(42, T0 * 1000)).response)).toBe(hex(buildSecureDictReady(42, T0 * 1000)));
  });
});

describe('strategy', () => {
  it('sends FULL three times, then DIFF', () => {
    const { m } = node();
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push(m.getStrategy(7, i > 0));
      m.commitSuccess(7);
    }
    expect(seen).toEqual(['FULL_PACKET', 'FULL_PACKET', 'FULL_PACKET', 'DIFF_PACKET', 'DIFF_PACKET']);
    expect(m.getStrategy(7, false)).toBe('FULL_PACKET');
  });
  it('starts at DIFF after a restart with a persisted template', () => {
    const { m } = node();
    expect(m.getStrategy(8, true)).toBe('DIFF_PACKET');
  });
});

describe('anti-replay', () => {
  it('is off by default, as in the reference', () => {
    const { m } = node();
    m.classifyAndDispatch(frame(42, T0 * 1000 + 5));
    expect(m.classifyAndDispatch(frame(42, T0 * 1000)).type).toBe('DATA');
  });
  it('reject-old drops older frames and keeps equal ones', () => {
    const { m } = node({ antiReplay: 'reject-old' });
    expect(m.classifyAndDispatch(frame(42, T0 * 1000 + 5)).type).toBe('DATA');
    expect(m.classifyAndDispatch(frame(42, T0 * 1000 + 5)).type).toBe('DATA');
    const old = m.classifyAndDispatch(frame(42, T0 * 1000));
    expect(old).toMatchObject({ type: 'IGNORED', response: null });
    expect((old.result as { reason: string }).reason).toMatch(/OUT_OF_ORDER/);
  });
  it('strict drops replays too, but not server-stamped frames', () => {
    const { m, clock } = node({ antiReplay: 'strict' });
    m.classifyAndDispatch(frame(42, T0 * 1000 + 5));
    expect(m.classifyAndDispatch(frame(42, T0 * 1000 + 5)).type).toBe('IGNORED');
    expect(m.classifyAndDispatch(frame(43, 0)).type).toBe('DATA');
    clock.advance(0);
    expect(m.classifyAndDispatch(frame(43, 0)).type).toBe('DATA');
  });
  it('bounds the timestamps it remembers', () => {
    const { m } = node({ maxTrackedAids: 5 });
    for (let aid = 0; aid < 50; aid++) m.checkTimestamp(aid, 10);
    expect(m.trackedAidCount).toBe(5);
    expect(m.checkTimestamp(0, 5)).toBe('ACCEPT');
  });
});

describe('parsers', () => {
  it('reports a parser that throws as a DATA error', () => {
    const boom: DataFrameParser = {
      parse() {
        throw new Error('boom');
      },
    };
    const { m } = node({ parser: boom });
    expect(m.classifyAndDispatch(frame(42, T0 * 1000))).toEqual({ type: 'DATA', cmd: 63, result: { error: 'boom', cause: new Error('boom') }, response: null });
  });
  it('frameLevelParser: timestamp_raw as the reference gives it, timestampMs always ms beside it', () => {
    const parser = frameLevelParser();
    const ctx = { keys: { get: () => null }, nowMs: T0 * 1000 + 250 };
    expect(parser.parse(frame(42, T0 * 1000 + 7), ctx).__packet_meta__).toMatchObject({ timestamp_raw: T0 * 1000 + 7, server_stamped: false, timestampMs: T0 * 1000 + 7, receiverStamped: false });
    // No timestamp on the wire: the reference stamps whole seconds, ours gives the ms too.
    expect(parser.parse(frame(42, 0), ctx).__packet_meta__).toMatchObject({ timestamp_raw: T0, server_stamped: true, timestampMs: T0 * 1000 + 250, receiverStamped: true });
    expect(frameLevelParser({ skipTimestamp: true }).parse(frame(42, 0), ctx).__packet_meta__).toMatchObject({ timestamp_raw: 0, server_stamped: false, timestampMs: T0 * 1000 + 250, receiverStamped: true });
  });
  it('answers a frame without a timestamp TIME_RESPONSE in whole seconds, keyed from those seconds, from a ms clock', () => {
    const { m } = node();
    const out = m.classifyAndDispatch(frame(42, 0));
    expect(out.response).toEqual(bytes('0c0000000000006553f100')); // TIME_RESPONSE(0, 1700000000 s)
    expect(m.getSession(42)?.key).toEqual(deriveSessionKey(42, T0));
  });
  it('passes the session keys and the clock (ms) to the parser', () => {
    let ctxNow = 0;
    const spy: DataFrameParser = {
      parse(_frame, ctx) {
        ctxNow = ctx.nowMs;
        return { __packet_meta__: { crc16_ok: true, source_aid: 42, secure: false, timestamp_raw: 5_000_000 }, key: ctx.keys.get(42) };
      },
    };
    const { m } = node({ parser: spy });
    m.classifyAndDispatch(frame(42, 1));
    expect(ctxNow).toBe(T0 * 1000);
    expect(m.getSession(42)?.key).toEqual(deriveSessionKey(42, 5_000_000));
  });
});
