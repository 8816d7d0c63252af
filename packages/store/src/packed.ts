/**
 * Readings packed into numbers as soon as a sink accepts them: a backend that sets
 * `ReadingsBackend.packed` gets them this way, and the buffer then holds a few typed arrays per
 * write instead of an object per frame and per sensor. Objects that wait for a commit (hundreds of
 * milliseconds at 100,000 readings/s) survive the young-generation collections, which copy them
 * each time: that copying, not the allocation, is what a full buffer of frames costs the thread
 * that decodes. Texts (device ids, sensor ids, states, units) repeat, so they are indexes into
 * `texts`.
 */
import type { DeviceDelta, FrameStrategy, ReadingFrame, SensorReading } from './readings.js';

/** Numbers per frame in {@link PackedReadings.frames}: aid, device text, strategy, timestamp, receive time, templates (-1: none), sensors. */
export const PACKED_FRAME_WORDS = 7;
/**
 * Numbers per reading in {@link PackedReadings.rows}: aid, device text, sensor text, state text,
 * value, unit text, timestamp, receive time (the row a backend inserts).
 */
export const PACKED_ROW_WORDS = 8;

/** Accepted frames as numbers (see the module comment). */
export interface PackedReadings {
  /** {@link PACKED_FRAME_WORDS} per frame. */
  readonly frames: Float64Array;
  /** {@link PACKED_ROW_WORDS} per reading, in frame order. */
  readonly rows: Float64Array;
  /** The texts the text columns index. */
  readonly texts: readonly string[];
}

const STRATEGIES: readonly FrameStrategy[] = ['FULL', 'DIFF', 'HEART'];

/** A text's index in `texts`, added at the end the first time it is seen. */
function indexer(texts: string[]): (t: string) => number {
  const index = new Map<string, number>();
  return (t) => {
    let k = index.get(t);
    if (k === undefined) {
      k = texts.length;
      texts.push(t);
      index.set(t, k);
    }
    return k;
  };
}

/** Packs checked frames (see `checkFrames`) holding `readings` sensors in all. */
export function packReadings(frames: readonly ReadingFrame[], readings: number): PackedReadings {
  const head = new Float64Array(frames.length * PACKED_FRAME_WORDS);
  const rows = new Float64Array(readings * PACKED_ROW_WORDS);
  const texts: string[] = [];
  const text = indexer(texts);
  let h = 0;
  let i = 0;
  for (const f of frames) {
    const dev = text(f.deviceId);
    head[h++] = f.aid;
    head[h++] = dev;
    head[h++] = f.strategy === 'FULL' ? 0 : f.strategy === 'DIFF' ? 1 : 2;
    head[h++] = f.timestampMs;
    head[h++] = f.receivedAtMs;
    head[h++] = f.templates ?? -1;
    head[h++] = f.sensors.length;
    for (const x of f.sensors) {
      rows[i++] = f.aid;
      rows[i++] = dev;
      rows[i++] = text(x.id);
      rows[i++] = text(x.state);
      rows[i++] = x.value;
      rows[i++] = text(x.unit);
      rows[i++] = f.timestampMs;
      rows[i++] = f.receivedAtMs;
    }
  }
  return { frames: head, rows, texts };
}

/** One packing of several, in order (the texts merged, their indexes renumbered). */
export function mergePacked(list: readonly PackedReadings[]): PackedReadings {
  if (list.length === 1) return list[0]!;
  let frameWords = 0;
  let rowWords = 0;
  for (const p of list) {
    frameWords += p.frames.length;
    rowWords += p.rows.length;
  }
  const head = new Float64Array(frameWords);
  const rows = new Float64Array(rowWords);
  const texts: string[] = [];
  const text = indexer(texts);
  let h = 0;
  let r = 0;
  for (const p of list) {
    const map = p.texts.map(text);
    const f = p.frames;
    head.set(f, h);
    for (let k = h + 1; k < h + f.length; k += PACKED_FRAME_WORDS) head[k] = map[head[k]!]!;
    h += f.length;
    const x = p.rows;
    rows.set(x, r);
    for (let k = r; k < r + x.length; k += PACKED_ROW_WORDS) {
      rows[k + 1] = map[rows[k + 1]!]!;
      rows[k + 2] = map[rows[k + 2]!]!;
      rows[k + 3] = map[rows[k + 3]!]!;
      rows[k + 5] = map[rows[k + 5]!]!;
    }
    r += x.length;
  }
  return { frames: head, rows, texts };
}

/** The frames back, as they were accepted (for `onLost`, and a backend that wants objects). */
export function unpackReadings(p: PackedReadings): ReadingFrame[] {
  const out: ReadingFrame[] = [];
  const { frames: head, rows, texts } = p;
  let r = 0;
  for (let h = 0; h < head.length; h += PACKED_FRAME_WORDS) {
    const n = head[h + 6]!;
    const sensors: SensorReading[] = [];
    for (let k = 0; k < n; k++, r += PACKED_ROW_WORDS) sensors.push({ id: texts[rows[r + 2]!]!, state: texts[rows[r + 3]!]!, value: rows[r + 4]!, unit: texts[rows[r + 5]!]! });
    const templates = head[h + 5]!;
    const frame: ReadingFrame = {
      aid: head[h]!,
      deviceId: texts[head[h + 1]!]!,
      strategy: STRATEGIES[head[h + 2]!]!,
      timestampMs: head[h + 3]!,
      receivedAtMs: head[h + 4]!,
      sensors,
      ...(templates >= 0 ? { templates } : {}),
    };
    out.push(frame);
  }
  return out;
}

/** `deviceDeltas` of packed frames: the same rows, from the numbers. */
export function packedDeviceDeltas(p: PackedReadings): DeviceDelta[] {
  const byKey = new Map<number, Map<number, DeviceDelta>>();
  const { frames: head, texts } = p;
  const out: DeviceDelta[] = [];
  for (let h = 0; h < head.length; h += PACKED_FRAME_WORDS) {
    const aid = head[h]!;
    const dev = head[h + 1]!;
    let byDev = byKey.get(aid);
    if (byDev === undefined) {
      byDev = new Map();
      byKey.set(aid, byDev);
    }
    const at = head[h + 4]!;
    const templates = head[h + 5]!;
    let d = byDev.get(dev);
    if (d === undefined) {
      d = { aid, deviceId: texts[dev]!, firstSeenMs: at, lastSeenMs: at, templates: null, full: 0, diff: 0, heart: 0, readings: 0 };
      byDev.set(dev, d);
      out.push(d);
    }
    if (at < d.firstSeenMs) d.firstSeenMs = at;
    if (at >= d.lastSeenMs) {
      d.lastSeenMs = at;
      if (templates >= 0) d.templates = templates;
    } else if (d.templates === null && templates >= 0) d.templates = templates;
    const s = head[h + 2]!;
    if (s === 0) d.full++;
    else if (s === 1) d.diff++;
    else d.heart++;
    d.readings += head[h + 6]!;
  }
  return out;
}
