import { randomInt } from 'node:crypto';
import { cmdName, HANDSHAKE_ACK, HANDSHAKE_NACK, ID_ASSIGN, PING, PONG, TIME_REQUEST, TIME_RESPONSE } from '@opensynaptic/cmd';
import { buildIdAssign, buildPing, buildTimeRequest, SeqCounter } from '@opensynaptic/handshake';
import type { OpenSynapticServer, ServerControl } from '@opensynaptic/server';
import { type RequestLike, readJsonBody } from './body.js';
import { DashboardError } from './errors.js';

/** What the console sends. */
export type ConsoleAction = 'ping' | 'time-request' | 'id-assign' | 'raw';

/** A console request, as `POST /api/console` takes it (JSON). */
export interface ConsoleRequest {
  aid: number;
  action: ConsoleAction;
  /** `id-assign`: the id to give, 1..4294967294. */
  id?: number;
  /** `raw`: the packet as hex (whitespace allowed), 1..`maxConsoleBytes` bytes. */
  hex?: string;
  /** How long to wait for the reply, ms (0..30000; default `consoleTimeoutMs`; 0: do not wait). */
  timeoutMs?: number;
}

/** A packet the console sent or got. */
export interface ConsolePacket {
  hex: string;
  length: number;
  cmd: number;
  command: string | null;
  /** The sequence number of a packet that has one (bytes 1..2). */
  seq: number | null;
}

/** A reply: the packet, what the server's node read in it, and the round trip. */
export interface ConsoleReply extends ConsolePacket {
  receivedAtMs: number;
  rttMs: number;
  /** The node's reading of it (`{ status: 'PONG', seq }`, `{ status: 'TIME_RESPONSE', seq, server_time }`...). */
  result: Record<string, unknown>;
}

/** What a console request did (the API's answer, and the live feed's `console` message). */
export interface ConsoleResult {
  aid: number;
  action: ConsoleAction;
  via: string;
  peer: string;
  sentAtMs: number;
  sent: ConsolePacket;
  /** The matching reply (PING → PONG, TIME_REQUEST → TIME_RESPONSE, ID_ASSIGN → ACK or NACK, raw → the first control packet from the device, or the reply its command calls for), or `null`. */
  reply: ConsoleReply | null;
  /** No reply within the timeout (false when the request did not wait). */
  timedOut: boolean;
}

export interface ConsoleOptions {
  /** Default wait for a reply, ms. */
  timeoutMs: number;
  /** Longest raw packet, bytes. */
  maxBytes: number;
  /** Requests waiting for a reply at once. */
  maxPending: number;
  clock: () => number;
}

interface Pending {
  via: string;
  peer: string;
  /** Reply commands it takes (empty: any control packet), and the seq they must carry (`null`: any). */
  cmds: readonly number[];
  seq: number | null;
  startedAt: number;
  done(reply: ConsoleReply | null): void;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
export const hexOf = (b: Uint8Array): string => {
  let s = '';
  for (const x of b) s += HEX[x];
  return s;
};

const REPLY_TO: Record<number, readonly number[]> = { [PING]: [PONG], [TIME_REQUEST]: [TIME_RESPONSE], [ID_ASSIGN]: [HANDSHAKE_ACK, HANDSHAKE_NACK] };
const ACTIONS = new Set<ConsoleAction>(['ping', 'time-request', 'id-assign', 'raw']);
const KEYS = new Set(['aid', 'action', 'id', 'hex', 'timeoutMs']);
export const MAX_CONSOLE_TIMEOUT_MS = 30_000;

const bad = (key: string, detail: string) => new DashboardError('ERR_DASHBOARD_CONSOLE', `console ${key}: ${detail}`, { key });

function packetOf(b: Uint8Array): ConsolePacket {
  const cmd = b[0] as number;
  const hasSeq = b.length >= 3 && cmd >= 1 && cmd <= 12;
  return { hex: hexOf(b), length: b.length, cmd, command: cmdName(cmd) ?? null, seq: hasSeq ? ((b[1] as number) << 8) | (b[2] as number) : null };
}

/**
 * The command console: sends PING, TIME_REQUEST, ID_ASSIGN or raw bytes to a device through the
 * server (`sendTo`: the transport and peer it was last heard on) and matches its reply among the
 * control packets the server hands to `onControl`: same transport, same peer, the reply command,
 * the same sequence number. The packets come from the handshake's builders, with a sequence of
 * the console's own.
 */
export class DeviceConsole {
  readonly #server: OpenSynapticServer;
  readonly #o: ConsoleOptions;
  readonly #pending = new Set<Pending>();
  readonly #seq = new SeqCounter(randomInt(0, 0x10000));

  constructor(server: OpenSynapticServer, options: ConsoleOptions) {
    this.#server = server;
    this.#o = options;
  }

  /** The limits `GET /api` lists. */
  get limits(): { consoleTimeoutMs: number; maxConsoleBytes: number; maxConsolePending: number } {
    return { consoleTimeoutMs: this.#o.timeoutMs, maxConsoleBytes: this.#o.maxBytes, maxConsolePending: this.#o.maxPending };
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Checks a request body (parsed JSON); throws `ERR_DASHBOARD_CONSOLE` naming the bad key. */
  parse(body: unknown): ConsoleRequest {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('body', 'must be a JSON object { aid, action, id?, hex?, timeoutMs? }');
    const o = body as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!KEYS.has(k)) throw bad(k, `unknown (allowed: ${[...KEYS].join(', ')})`);
    const aid = o.aid;
    if (typeof aid !== 'number' || !Number.isInteger(aid) || aid < 0 || aid > 0xffff_ffff) throw bad('aid', `${JSON.stringify(aid) ?? 'undefined'} is not an integer in 0..4294967295`);
    const action = o.action;
    if (typeof action !== 'string' || !ACTIONS.has(action as ConsoleAction)) throw bad('action', `${JSON.stringify(action)?.slice(0, 40) ?? 'undefined'} is not ping, time-request, id-assign or raw`);
    const req: ConsoleRequest = { aid, action: action as ConsoleAction };
    if (o.timeoutMs !== undefined) {
      const t = o.timeoutMs;
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > MAX_CONSOLE_TIMEOUT_MS) throw bad('timeoutMs', `${JSON.stringify(t)} is not an integer in 0..${MAX_CONSOLE_TIMEOUT_MS}`);
      req.timeoutMs = t;
    }
    if (action === 'id-assign') {
      const id = o.id;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > 4_294_967_294) throw bad('id', `${JSON.stringify(id) ?? 'undefined'} is not an integer in 1..4294967294`);
      req.id = id;
    } else if (o.id !== undefined) throw bad('id', 'only id-assign takes an id');
    if (action === 'raw') {
      const hex = o.hex;
      if (typeof hex !== 'string') throw bad('hex', 'raw needs the packet as hex text');
      // Bounded before any work on it: the hex of maxBytes bytes with a space between each.
      if (hex.length > this.#o.maxBytes * 3) throw bad('hex', `${hex.length} characters: more than ${this.#o.maxBytes} bytes (maxConsoleBytes)`);
      const digits = hex.replace(/\s+/g, '');
      if (digits.length === 0 || digits.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(digits)) throw bad('hex', 'must be an even number of hex digits (whitespace between bytes allowed), at least one byte');
      if (digits.length / 2 > this.#o.maxBytes) throw bad('hex', `${digits.length / 2} bytes: more than ${this.#o.maxBytes} (maxConsoleBytes)`);
      req.hex = digits.toLowerCase();
    } else if (o.hex !== undefined) throw bad('hex', 'only raw takes hex');
    return req;
  }

  #packet(req: ConsoleRequest): Uint8Array {
    switch (req.action) {
      case 'ping':
        return buildPing(this.#seq.next());
      case 'time-request':
        return buildTimeRequest(this.#seq.next());
      case 'id-assign':
        // With the server's time, as the server's own ID_ASSIGN carries it.
        return buildIdAssign(this.#seq.next(), req.id as number, Math.floor(this.#o.clock() / 1000));
      case 'raw':
        return Uint8Array.from((req.hex as string).match(/../g) ?? [], (h) => Number.parseInt(h, 16));
    }
  }

  /** Sends the request's packet and waits for its reply (or the timeout). Rejects with the server's `sendTo` errors. */
  async run(req: ConsoleRequest): Promise<ConsoleResult> {
    const timeoutMs = req.timeoutMs ?? this.#o.timeoutMs;
    if (timeoutMs > 0 && this.#pending.size >= this.#o.maxPending) throw new DashboardError('ERR_DASHBOARD_BUSY', `console: ${this.#pending.size} requests are waiting for replies already (at most ${this.#o.maxPending})`);
    const packet = this.#packet(req);
    const sent = packetOf(packet);
    const at = this.#server.peerOf(req.aid);
    let pending: Pending | null = null;
    let reply: Promise<ConsoleReply | null> = Promise.resolve(null);
    if (timeoutMs > 0 && at !== undefined) {
      const cmds = REPLY_TO[sent.cmd] ?? [];
      // Registered before the send: a reply on loopback can come before sendTo resolves.
      reply = new Promise<ConsoleReply | null>((resolve) => {
        const timer = setTimeout(() => {
          if (pending !== null) this.#pending.delete(pending);
          resolve(null);
        }, timeoutMs);
        timer.unref?.();
        pending = {
          via: at.via,
          peer: at.peer.key,
          cmds,
          seq: cmds.length > 0 ? sent.seq : null,
          startedAt: performance.now(),
          done: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        this.#pending.add(pending);
      });
    }
    const sentAtMs = this.#o.clock();
    let where: { via: string; peer: { key: string } };
    try {
      where = await this.#server.sendTo(req.aid, packet);
    } catch (e) {
      const p = pending as Pending | null;
      if (p !== null) {
        this.#pending.delete(p);
        p.done(null);
      }
      throw e;
    }
    const got = await reply;
    return { aid: req.aid, action: req.action, via: where.via, peer: where.peer.key, sentAtMs, sent, reply: got, timedOut: timeoutMs > 0 && got === null };
  }

  /** The server's hook: a control packet from a device, matched to a waiting request. */
  onControl(c: ServerControl): void {
    if (this.#pending.size === 0) return;
    for (const p of this.#pending) {
      if (p.via !== c.via || p.peer !== c.peer.key) continue;
      if (p.cmds.length > 0 && !p.cmds.includes(c.cmd)) continue;
      const packet = packetOf(c.frame);
      if (p.seq !== null && packet.seq !== p.seq) continue;
      this.#pending.delete(p);
      const result = JSON.parse(JSON.stringify(c.result, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? hexOf(v) : v))) as Record<string, unknown>;
      p.done({ ...packet, receivedAtMs: c.receivedAtMs, rttMs: Math.round((performance.now() - p.startedAt) * 100) / 100, result });
      return;
    }
  }
}

/** A JSON request body, at most `max` bytes; a bad one is `ERR_DASHBOARD_CONSOLE` (400). */
export function readJson(req: RequestLike, max: number): Promise<unknown> {
  return readJsonBody(
    req,
    max,
    (p) =>
      new DashboardError(
        'ERR_DASHBOARD_CONSOLE',
        p.kind === 'type' ? `console body: Content-Type must be application/json (got ${JSON.stringify(p.contentType.slice(0, 60))})` : p.kind === 'size' ? `console body: more than ${p.max} bytes` : 'console body: not JSON',
        { key: 'body' },
      ),
    true,
  );
}
