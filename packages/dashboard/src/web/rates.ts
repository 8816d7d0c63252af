/** The rates of the health document (`rates`: from the server's successive counters). */
interface Rates {
  spanMs: number | null;
  server: { framesPerS: number | null; readingsPerS: number | null; droppedPerS: number | null; errorsPerS: number | null };
  transports: Record<string, { framesInPerS: number | null; framesOutPerS: number | null; droppedPerS: number | null; dropped: number }>;
  storage: Record<string, { committedPerS: number | null; buffered: number | null; maxBuffered: number | null; sizeBytes: number | null; lost: number | null }>;
}

const r = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${v.toFixed(v < 10 ? 1 : 0)}/s`);
const size = (b: number | null) => (b === null ? '–' : b < 1024 * 1024 ? `${(b / 1024).toFixed(0)} KiB` : `${(b / 1024 / 1024).toFixed(1)} MiB`);

function dl(id: string, entries: [string, string][]): HTMLDListElement {
  const list = document.createElement('dl');
  list.dataset.rates = id;
  for (const [k, v] of entries) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    list.append(dt, dd);
  }
  return list;
}

/** The health panel's rate lines: the server's, each transport's, each store's (write rate, backlog, size). */
export function rateNodes(rates: Rates | undefined): Node[] {
  if (rates === undefined || rates === null) return [];
  const title = document.createElement('h3');
  title.textContent = rates.spanMs === null ? 'rates (after the next sample)' : `rates (over ${(rates.spanMs / 1000).toFixed(1)} s)`;
  const out: Node[] = [title, dl('server', [['frames', r(rates.server.framesPerS)], ['readings', r(rates.server.readingsPerS)], ['dropped', r(rates.server.droppedPerS)], ['errors', r(rates.server.errorsPerS)]])];
  for (const [name, t] of Object.entries(rates.transports)) out.push(dl(`transport:${name}`, [[`${name} frames in`, r(t.framesInPerS)], [`${name} frames out`, r(t.framesOutPerS)], [`${name} drops`, `${r(t.droppedPerS)} (${t.dropped} in all)`]]));
  for (const [name, s] of Object.entries(rates.storage)) out.push(dl(`storage:${name}`, [[`${name} writes`, r(s.committedPerS)], [`${name} backlog`, s.buffered === null ? '–' : `${s.buffered}${s.maxBuffered === null ? '' : ` of ${s.maxBuffered}`}`], [`${name} size`, size(s.sizeBytes)]]));
  return out;
}
