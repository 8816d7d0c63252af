import type { Reading, ReadingQuery } from '@opensynaptic/store';
import { queryError } from './errors.js';

const MAX_AID = 0xffff_ffff;
const READING_PARAMS = new Set(['aid', 'device', 'sensor', 'from', 'to', 'limit', 'order', 'token']);

/** A time parameter: Unix ms (digits) or an ISO 8601 date. */
function timeParam(key: string, text: string): number {
  if (/^\d{1,16}$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) throw queryError(key, `${JSON.stringify(text.slice(0, 40))} is not Unix ms nor an ISO 8601 date`);
  return ms;
}

function intParam(key: string, text: string, min: number, max: number): number {
  if (!/^\d{1,16}$/.test(text)) throw queryError(key, `${JSON.stringify(text.slice(0, 40))} is not an integer`);
  const n = Number(text);
  if (n < min || n > max) throw queryError(key, `${n} is outside ${min}..${max}`);
  return n;
}

function textParam(key: string, text: string): string {
  if (text.length === 0 || text.length > 256) throw queryError(key, 'must be 1..256 characters');
  return text;
}

/**
 * The readings query of `/api/readings` and `/api/readings.csv`: `aid`, `device`, `sensor`,
 * `from` and `to` (Unix ms or ISO 8601; `from` inclusive, `to` exclusive), `limit`
 * (1..`maxRows`, default `maxRows`), `order` (`asc` default, `desc`). An unknown or repeated
 * parameter, or a bad value, is an `ERR_DASHBOARD_QUERY` naming it (answered 400).
 */
export function readingQueryOf(params: URLSearchParams, maxRows: number): ReadingQuery & { limit: number } {
  const seen = new Set<string>();
  for (const key of params.keys()) {
    if (!READING_PARAMS.has(key)) throw queryError(key, `unknown (allowed: ${[...READING_PARAMS].filter((k) => k !== 'token').join(', ')})`);
    if (seen.has(key)) throw queryError(key, 'given more than once');
    seen.add(key);
  }
  const q: ReadingQuery & { limit: number } = { limit: maxRows };
  const get = (k: string) => params.get(k) ?? undefined;
  const aid = get('aid');
  if (aid !== undefined) q.aid = intParam('aid', aid, 0, MAX_AID);
  const device = get('device');
  if (device !== undefined) q.deviceId = textParam('device', device);
  const sensor = get('sensor');
  if (sensor !== undefined) q.sensorId = textParam('sensor', sensor);
  const from = get('from');
  if (from !== undefined) q.fromMs = timeParam('from', from);
  const to = get('to');
  if (to !== undefined) q.toMs = timeParam('to', to);
  if (q.fromMs !== undefined && q.toMs !== undefined && q.toMs < q.fromMs) throw queryError('to', `${q.toMs} is before from (${q.fromMs})`);
  const limit = get('limit');
  if (limit !== undefined) q.limit = intParam('limit', limit, 1, maxRows);
  const order = get('order');
  if (order !== undefined) {
    if (order !== 'asc' && order !== 'desc') throw queryError('order', `${JSON.stringify(order.slice(0, 40))} is not asc or desc`);
    q.order = order;
  }
  return q;
}

/** The CSV header of an export. */
export const CSV_HEADER = 'timestamp_ms,timestamp_iso,aid,device_id,sensor_id,state,value,unit,received_at_ms';

/** A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180). */
export function csvField(text: string): string {
  // A leading = + - @ would make a spreadsheet run the cell as a formula: prefixed with a quote.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function csvLine(r: Reading): string {
  return [String(r.timestampMs), new Date(r.timestampMs).toISOString(), String(r.aid), csvField(r.deviceId), csvField(r.sensorId), csvField(r.state), String(r.value), csvField(r.unit), String(r.receivedAtMs)].join(',');
}
