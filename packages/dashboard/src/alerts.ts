import { randomUUID } from 'node:crypto';
import type { Store, StoreWrite } from '@opensynaptic/store';
import type { Alert, AlertKind, AlertRule, AlertSeverity } from './alert-types.js';
import { DashboardError, type DashboardErrorCode } from './errors.js';

export type { Alert, AlertKind, AlertRule, AlertSeverity } from './alert-types.js';

const KINDS: readonly AlertKind[] = ['above', 'below', 'rate', 'stale'];
const SEVERITIES: readonly AlertSeverity[] = ['info', 'warning', 'critical'];


export interface AlertEvent {
  event: 'fired' | 'cleared';
  alert: Alert;
}

/** The kinds of a store that keeps alert rules and the alert history. */
export interface AlertStoreKinds {
  'alert-rules': AlertRule;
  alerts: Alert;
}
/** Open the store given as `alertStore` with (at least) these kinds. */
export const ALERT_STORE_KINDS = ['alert-rules', 'alerts'] as const;

export const ALERT_DEFAULTS = {
  maxAlertRules: 256,
  maxAlertHistory: 1000,
  maxActiveAlerts: 1000,
  maxAlertSeries: 100_000,
  alertCheckIntervalMs: 1000,
  cooldownMs: 60_000,
} as const;

const RULE_KEYS = new Set(['id', 'kind', 'severity', 'aid', 'sensor', 'unit', 'threshold', 'afterMs', 'hysteresis', 'cooldownMs', 'enabled', 'message']);
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

const shown = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v) : v === undefined ? 'undefined' : (JSON.stringify(v) ?? String(v)).slice(0, 60));

/**
 * Checks a rule given as JSON: unknown fields, types and ranges, the fields its kind needs.
 * Throws `code` (`ERR_DASHBOARD_RULE` from the API, `ERR_DASHBOARD_OPTION` from the options)
 * with `key` `${prefix}${field}` and a message naming the value.
 */
export function alertRuleOf(input: unknown, options: { code?: DashboardErrorCode; prefix?: string; id?: string } = {}): AlertRule {
  const code = options.code ?? 'ERR_DASHBOARD_RULE';
  const prefix = options.prefix ?? '';
  const fail = (field: string, detail: string): never => {
    throw new DashboardError(code, `${prefix}${field}: ${detail}`, { key: `${prefix}${field}` });
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return fail('rule', `expected an object, got ${shown(input)}`);
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!RULE_KEYS.has(k)) fail(k, `unknown field (allowed: ${[...RULE_KEYS].join(', ')})`);
  let id = o.id;
  if (options.id !== undefined) {
    if (id !== undefined && id !== options.id) fail('id', `${shown(id)} differs from the id addressed (${shown(options.id)})`);
    id = options.id;
  }
  if (typeof id !== 'string' || !ID_RE.test(id)) fail('id', `${shown(id)} is not 1..64 letters, digits, _ . : - (starting with a letter or digit)`);
  const kind = o.kind as AlertKind;
  if (!KINDS.includes(kind)) fail('kind', `${shown(o.kind)} is not one of ${KINDS.join(', ')}`);
  const severity = (o.severity ?? 'warning') as AlertSeverity;
  if (!SEVERITIES.includes(severity)) fail('severity', `${shown(o.severity)} is not one of ${SEVERITIES.join(', ')}`);
  const rule: AlertRule = { id: id as string, kind, severity, hysteresis: 0, cooldownMs: ALERT_DEFAULTS.cooldownMs, enabled: true };
  if (o.aid !== undefined) {
    if (!Number.isInteger(o.aid) || (o.aid as number) < 0 || (o.aid as number) > 0xffff_ffff) fail('aid', `${shown(o.aid)} is not an integer in 0..4294967295`);
    rule.aid = o.aid as number;
  }
  for (const [field, max] of [['sensor', 256], ['unit', 64]] as const) {
    const v = o[field];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length === 0 || v.length > max) fail(field, `${shown(v)} is not a string of 1..${max} characters`);
    rule[field] = v as string;
  }
  if (rule.sensor !== undefined && rule.unit !== undefined) fail('unit', 'a rule watches a sensor or a unit, not both');
  if (kind !== 'stale' && rule.sensor === undefined && rule.unit === undefined) fail('sensor', `a rule of kind ${kind} needs a sensor or a unit`);
  const num = (field: 'threshold' | 'hysteresis', min: number) => {
    const v = o[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) fail(field, `${shown(v)} is not a finite number${min === -Infinity ? '' : ` >= ${min}`}`);
    return v as number;
  };
  const int = (field: 'afterMs' | 'cooldownMs', min: number, max: number) => {
    const v = o[field];
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) fail(field, `${shown(v)} is not an integer in ${min}..${max}`);
    return v as number;
  };
  if (kind === 'stale') {
    if (o.threshold !== undefined) fail('threshold', 'a stale rule has afterMs, not a threshold');
    if (o.hysteresis !== undefined) fail('hysteresis', 'a stale rule has no hysteresis');
    if (o.afterMs === undefined) fail('afterMs', 'a stale rule needs afterMs (ms without a reading)');
    rule.afterMs = int('afterMs', 1, 7 * 86_400_000);
  } else {
    if (o.afterMs !== undefined) fail('afterMs', `only a stale rule has afterMs (this one is ${kind})`);
    if (o.threshold === undefined) fail('threshold', `a rule of kind ${kind} needs a threshold`);
    rule.threshold = num('threshold', kind === 'rate' ? 0 : -Infinity);
    if (o.hysteresis !== undefined) rule.hysteresis = num('hysteresis', 0);
  }
  if (o.cooldownMs !== undefined) rule.cooldownMs = int('cooldownMs', 0, 86_400_000);
  if (o.enabled !== undefined) {
    if (typeof o.enabled !== 'boolean') fail('enabled', `${shown(o.enabled)} is not true or false`);
    rule.enabled = o.enabled as boolean;
  }
  if (o.message !== undefined) {
    if (typeof o.message !== 'string' || o.message.length > 200) fail('message', `${shown(o.message)} is not a string of at most 200 characters`);
    rule.message = o.message as string;
  }
  return rule;
}

/** A reading as the engine takes it (the server's reading, loosely). */
export interface AlertReading {
  aid: number;
  deviceId: string;
  timestampMs: number;
  receivedAtMs: number;
  sensors: readonly { id: string; value: number; unit: string }[];
}

/** One watched series: a rule on one device (and one sensor, unless a whole-device stale rule). */
interface Series {
  key: string;
  rule: AlertRule;
  aid: number;
  deviceId: string;
  sensorId: string | null;
  unit: string;
  lastSeenMs: number;
  prevValue: number;
  prevTs: number;
  hasPrev: boolean;
  active: Alert | null;
  lastFiredMs: number;
}

export interface AlertEngineOptions {
  /** Where rules and the history persist (default none: kept in memory for the process's life). */
  store?: Store<AlertStoreKinds> | null | undefined;
  /** Rules that are (re)applied at every load, over stored rules of the same id. */
  rules?: readonly unknown[] | undefined;
  maxAlertRules?: number;
  maxAlertHistory?: number;
  maxActiveAlerts?: number;
  maxAlertSeries?: number;
  clock?: () => number;
  /** Each alert fired or cleared (synchronous: keep it cheap). */
  onEvent?: (e: AlertEvent) => void;
  /** The devices known now (a whole-device stale rule watches each). */
  knownDevices?: () => Iterable<{ aid: number; deviceId: string; lastSeenMs: number }>;
}

export interface AlertEngineStatus {
  rules: number;
  active: number;
  history: number;
  series: number;
  fired: number;
  cleared: number;
  /** Firings held back by a cooldown (counted per evaluation). */
  suppressed: number;
  /** Firings not recorded: `maxActiveAlerts` were active. */
  overflow: number;
  /** Series not watched: `maxAlertSeries` were watched. */
  untracked: number;
  storeErrors: number;
  lastStoreError: string | null;
}

const sensorSuffix = (s: string | null) => (s === null ? '' : s);

function fmt(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/**
 * The threshold rule engine. `reading()` is the receive hook's work: per sensor it looks up the
 * rules indexed by that sensor id and that unit (plus the whole-device stale rules), so a
 * reading costs O(rules that match it) and nothing when no rule does. `check()` (on a timer)
 * fires `stale` alerts. Everything is bounded (rules, series, active alerts, history); changes
 * are written behind to `store`, coalesced by key.
 */
export class AlertEngine {
  readonly maxAlertRules: number;
  readonly maxAlertHistory: number;
  readonly maxActiveAlerts: number;
  readonly maxAlertSeries: number;
  readonly #store: Store<AlertStoreKinds> | null;
  readonly #optionRules: AlertRule[];
  readonly #clock: () => number;
  readonly #onEvent: ((e: AlertEvent) => void) | undefined;
  readonly #knownDevices: AlertEngineOptions['knownDevices'];
  readonly #rules = new Map<string, AlertRule>();
  #bySensor = new Map<string, AlertRule[]>();
  #byUnit = new Map<string, AlertRule[]>();
  #deviceRules: AlertRule[] = [];
  readonly #series = new Map<string, Series>();
  readonly #seriesOfRule = new Map<string, Set<string>>();
  readonly #staleSeries = new Set<Series>();
  readonly #active = new Map<string, Alert>();
  /** Oldest first. */
  #history: Alert[] = [];
  readonly #dirty = new Map<string, StoreWrite<AlertStoreKinds>>();
  #writing: Promise<void> | null = null;
  #scheduled = false;
  readonly #status: AlertEngineStatus = { rules: 0, active: 0, history: 0, series: 0, fired: 0, cleared: 0, suppressed: 0, overflow: 0, untracked: 0, storeErrors: 0, lastStoreError: null };

  constructor(options: AlertEngineOptions = {}) {
    this.maxAlertRules = options.maxAlertRules ?? ALERT_DEFAULTS.maxAlertRules;
    this.maxAlertHistory = options.maxAlertHistory ?? ALERT_DEFAULTS.maxAlertHistory;
    this.maxActiveAlerts = options.maxActiveAlerts ?? ALERT_DEFAULTS.maxActiveAlerts;
    this.maxAlertSeries = options.maxAlertSeries ?? ALERT_DEFAULTS.maxAlertSeries;
    this.#store = options.store ?? null;
    this.#clock = options.clock ?? Date.now;
    this.#onEvent = options.onEvent;
    this.#knownDevices = options.knownDevices;
    const given = options.rules ?? [];
    if (!Array.isArray(given)) throw new DashboardError('ERR_DASHBOARD_OPTION', 'alertRules: expected a list of rules', { key: 'alertRules' });
    if (given.length > this.maxAlertRules) throw new DashboardError('ERR_DASHBOARD_OPTION', `alertRules: ${given.length} rules, more than maxAlertRules (${this.maxAlertRules})`, { key: 'alertRules' });
    this.#optionRules = given.map((r, i) => alertRuleOf(r, { code: 'ERR_DASHBOARD_OPTION', prefix: `alertRules[${i}].` }));
    const ids = new Set<string>();
    for (const [i, r] of this.#optionRules.entries()) {
      if (ids.has(r.id)) throw new DashboardError('ERR_DASHBOARD_OPTION', `alertRules[${i}].id: ${JSON.stringify(r.id)} is given twice`, { key: `alertRules[${i}].id` });
      ids.add(r.id);
    }
    for (const r of this.#optionRules) this.#rules.set(r.id, r);
    this.#reindex();
  }

  /**
   * Loads the stored rules and history (the options' rules win over stored ones of the same id),
   * restores the active alerts (each clears when its condition stops holding), and watches the
   * known devices for whole-device stale rules.
   */
  async load(): Promise<void> {
    if (this.#store !== null) {
      const ruleKeys = (await this.#store.keys('alert-rules')).sort();
      const stored = await this.#store.getMany('alert-rules', ruleKeys);
      for (const raw of stored) {
        if (raw === undefined || this.#rules.has((raw as AlertRule).id)) continue;
        if (this.#rules.size >= this.maxAlertRules) break;
        try {
          const r = alertRuleOf(raw);
          this.#rules.set(r.id, r);
        } catch {
          // a stored rule this version no longer accepts is skipped, not fatal
        }
      }
      const alertKeys = await this.#store.keys('alerts');
      const alerts = (await this.#store.getMany('alerts', alertKeys)).filter((a): a is Alert => a !== undefined && typeof a?.firedAtMs === 'number');
      alerts.sort((a, b) => a.firedAtMs - b.firedAtMs);
      const drop = alerts.length - this.maxAlertHistory;
      for (const a of alerts.slice(0, Math.max(0, drop))) if (a.clearedAtMs !== null) this.#dirty.set(`alerts\u0000${a.id}`, { op: 'delete', kind: 'alerts', key: a.id });
      this.#history = alerts.slice(Math.max(0, drop));
      for (const a of alerts) if (a.clearedAtMs === null && this.#active.size < this.maxActiveAlerts) this.#active.set(a.id, a);
    }
    for (const r of this.#optionRules) this.#dirty.set(`alert-rules\u0000${r.id}`, { op: 'put', kind: 'alert-rules', key: r.id, value: r });
    this.#reindex();
    const now = this.#clock();
    for (const a of [...this.#active.values()]) {
      const rule = this.#rules.get(a.ruleId);
      if (rule === undefined || !rule.enabled) {
        this.#clear(a, null, now, 'rule-deleted');
        continue;
      }
      const s = this.#seriesFor(rule, a.aid, a.deviceId, a.sensorId, a.unit, now);
      if (s === null) continue;
      s.active = a;
      s.lastFiredMs = a.firedAtMs;
    }
    for (const r of this.#deviceRules) this.#watchKnown(r, now);
    this.#schedule();
  }

  // ----------------------------------------------------------------------------- the rules

  rules(): AlertRule[] {
    return [...this.#rules.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  rule(id: string): AlertRule | undefined {
    return this.#rules.get(id);
  }

  /**
   * Adds or replaces a rule (checked: `ERR_DASHBOARD_RULE`). Replacing one clears its active
   * alerts (`rule-changed`) and starts its series afresh. `create: true` refuses an existing id.
   */
  putRule(input: unknown, options: { id?: string; create?: boolean } = {}): { rule: AlertRule; created: boolean } {
    let raw = input;
    if (options.create && typeof input === 'object' && input !== null && !Array.isArray(input) && (input as { id?: unknown }).id === undefined) raw = { ...input, id: this.#newId() };
    const rule = alertRuleOf(raw, options.id === undefined ? {} : { id: options.id });
    const existing = this.#rules.has(rule.id);
    if (existing && options.create) throw new DashboardError('ERR_DASHBOARD_RULE', `id: a rule ${JSON.stringify(rule.id)} exists (PUT replaces one)`, { key: 'id' });
    if (!existing && this.#rules.size >= this.maxAlertRules) throw new DashboardError('ERR_DASHBOARD_RULE', `id: ${this.#rules.size} rules already, the most maxAlertRules allows (${this.maxAlertRules})`, { key: 'id' });
    if (existing) this.#dropSeries(rule.id, 'rule-changed');
    this.#rules.set(rule.id, rule);
    this.#reindex();
    if (rule.enabled && rule.kind === 'stale' && rule.sensor === undefined && rule.unit === undefined) this.#watchKnown(rule, this.#clock());
    this.#dirty.set(`alert-rules\u0000${rule.id}`, { op: 'put', kind: 'alert-rules', key: rule.id, value: rule });
    this.#schedule();
    return { rule, created: !existing };
  }

  /** Removes a rule; its active alerts clear (`rule-deleted`). False when there is none. */
  deleteRule(id: string): boolean {
    if (!this.#rules.delete(id)) return false;
    this.#dropSeries(id, 'rule-deleted');
    this.#reindex();
    this.#dirty.set(`alert-rules\u0000${id}`, { op: 'delete', kind: 'alert-rules', key: id });
    this.#schedule();
    return true;
  }

  #newId(): string {
    for (let n = this.#rules.size + 1; ; n++) if (!this.#rules.has(`rule-${n}`)) return `rule-${n}`;
  }

  #reindex(): void {
    const bySensor = new Map<string, AlertRule[]>();
    const byUnit = new Map<string, AlertRule[]>();
    const device: AlertRule[] = [];
    for (const r of this.#rules.values()) {
      if (!r.enabled) continue;
      const add = (m: Map<string, AlertRule[]>, k: string) => {
        const list = m.get(k);
        if (list === undefined) m.set(k, [r]);
        else list.push(r);
      };
      if (r.sensor !== undefined) add(bySensor, r.sensor);
      else if (r.unit !== undefined) add(byUnit, r.unit);
      else device.push(r);
    }
    this.#bySensor = bySensor;
    this.#byUnit = byUnit;
    this.#deviceRules = device;
    this.#status.rules = this.#rules.size;
  }

  #dropSeries(ruleId: string, why: 'rule-changed' | 'rule-deleted'): void {
    const now = this.#clock();
    for (const key of this.#seriesOfRule.get(ruleId) ?? []) {
      const s = this.#series.get(key);
      if (s === undefined) continue;
      if (s.active !== null) this.#clear(s.active, null, now, why);
      this.#series.delete(key);
      this.#staleSeries.delete(s);
    }
    this.#seriesOfRule.delete(ruleId);
  }

  // ------------------------------------------------------------------------- evaluation

  /** The receive hook's part: synchronous, O(rules matching the reading). */
  reading(r: AlertReading): void {
    if (this.#bySensor.size === 0 && this.#byUnit.size === 0 && this.#deviceRules.length === 0) return;
    let now: number | undefined;
    for (const s of r.sensors) {
      const a = this.#bySensor.get(s.id);
      const b = this.#byUnit.get(s.unit);
      if (a === undefined && b === undefined) continue;
      now ??= this.#clock();
      if (a !== undefined) for (const rule of a) this.#evaluate(rule, r, s, now);
      if (b !== undefined) for (const rule of b) this.#evaluate(rule, r, s, now);
    }
    for (const rule of this.#deviceRules) {
      if (rule.aid !== undefined && rule.aid !== r.aid) continue;
      now ??= this.#clock();
      const s = this.#seriesFor(rule, r.aid, r.deviceId, null, '', now);
      if (s === null) continue;
      s.lastSeenMs = Math.max(s.lastSeenMs, r.receivedAtMs);
      if (s.active !== null) this.#clear(s.active, 0, now, 'condition');
      s.active = null;
    }
  }

  #evaluate(rule: AlertRule, r: AlertReading, sensor: { id: string; value: number; unit: string }, now: number): void {
    if (rule.aid !== undefined && rule.aid !== r.aid) return;
    const s = this.#seriesFor(rule, r.aid, r.deviceId, sensor.id, sensor.unit, now);
    if (s === null) return;
    s.lastSeenMs = Math.max(s.lastSeenMs, r.receivedAtMs);
    s.unit = sensor.unit;
    const v = sensor.value;
    const t = rule.threshold as number;
    let value = v;
    let holds: boolean;
    let clears: boolean;
    switch (rule.kind) {
      case 'above':
        holds = v > t;
        clears = v <= t - rule.hysteresis;
        break;
      case 'below':
        holds = v < t;
        clears = v >= t + rule.hysteresis;
        break;
      case 'rate': {
        const dt = r.timestampMs - s.prevTs;
        if (!s.hasPrev || dt <= 0) {
          // A first reading, or one not newer than the last: nothing to compare with yet.
          if (!s.hasPrev || dt < 0) {
            s.prevValue = v;
            s.prevTs = r.timestampMs;
            s.hasPrev = true;
          }
          return;
        }
        value = Math.abs((v - s.prevValue) / (dt / 1000));
        s.prevValue = v;
        s.prevTs = r.timestampMs;
        holds = value > t;
        clears = value <= t - rule.hysteresis;
        break;
      }
      default:
        // stale: a reading arrived
        if (s.active !== null) this.#clear(s.active, 0, now, 'condition');
        s.active = null;
        return;
    }
    if (s.active !== null) {
      if (clears) {
        this.#clear(s.active, value, now, 'condition');
        s.active = null;
      }
    } else if (holds) this.#fire(s, value, now);
  }

  /** The timer's part: fires the `stale` alerts whose series have been silent too long. */
  check(nowMs: number = this.#clock()): void {
    for (const s of this.#staleSeries) {
      const age = nowMs - s.lastSeenMs;
      if (s.active === null && age > (s.rule.afterMs as number)) this.#fire(s, age, nowMs);
    }
    if (this.#dirty.size > 0) this.#schedule();
  }

  #seriesFor(rule: AlertRule, aid: number, deviceId: string, sensorId: string | null, unit: string, now: number): Series | null {
    const key = `${rule.id}\u0000${aid}:${deviceId}\u0000${sensorSuffix(sensorId)}`;
    let s = this.#series.get(key);
    if (s !== undefined) return s;
    if (this.#series.size >= this.maxAlertSeries) {
      this.#status.untracked++;
      return null;
    }
    s = { key, rule, aid, deviceId, sensorId, unit, lastSeenMs: now, prevValue: 0, prevTs: 0, hasPrev: false, active: null, lastFiredMs: Number.NEGATIVE_INFINITY };
    this.#series.set(key, s);
    let set = this.#seriesOfRule.get(rule.id);
    if (set === undefined) {
      set = new Set();
      this.#seriesOfRule.set(rule.id, set);
    }
    set.add(key);
    if (rule.kind === 'stale') this.#staleSeries.add(s);
    return s;
  }

  #watchKnown(rule: AlertRule, now: number): void {
    for (const d of this.#knownDevices?.() ?? []) {
      if (rule.aid !== undefined && rule.aid !== d.aid) continue;
      const s = this.#seriesFor(rule, d.aid, d.deviceId, null, '', now);
      if (s !== null && s.active === null) s.lastSeenMs = Math.min(now, d.lastSeenMs);
    }
  }

  #fire(s: Series, value: number, now: number): void {
    const rule = s.rule;
    if (now - s.lastFiredMs < rule.cooldownMs) {
      this.#status.suppressed++;
      return;
    }
    if (this.#active.size >= this.maxActiveAlerts) {
      this.#status.overflow++;
      return;
    }
    const limit = rule.kind === 'stale' ? (rule.afterMs as number) : (rule.threshold as number);
    const what = s.sensorId === null ? `${s.deviceId} (aid ${s.aid})` : `${s.sensorId} of ${s.deviceId} (aid ${s.aid})`;
    const text =
      rule.kind === 'stale'
        ? `${what}: nothing heard for ${fmt(value / 1000)} s (limit ${fmt(limit / 1000)} s)`
        : rule.kind === 'rate'
          ? `${what}: changing ${fmt(value)}/s, more than ${fmt(limit)}/s (${s.unit})`
          : `${what}: ${fmt(value)} ${rule.kind} ${fmt(limit)} (${s.unit})`;
    const alert: Alert = { id: randomUUID(), ruleId: rule.id, kind: rule.kind, severity: rule.severity, key: `${s.aid}:${s.deviceId}`, aid: s.aid, deviceId: s.deviceId, sensorId: s.sensorId, unit: s.unit, value, limit, text: rule.message === undefined ? text : `${rule.message}: ${text}`, firedAtMs: now, clearedAtMs: null, clearedBy: null, clearValue: null };
    s.active = alert;
    s.lastFiredMs = now;
    this.#active.set(alert.id, alert);
    this.#history.push(alert);
    while (this.#history.length > this.maxAlertHistory) {
      const old = this.#history.shift() as Alert;
      // An evicted alert still active stays stored until it clears.
      if (old.clearedAtMs !== null) this.#dirty.set(`alerts\u0000${old.id}`, { op: 'delete', kind: 'alerts', key: old.id });
    }
    this.#status.fired++;
    this.#dirty.set(`alerts\u0000${alert.id}`, { op: 'put', kind: 'alerts', key: alert.id, value: alert });
    this.#schedule();
    this.#onEvent?.({ event: 'fired', alert });
  }

  #clear(a: Alert, value: number | null, now: number, why: NonNullable<Alert['clearedBy']>): void {
    if (!this.#active.delete(a.id)) return;
    // A new object: a stored value is never mutated after it was written.
    const cleared: Alert = { ...a, clearedAtMs: now, clearedBy: why, clearValue: value };
    const i = this.#history.lastIndexOf(a);
    if (i >= 0) {
      this.#history[i] = cleared;
      this.#dirty.set(`alerts\u0000${a.id}`, { op: 'put', kind: 'alerts', key: a.id, value: cleared });
    } else this.#dirty.set(`alerts\u0000${a.id}`, { op: 'delete', kind: 'alerts', key: a.id });
    this.#status.cleared++;
    this.#schedule();
    this.#onEvent?.({ event: 'cleared', alert: cleared });
  }

  // ----------------------------------------------------------------------------- views

  /** The active alerts, oldest first. */
  active(): Alert[] {
    return [...this.#active.values()];
  }

  /** The history (fired and cleared alerts alike), newest first, at most `limit`, filtered. */
  recent(limit = this.maxAlertHistory, filter: (a: Alert) => boolean = () => true): Alert[] {
    const out: Alert[] = [];
    for (let i = this.#history.length - 1; i >= 0 && out.length < limit; i--) {
      const a = this.#history[i] as Alert;
      if (filter(a)) out.push(a);
    }
    return out;
  }

  status(): AlertEngineStatus {
    return { ...this.#status, active: this.#active.size, history: this.#history.length, series: this.#series.size };
  }

  // ------------------------------------------------------------------------ persistence

  #schedule(): void {
    if (this.#store === null) {
      this.#dirty.clear();
      return;
    }
    if (this.#scheduled || this.#writing !== null || this.#dirty.size === 0) return;
    this.#scheduled = true;
    // Everything a batch of readings changed goes in one write.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#write();
    });
  }

  #write(): Promise<void> {
    if (this.#writing !== null) return this.#writing;
    const store = this.#store;
    if (store === null || this.#dirty.size === 0) return Promise.resolve();
    const batch = [...this.#dirty.values()];
    this.#dirty.clear();
    this.#writing = store.write(batch).then(
      () => {
        this.#writing = null;
        this.#schedule();
      },
      (e: unknown) => {
        this.#writing = null;
        this.#status.storeErrors++;
        this.#status.lastStoreError = e instanceof Error ? e.message : String(e);
        // Kept for the next try (the check timer's), newer changes of the same key winning.
        for (const w of batch) {
          const k = `${w.kind}\u0000${w.key}`;
          if (!this.#dirty.has(k)) this.#dirty.set(k, w);
        }
      },
    );
    return this.#writing;
  }

  /** Writes what is pending and waits until the store has it durably. */
  async flush(): Promise<void> {
    if (this.#store === null) return;
    await this.#writing;
    await this.#write();
    await this.#store.flush();
  }
}
