import type { DeviceView } from '../devices.js';

/** The API's console result (see `ConsoleResult` of the package). */
export interface ConsoleResultView {
  aid: number;
  action: string;
  via: string;
  peer: string;
  sentAtMs: number;
  sent: { hex: string; command: string | null; seq: number | null };
  reply: { hex: string; command: string | null; seq: number | null; rttMs: number; result: Record<string, unknown> } | null;
  timedOut: boolean;
}

type Api = (path: string, init?: RequestInit) => Promise<Response>;

const MAX_LOG = 50;
const spaced = (hex: string) => hex.replace(/(..)/g, '$1 ').trim();

/**
 * The command console of the selected device: PING, TIME_REQUEST, ID_ASSIGN (with an id) or raw
 * hex, sent through the server (`POST /api/console`, which needs the token), and the log of what
 * went out and what came back, from this page or another one (the live feed's `console` messages).
 */
export class ConsolePanel {
  readonly #api: Api;
  readonly #log: HTMLOListElement;
  readonly #status: HTMLElement;
  readonly #action: HTMLSelectElement;
  readonly #id: HTMLInputElement;
  readonly #hex: HTMLInputElement;
  readonly #seen = new Set<string>();
  #device: DeviceView | null = null;

  constructor(box: HTMLElement, api: Api) {
    this.#api = api;
    box.innerHTML = `<h3>console</h3>
      <form class="toolbar" id="console-form">
        <select id="c-action" aria-label="what to send">
          <option value="ping">PING</option>
          <option value="time-request">TIME_REQUEST</option>
          <option value="id-assign">ID_ASSIGN</option>
          <option value="raw">raw hex</option>
        </select>
        <input id="c-id" type="number" placeholder="id 1..4294967294" aria-label="id to assign" hidden />
        <input id="c-hex" type="text" placeholder="hex, e.g. 09 00 01" aria-label="raw hex" maxlength="4096" hidden />
        <button id="c-send" type="submit">send</button>
        <span id="c-status" class="c-status"></span>
      </form>
      <ol id="console-log" class="console-log" reversed></ol>`;
    this.#log = box.querySelector('#console-log') as HTMLOListElement;
    this.#status = box.querySelector('#c-status') as HTMLElement;
    this.#action = box.querySelector('#c-action') as HTMLSelectElement;
    this.#id = box.querySelector('#c-id') as HTMLInputElement;
    this.#hex = box.querySelector('#c-hex') as HTMLInputElement;
    this.#action.addEventListener('change', () => {
      this.#id.hidden = this.#action.value !== 'id-assign';
      this.#hex.hidden = this.#action.value !== 'raw';
    });
    (box.querySelector('#console-form') as HTMLFormElement).addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.send();
    });
  }

  /** The device the console talks to (the selected one). */
  select(d: DeviceView | undefined): void {
    this.#device = d ?? null;
    this.#log.replaceChildren();
    this.#seen.clear();
    this.#status.textContent = d === undefined ? '' : `to aid ${d.aid}`;
  }

  async send(): Promise<void> {
    const d = this.#device;
    if (d === null) return;
    const body: Record<string, unknown> = { aid: d.aid, action: this.#action.value };
    if (this.#action.value === 'id-assign') body.id = Number(this.#id.value);
    if (this.#action.value === 'raw') body.hex = this.#hex.value;
    this.#status.textContent = 'sending…';
    let res: Response;
    try {
      res = await this.#api('/api/console', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    } catch (e) {
      this.#status.textContent = `failed: ${(e as Error).message}`;
      return;
    }
    const answer = (await res.json().catch(() => ({}))) as ConsoleResultView & { error?: { code: string; message: string } };
    if (!res.ok || answer.error !== undefined) {
      this.#status.textContent = `${answer.error?.code ?? `HTTP ${res.status}`}: ${answer.error?.message ?? ''}`;
      this.#status.dataset.error = answer.error?.code ?? String(res.status);
      return;
    }
    delete this.#status.dataset.error;
    this.#status.textContent = answer.reply !== null ? `${answer.reply.command} in ${answer.reply.rttMs} ms` : answer.timedOut ? 'no reply (timed out)' : 'sent';
    this.show(answer);
  }

  /** A result, from this page's request or pushed by the feed (shown once). */
  show(r: ConsoleResultView): void {
    if (this.#device === null || r.aid !== this.#device.aid) return;
    const id = `${r.sentAtMs}:${r.sent.hex}`;
    if (this.#seen.has(id)) return;
    this.#seen.add(id);
    const li = document.createElement('li');
    li.dataset.sent = r.sent.command ?? `0x${r.sent.hex.slice(0, 2)}`;
    li.dataset.reply = r.reply?.command ?? (r.timedOut ? 'timeout' : 'none');
    const out = document.createElement('div');
    out.className = 'c-out';
    out.textContent = `→ ${new Date(r.sentAtMs).toLocaleTimeString()} ${r.sent.command ?? '?'}${r.sent.seq === null ? '' : ` seq ${r.sent.seq}`} [${spaced(r.sent.hex)}] via ${r.via} to ${r.peer}`;
    const back = document.createElement('div');
    back.className = 'c-in';
    if (r.reply !== null) {
      li.dataset.rtt = String(r.reply.rttMs);
      back.textContent = `← ${r.reply.command ?? '?'}${r.reply.seq === null ? '' : ` seq ${r.reply.seq}`} [${spaced(r.reply.hex)}] in ${r.reply.rttMs} ms ${JSON.stringify(r.reply.result)}`;
    } else back.textContent = r.timedOut ? '← no reply (timed out)' : '← (not waited for)';
    li.append(out, back);
    this.#log.prepend(li);
    while (this.#log.children.length > MAX_LOG) this.#log.lastElementChild?.remove();
  }
}
