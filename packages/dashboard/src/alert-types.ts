// The shapes of alert rules and alerts, as the API answers them: types only, shared by the
// engine (alerts.ts) and the page (web/alerts.ts), which must not import the engine's node code.

/** What a rule watches for. */
export type AlertKind = 'above' | 'below' | 'rate' | 'stale';
export type AlertSeverity = 'info' | 'warning' | 'critical';
/**
 * A threshold rule. It watches one sensor id (`sensor`) or every sensor of one unit (`unit`), on
 * one device (`aid`) or any; a `stale` rule may also watch whole devices (neither `sensor` nor
 * `unit`). Values are compared as the server stores them: standardized (kelvin for a `Cel`
 * sensor), and `unit` is the stored unit (the standardizer's unit class: `temperature`,
 * `humidity`...).
 */
export interface AlertRule {
  /** 1..64 characters: letters, digits, `_ . : -`. */
  id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  aid?: number;
  sensor?: string;
  unit?: string;
  /** `above` / `below`: the limit; `rate`: the largest change per second allowed (absolute). */
  threshold?: number;
  /** `stale`: fired when nothing was heard for longer than this, ms. */
  afterMs?: number;
  /** Clears only once the value is back past the threshold by this much (default 0). */
  hysteresis: number;
  /** No new alert of the same rule, device and sensor this long after one fired, ms. */
  cooldownMs: number;
  enabled: boolean;
  /** A text shown with its alerts. */
  message?: string;
}

/** One alert: fired when its rule's condition started holding, cleared when it stopped. */
export interface Alert {
  id: string;
  ruleId: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** `aid:deviceId`, as the devices table keys it. */
  key: string;
  aid: number;
  deviceId: string;
  /** `null` for a whole-device `stale` rule. */
  sensorId: string | null;
  unit: string;
  /** The value (per second for `rate`, ms of silence for `stale`) that fired it. */
  value: number;
  /** The rule's threshold (`afterMs` for `stale`). */
  limit: number;
  text: string;
  firedAtMs: number;
  clearedAtMs: number | null;
  /** Why it cleared: the condition stopped holding, or its rule changed or went away. */
  clearedBy: 'condition' | 'rule-changed' | 'rule-deleted' | null;
  clearValue: number | null;
}
