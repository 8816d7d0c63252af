import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOpenSynapticError } from '@opensynaptic/internal';
import { MemoryStore } from '@opensynaptic/store';
import { openSqliteStore } from '@opensynaptic/store-sqlite';
import { describe, expect, it } from 'vitest';
import { ALERT_STORE_KINDS, type AlertEvent, AlertEngine, type AlertEngineOptions, type AlertStoreKinds, alertRuleOf } from '../src/index.js';

/** An engine on a clock the test moves, recording its events. */
function engine(options: AlertEngineOptions = {}) {
  const clock = { now: 1_000_000 };
  const events: AlertEvent[] = [];
  const e = new AlertEngine({ clock: () => clock.now, onEvent: (ev) => events.push(ev), ...options });
  /** One reading of sensor `id` at the clock's time (device time = receive time). */
  const read = (value: number, opts: { id?: string; unit?: string; aid?: number; deviceId?: string; dtMs?: number } = {}) => {
    clock.now += opts.dtMs ?? 1000;
    e.reading({ aid: opts.aid ?? 7, deviceId: opts.deviceId ?? 'dev-7', timestampMs: clock.now, receivedAtMs: clock.now, sensors: [{ id: opts.id ?? 'T1', value, unit: opts.unit ?? 'K' }] });
  };
  const kinds = () => events.map((ev) => `${ev.event}:${ev.alert.ruleId}`);
  return { e, clock, events, read, kinds };
}

describe('alert rules: the checks', () => {
  it.each([
    [{ id: 'x', kind: 'over', sensor: 'T1', threshold: 1 }, 'kind'],
    [{ id: 'x', kind: 'above', threshold: 1 }, 'sensor'],
    [{ id: 'x', kind: 'above', sensor: 'T1', unit: 'K', threshold: 1 }, 'unit'],
    [{ id: 'x', kind: 'above', sensor: 'T1' }, 'threshold'],
    [{ id: 'x', kind: 'above', sensor: 'T1', threshold: '5' }, 'threshold'],
    [{ id: 'x', kind: 'rate', sensor: 'T1', threshold: -1 }, 'threshold'],
    [{ id: 'x', kind: 'stale', sensor: 'T1' }, 'afterMs'],
    [{ id: 'x', kind: 'stale', afterMs: 100, threshold: 3 }, 'threshold'],
    [{ id: 'x', kind: 'above', sensor: 'T1', threshold: 1, afterMs: 5 }, 'afterMs'],
    [{ id: 'x', kind: 'above', sensor: 'T1', threshold: 1, severity: 'fatal' }, 'severity'],
    [{ id: 'x', kind: 'above', sensor: 'T1', threshold: 1, cooldownMs: -1 }, 'cooldownMs'],
    [{ id: 'x', kind: 'above', sensor: 'T1', threshold: 1, aid: 1.5 }, 'aid'],
    [{ id: 'x y', kind: 'above', sensor: 'T1', threshold: 1 }, 'id'],
    [{ id: 'x', kind: 'above', sensor: 'T1', threshold: 1, colour: 'red' }, 'colour'],
  ])('refuse %j naming %s', (rule, key) => {
    let error: unknown;
    try {
      alertRuleOf(rule);
    } catch (e) {
      error = e;
    }
    expect(isOpenSynapticError(error, 'ERR_DASHBOARD_RULE')).toBe(true);
    expect((error as { key: string }).key).toBe(key);
    expect((error as Error).message).toContain(key);
  });

  it('fill the defaults', () => {
    expect(alertRuleOf({ id: 'hot', kind: 'above', sensor: 'T1', threshold: 300 })).toEqual({ id: 'hot', kind: 'above', severity: 'warning', sensor: 'T1', threshold: 300, hysteresis: 0, cooldownMs: 60_000, enabled: true });
  });

  it('from the options name the rule by its index', () => {
    let error: unknown;
    try {
      new AlertEngine({ rules: [{ id: 'a', kind: 'above', sensor: 'T1', threshold: 1 }, { id: 'b', kind: 'below', sensor: 'T1' }] });
    } catch (e) {
      error = e;
    }
    expect(isOpenSynapticError(error, 'ERR_DASHBOARD_OPTION')).toBe(true);
    expect((error as { key: string }).key).toBe('alertRules[1].threshold');
  });
});

describe('the alert engine', () => {
  it('fires `above` when the value passes the threshold and clears when it is back (with hysteresis)', () => {
    const { e, read, events, kinds } = engine({ rules: [{ id: 'hot', kind: 'above', sensor: 'T1', threshold: 300, hysteresis: 2, severity: 'critical', cooldownMs: 0 }] });
    read(299);
    expect(events).toEqual([]);
    read(301);
    expect(kinds()).toEqual(['fired:hot']);
    expect(events[0]?.alert).toMatchObject({ severity: 'critical', aid: 7, deviceId: 'dev-7', sensorId: 'T1', value: 301, limit: 300, clearedAtMs: null });
    read(305); // still holding: no second alert
    read(299); // under the threshold, not past the hysteresis
    expect(kinds()).toEqual(['fired:hot']);
    expect(e.active()).toHaveLength(1);
    read(297.5);
    expect(kinds()).toEqual(['fired:hot', 'cleared:hot']);
    expect(events[1]?.alert).toMatchObject({ clearedBy: 'condition', clearValue: 297.5 });
    expect(e.active()).toEqual([]);
    expect(e.recent()).toHaveLength(1);
    expect(e.recent()[0]?.clearedAtMs).not.toBeNull();
  });

  it('fires `below` per unit, on any device, one alert per device and sensor', () => {
    const { e, read, kinds } = engine({ rules: [{ id: 'dry', kind: 'below', unit: '%', threshold: 20, cooldownMs: 0 }] });
    read(10, { id: 'H1', unit: '%', aid: 1, deviceId: 'a' });
    read(15, { id: 'H2', unit: '%', aid: 1, deviceId: 'a' });
    read(12, { id: 'H1', unit: '%', aid: 2, deviceId: 'b' });
    read(5, { id: 'T1', unit: 'K', aid: 2, deviceId: 'b' }); // another unit: not watched
    expect(kinds()).toEqual(['fired:dry', 'fired:dry', 'fired:dry']);
    expect(e.active().map((a) => `${a.key}/${a.sensorId}`).sort()).toEqual(['1:a/H1', '1:a/H2', '2:b/H1']);
    read(50, { id: 'H1', unit: '%', aid: 2, deviceId: 'b' });
    expect(e.active()).toHaveLength(2);
  });

  it('watches only the rule’s device when it names an aid', () => {
    const { read, kinds } = engine({ rules: [{ id: 'hot', kind: 'above', sensor: 'T1', aid: 2, threshold: 0 }] });
    read(10, { aid: 1, deviceId: 'a' });
    expect(kinds()).toEqual([]);
    read(10, { aid: 2, deviceId: 'b' });
    expect(kinds()).toEqual(['fired:hot']);
  });

  it('fires `rate` on the absolute change per second, from the devices’ timestamps', () => {
    const { read, events, kinds } = engine({ rules: [{ id: 'jump', kind: 'rate', sensor: 'T1', threshold: 5, cooldownMs: 0 }] });
    read(300); // first: nothing to compare
    read(304, { dtMs: 1000 }); // 4/s
    expect(kinds()).toEqual([]);
    read(294, { dtMs: 500 }); // -20/s
    expect(kinds()).toEqual(['fired:jump']);
    expect(events[0]?.alert.value).toBe(20);
    read(295, { dtMs: 1000 }); // 1/s
    expect(kinds()).toEqual(['fired:jump', 'cleared:jump']);
  });

  it('holds back a new alert of the same rule, device and sensor within the cooldown, and fires after it if the condition still holds', () => {
    const { e, read, clock, kinds } = engine({ rules: [{ id: 'hot', kind: 'above', sensor: 'T1', threshold: 300, cooldownMs: 10_000 }] });
    read(301);
    read(290);
    read(301); // 2 s after the first: held back
    expect(kinds()).toEqual(['fired:hot', 'cleared:hot']);
    read(302, { aid: 8, deviceId: 'other' }); // another device has its own cooldown
    expect(kinds()).toEqual(['fired:hot', 'cleared:hot', 'fired:hot']);
    expect(e.status().suppressed).toBe(1);
    clock.now += 10_000;
    read(303);
    expect(kinds()).toEqual(['fired:hot', 'cleared:hot', 'fired:hot', 'fired:hot']);
  });

  it('fires `stale` on the timer when a sensor or a device goes silent, and clears when it speaks again', async () => {
    const known = [{ aid: 9, deviceId: 'quiet', lastSeenMs: 985_000 }];
    const { e, read, clock, kinds, events } = engine({ knownDevices: () => known, rules: [{ id: 'silent', kind: 'stale', sensor: 'T1', afterMs: 5000, cooldownMs: 0 }, { id: 'gone', kind: 'stale', afterMs: 30_000, cooldownMs: 0 }] });
    await e.load();
    read(300);
    e.check(clock.now + 5000);
    expect(kinds()).toEqual([]);
    e.check(clock.now + 5001);
    expect(kinds()).toEqual(['fired:silent']);
    expect(events[0]?.alert).toMatchObject({ sensorId: 'T1', value: 5001, limit: 5000 });
    e.check(clock.now + 9000); // still silent: still the one alert
    expect(kinds()).toEqual(['fired:silent']);
    clock.now += 9000;
    read(300);
    expect(kinds()).toEqual(['fired:silent', 'cleared:silent']);
    // The known device, never heard since start: whole-device rule, from its last-seen time.
    e.check(985_000 + 30_001);
    expect(kinds()).toEqual(['fired:silent', 'cleared:silent', 'fired:gone']);
    expect(events.at(-1)?.alert).toMatchObject({ aid: 9, deviceId: 'quiet', sensorId: null });
  });

  it('stays bounded: history, active alerts and series', () => {
    const { e, read } = engine({ maxAlertHistory: 5, maxActiveAlerts: 3, maxAlertSeries: 4, rules: [{ id: 'hot', kind: 'above', sensor: 'T1', threshold: 0, cooldownMs: 0 }] });
    for (let i = 0; i < 6; i++) read(1, { aid: i, deviceId: `d${i}` });
    const st = e.status();
    expect(st.active).toBe(3);
    expect(st.overflow).toBe(1); // the 4th series fired with 3 active
    expect(st.untracked).toBe(2); // the 5th and 6th were never watched
    expect(st.series).toBe(4);
    for (let i = 0; i < 4; i++) {
      read(-1, { aid: i, deviceId: `d${i}` });
      read(1, { aid: i, deviceId: `d${i}` });
    }
    expect(e.recent().length).toBeLessThanOrEqual(5);
    expect(e.status().history).toBe(5);
  });

  it('clears the alerts of a rule replaced or deleted', () => {
    const { e, read, kinds, events } = engine({ rules: [{ id: 'hot', kind: 'above', sensor: 'T1', threshold: 0 }] });
    read(1);
    e.putRule({ kind: 'above', sensor: 'T1', threshold: 10 }, { id: 'hot' });
    expect(kinds()).toEqual(['fired:hot', 'cleared:hot']);
    expect(events[1]?.alert.clearedBy).toBe('rule-changed');
    read(11);
    expect(e.deleteRule('hot')).toBe(true);
    expect(events.at(-1)?.alert.clearedBy).toBe('rule-deleted');
    expect(e.deleteRule('hot')).toBe(false);
    read(100);
    expect(e.active()).toEqual([]);
  });

  it('refuses more rules than maxAlertRules, and POST-style creation of an id taken', () => {
    const { e } = engine({ maxAlertRules: 2 });
    expect(e.putRule({ kind: 'above', sensor: 'A', threshold: 1 }, { create: true }).rule.id).toBe('rule-1');
    expect(() => e.putRule({ id: 'rule-1', kind: 'above', sensor: 'A', threshold: 1 }, { create: true })).toThrow(/exists/);
    e.putRule({ id: 'b', kind: 'above', sensor: 'A', threshold: 1 });
    expect(() => e.putRule({ id: 'c', kind: 'above', sensor: 'A', threshold: 1 })).toThrow(/maxAlertRules/);
  });

  it('costs nothing per reading without a matching rule (indexed by sensor and unit)', () => {
    const { e, read } = engine({ rules: [{ id: 'hot', kind: 'above', sensor: 'T9', threshold: 0 }] });
    for (let i = 0; i < 100; i++) read(1);
    expect(e.status().series).toBe(0);
  });
});

describe('alert persistence', () => {
  it('keeps rules, the history and the active alerts across a re-created engine on the same SQLite store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'os-alerts-'));
    const path = join(dir, 'alerts.db');
    try {
      let store = await openSqliteStore<AlertStoreKinds>({ path, kinds: [...ALERT_STORE_KINDS] });
      const a = engine({ store, rules: [{ id: 'hot', kind: 'above', sensor: 'T1', threshold: 300, cooldownMs: 0 }] });
      await a.e.load();
      a.e.putRule({ id: 'cold', kind: 'below', sensor: 'T1', threshold: 250, severity: 'info' });
      a.read(301);
      a.read(290);
      a.read(310); // active at the "restart"
      await a.e.flush();
      await store.close();

      store = await openSqliteStore<AlertStoreKinds>({ path, kinds: [...ALERT_STORE_KINDS] });
      const b = engine({ store, rules: [{ id: 'hot', kind: 'above', sensor: 'T1', threshold: 300, cooldownMs: 0 }] });
      await b.e.load();
      expect(b.e.rules().map((r) => r.id)).toEqual(['cold', 'hot']);
      expect(b.e.rule('cold')?.severity).toBe('info');
      expect(b.e.recent().map((x) => x.value)).toEqual([310, 301]);
      expect(b.e.active().map((x) => x.value)).toEqual([310]);
      // The restored alert clears when its condition stops holding, and is not fired twice.
      b.read(311);
      expect(b.events).toEqual([]);
      b.read(280);
      expect(b.kinds()).toEqual(['cleared:hot']);
      b.e.deleteRule('cold');
      await b.e.flush();
      await store.close();

      store = await openSqliteStore<AlertStoreKinds>({ path, kinds: [...ALERT_STORE_KINDS] });
      const c = engine({ store });
      await c.e.load();
      expect(c.e.rules().map((r) => r.id)).toEqual(['hot']); // from the store this time
      expect(c.e.active()).toEqual([]);
      expect(c.e.recent()[0]?.clearedBy).toBe('condition');
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts a failing store and retries the writes later', async () => {
    const store = new MemoryStore<AlertStoreKinds>({ kinds: [...ALERT_STORE_KINDS] });
    let fail = true;
    const write = store.write.bind(store);
    store.write = async (batch) => {
      if (fail) throw new Error('disk full');
      return write(batch);
    };
    const a = engine({ store, rules: [{ id: 'hot', kind: 'above', sensor: 'T1', threshold: 0 }] });
    await a.e.load();
    a.read(1);
    await a.e.flush();
    expect(a.e.status().storeErrors).toBeGreaterThan(0);
    fail = false;
    await a.e.flush();
    expect(await store.keys('alerts')).toHaveLength(1);
    expect(await store.keys('alert-rules')).toEqual(['hot']);
  });
});
