import type { DecodedFields } from '../decoded.js';

/** The decoded fields of an inspected frame, as a cell's content. */
export function decodedNode(decoded: DecodedFields | null | undefined): Node {
  const box = document.createElement('div');
  box.className = 'decoded';
  if (decoded === null || decoded === undefined) {
    box.textContent = '–';
    return box;
  }
  const list = document.createElement('ul');
  for (const s of decoded.sensors) {
    const li = document.createElement('li');
    li.dataset.sensor = s.id;
    if (s.changed !== null) li.dataset.changed = String(s.changed);
    if (s.changed === true) li.className = 'changed';
    li.textContent = `${s.id} = ${Number(s.value.toFixed(4))} ${s.unit}${s.state === 'OK' ? '' : ` (${s.state})`}`;
    list.append(li);
  }
  box.append(list);
  const note = document.createElement('div');
  note.className = 'decoded-note';
  const how = { full: 'all sent', heart: 'nothing changed', mask: 'by the DIFF mask', previous: 'against the previous reading (secure body)' } as const;
  const parts: string[] = [];
  if (decoded.changedBy !== null) parts.push(`changed: ${decoded.changed?.join(', ') || 'none'} (${how[decoded.changedBy]})`);
  if (decoded.template !== null) parts.push(`template ${decoded.template.tid} (${decoded.template.values} values)`);
  if (decoded.geohash !== null) parts.push(`geohash ${decoded.geohash}${decoded.position === null ? ' (not a geohash)' : ` ≈ ${decoded.position.lat.toFixed(5)}, ${decoded.position.lon.toFixed(5)}`}`);
  note.textContent = parts.join(' · ');
  box.append(note);
  if (decoded.template !== null) {
    const t = document.createElement('code');
    t.className = 'template';
    t.textContent = decoded.template.text;
    box.append(t);
  }
  return box;
}
