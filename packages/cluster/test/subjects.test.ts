import { AUTH_DIFF, AUTH_FULL, AUTH_HEART, AUTH_HELLO, isAuthData } from '@opensynaptic/cmd';
import { OpenSynaptic } from '@opensynaptic/core';
import { AuthServer } from '@opensynaptic/handshake';
import { frameAid, partitionOf } from '@opensynaptic/server';
import { describe, expect, it } from 'vitest';
import {
  assignPartitions,
  checkMemberId,
  checkPartitions,
  checkPrefix,
  consumerName,
  framesSubject,
  framesWildcard,
  helloAid,
  isOpenSynapticError,
  leaseBucket,
  leaseKey,
  memberKey,
  partitionOfSubject,
  sourceAid,
  sourcePartition,
  sourceTimestamp,
  streamName,
} from '../src/index.js';

describe('subject naming', () => {
  it('names partitions, the stream, consumers and lease keys from one prefix', () => {
    expect(framesSubject('os', 0)).toBe('os.frames.0');
    expect(framesSubject('site-a', 63)).toBe('site-a.frames.63');
    expect(framesWildcard('os')).toBe('os.frames.*');
    expect(streamName('site-a')).toBe('SITE_A_FRAMES');
    expect(consumerName('os', 7)).toBe('os-p7');
    expect(leaseBucket('site-a')).toBe('site_a_leases');
    expect(leaseKey(5)).toBe('p.5');
    expect(memberKey('r1')).toBe('m.r1');
  });

  it('reads the partition back from a subject, and nothing from another subject', () => {
    expect(partitionOfSubject('os', 'os.frames.42')).toBe(42);
    expect(partitionOfSubject('os', 'os.frames.042')).toBeUndefined();
    expect(partitionOfSubject('os', 'os.frames.x')).toBeUndefined();
    expect(partitionOfSubject('os', 'other.frames.1')).toBeUndefined();
    expect(partitionOfSubject('os', 'os.frames.65536')).toBeUndefined();
  });

  it('routes a device to the subject of partitionOf (the server package contract)', () => {
    for (const aid of [1, 2, 1000, 0xfffffffe]) expect(framesSubject('os', partitionOf(aid, 64))).toBe(`os.frames.${partitionOf(aid, 64)}`);
  });

  it('refuses bad names with ERR_CLUSTER_OPTION', () => {
    for (const bad of ['', 'OS', '1os', 'os.a', 'a*', 'x'.repeat(33)]) {
      expect(() => checkPrefix(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_CLUSTER_OPTION' }));
    }
    expect(() => checkMemberId('a.b')).toThrow(/not 1..64 characters/);
    expect(() => checkPartitions(0)).toThrow(/from 1 to 65536/);
    try {
      checkPartitions(1.5);
      expect.unreachable();
    } catch (e) {
      expect(isOpenSynapticError(e, 'ERR_CLUSTER_OPTION')).toBe(true);
    }
  });
});

describe('assignPartitions (balanced rendezvous)', () => {
  it('gives every partition to exactly one member, at most ceil(P / members) each', () => {
    for (const [members, p] of [[['a', 'b', 'c'], 64], [['r1', 'r2'], 16], [['x'], 5], [['a', 'b', 'c', 'd', 'e'], 12]] as const) {
      const m = assignPartitions(members, p);
      const all = [...m.values()].flat().sort((x, y) => x - y);
      expect(all).toEqual(Array.from({ length: p }, (_, i) => i));
      for (const parts of m.values()) expect(parts.length).toBeLessThanOrEqual(Math.ceil(p / members.length));
    }
  });

  it('is the same whatever the order of the member list', () => {
    expect(assignPartitions(['c', 'a', 'b'], 32)).toEqual(assignPartitions(['a', 'b', 'c'], 32));
  });

  it('moves only the dead member’s partitions and a few to even the load', () => {
    const before = assignPartitions(['a', 'b', 'c'], 64);
    const after = assignPartitions(['a', 'b'], 64);
    let moved = 0;
    for (const m of ['a', 'b']) for (const p of before.get(m)!) if (!after.get(m)!.includes(p)) moved++;
    // a and b keep nearly everything they had; c's partitions are shared out.
    expect(moved).toBeLessThanOrEqual(8);
    expect(after.get('a')!.length + after.get('b')!.length).toBe(64);
  });
});

describe('routing fields of authenticated frames', () => {
  const SECRET = new Uint8Array(32).fill(3);
  const AID = 0x01020304;
  const T = 1_760_000_123_000;

  it('reads the aid and timestamp of AUTH_FULL / DIFF / HEART as of plain frames, the aid of an AUTH_HELLO, nothing of a cut frame', async () => {
    const auth = new AuthServer();
    auth.setKey(AID, 0, SECRET);
    const server = new OpenSynaptic({ assignedId: 1, deviceId: 'S', clock: () => T, handshake: { auth: { server: auth } } });
    const hellos: Uint8Array[] = [];
    const device: OpenSynaptic = new OpenSynaptic({
      assignedId: AID,
      deviceId: 'D',
      clock: () => T,
      auth: { secret: SECRET, mode: 'require' },
      send: (p) => {
        hellos.push(p);
        const answer = server.receive(p).response;
        if (answer) queueMicrotask(() => device.receive(answer));
      },
    });
    expect(await device.authenticate()).toBe('authenticated');
    expect(helloAid(hellos[0]!)).toBe(AID);
    expect(sourceAid(hellos[0]!)).toBeUndefined();
    const seen = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const t = T + i * 1000;
      const f = device.transmit([['T1', 'OK', i < 4 ? 0 : 1, 'Cel']], { t }).frame;
      expect(isAuthData(f[0]!)).toBe(true);
      seen.add(f[0]!);
      // The server package's reader takes only plain and legacy secure frames.
      expect(frameAid(f)).toBeUndefined();
      expect(sourceAid(f)).toBe(AID);
      expect(sourceTimestamp(f)).toBe(t);
      expect(sourcePartition(f, 64)).toBe(partitionOf(AID, 64));
      for (let n = 0; n < 2 + 4 + 1 + 6; n++) expect(sourceTimestamp(f.subarray(0, n)), `cut at ${n}`).toBeUndefined();
      expect(server.receive(f).type).toBe('data');
    }
    expect(seen).toEqual(new Set([AUTH_FULL, AUTH_DIFF, AUTH_HEART]));
    expect(helloAid(new Uint8Array([AUTH_HELLO, 1, 2, 3]))).toBeUndefined();
  });
});
