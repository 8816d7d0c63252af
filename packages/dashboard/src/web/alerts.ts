import './alerts.css';

import type { Alert, AlertRule } from '../alert-types.js';

/** The alerts panel: active alerts (by severity), the history, and a small rule editor. */

type AlertMessage =
  | { type: 'hello' | 'sync' | 'alerts'; alerts?: { active: Alert[]; recent: Alert[] } }
  | { type: 'alert'; event: 'fired' | 'cleared'; alert: Alert }
  | { type: string };

const HISTORY = 50;
const active = new Map<string, Alert>();
/** Newest first. */
let recent: Alert[] = [];
let rules: AlertRule[] = [];
let token: string | null = null;
let dirty = true;

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] => {
  const { dataset, ...rest } = props;
  const e = Object.assign(document.createElement(tag), rest);
  if (dataset !== undefined) Object.assign(e.dataset, dataset);
  e.append(...children);
  return e;
};
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const headers = (json = false): Record<string, string> => ({ ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(json ? { 'content-type': 'application/json' } : {}) });

/**
 * Takes a live-feed message: `alert` (fired / cleared) and `alerts` (the whole state) are the
 * panel's, answered `true`; `hello` and `sync` resync it and go on to the page (`false`).
 */
export function alertMessage(m: AlertMessage): boolean {
  if (m.type === 'alert') {
    const { event, alert } = m as { event: string; alert: Alert };
    if (event === 'fired') active.set(alert.id, alert);
    else active.delete(alert.id);
    recent = [alert, ...recent.filter((a) => a.id !== alert.id)].slice(0, HISTORY);
    dirty = true;
    return true;
  }
  if (m.type === 'hello' || m.type === 'sync' || m.type === 'alerts') {
    const state = (m as { alerts?: { active: Alert[]; recent: Alert[] } }).alerts;
    if (state !== undefined) {
      active.clear();
      for (const a of state.active) active.set(a.id, a);
      recent = state.recent.slice(0, HISTORY);
      dirty = true;
    }
    if (m.type === 'hello') void loadRules();
    return m.type === 'alerts';
  }
  return false;
}

const time = (ms: number) => new Date(ms).toLocaleTimeString();

function render(): void {
  const list = $('a-active');
  const items = [...active.values()].sort((a, b) => b.firedAtMs - a.firedAtMs);
  list.replaceChildren(...(items.length === 0 ? [el('p', { className: 'a-none', textContent: 'no active alert' })] : items.map((a) => el('div', { className: `a-item sev-${a.severity}`, dataset: { alertId: a.id, severity: a.severity, rule: a.ruleId } }, el('span', { className: 'a-sev', textContent: a.severity }), ` ${a.text} `, el('span', { className: 'a-time', textContent: `since ${time(a.firedAtMs)}` })))));
  $('a-count').textContent = items.length === 0 ? '' : `${items.length} active`;
  const body = el('tbody');
  for (const a of recent) {
    const tr = body.insertRow();
    tr.dataset.alertId = a.id;
    tr.dataset.state = a.clearedAtMs === null ? 'active' : 'cleared';
    tr.className = `sev-${a.severity}`;
    for (const t of [time(a.firedAtMs), a.severity, a.ruleId, a.text, a.clearedAtMs === null ? 'active' : `cleared ${time(a.clearedAtMs)}${a.clearedBy === 'condition' ? '' : ` (${a.clearedBy})`}`]) tr.insertCell().textContent = t;
  }
  $<HTMLTableElement>('a-history').tBodies[0]?.replaceWith(body);
  const rb = el('tbody');
  for (const r of rules) {
    const tr = rb.insertRow();
    tr.dataset.rule = r.id;
    const target = `${r.sensor !== undefined ? `sensor ${r.sensor}` : r.unit !== undefined ? `unit ${r.unit}` : 'device'}${r.aid === undefined ? '' : ` of aid ${r.aid}`}`;
    const cond = r.kind === 'stale' ? `stale ${(r.afterMs ?? 0) / 1000} s` : `${r.kind} ${r.threshold}${r.kind === 'rate' ? '/s' : ''}${r.hysteresis > 0 ? ` ±${r.hysteresis}` : ''}`;
    for (const t of [r.id, r.severity, target, cond, `${r.cooldownMs / 1000} s`, r.enabled ? '' : 'off']) tr.insertCell().textContent = t;
    const del = el('button', { type: 'button', textContent: 'delete', className: 'a-del' });
    del.addEventListener('click', () => void deleteRule(r.id));
    tr.insertCell().append(del);
    tr.addEventListener('click', (ev) => ev.target !== del && fill(r));
  }
  $<HTMLTableElement>('a-rules').tBodies[0]?.replaceWith(rb);
}

async function loadRules(): Promise<void> {
  const res = await fetch('/api/alert-rules', { headers: headers() });
  if (!res.ok) return;
  rules = ((await res.json()) as { rules: AlertRule[] }).rules;
  dirty = true;
}

async function deleteRule(id: string): Promise<void> {
  const res = await fetch(`/api/alert-rules?id=${encodeURIComponent(id)}`, { method: 'DELETE', headers: headers() });
  await report(res, `deleted ${id}`);
  await loadRules();
}

async function report(res: Response, ok: string): Promise<void> {
  const info = $('a-info');
  if (res.ok) {
    info.textContent = ok;
    info.dataset.state = 'ok';
    return;
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
  info.textContent = body.error?.message ?? `HTTP ${res.status}`;
  info.dataset.state = 'error';
}

const field = (name: string) => ($('a-form') as HTMLFormElement).elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;

function fill(r: AlertRule): void {
  field('id').value = r.id;
  field('kind').value = r.kind;
  field('severity').value = r.severity;
  field('target').value = r.sensor !== undefined ? 'sensor' : r.unit !== undefined ? 'unit' : 'device';
  field('name').value = r.sensor ?? r.unit ?? '';
  field('aid').value = r.aid === undefined ? '' : String(r.aid);
  field('limit').value = String(r.kind === 'stale' ? r.afterMs : r.threshold);
  field('hysteresis').value = String(r.hysteresis);
  field('cooldown').value = String(r.cooldownMs / 1000);
}

/** The form as a rule (the server checks it and names what is wrong). */
function formRule(): Record<string, unknown> {
  const rule: Record<string, unknown> = { kind: field('kind').value, severity: field('severity').value };
  const target = field('target').value;
  const name = field('name').value.trim();
  if (target !== 'device') rule[target] = name;
  const aid = field('aid').value.trim();
  if (aid !== '') rule.aid = Number(aid);
  const limit = Number(field('limit').value);
  if (rule.kind === 'stale') rule.afterMs = limit;
  else {
    rule.threshold = limit;
    const h = field('hysteresis').value.trim();
    if (h !== '' && Number(h) !== 0) rule.hysteresis = Number(h);
  }
  const c = field('cooldown').value.trim();
  if (c !== '') rule.cooldownMs = Math.round(Number(c) * 1000);
  return rule;
}

function build(root: HTMLElement): void {
  const opt = (values: string[]) => values.map((v) => new Option(v, v));
  const input = (name: string, label: string, attrs: { placeholder?: string; size?: number; value?: string; required?: boolean } = {}) => el('label', {}, `${label} `, el('input', { name, ...attrs }));
  const select = (name: string, label: string, values: string[]) => el('label', {}, `${label} `, el('select', { name }, ...opt(values)));
  const form = el(
    'form',
    { id: 'a-form', className: 'a-form' },
    input('id', 'id', { placeholder: 'new', size: 8 }),
    select('kind', 'kind', ['above', 'below', 'rate', 'stale']),
    select('severity', 'severity', ['warning', 'critical', 'info']),
    select('target', 'of', ['sensor', 'unit', 'device']),
    input('name', '', { placeholder: 'T1 / temperature', size: 10 }),
    input('aid', 'aid', { placeholder: 'any', size: 5 }),
    input('limit', 'threshold / ms', { size: 7, required: true }),
    input('hysteresis', 'hysteresis', { size: 4, value: '0' }),
    input('cooldown', 'cooldown s', { size: 4, value: '60' }),
    el('button', { type: 'submit', textContent: 'save' }),
    el('span', { id: 'a-info', className: 'a-info' }),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = field('id').value.trim();
    const rule = formRule();
    const req = id === '' ? fetch('/api/alert-rules', { method: 'POST', headers: headers(true), body: JSON.stringify(rule) }) : fetch(`/api/alert-rules?id=${encodeURIComponent(id)}`, { method: 'PUT', headers: headers(true), body: JSON.stringify(rule) });
    void req.then(async (res) => {
      await report(res, `saved ${id || 'a new rule'}`);
      await loadRules();
    });
  });
  root.replaceChildren(
    el('h2', {}, 'alerts ', el('span', { id: 'a-count', className: 'a-count' })),
    el('div', { id: 'a-active', className: 'a-active' }),
    el('h3', { textContent: 'history' }),
    el('table', { id: 'a-history', className: 'a-history' }, el('tbody')),
    el('h3', { textContent: 'rules' }),
    el('table', { id: 'a-rules', className: 'a-rules' }, el('tbody')),
    form,
  );
}

/** Builds the panel in `#alerts` and renders it at most once per animation frame. */
export function initAlerts(pageToken: string | null): void {
  token = pageToken;
  const root = document.getElementById('alerts');
  if (root === null) return;
  build(root);
  const frame = () => {
    if (dirty) {
      dirty = false;
      render();
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}
