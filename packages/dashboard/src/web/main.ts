import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import type { DeviceView } from '../devices.js';
import { ConsolePanel, type ConsoleResultView } from './console.js';
import './console.css';
import { decodedNode } from './inspector.js';
import { DeviceMap, type MapConfig } from './map.js';
import { alertMessage, initAlerts } from './alerts.js';
import { gaugeMessage, renderGauge } from './gauges.js';
import { rateNodes } from './rates.js';
import { WebSocketTransport } from '@opensynaptic/transport/websocket';
import { MAX_FEED_MESSAGE_BYTES } from '../feed-limits.js';

interface FeedReading {
  key: string;
  timestampMs: number;
  sensors: { id: string; state: string; value: number; unit: string }[];
}
type Message =
  | { type: 'hello'; nowMs: number; thresholds: { staleAfterMs: number; offlineAfterMs: number }; devices: DeviceView[] }
  | { type: 'update'; nowMs: number; readings: FeedReading[]; devices: DeviceView[]; coalesced: boolean }
  | { type: 'sync'; nowMs: number; devices: DeviceView[] }
  | { type: 'health'; nowMs: number; health: Health }
  | { type: 'console'; nowMs: number; result: ConsoleResultView };
interface Health {
  state?: string;
  transports?: Record<string, { medium: string; state: string; framesIn: number; bytesIn: number; framesOut: number; dropped: Record<string, number>; inboundQueued: number; connections: number }>;
  server?: { frames: number; readings: number; control: number; errors: Record<string, number>; dropped: Record<string, number> };
  services?: Record<string, unknown>;
  rates?: Parameters<typeof rateNodes>[0];
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const SPARK_POINTS = 60;

// The token travels in the URL fragment (never sent to a server by the browser), kept for the tab.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash !== null) {
  sessionStorage.setItem('os-dashboard-token', fromHash);
  history.replaceState(null, '', location.pathname + location.search);
}
const token = sessionStorage.getItem('os-dashboard-token');
const withToken = (path: string) => (token === null ? path : `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`);

const devices = new Map<string, DeviceView>();
/** The latest values of each sensor of each device, for the sparklines (bounded). */
const sparks = new Map<string, { t: number[]; v: number[] }>();
let selected: string | null = null;
let sortKey = 'deviceId';
let sortDir: 1 | -1 = 1;
let dirty = true;
let offsetMs = 0; // server clock minus ours
/**
 * Read-only counters of what the feed brought and what the page drew, for the page bench and
 * anyone curious: `window.osDashboardStats()` returns a copy. `renderedReadings` is `readings` as
 * of the last render (the difference is what is not on screen yet); `lagMaxMs` is the longest
 * time from a push (its `nowMs`) to the page reading it.
 */
const stats = { messages: 0, updates: 0, syncs: 0, readings: 0, deviceViews: 0, coalesced: 0, renders: 0, renderMs: 0, renderMaxMs: 0, renderedReadings: 0, lagMaxMs: 0 };
(window as unknown as { osDashboardStats: () => typeof stats }).osDashboardStats = () => ({ ...stats });

// --------------------------------------------------------------------------- the live feed

const utf8 = new TextDecoder();

/**
 * The feed arrives through the project's own WebSocket transport (its client uses the browser's
 * WebSocket and reconnects with back-off); the server's hello on each new connection resyncs
 * everything.
 */
function connect(): void {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const live = new WebSocketTransport({ url: withToken(`${proto}//${location.host}/api/live`), reconnect: { initialDelayMs: 200, maxDelayMs: 5000 }, maxFrameBytes: MAX_FEED_MESSAGE_BYTES, connectTimeoutMs: 5000 });
  const conn = $('conn');
  const state = (s: 'live' | 'reconnecting') => {
    conn.dataset.state = s;
    conn.textContent = s;
  };
  live.on('connected', () => state('live'));
  live.on('disconnected', () => state('reconnecting'));
  live.on('reconnecting', () => state('reconnecting'));
  live.receiveInto(({ frame }) => {
    const m = JSON.parse(utf8.decode(frame)) as Message;
    gaugeMessage(m);
    if (!alertMessage(m)) handle(m);
  });
  // A server that is down when the page opens: the first connection times out; start over.
  live.start().catch(() => {
    state('reconnecting');
    void live.destroy().finally(() => setTimeout(connect, 1000));
  });
}

function handle(m: Message): void {
  stats.messages++;
  if (m.type === 'console') {
    consolePanel.show(m.result);
    return;
  }
  if (m.type === 'hello') deviceMap.configure((m as { map?: MapConfig }).map);
  if (m.type === 'hello' || m.type === 'sync') {
    offsetMs = m.nowMs - Date.now();
    if (m.type === 'hello') devices.clear();
    else stats.syncs++;
    for (const d of m.devices) devices.set(d.key, d);
  } else if (m.type === 'update') {
    offsetMs = m.nowMs - Date.now();
    stats.updates++;
    stats.readings += m.readings.length;
    stats.deviceViews += m.devices.length;
    if (m.coalesced) stats.coalesced++;
    stats.lagMaxMs = Math.max(stats.lagMaxMs, -offsetMs);
    for (const d of m.devices) devices.set(d.key, d);
    for (const r of m.readings) for (const s of r.sensors) spark(r.key, s.id, r.timestampMs, s.value);
    if (m.coalesced) for (const d of m.devices) for (const s of d.sensors) spark(d.key, s.id, s.timestampMs, s.value);
  } else if (m.type === 'health') {
    renderHealth(m.health);
    return;
  }
  dirty = true;
}

function spark(key: string, sensor: string, t: number, v: number): void {
  const id = `${key}\u0000${sensor}`;
  let s = sparks.get(id);
  if (s === undefined) {
    s = { t: [], v: [] };
    sparks.set(id, s);
  }
  if (s.t.length > 0 && t <= (s.t[s.t.length - 1] as number)) return;
  s.t.push(t / 1000);
  s.v.push(v);
  if (s.t.length > SPARK_POINTS) {
    s.t.shift();
    s.v.shift();
  }
}

// ---------------------------------------------------------------------------- the table

const text = (v: unknown) => document.createTextNode(String(v));
function cell(row: HTMLTableRowElement, content: string | Node, cls?: string): HTMLTableCellElement {
  const td = row.insertCell();
  td.append(content);
  if (cls !== undefined) td.className = cls;
  return td;
}

function ago(ms: number): string {
  const s = Math.max(0, (Date.now() + offsetMs - ms) / 1000);
  return s < 60 ? `${s.toFixed(0)} s ago` : s < 3600 ? `${(s / 60).toFixed(0)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}

function sortValue(d: DeviceView): string | number {
  switch (sortKey) {
    case 'mix':
      return d.frames.FULL + d.frames.DIFF + d.frames.HEART;
    case 'ratio':
      return d.jsonBytes === 0 ? 0 : d.wireBytes / d.jsonBytes;
    case 'secure':
      return d.authenticated ? 2 : d.secure ? 1 : 0;
    case 'templates':
      return d.templates ?? -1;
    default:
      return (d as unknown as Record<string, string | number>)[sortKey] ?? '';
  }
}

/** Each device's row, kept between renders. */
const rowOf = new Map<string, HTMLTableRowElement>();
/**
 * The rows in or near the viewport. Only these are written on each render: every cell that
 * changes costs layout, and with 1,000 devices nearly every row changes on every push. A row
 * scrolling into view is written on the next frame (its height does not depend on its text).
 */
const rowsInView = new Set<Element>();
const rowWatch = new IntersectionObserver(
  (entries) => {
    for (const e of entries) {
      if (e.isIntersecting) rowsInView.add(e.target);
      else rowsInView.delete(e.target);
    }
    dirty = true;
  },
  { rootMargin: '300px 0px' },
);

/** A device's row, its cells written (when in view, or new) only where their text changed. */
function rowFor(d: DeviceView): HTMLTableRowElement {
  let tr = rowOf.get(d.key);
  if (tr === undefined) {
    tr = document.createElement('tr');
    tr.dataset.key = d.key;
    for (let i = 0; i < 8; i++) tr.insertCell();
    const st = document.createElement('span');
    cellAt(tr, 2).className = 'state-cell';
    cellAt(tr, 2).append(st);
    rowOf.set(d.key, tr);
    rowWatch.observe(tr);
  } else if (!rowsInView.has(tr)) return tr;
  const put = (el: HTMLElement, t: string) => {
    if (el.textContent !== t) el.textContent = t;
  };
  const cls = d.key === selected ? 'selected' : '';
  if (tr.className !== cls) tr.className = cls;
  put(cellAt(tr, 0), d.deviceId);
  put(cellAt(tr, 1), String(d.aid));
  const st = cellAt(tr, 2).firstElementChild as HTMLElement;
  if (st.className !== `state state-${d.state}`) st.className = `state state-${d.state}`;
  put(st, d.state);
  put(cellAt(tr, 3), ago(d.lastSeenMs));
  put(cellAt(tr, 4), d.templates === null ? '–' : String(d.templates));
  put(cellAt(tr, 5), `${d.frames.FULL} / ${d.frames.DIFF} / ${d.frames.HEART}`);
  put(cellAt(tr, 6), d.mode ?? (d.secure ? 'secure' : 'plain'));
  put(cellAt(tr, 7), d.jsonBytes === 0 ? '–' : `${d.wireBytes} / ${d.jsonBytes} B (${((d.wireBytes / d.jsonBytes) * 100).toFixed(0)}%)`);
  return tr;
}
const cellAt = (tr: HTMLTableRowElement, i: number) => tr.cells[i] as HTMLTableCellElement;

function renderTable(): void {
  const q = $<HTMLInputElement>('search').value.trim().toLowerCase();
  const rows = [...devices.values()].filter((d) => q === '' || d.deviceId.toLowerCase().includes(q) || String(d.aid).includes(q) || d.via.toLowerCase().includes(q));
  rows.sort((a, b) => {
    const x = sortValue(a);
    const y = sortValue(b);
    return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
  });
  // Rows are kept and patched in place (moved only when the order changed): rebuilding a
  // 1,000-row table on every push cost several frames.
  const body = $<HTMLTableElement>('devices').tBodies[0] as HTMLTableSectionElement;
  let at = body.firstElementChild;
  for (const d of rows) {
    const tr = rowFor(d);
    if (tr === at) at = at.nextElementSibling;
    else body.insertBefore(tr, at);
  }
  // What is left after the last row shown: filtered out, or forgotten.
  while (at !== null) {
    const next = at.nextElementSibling;
    at.remove();
    at = next;
  }
  if (rowOf.size > devices.size) {
    for (const [key, tr] of rowOf) {
      if (devices.has(key)) continue;
      rowOf.delete(key);
      rowWatch.unobserve(tr);
      rowsInView.delete(tr);
    }
  }
  $('count').textContent = `${rows.length} of ${devices.size} device(s)`;
  const online = [...devices.values()].filter((d) => d.state === 'online').length;
  $('summary').textContent = `${online} online, ${devices.size} known`;
}

$('devices').addEventListener('click', (ev) => {
  const th = (ev.target as HTMLElement).closest('th');
  if (th?.dataset.sort !== undefined) {
    sortDir = sortKey === th.dataset.sort ? ((-sortDir) as 1 | -1) : 1;
    sortKey = th.dataset.sort;
    for (const h of document.querySelectorAll<HTMLElement>('th')) delete h.dataset.dir;
    th.dataset.dir = sortDir === 1 ? 'asc' : 'desc';
    dirty = true;
    return;
  }
  const tr = (ev.target as HTMLElement).closest('tr');
  if (tr?.dataset.key !== undefined) select(tr.dataset.key);
});
$('search').addEventListener('input', () => {
  dirty = true;
});

// -------------------------------------------------------------------- the device's sensors

const sparkPlots = new Map<string, uPlot>();

function select(key: string): void {
  selected = key;
  const d = devices.get(key);
  $('detail').hidden = false;
  $('detail-title').textContent = d === undefined ? key : `${d.deviceId} (aid ${d.aid})`;
  for (const p of sparkPlots.values()) p.destroy();
  sparkPlots.clear();
  $('sensors').replaceChildren();
  const sel = $<HTMLSelectElement>('h-sensor');
  sel.replaceChildren(...(d?.sensors ?? []).map((s) => new Option(`${s.id} (${s.unit})`, s.id)));
  dirty = true;
  consolePanel.select(d);
  void loadHistory();
  void loadFrames();
}

function renderSensors(): void {
  if (selected === null) return;
  const d = devices.get(selected);
  if (d === undefined) return;
  const box = $('sensors');
  for (const s of d.sensors) {
    let el = box.querySelector<HTMLElement>(`[data-sensor="${CSS.escape(s.id)}"]`);
    if (el === null) {
      el = document.createElement('div');
      el.className = 'sensor';
      el.dataset.sensor = s.id;
      el.innerHTML = '<div class="name"></div><div><span class="value"></span><span class="unit"></span></div><div class="spark"></div>';
      box.append(el);
      (el.querySelector('.name') as HTMLElement).textContent = `${s.id} · ${s.state}`;
      const plot = new uPlot({ width: 160, height: 40, cursor: { show: false }, legend: { show: false }, scales: { x: { time: true } }, axes: [{ show: false }, { show: false }], series: [{}, { stroke: '#2b6cb0', width: 1.5, points: { show: false } }] }, [[], []], el.querySelector('.spark') as HTMLElement);
      sparkPlots.set(s.id, plot);
    }
    (el.querySelector('.value') as HTMLElement).textContent = String(Number(s.value.toFixed(3)));
    (el.querySelector('.unit') as HTMLElement).textContent = s.unit;
    el.dataset.value = String(s.value);
    renderGauge(el, s);
    const data = sparks.get(`${d.key}\u0000${s.id}`);
    if (data !== undefined) sparkPlots.get(s.id)?.setData([data.t, data.v]);
  }
}

// ------------------------------------------------------------------------------- history

let plot: uPlot | null = null;

function historyParams(): URLSearchParams | null {
  const d = selected === null ? undefined : devices.get(selected);
  const sensor = $<HTMLSelectElement>('h-sensor').value;
  if (d === undefined || sensor === '') return null;
  const p = new URLSearchParams({ aid: String(d.aid), device: d.deviceId, sensor });
  const range = Number($<HTMLSelectElement>('h-range').value);
  if (range > 0) p.set('from', String(Date.now() + offsetMs - range));
  return p;
}

async function loadHistory(): Promise<void> {
  const p = historyParams();
  const csv = $<HTMLAnchorElement>('h-csv');
  if (p === null) return;
  csv.href = withToken(`/api/readings.csv?${p}`);
  const res = await fetch(`/api/readings?${p}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { readings?: { timestampMs: number; value: number; unit: string }[]; truncated?: boolean; error?: { message: string } };
  if (!res.ok || body.readings === undefined) {
    $('h-info').textContent = body.error?.message ?? `HTTP ${res.status}`;
    return;
  }
  const rows = body.readings;
  const data: uPlot.AlignedData = [rows.map((r) => r.timestampMs / 1000), rows.map((r) => r.value)];
  const host = $('plot');
  const unit = rows[0]?.unit ?? '';
  if (plot === null) {
    plot = new uPlot({ width: Math.max(300, host.clientWidth), height: 300, scales: { x: { time: true } }, series: [{}, { label: `${p.get('sensor')} ${unit}`, stroke: '#2b6cb0', width: 1.5, points: { show: rows.length < 200 } }], axes: [{}, { label: unit }] }, data, host);
  } else {
    plot.setSeries(1, { show: true });
    plot.setData(data);
  }
  host.dataset.points = String(rows.length);
  // The sparkline starts from the stored history when the feed has not filled it yet.
  const sid = `${selected}\u0000${p.get('sensor')}`;
  const sp = sparks.get(sid);
  if ((sp?.t.length ?? 0) < 2) {
    const tail = rows.slice(-SPARK_POINTS);
    sparks.set(sid, { t: tail.map((r) => r.timestampMs / 1000), v: tail.map((r) => r.value) });
    dirty = true;
  }
  host.dataset.sensor = p.get('sensor') ?? '';
  $('h-info').textContent = `${rows.length} point(s)${body.truncated ? ' (cut at the limit)' : ''}`;
}

$('h-reload').addEventListener('click', () => void loadHistory());

// ------------------------------------------------------------------------ frame inspector

interface Frame {
  receivedAtMs: number;
  command: string | null;
  length: number;
  tid: number | null;
  crc8: number | null;
  crc16: number | null;
  check: string;
  hex: string;
  body: string | null;
}

async function loadFrames(): Promise<void> {
  const d = selected === null ? undefined : devices.get(selected);
  if (d === undefined) return;
  const res = await fetch(`/api/frames?aid=${d.aid}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  if (!res.ok) return;
  const { frames } = (await res.json()) as { frames: Frame[] };
  const body = document.createElement('tbody');
  const hex2 = (n: number | null, w: number) => (n === null ? '–' : n.toString(16).padStart(w, '0'));
  for (const f of frames.slice().reverse()) {
    const tr = body.insertRow();
    cell(tr, new Date(f.receivedAtMs).toLocaleTimeString());
    cell(tr, f.command ?? '?');
    cell(tr, String(f.length));
    cell(tr, f.tid === null ? '–' : String(f.tid));
    cell(tr, `${hex2(f.crc8, 2)} / ${hex2(f.crc16, 4)}`);
    cell(tr, f.check);
    const hex = cell(tr, f.hex.replace(/(..)/g, '$1 ').trim(), 'hex');
    if (f.body !== null) hex.append(document.createElement('br'), text(f.body));
    cell(tr, decodedNode((f as { decoded?: Parameters<typeof decodedNode>[0] }).decoded), 'decoded-cell');
  }
  $<HTMLTableElement>('frames').tBodies[0]?.replaceWith(body);
  $('frames').dataset.frames = String(frames.length);
}
$('f-reload').addEventListener('click', () => void loadFrames());
$('h-sensor').addEventListener('change', () => {
  plot?.destroy();
  plot = null;
  void loadHistory();
});
$('h-range').addEventListener('change', () => void loadHistory());

// -------------------------------------------------------------------------------- health

function dl(entries: [string, unknown][]): HTMLDListElement {
  const list = document.createElement('dl');
  for (const [k, v] of entries) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    list.append(dt, dd);
  }
  return list;
}
const sum = (o: Record<string, number> | undefined) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

function renderHealth(h: Health): void {
  const box = $('health');
  const parts: Node[] = [];
  if (h.server !== undefined) parts.push(dl([['state', h.state ?? '?'], ['frames', h.server.frames], ['readings', h.server.readings], ['control', h.server.control], ['errors', sum(h.server.errors)], ['dropped', sum(h.server.dropped)]]));
  for (const [name, t] of Object.entries(h.transports ?? {})) {
    const title = document.createElement('h3');
    title.textContent = `${name} (${t.medium}) ${t.state}`;
    parts.push(title, dl([['frames in', t.framesIn], ['bytes in', t.bytesIn], ['frames out', t.framesOut], ['queued', t.inboundQueued], ['dropped', sum(t.dropped)], ['connections', t.connections]]));
  }
  const storage = h.services?.storage as { committed?: number; buffered?: number; lost?: number; stored?: { readings: number; sizeBytes: number | null } } | undefined;
  if (storage !== undefined && storage !== null) {
    const title = document.createElement('h3');
    title.textContent = 'storage';
    parts.push(title, dl([['stored', storage.stored?.readings ?? '?'], ['committed', storage.committed ?? '?'], ['buffered', storage.buffered ?? '?'], ['lost', storage.lost ?? '?'], ['size', storage.stored?.sizeBytes == null ? '?' : `${(storage.stored.sizeBytes / 1024).toFixed(0)} KiB`]]));
  }
  box.replaceChildren(...parts, ...rateNodes(h.rates));
}

// One render per animation frame at most, however fast updates arrive.
function frame(): void {
  if (dirty) {
    dirty = false;
    const t0 = performance.now();
    renderTable();
    renderSensors();
    deviceMap.update(devices.values(), selected);
    const ms = performance.now() - t0;
    stats.renders++;
    stats.renderMs += ms;
    stats.renderMaxMs = Math.max(stats.renderMaxMs, ms);
    stats.renderedReadings = stats.readings;
  }
  requestAnimationFrame(frame);
}
// "last seen" moves with the clock even when nothing arrives.
setInterval(() => {
  dirty = true;
}, 1000);
const api = (path: string, init: RequestInit = {}) => fetch(path, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), ...(token === null ? {} : { authorization: `Bearer ${token}` }) } });
const consolePanel = new ConsolePanel($('console'), api);
const deviceMap = new DeviceMap($('map'), (key) => select(key));
requestAnimationFrame(frame);
initAlerts(token);
connect();
