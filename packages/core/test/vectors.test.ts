import { describe, expect, it } from 'vitest';
import { loadCases, replayCase, type StdCase } from './vector-replay.js';

describe('vectors/standardize.json', () => {
  const cases = loadCases();

  it('holds the 164 recorded cases', () => {
    expect(cases).toHaveLength(164);
  });

  for (const c of cases) {
    it(c.id, () => {
      expect(replayCase(c)).toEqual([]);
    });
  }
});

describe('the replay itself', () => {
  const cases = loadCases();
  const pick = (id: string) => structuredClone(cases.find((c) => c.id === id)!) as StdCase;

  it('fails on a different value, type, unit, key order or compressed text', () => {
    const value = pick('std_001_kPa_21.5');
    value.expected.fact.s1_v = 21501;
    expect(replayCase(value).join()).toMatch(/s1_v: got 21500/);

    const type = pick('std_001_kPa_21.5');
    type.expected.types.s1_v = 'float';
    expect(replayCase(type).join()).toMatch(/expected a Python float/);

    const unit = pick('std_010_Cel_21.5');
    unit.expected.fact.s1_u = 'temperature2';
    expect(replayCase(unit).join()).toMatch(/s1_u/);

    const order = pick('std_010_Cel_21.5');
    const { s1_v, ...rest } = order.expected.fact;
    order.expected.fact = { ...rest, s1_v };
    expect(replayCase(order).join()).toMatch(/^keys /);

    const text = pick('std_sensorid_off_one');
    text.expected.compressed = 'DEV1.1.AYvP5WgA|T1>';
    expect(replayCase(text).join()).toMatch(/compressed/);
  });

  it('fails when a dropped sensor is kept', () => {
    const c = pick('std_129_foo_21.5');
    c.input.sensors = [['S1', 'OK', 21.5, 'm']];
    expect(replayCase(c)).not.toEqual([]);
  });
});
