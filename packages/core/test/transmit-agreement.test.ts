import { backendInfo, decodeFrame } from '@opensynaptic/packet';
import { describe, expect, it } from 'vitest';
import { InvalidValueError, OpenSynaptic, type SensorTuple } from '../src/index.js';
const { nativeAvailable } = backendInfo();

const bytesToHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

// The frame the reference 1.4.2 sent for the same call (vectors/pipeline-extra.json).
const REFERENCE_0042_FULL = '3f010000002a01018bcfe56800303034323b4e4f44455f412e312e41597650355767417c54313e4b2e413a636d77637c13f27f';

for (const backend of ['ts', 'native'] as const) {
  describe.skipIf(backend === 'native' && !nativeAvailable && !process.env.CI)(`transmit agreement (${backend})`, () => {
    const node = (assignedId: number | string) => new OpenSynaptic({ assignedId, deviceId: 'NODE_A', clock: () => 1_700_000_000_000, coreBackend: backend });

    it('keeps a digit-text assigned id as given in the FULL body, the number in the header', () => {
      const a = node('0042');
      expect(a.assignedId).toBe(42);
      expect(a.assignedIdText).toBe('0042');
      const r = a.transmit([['T1', 'OK', 21.5, 'Cel']]);
      expect(bytesToHex(r.frame)).toBe(REFERENCE_0042_FULL);
      expect(r.aid).toBe(42);
      expect(decodeFrame(r.frame).sourceAid).toBe(42);
      expect(new TextDecoder().decode(decodeFrame(r.frame).body).startsWith('0042;NODE_A.1.')).toBe(true);
      // A number, or text without leading zeros, writes the number.
      expect(node(42).assignedIdText).toBe('42');
      expect(node('42').assignedIdText).toBe('42');
      expect(bytesToHex(node(42).transmit([['T1', 'OK', 21.5, 'Cel']]).frame)).not.toBe(REFERENCE_0042_FULL);
    });

    it('refuses a NaN or infinite reading with a typed error naming the sensor, and sends nothing', () => {
      const readings: [SensorTuple, string][] = [
        [['T1', 'OK', 'nan', 'Cel'], 'T1'],
        [['T2', 'OK', Number.NaN, 'Cel'], 'T2'],
        [['T3', 'OK', Number.POSITIVE_INFINITY, 'Cel'], 'T3'],
        [['H1', 'OK', '-inf', '%'], 'H1'],
        [['P1', 'OK', 1e308, 'kPa'], 'P1'], // infinite once converted to Pa
      ];
      for (const [sensor, id] of readings) {
        const a = node(42);
        let error: unknown;
        try {
          a.transmit([['OK1', 'OK', 1, 'Cel'], sensor]);
        } catch (e) {
          error = e;
        }
        expect(error, id).toBeInstanceOf(InvalidValueError);
        expect((error as InvalidValueError).code).toBe('ERR_STD_VALUE_RANGE');
        expect((error as InvalidValueError).index).toBe(1);
        expect((error as InvalidValueError).sensorId).toBe(id);
        expect((error as Error).message).toContain(`"${id}"`);
        // Nothing went out: the next frame is still the first FULL, not a DIFF of a refused one.
        expect(a.fusion.hasTemplate(42)).toBe(false);
        expect(a.transmit([['OK1', 'OK', 1, 'Cel']]).frame[0]).toBe(63);
      }
    });

    it('lists the sensors it leaves out, as the reference drops them, with their typed errors', () => {
      const r = node(42).transmit([
        ['T1', 'OK', 21.5, 'Cel'],
        ['L1', 'OK', 3, 'lux'],
        ['X1', 'OK', 'abc', 'Cel'],
      ]);
      expect(r.dropped.map((d) => [d.index, d.error.code])).toEqual([
        [1, 'ERR_STD_UNKNOWN_UNIT'],
        [2, 'ERR_STD_INVALID_VALUE'],
      ]);
      expect(node(42).transmit([['T1', 'OK', 21.5, 'Cel']]).dropped).toEqual([]);
    });
  });
}
