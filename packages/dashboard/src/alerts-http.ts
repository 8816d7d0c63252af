import { type RequestLike, readJsonBody } from './body.js';
import type { Alert, AlertEngine } from './alerts.js';
import { DashboardError, queryError } from './errors.js';

/** An answer of the alert endpoints: HTTP status and JSON body. */
export interface AlertAnswer {
  status: number;
  body: unknown;
}

/** A failure the dashboard answers with `status` (404 no such rule, 409 an id taken, 413 a body too large). */
export class AlertHttpError extends DashboardError {
  constructor(
    readonly status: number,
    readonly httpCode: string,
    message: string,
    key?: string,
  ) {
    super('ERR_DASHBOARD_RULE', message, { key });
  }
}

const ALERT_PARAMS = new Set(['state', 'limit', 'severity', 'rule', 'aid', 'token']);
const DEFAULT_ALERT_LIMIT = 100;

function onlyParams(params: URLSearchParams, allowed: ReadonlySet<string>): void {
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (!allowed.has(key)) throw queryError(key, `unknown (allowed: ${[...allowed].filter((k) => k !== 'token').join(', ') || 'none'})`);
    if (seen.has(key)) throw queryError(key, 'given more than once');
    seen.add(key);
  }
}

/**
 * `GET /api/alerts`: `state` (`all` default, `active`), `limit` (1..maxAlertHistory, default
 * 100; of the history), `severity`, `rule`, `aid`. Answers `{ nowMs, active, recent, status }`.
 */
export function listAlerts(engine: AlertEngine, params: URLSearchParams, nowMs: number): AlertAnswer {
  onlyParams(params, ALERT_PARAMS);
  const state = params.get('state') ?? 'all';
  if (state !== 'all' && state !== 'active') throw queryError('state', `${JSON.stringify(state.slice(0, 40))} is not all or active`);
  let limit = Math.min(DEFAULT_ALERT_LIMIT, engine.maxAlertHistory);
  const l = params.get('limit');
  if (l !== null) {
    if (!/^\d{1,9}$/.test(l) || Number(l) < 1 || Number(l) > engine.maxAlertHistory) throw queryError('limit', `${JSON.stringify(l.slice(0, 40))} is not an integer in 1..${engine.maxAlertHistory}`);
    limit = Number(l);
  }
  const severity = params.get('severity');
  if (severity !== null && !['info', 'warning', 'critical'].includes(severity)) throw queryError('severity', `${JSON.stringify(severity.slice(0, 40))} is not info, warning or critical`);
  const rule = params.get('rule');
  if (rule !== null && (rule.length === 0 || rule.length > 64)) throw queryError('rule', 'must be 1..64 characters');
  const aidText = params.get('aid');
  if (aidText !== null && (!/^\d{1,10}$/.test(aidText) || Number(aidText) > 0xffff_ffff)) throw queryError('aid', `${JSON.stringify(aidText.slice(0, 40))} is not an integer in 0..4294967295`);
  const aid = aidText === null ? null : Number(aidText);
  const keep = (a: Alert) => (severity === null || a.severity === severity) && (rule === null || a.ruleId === rule) && (aid === null || a.aid === aid);
  const active = engine.active().filter(keep);
  return { status: 200, body: { nowMs, active, recent: state === 'active' ? [] : engine.recent(limit, keep), status: engine.status() } };
}

/** Reads a JSON body of at most `maxBytes` (413 past it, 400 for bad JSON). */
export function jsonBody(req: RequestLike, maxBytes: number): Promise<unknown> {
  return readJsonBody(req, maxBytes, (p) =>
    p.kind === 'size' ? new AlertHttpError(413, 'ERR_DASHBOARD_BODY', `the body is larger than ${p.max} bytes`) : new AlertHttpError(400, 'ERR_DASHBOARD_BODY', `the body is not JSON: ${JSON.stringify(p.kind === 'json' ? p.text.slice(0, 40) : '')}`),
  );
}

function ruleId(params: URLSearchParams, needed: boolean): string | undefined {
  onlyParams(params, new Set(['id', 'token']));
  const id = params.get('id');
  if (id === null) {
    if (needed) throw queryError('id', 'missing (the rule id)');
    return undefined;
  }
  if (id.length === 0 || id.length > 64) throw queryError('id', 'must be 1..64 characters');
  return id;
}

/** `GET`, `POST`, `PUT` (`?id=`), `DELETE` (`?id=`) of `/api/alert-rules`. */
export async function alertRules(engine: AlertEngine, req: RequestLike, params: URLSearchParams, maxBodyBytes: number): Promise<AlertAnswer> {
  switch (req.method) {
    case 'GET':
    case 'HEAD': {
      const id = ruleId(params, false);
      if (id === undefined) return { status: 200, body: { rules: engine.rules(), limits: { maxAlertRules: engine.maxAlertRules } } };
      const rule = engine.rule(id);
      if (rule === undefined) throw new AlertHttpError(404, 'ERR_DASHBOARD_NOT_FOUND', `no rule ${JSON.stringify(id)}`, 'id');
      return { status: 200, body: { rule } };
    }
    case 'POST': {
      onlyParams(params, new Set(['token']));
      const body = await jsonBody(req, maxBodyBytes);
      try {
        return { status: 201, body: engine.putRule(body, { create: true }) };
      } catch (e) {
        if (e instanceof DashboardError && e.key === 'id' && /exists/.test(e.message)) throw new AlertHttpError(409, 'ERR_DASHBOARD_CONFLICT', e.message, 'id');
        throw e;
      }
    }
    case 'PUT': {
      const id = ruleId(params, true) as string;
      const body = await jsonBody(req, maxBodyBytes);
      const out = engine.putRule(body, { id });
      return { status: out.created ? 201 : 200, body: out };
    }
    case 'DELETE': {
      const id = ruleId(params, true) as string;
      if (!engine.deleteRule(id)) throw new AlertHttpError(404, 'ERR_DASHBOARD_NOT_FOUND', `no rule ${JSON.stringify(id)}`, 'id');
      return { status: 200, body: { deleted: id } };
    }
    default:
      throw new AlertHttpError(405, 'ERR_DASHBOARD_METHOD', `${req.method} is not allowed on /api/alert-rules`);
  }
}
