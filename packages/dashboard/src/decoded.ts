import { DATA_DIFF, DATA_FULL, DATA_HEART, normalizeData } from '@opensynaptic/cmd';
import type { LiveSensor } from './devices.js';
import type { InspectedFrame } from './frames.js';
import { decodeGeohash, type GeoPosition } from './geohash.js';

/** A decoded sensor of an inspected frame; `changed` says whether this frame changed it (`null`: not known). */
export interface DecodedSensor {
  id: string;
  state: string;
  value: number;
  unit: string;
  changed: boolean | null;
}

/** The fields the server decoded from one inspected frame. */
export interface DecodedFields {
  /** Every sensor of the reading (a DIFF or HEART: its template's, with the values it carried or kept). */
  sensors: DecodedSensor[];
  /** Ids of the sensors the frame changed: all of a FULL, those a DIFF's mask marks, none of a HEART; `null` when not known. */
  changed: string[] | null;
  /**
   * How `changed` was found: `full`, `heart`, `mask` (the DIFF body's bit mask, read from the
   * plain frame with the template's value count), `previous` (a secure DIFF, whose mask the
   * inspector cannot read: the values compared with the device's previous reading), or `null`.
   */
  changedBy: 'full' | 'heart' | 'mask' | 'previous' | null;
  /** The template the frame used (DIFF, HEART), as the server's node holds it; `null` for a FULL or when not cached. */
  template: { tid: number; values: number; text: string } | null;
  geohash: string | null;
  position: GeoPosition | null;
}

/** What the inspector reads of the node's template registry (`node.fusion.registry.peek`). */
export type TemplatePeek = (aid: number) => { templates: { get(tid: number): { sig: string; values: readonly string[] | null } | undefined } } | null | undefined;

interface Awaiting {
  aid: number;
  inspected: InspectedFrame;
  base: number;
  /** The frame's bytes (a plain DIFF's mask is read from them when someone looks). */
  bytes: Uint8Array;
  /** The template the frame used, as the registry held it when the frame came. */
  tid: number | null;
  t: { sig: string; values: readonly string[] | null } | undefined;
}

/** Longest template text shown. */
const TEMPLATE_TEXT_MAX = 512;

/** A frame the inspector keeps lazily (`KeptFrame`): its decoded fields are built when read. */
interface DecodesLater {
  decodeLater(build: () => DecodedFields | null): void;
  readonly rawTid: number | null;
  /** Its own copy of the frame's bytes. */
  readonly bytes: Uint8Array;
}
const decodesLater = (f: InspectedFrame): f is InspectedFrame & DecodesLater => typeof (f as Partial<DecodesLater>).decodeLater === 'function';

/**
 * Attaches to an inspected frame the reading the server decoded from it, rather than decoding it
 * a second time: the server already ran the frame through the node (templates, session key,
 * anti-replay), and each transport's loop handles its frames one at a time, so the reading that
 * follows a frame on the same transport (`via`) before its next frame is that frame's. A second
 * decode would cost a fusion pass per kept frame and could not open a secure body anyway. What
 * the reading does not say, which sensors a DIFF changed, is read from the frame's own mask.
 * For a kept frame all of it is built when someone reads it; only a secure DIFF's comparison
 * with the previous values is made at once (those values change with the next reading).
 */
export class FrameDecoder {
  /** The frame each transport is decoding, waiting for its reading (one per transport: bounded). */
  readonly #awaiting = new Map<string, Awaiting>();
  readonly #peek: TemplatePeek;

  constructor(peek: TemplatePeek) {
    this.#peek = peek;
  }

  /** A kept data frame, before the node reads it (its template is the one it will use). */
  frame(via: string, aid: number, frame: Uint8Array, inspected: InspectedFrame): void {
    const base = normalizeData(inspected.cmd);
    const lazy = decodesLater(inspected);
    let tid: number | null = null;
    let t: Awaiting['t'];
    if (base !== DATA_FULL) {
      tid = lazy ? inspected.rawTid : inspected.tid;
      if (tid !== null) t = this.#peek(aid)?.templates.get(tid);
    }
    this.#awaiting.set(via, { aid, inspected, base, bytes: lazy ? inspected.bytes : frame, tid, t });
  }

  /** The reading decoded from the frame last given for `reading.via`; `previous`: the device's values before it. */
  reading(reading: { aid: number; via?: string; geohash?: string | undefined; sensors: readonly { id: string; state: string; value: number; unit: string }[] }, previous: ReadonlyMap<string, LiveSensor> | undefined): void {
    const via = reading.via ?? '';
    const w = this.#awaiting.get(via);
    if (w === undefined) return;
    this.#awaiting.delete(via);
    if (w.aid !== reading.aid) return;
    const { inspected, base, t } = w;
    // Which sensors a DIFF changed when its mask cannot tell (secure, or not two values a sensor):
    // against the values before this reading, so now (they change with the next one).
    const maskable = base === DATA_DIFF && !inspected.secure && t !== undefined && t.values !== null;
    const againstPrevious =
      base === DATA_DIFF && (!maskable || t!.values!.length !== 2 * reading.sensors.length) && previous !== undefined
        ? reading.sensors.map((s) => {
            const p = previous.get(s.id);
            return p === undefined || p.value !== s.value || p.state !== s.state || p.unit !== s.unit;
          })
        : null;
    const sensorsIn = reading.sensors;
    const geohash = typeof reading.geohash === 'string' ? reading.geohash : null;
    const build = (): DecodedFields => {
      const n = sensorsIn.length;
      let template: DecodedFields['template'] = null;
      let mask: { marked: Set<number>; values: number } | null = null;
      if (t !== undefined && w.tid !== null) {
        const values = t.values?.length ?? 0;
        // The template's value marks (control characters) shown as dots.
        let text = '';
        for (const ch of t.sig.length > TEMPLATE_TEXT_MAX ? t.sig.slice(0, TEMPLATE_TEXT_MAX) : t.sig) text += ch.charCodeAt(0) < 0x20 ? '•' : ch;
        template = { tid: w.tid, values, text: t.sig.length > TEMPLATE_TEXT_MAX ? `${text}…` : text };
        if (maskable && inspected.check === 'ok') mask = readMask(w.bytes, values);
      }
      let changedBy: DecodedFields['changedBy'] = null;
      let flags: (boolean | null)[] = new Array(n).fill(null);
      if (base === DATA_FULL) {
        changedBy = 'full';
        flags = flags.map(() => true);
      } else if (base === DATA_HEART) {
        changedBy = 'heart';
        flags = flags.map(() => false);
      } else if (mask !== null && mask.values === 2 * n) {
        // A sensor's segment holds two values: its state.unit, then its value.
        const marked = mask.marked;
        changedBy = 'mask';
        flags = flags.map((_, i) => marked.has(2 * i) || marked.has(2 * i + 1));
      } else if (againstPrevious !== null) {
        changedBy = 'previous';
        flags = againstPrevious;
      }
      const sensors = sensorsIn.map((s, i) => ({ id: s.id, state: s.state, value: s.value, unit: s.unit, changed: flags[i] ?? null }));
      return {
        sensors,
        changed: changedBy === null ? null : sensors.filter((s) => s.changed === true).map((s) => s.id),
        changedBy,
        template,
        geohash,
        position: geohash === null ? null : decodeGeohash(geohash),
      };
    };
    if (decodesLater(inspected)) inspected.decodeLater(build);
    else inspected.decoded = build();
  }
}

/** The value indices a plain DIFF frame's mask marks: ceil(values / 8) bytes at the body's start, value 0 in the last byte's low bit (as the sender writes it). */
export function readMask(frame: Uint8Array, values: number): { marked: Set<number>; values: number } | null {
  const routes = frame[1];
  if (routes === undefined) return null;
  const at = 2 + 4 * routes + 7;
  const end = frame.length - 3;
  const maskLen = (values + 7) >> 3;
  if (at + maskLen > end) return null;
  const marked = new Set<number>();
  for (let i = 0; i < values; i++) if (((frame[at + maskLen - 1 - (i >> 3)] as number) >> (i & 7)) & 1) marked.add(i);
  return { marked, values };
}
