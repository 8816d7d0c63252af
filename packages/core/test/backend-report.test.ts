import { decode } from '@opensynaptic/base62';
import { backendInfo as crcInfo, xorPayload } from '@opensynaptic/crc';
import { backendInfo as fusionInfo, OSVisualFusionEngine } from '@opensynaptic/fusion';
import { parseIdAssign } from '@opensynaptic/handshake';
import { backendInfo as packetInfo, decodeFrame, encodeFrame } from '@opensynaptic/packet';
import { thrown } from '@opensynaptic/config/assert';
import { describe, expect, it } from 'vitest';
import { backendReport, isOpenSynapticError, OpenSynaptic, OpenSynapticStandardizer } from '../src/index.js';

describe('backendReport', () => {
  it('lists the same facts, of the same shape, that each accelerated package reports', () => {
    const report = backendReport();
    expect(Object.keys(report)).toEqual(['crc', 'packet', 'fusion']);
    expect(report.crc).toEqual(crcInfo());
    expect(report.packet).toEqual(packetInfo());
    expect(report.fusion).toEqual(fusionInfo());
    for (const [name, info] of Object.entries(report)) {
      expect(info.package).toBe(`@opensynaptic/${name}`);
      expect(Object.keys(info).sort()).toEqual(['backend', 'backendMode', 'backends', 'nativeAvailable', 'nativeUnavailable', 'package']);
      const used = new Set(Object.values(info.backends));
      // `backend` is the one backend every operation uses, or `mixed` when they differ.
      expect(info.backend).toBe(used.size === 1 ? [...used][0] : 'mixed');
      expect(Object.keys(info.backends).length).toBeGreaterThan(0);
    }
  });

  it('says mixed exactly when auto hands some operations to the addon', () => {
    const { crc } = backendReport();
    if (crc.backendMode === 'auto' && crc.nativeAvailable) {
      expect(crc.backend).toBe('mixed');
      expect(crc.backends.crc8Batch).toBe('native');
      expect(crc.backends.crc16).toBe('ts');
    } else if (crc.backendMode === 'native') {
      expect(crc.backend).toBe('native');
    } else {
      expect(crc.backend).toBe('ts');
    }
  });
});

describe('isOpenSynapticError, from core, on the errors of every package', () => {
  it('recognises each by its code', () => {
    const cases: [unknown, string][] = [
      [thrown(() => decode('!')), 'ERR_BASE62_INVALID'],
      [thrown(() => xorPayload(new Uint8Array(1), new Uint8Array(1), Number.NaN)), 'ERR_CRC_ARGUMENT'],
      [thrown(() => decodeFrame(Uint8Array.of(63))), 'ERR_FRAME_TOO_SHORT'],
      [thrown(() => new OSVisualFusionEngine().decompress(encodeFrame({ cmd: 170, routes: 9, tid: 5, timestamp: 1, body: Uint8Array.of(0) }))), 'ERR_FUSION_TEMPLATE_MISSING'],
      [thrown(() => parseIdAssign(Uint8Array.of(1))), 'ERR_HANDSHAKE_WRONG_CMD'],
      [thrown(() => new OpenSynapticStandardizer().standardize('D', 'ONLINE', 'not a list' as never)), 'ERR_STD_INPUT'],
      [thrown(() => new OpenSynaptic({ deviceId: 'D' }).transmit([['T1', 'OK', 1, 'Cel']])), 'ERR_NODE_ID_NOT_ASSIGNED'],
    ];
    for (const [error, code] of cases) {
      expect((error as { code: string }).code).toBe(code);
      expect(isOpenSynapticError(error)).toBe(true);
      expect(isOpenSynapticError(error, code)).toBe(true);
    }
  });
});
