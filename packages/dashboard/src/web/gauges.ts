/** Gauges beside a sensor's live value, where its range is known (a small SVG arc). */

interface Range {
  min: number;
  max: number;
}
interface Ranges {
  sensors: Record<string, Range>;
  units: Record<string, Range>;
}

let ranges: Ranges = { sensors: {}, units: { '%': { min: 0, max: 100 }, humidity: { min: 0, max: 100 } } };

/** Takes the ranges of the server's `hello` (its `gaugeRanges` option, with the natural ones). */
export function gaugeMessage(m: { type: string; gaugeRanges?: Ranges }): void {
  if (m.type === 'hello' && m.gaugeRanges !== undefined) ranges = m.gaugeRanges;
}

/** A sensor's range: its own (by id) first, then its unit's; `null` when none is known. */
export function rangeOf(sensorId: string, unit: string): Range | null {
  return ranges.sensors[sensorId] ?? ranges.units[unit] ?? null;
}

const NS = 'http://www.w3.org/2000/svg';
const R = 26;
const HALF = Math.PI * R;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Draws (or updates) the gauge of one sensor inside its box `box`. */
export function renderGauge(box: HTMLElement, s: { id: string; value: number; unit: string }): void {
  const range = rangeOf(s.id, s.unit);
  let g = box.querySelector<SVGSVGElement>('svg.gauge');
  if (range === null) {
    g?.remove();
    return;
  }
  if (g === null) {
    g = svg('svg', { class: 'gauge', width: 72, height: 44, viewBox: '0 0 72 44', role: 'img' });
    const arc = `M ${36 - R} 36 A ${R} ${R} 0 0 1 ${36 + R} 36`;
    g.append(svg('path', { class: 'g-track', d: arc, fill: 'none', 'stroke-width': 7 }), svg('path', { class: 'g-fill', d: arc, fill: 'none', 'stroke-width': 7, 'stroke-dasharray': `0 ${HALF}` }));
    const lo = svg('text', { x: 36 - R, y: 44, 'text-anchor': 'middle', class: 'g-min' });
    const hi = svg('text', { x: 36 + R, y: 44, 'text-anchor': 'middle', class: 'g-max' });
    g.append(lo, hi);
    box.append(g);
  }
  const fraction = Math.min(1, Math.max(0, (s.value - range.min) / (range.max - range.min)));
  (g.querySelector('.g-fill') as SVGPathElement).setAttribute('stroke-dasharray', `${(fraction * HALF).toFixed(2)} ${HALF}`);
  (g.querySelector('.g-min') as SVGTextElement).textContent = String(range.min);
  (g.querySelector('.g-max') as SVGTextElement).textContent = String(range.max);
  g.dataset.fraction = fraction.toFixed(4);
  g.dataset.min = String(range.min);
  g.dataset.max = String(range.max);
  g.setAttribute('aria-label', `${s.value} in ${range.min}..${range.max}`);
}
