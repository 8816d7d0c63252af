/**
 * `OSVisualFusionEngine`: body text → the smallest frame, and frames back to facts.
 *
 * Sender: the first time a body shape (signature) is seen it goes out whole as FULL (cmd 63)
 * under a new template id; afterwards DIFF (170) carries only the values that changed, and HEART
 * (127) an empty body when nothing changed. Receiver: FULL frames teach it the template; DIFF and
 * HEART frames are rebuilt from it and decoded to the same fact the sender compressed.
 */
import {
  type BodyFact,
  BodyTextError,
  BodyTooLargeError,
  bodySizeLimit,
  decompressBody,
  utf8DecodeLossy,
  utf8DecodeShort,
  utf8Encode,
  utf8Length,
} from '@opensynaptic/packet/body';
import { DATA_DIFF, DATA_FULL, DATA_HEART, isSecureData, normalizeData } from '@opensynaptic/cmd';
import { type BackendName, DecodeField as F, FrameStatus, Wire } from '@opensynaptic/internal';
import {
  DECODED_FIELDS,
  DecodedFrame,
  decodeTimestampToken,
  encodeTimestampToken,
  FrameError,
  type FrameCodec,
  frameErrorMeta,
  type PacketMeta,
  type KeyLookup,
  getCodec,
  backendInfo as packetBackendInfo,
  checkFrameSize,
  DEFAULT_MAX_FRAME_SIZE,
  parseRouteId,
  sealFrame,
  SINGLE_ROUTE_BODY_OFFSET,
  sizeLimit,
  type StampedTimestamp,
  stampTimestamp,
  tidText,
} from '@opensynaptic/packet';
import { decompose, matchShape, rebuild, type SigShape, sigShape, TS_MARK, templateFault, VALUE_MARK } from './decompose.js';
import { type FactPlan, fastFact, planFor } from './fact-plan.js';
import {
  DiffOverrunError,
  FusionBodyError,
  FusionError,
  FusionInputError,
  FusionUtf8Error,
  NoCachedValuesError,
  TemplateMissingError,
} from './errors.js';

export type { PacketMeta };
import { type DeviceRegistry, type FusionTemplate, MAX_TEMPLATE_ID, ownString, ownValues } from './registry.js';
import { RegistryCache, type RegistryCacheOptions } from './registry-cache.js';
import { type FusionBinding, type FusionOperation, fusionBackend } from './native-binding.js';
import { nativeFailure } from './native-io.js';
import { type FusionBatchResult, NativeSender, runBatchTs } from './native-sender.js';


/** What the sender is told to do: the orchestrator's strategy (see `OSHandshakeManager.getStrategy`). */
export type FusionStrategy = 'FULL' | 'DIFF';

/**
 * Session keys for secure frames. `OSHandshakeManager` of `@opensynaptic/handshake` fits as is;
 * any object with these two members does.
 */
export interface FusionSecurity {
  /** Keys to decode inbound secure frames, by source AID. */
  readonly keys: KeyLookup;
  /** The key to encrypt this node's outbound frames with, or `null` to send them plain. */
  getTxKey(aid: number): Uint8Array | null;
}

export interface FusionEngineOptions {
  /** This node's device id (the frame's route): a number, digit string or Base62 text. Default 0 (unassigned). */
  localId?: number | string;
  /**
   * The registry cache, or options for a new one (store, limits, sync interval). With a store,
   * `await engine.registry.preload()` before the first frame.
   */
  registry?: RegistryCache | RegistryCacheOptions;
  /** Clock in milliseconds (server stamping, cache expiry). Default `Date.now`. */
  clock?: () => number;
  /** Session keys; without it secure frames cannot be decoded and nothing is encrypted. */
  security?: FusionSecurity | null;
  /** Report timestamp 0 for every inbound frame, as rx_only nodes do. Default false. */
  skipTimestamp?: boolean;
  /**
   * Bytes that are not UTF-8 in a body or value: `'error'` (default) throws `FusionUtf8Error`;
   * `'drop'` drops them silently, as the reference does.
   */
  invalidUtf8?: 'error' | 'drop';
  /** Decimal places of decoded sensor values. Default 4. */
  precision?: number;
  /**
   * Largest inbound frame, in bytes (`Infinity`: no limit). `decompress`, `parse` and
   * `decompressBatch` refuse a longer one with `FrameTooLargeError` (`ERR_FRAME_TOO_LARGE`)
   * before reading any of it. Default 65,507 (`DEFAULT_MAX_FRAME_SIZE`, the largest UDP payload).
   */
  maxFrameSize?: number;
  /**
   * Largest body text decoded, in UTF-8 bytes (`Infinity`: no limit): a FULL frame's body, or
   * the text a DIFF / HEART frame stands for (its template with the values put back, which
   * DIFFs can grow beyond any one frame). Refused with `FusionBodyError` (`ERR_FUSION_BODY`)
   * whose `cause` is a `BodyTooLargeError` (`ERR_BODY_TOO_LARGE`), before the body is read and
   * before a DIFF changes any stored value. Default 65,507 (`DEFAULT_MAX_BODY_SIZE`).
   */
  maxBodySize?: number;
  /**
   * `'native'` runs the frame codec and the batches (`runEngineBatch`, the frame checks of
   * `decompressBatch`) in the native addon, `'ts'` everything in TypeScript; the rest of the
   * engine (templates, DIFF bodies, facts) is TypeScript on both. Default: the codec
   * `@opensynaptic/packet` selected, and per operation what `OPENSYNAPTIC_CORE` asks for (`auto`:
   * native only for `runEngineBatch`, the one operation measured >= 2x faster there).
   */
  backend?: 'ts' | 'native';
}

/** A decoded frame: the fact (`id`, `s`, `t_raw`, `s1_id`...) and the frame's meta record. */
export type FusionFact = BodyFact & { __packet_meta__: PacketMeta };

/**
 * What `parse` returns: a `FusionFact`, or `{ error, __packet_meta__ }` with the reference's
 * error text. The shape `@opensynaptic/handshake` expects from a data-frame parser.
 */
export interface FusionParseResult {
  error?: string;
  /** The typed error behind `error`. */
  cause?: Error;
  __packet_meta__?: PacketMeta;
  [field: string]: unknown;
}


export class OSVisualFusionEngine {
  /** The registry cache: per-AID templates and values. */
  readonly registry: RegistryCache;
  readonly skipTimestamp: boolean;
  readonly invalidUtf8: 'error' | 'drop';
  readonly precision: number;
  /** Largest inbound frame in bytes (see `FusionEngineOptions.maxFrameSize`). */
  readonly maxFrameSize: number;
  /** Largest body text decoded, in UTF-8 bytes (see `FusionEngineOptions.maxBodySize`). */
  readonly maxBodySize: number;
  /** Backend of the frame codec in use. */
  readonly backend: 'ts' | 'native';
  /** Backend of each engine operation with a native build (`runEngineBatch`, `decompressBatch`). */
  readonly backends: Readonly<Record<FusionOperation, BackendName>>;
  security: FusionSecurity | null;
  #localId = 0;
  readonly #clock: () => number;
  readonly #codec: FrameCodec;
  // Native batches, per operation (null: TypeScript); the native sender is made on first use.
  readonly #batchBinding: FusionBinding | null;
  readonly #rxBatch: FusionBinding | null;
  #sender: NativeSender | null = null;
  #decodeOptions: { keys: KeyLookup } = { keys: NO_KEYS };

  constructor(options: FusionEngineOptions = {}) {
    this.#clock = options.clock ?? Date.now;
    const r = options.registry;
    this.registry = r instanceof RegistryCache ? r : new RegistryCache({ clock: this.#clock, ...r });
    this.security = options.security ?? null;
    this.skipTimestamp = options.skipTimestamp === true;
    this.invalidUtf8 = options.invalidUtf8 ?? 'error';
    if (this.invalidUtf8 !== 'error' && this.invalidUtf8 !== 'drop') {
      throw new TypeError(`invalidUtf8 must be 'error' or 'drop', got ${String(options.invalidUtf8)}`);
    }
    this.precision = options.precision ?? 4;
    this.maxFrameSize = sizeLimit('maxFrameSize', options.maxFrameSize, DEFAULT_MAX_FRAME_SIZE);
    this.maxBodySize = bodySizeLimit(options.maxBodySize);
    this.#codec = getCodec(options.backend ?? packetBackendInfo().backends.encodeFrame ?? 'ts');
    this.backend = this.#codec.backend;
    const fb = fusionBackend(options.backend);
    this.#batchBinding = fb.runEngineBatch();
    this.#rxBatch = fb.decompressBatch();
    const name = (b: unknown): BackendName => (b === null ? 'ts' : 'native');
    this.backends = Object.freeze({
      runEngineBatch: name(this.#batchBinding),
      decompressBatch: name(this.#rxBatch),
    });
    if (options.localId !== undefined) this.localId = options.localId;
  }

  /** This node's device id, written as the single route of every frame it sends. */
  get localId(): number {
    return this.#localId;
  }

  set localId(id: number | string) {
    this.#localId = parseRouteId(id);
  }

  /** True when `aid` (default: this node) has at least one template. */
  hasTemplate(aid: number = this.#localId): boolean {
    const reg = this.registry.find(aid);
    return reg !== null && reg.templates.size > 0;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Turns body text (`"{aid};{body}"` or just the body, as a string or UTF-8 bytes) into a frame
   * from this node. `'FULL'` always sends the whole text (cmd 63); `'DIFF'` sends FULL for a new
   * signature or value count, else DIFF with the changed values, or HEART when nothing changed.
   * Throws `FusionInputError` for text that cannot become a frame; the registry is left as it was.
   */
  runEngine(raw: string | Uint8Array, strategy: FusionStrategy = 'DIFF'): Uint8Array {
    return this.#runEngineTs(raw, strategy);
  }

  /**
   * The steady-state frame of a reading whose body text would have `template`'s signature, from
   * its values alone: `values` in the template's order (per sensor its `{state}.{unit}` and its
   * Base62 value, as `decompose` cuts them), `timestamp` as the frame carries it (the token's
   * 48-bit ms). DIFF with the changed values, or HEART when none changed, exactly as `runEngine`
   * would send that body under strategy DIFF. `null` when `template` is no longer this node's most
   * recent one, holds another number of values, or a value needs a FULL frame: the caller then
   * sends the body text through `runEngine`. Lets a sender that knows its signature skip writing
   * body text and cutting it up again.
   */
  runEngineValues(template: FusionTemplate, values: readonly string[], timestamp: number): Uint8Array | null {
    const now = this.#clock();
    const reg = this.registry.get(this.#localId, now);
    if (reg.recent !== template || template.values === null || template.values.length !== values.length) return null;
    return this.#diff(reg, template, values, timestamp, this.security?.getTxKey(reg.aid) ?? null, now);
  }

  /** The template this node's last frame used (its registry's most recent), or `null`. */
  recentTemplate(): FusionTemplate | null {
    return this.registry.peek(this.#localId)?.recent ?? null;
  }

  /**
   * `runEngine(body, strategy)` for each body `bodies[offsets[i]..offsets[i + 1]]` (UTF-8) in
   * order: the frames back to back with their `offsets`, and the typed `FusionError` of each body
   * that could not become a frame (its range is empty; the others still go out). Any other error
   * (a registry store that cannot save) is thrown, as from `runEngine`; the registry then holds
   * the values of the frames built before it, still to be saved.
   *
   * Natively (the default where the addon is installed) runs of steady-state bodies take one call
   * each; the registry is then read, the clock read and `changed()` called once per run rather
   * than once per frame.
   */
  runEngineBatch(bodies: Uint8Array, offsets: Uint32Array, strategy: FusionStrategy = 'DIFF'): FusionBatchResult {
    const count = this.#checkBatch(bodies, offsets);
    const run = (raw: Uint8Array) => this.#runEngineTs(raw, strategy);
    if (this.#batchBinding === null || strategy !== 'DIFF') return runBatchTs(bodies, offsets, count, run, isFusionError);
    return this.#nativeSender(this.#batchBinding).runBatch(bodies, offsets, count, run, isFusionError);
  }

  /** The native sender (made on the first native batch; it keeps its template copy between batches). */
  #nativeSender(binding: FusionBinding): NativeSender {
    this.#sender ??= new NativeSender(binding, {
      registry: this.registry,
      clock: this.#clock,
      localId: () => this.#localId,
      txKey: (aid) => this.security?.getTxKey(aid) ?? null,
    });
    return this.#sender;
  }

  #checkBatch(buf: Uint8Array, offsets: Uint32Array): number {
    const aid = this.#localId;
    if (!(buf instanceof Uint8Array)) throw new FusionInputError({ aid }, 'expected the batch bytes as a Uint8Array');
    if (!(offsets instanceof Uint32Array)) throw new FusionInputError({ aid }, 'expected the batch offsets as a Uint32Array');
    const count = Math.max(0, offsets.length - 1);
    for (let i = 0; i < count; i++) {
      if (offsets[i + 1]! < offsets[i]!) throw new FusionInputError({ aid }, `batch offsets must not decrease (${offsets[i + 1]} after ${offsets[i]})`);
    }
    if (count > 0 && offsets[count]! > buf.length) {
      throw new FusionInputError({ aid }, `batch offsets end at ${offsets[count]}, past the ${buf.length} bytes given`);
    }
    return count;
  }

  #runEngineTs(raw: string | Uint8Array, strategy: FusionStrategy): Uint8Array {
    const aid = this.#localId;
    let text: string;
    let bytes: Uint8Array | undefined;
    if (typeof raw === 'string') text = raw;
    else if (raw instanceof Uint8Array) {
      bytes = raw;
      text = this.#text(raw, { aid }, 'the body');
    } else throw new FusionInputError({ aid }, `expected body text as a string or Uint8Array, got ${typeof raw}`);
    if (strategy !== 'FULL' && strategy !== 'DIFF') throw new FusionInputError({ aid }, `unknown strategy ${String(strategy)}`);

    const now = this.#clock();
    const reg = this.registry.get(aid, now);
    // Most frames repeat the last template: match its shape instead of rebuilding the signature.
    let t: FusionTemplate | null | undefined = reg.recent;
    let m: { values: string[]; token: string } | null = null;
    if (t !== null) {
      let shape = t.shape as SigShape | null | undefined;
      if (shape === undefined) shape = t.shape = sigShape(t.sig);
      if (shape !== null) m = matchShape(text, shape, t.values);
    }
    let sig: string | undefined;
    if (m === null) {
      const d = decompose(text);
      if (typeof d === 'string') throw new FusionInputError({ aid }, DECOMPOSE_TEXT[d]);
      m = d;
      sig = d.sig;
      if (t === null || t.sig !== sig) {
        t = reg.findSig(sig);
        if (t !== undefined) reg.recent = t;
      }
    }
    let timestamp: number;
    try {
      timestamp = decodeTimestampToken(m.token);
    } catch (e) {
      throw new FusionInputError({ aid }, `the timestamp token ${JSON.stringify(m.token.slice(0, 16))} is not 8 base64url characters`, e);
    }
    const values = m.values;
    const n = values.length;
    const key = this.security?.getTxKey(aid) ?? null;

    // FULL: asked for, or the receiver cannot have this template with these many values. A new
    // template goes out FULL even when it has no values (the reference would send HEART there,
    // for a template its receiver never learned).
    if (strategy === 'FULL' || !t || t.values === null || t.values.length !== n) {
      return this.#full(reg, t ?? null, sig, values, timestamp, bytes ?? this.#bytes(text, aid, t?.tid), key, now);
    }
    const frame = this.#diff(reg, t, values, timestamp, key, now);
    return frame ?? this.#full(reg, t, sig, values, timestamp, bytes ?? this.#bytes(text, aid, t.tid), key, now);
  }

  /**
   * The DIFF frame of `values` under `t` (which holds as many values), HEART when none changed,
   * with `t`'s values updated; `null` when a changed value is too long for its length byte (the
   * caller sends FULL). Throws `FusionUtf8Error` for a value with a lone surrogate.
   */
  #diff(reg: DeviceRegistry, t: FusionTemplate, values: readonly string[], timestamp: number, key: Uint8Array | null, now: number): Uint8Array | null {
    const aid = reg.aid;
    const n = values.length;
    const tid = t.tid;
    const old = t.values!;

    // DIFF or HEART: mask of changed values, then [len][bytes] for each.
    const maskLen = (n + 7) >> 3;
    let size = maskLen;
    let changed = 0;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v === old[i]) continue;
      changed++;
      const len = v.length;
      if (ascii && !isAscii(v)) ascii = false;
      size += 1 + len;
      if (len > MAX_DIFF_VALUE) ascii = false; // measured in bytes below
    }
    if (changed === 0) return this.#frame(DATA_HEART, tid, timestamp, EMPTY, key);
    let encoded: (Uint8Array | undefined)[] | undefined;
    if (!ascii) {
      // Non-ASCII (or long) values: measure their UTF-8 bytes first.
      encoded = new Array(n);
      size = maskLen;
      for (let i = 0; i < n; i++) {
        const v = values[i]!;
        if (v === old[i]) continue;
        const vb = asciiOrUtf8(v);
        if (vb === undefined) throw new FusionUtf8Error({ aid, tid }, `value ${i}`);
        // A value too long for the length byte goes out as FULL (the reference raises here).
        if (vb.length > MAX_DIFF_VALUE) return null;
        encoded[i] = vb;
        size += 1 + vb.length;
      }
    }
    // The TypeScript codec: the body is written where the frame holds it (one allocation per
    // frame); the native codec takes the body on its own.
    const inPlace = this.#codec.backend === 'ts' && this.#localId === reg.aid;
    const at = inPlace ? SINGLE_ROUTE_BODY_OFFSET : 0;
    const body = new Uint8Array(inPlace ? at + size + 3 : size);
    let p = at + maskLen;
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      if (v === old[i]) continue;
      body[at + maskLen - 1 - (i >> 3)]! |= 1 << (i & 7);
      const vb = encoded?.[i];
      if (vb === undefined) {
        const len = v.length;
        body[p++] = len;
        for (let j = 0; j < len; j++) body[p++] = v.charCodeAt(j);
      } else {
        body[p++] = vb.length;
        body.set(vb, p);
        p += vb.length;
      }
      old[i] = v.length < 13 ? v : ownString(v);
    }
    this.registry.changed(reg, now);
    if (!inPlace) return this.#frame(DATA_DIFF, tid, timestamp, body, key);
    sealFrame(body, DATA_DIFF, this.#localId, tid, timestamp, key);
    return body;
  }

  /**
   * Sends `body` whole (cmd 63) under `t`, or a new template for `sig`, and records `values`.
   * The caller has built `body` already, so a refused body changes nothing.
   */
  #full(
    reg: DeviceRegistry,
    t: FusionTemplate | null,
    sig: string | undefined,
    values: string[],
    timestamp: number,
    body: Uint8Array,
    key: Uint8Array | null,
    now: number,
  ): Uint8Array {
    if (t === null) {
      // A template the receiver could not rebuild would make every later DIFF and HEART fail.
      const fault = templateFault(sig!);
      if (fault !== null) throw new FusionInputError({ aid: reg.aid }, fault);
      t = this.#newTemplate(reg, sig!);
      reg.recent = t;
    }
    if (!sameValues(t.values, values)) {
      t.values = ownValues(values);
      this.registry.changed(reg, now);
    }
    return this.#frame(DATA_FULL, t.tid, timestamp, body, key);
  }

  #newTemplate(reg: DeviceRegistry, sig: string): FusionTemplate {
    const tpl = reg.templates;
    let tid: number;
    if (tpl.size < MAX_TEMPLATE_ID) {
      tid = tpl.size + 1;
      // Registries read from elsewhere may have gaps; never overwrite a live template.
      while (tpl.has(tid)) tid = tid >= MAX_TEMPLATE_ID ? 1 : tid + 1;
    } else {
      // Full: reuse the numerically lowest tid (always 01 in practice), as the reference does.
      tid = MAX_TEMPLATE_ID + 1;
      for (const k of tpl.keys()) if (k < tid) tid = k;
      reg.remove(tid);
    }
    // Saved with its values by the caller.
    return reg.put(tid, sig, null);
  }

  #frame(cmd: number, tid: number, timestamp: number, body: Uint8Array, key: Uint8Array | null): Uint8Array {
    return this.#codec.encodeFrame({ cmd, routes: this.#localId, tid, timestamp, body, key });
  }

  #bytes(text: string, aid: number, tid: number | undefined): Uint8Array {
    const b = asciiOrUtf8(text);
    if (b === undefined) throw new FusionUtf8Error({ aid, tid }, 'the body text (it holds a lone surrogate)');
    return b;
  }

  // -------------------------------------------------------------- receiving

  /**
   * Decodes a data frame to its fact, learning templates from FULL frames and rebuilding DIFF
   * and HEART frames from them. Throws a `FrameError` (length, CRCs, key, command) or a
   * `FusionError` (unknown template, DIFF overrun, body text), each naming aid and tid.
   */
  decompress(frame: Uint8Array): FusionFact {
    if (frame instanceof Uint8Array) checkFrameSize(frame, this.maxFrameSize);
    const f = this.#decodeFrame(frame);
    const now = this.#clock();
    return this.#decodeData(f, this.#meta(f, now), now);
  }

  /**
   * `parse` of each frame `frames[offsets[i]..offsets[i + 1]]`, in order (a result per frame,
   * failures as `{ error, cause, __packet_meta__ }`). Natively the frame checks of the whole batch
   * run in one call.
   */
  decompressBatch(frames: Uint8Array, offsets: Uint32Array): FusionParseResult[] {
    const count = this.#checkBatch(frames, offsets);
    const out = new Array<FusionParseResult>(count);
    const b = this.#rxBatch;
    // A batch holding a frame above the limit goes frame by frame, so that frame is never read.
    if (b === null || count === 0 || this.#hasOversized(offsets, count)) {
      for (let i = 0; i < count; i++) out[i] = this.parse(frames.subarray(offsets[i]!, offsets[i + 1]!));
      return out;
    }
    const w = new Float64Array(count * DECODED_FIELDS);
    try {
      b.decodeFrames(frames, offsets, w);
    } catch (e) {
      throw nativeFailure('decodeFrames', e);
    }
    for (let i = 0, p = 0; i < count; i++, p += DECODED_FIELDS) {
      const frame = frames.subarray(offsets[i]!, offsets[i + 1]!);
      // Plain frames that passed every check; the rest (secure, failed) go the single-frame way.
      out[i] =
        w[p + F.STATUS] === FrameStatus.OK
          ? this.#parse(
              frame,
              new DecodedFrame(frame, w[p + F.CMD]!, w[p + F.ROUTE_COUNT]!, w[p + F.SOURCE_AID]!, w[p + F.TID]!, w[p + F.TIMESTAMP]!, w[p + F.BODY_OFFSET]!, w[p + F.BODY_LENGTH]!, w[p + F.CRC8]!, w[p + F.CRC16]!, null),
            )
          : this.parse(frame);
    }
    return out;
  }

  #hasOversized(offsets: Uint32Array, count: number): boolean {
    const max = this.maxFrameSize;
    for (let i = 0; i < count; i++) if (offsets[i + 1]! - offsets[i]! > max) return true;
    return false;
  }

  #decodeFrame(frame: Uint8Array): DecodedFrame {
    const keys = this.security?.keys ?? NO_KEYS;
    // One options object while the key lookup stays the same (not one per frame).
    if (this.#decodeOptions.keys !== keys) this.#decodeOptions = { keys };
    return this.#codec.decodeFrame(frame, this.#decodeOptions);
  }

  /**
   * Like `decompress`, but never throws: failures come back as `{ error, cause, __packet_meta__ }`
   * with the reference receiver's error text. This is the parser `OSHandshakeManager` takes.
   */
  parse(frame: Uint8Array): FusionParseResult {
    return this.#parse(frame, null);
  }

  #parse(frame: Uint8Array, checked: DecodedFrame | null): FusionParseResult {
    let meta: PacketMeta = { crc16_ok: false };
    const now = this.#clock();
    try {
      if (frame instanceof Uint8Array) checkFrameSize(frame, this.maxFrameSize);
      const f = checked ?? this.#decodeFrame(frame);
      meta = this.#meta(f, now);
      return this.#decodeData(f, meta, now) as unknown as FusionParseResult;
    } catch (e) {
      if (e instanceof FrameError) return { error: e.referenceText, cause: e, __packet_meta__: frameErrorMeta(e, (ts) => this.#stamp(ts, now)) };
      const error = e instanceof FusionError ? (e.referenceText ?? e.message) : e instanceof Error ? e.message : String(e);
      return { error, cause: e instanceof Error ? e : new Error(String(e)), __packet_meta__: meta };
    }
  }

  #stamp(ts: number | undefined, now: number): StampedTimestamp {
    return stampTimestamp(ts, now, this.skipTimestamp);
  }

  #meta(f: DecodedFrame, now: number): PacketMeta {
    // `stampTimestamp` inline: one object per frame, not two.
    const ts = f.timestamp;
    const stamped = !ts;
    const skip = this.skipTimestamp;
    const cmd = f.cmd;
    return {
      cmd,
      base_cmd: normalizeData(cmd),
      secure: isSecureData(cmd),
      source_aid: f.sourceAid,
      crc16_ok: true,
      timestamp_raw: skip ? 0 : stamped ? Math.floor(now / 1000) : ts,
      server_stamped: !skip && stamped,
      timestampMs: stamped ? Math.trunc(now) : ts,
      receiverStamped: stamped,
      tid: tidText(f.tid),
      crc8_ok: true,
    };
  }

  #decodeData(f: DecodedFrame, meta: PacketMeta, now: number): FusionFact {
    const aid = f.sourceAid;
    const tid = f.tid;
    const cmd = f.cmd;
    const base = f.baseCmd;
    if (base === DATA_FULL) {
      const body = f.body;
      if (body.length > this.maxBodySize) throw new FusionBodyError({ aid, tid, cmd }, new BodyTooLargeError(body.length, this.maxBodySize));
      const text = this.#text(body, { aid, tid, cmd }, 'the FULL body');
      const d = decompose(text);
      if (typeof d !== 'string') {
        const reg = this.registry.get(aid, now);
        const t = reg.templates.get(tid);
        if (t && t.sig === d.sig) t.values = ownValues(d.values);
        else reg.put(tid, d.sig, d.values);
        this.registry.changed(reg, now);
        meta.template_learned = true;
      }
      return this.#fact(text, { aid, tid, cmd }, meta);
    }
    const reg = this.registry.find(aid, now);
    const t = reg?.templates.get(tid);
    if (!reg || !t) throw new TemplateMissingError(aid, tid, cmd, base);
    const old = t.values;
    // Unknown values (a template read without them) cannot be rebuilt. A template learned with no
    // values (a body without sensors) can: the reference refuses that too, which leaves
    // sensorless devices unable to send HEART.
    if (old === null) throw new NoCachedValuesError(aid, tid, cmd);
    let values = old;
    if (base === DATA_DIFF) values = this.#applyDiff(f.plainBodySource, f.plainBodyStart, f.bodyLength, old, aid, tid, cmd);
    this.#checkRebuiltSize(t, values, { aid, tid, cmd });
    if (values !== old) {
      t.values = values;
      this.registry.changed(reg, now);
    }
    let plan = t.plan as FactPlan | null | undefined;
    if (plan === undefined) {
      plan = planFor(t.sig, values.length, this.precision);
      t.plan = plan;
    }
    const tRaw = meta.timestamp_raw ?? 0;
    const fast = plan === null ? null : fastFact(plan, tRaw, values, this.precision, meta);
    if (fast !== null) return fast as FusionFact;
    // The reference's way: rebuild the text, decode it (also gives the exact error).
    return this.#fact(rebuild(t.sig, encodeTimestampToken(tRaw), values), { aid, tid, cmd }, meta);
  }

  /**
   * Throws `FusionBodyError` (cause `BodyTooLargeError`) when the text `t` with `values` stands
   * for is longer than `maxBodySize`. Linear in the number of values; the signature's share is
   * counted once per template.
   */
  #checkRebuiltSize(t: FusionTemplate, values: readonly string[], ctx: { aid: number; tid: number; cmd: number }): void {
    const limit = this.maxBodySize;
    if (limit === Number.POSITIVE_INFINITY) return;
    let fixed = t.sigSize;
    if (fixed === undefined) {
      // Each placeholder gives way to a value, each timestamp mark to the 8-character token.
      const sig = t.sig;
      fixed = utf8Length(sig) - (sig.split(VALUE_MARK).length - 1) + 4 * (sig.split(TS_MARK).length - 1);
      t.sigSize = fixed;
    }
    let units = 0;
    for (let i = 0; i < values.length; i++) units += values[i]!.length;
    // UTF-8 takes at most 3 bytes per UTF-16 unit: count bytes only near the limit.
    if (fixed + 3 * units <= limit) return;
    let size = fixed;
    for (let i = 0; i < values.length && size <= limit; i++) size += utf8Length(values[i]!);
    if (size > limit) throw new FusionBodyError(ctx, new BodyTooLargeError(size, limit));
  }

  /** The values of a DIFF body (`src[at, at + len)`) applied to `old`, as a new array; throws `DiffOverrunError`. */
  #applyDiff(src: Uint8Array, at: number, len: number, old: readonly string[], aid: number, tid: number, cmd: number): string[] {
    const n = old.length;
    const maskLen = (n + 7) >> 3;
    if (len < maskLen) throw new DiffOverrunError(aid, tid, cmd, `the ${maskLen}-byte mask for ${n} values is cut short (${len} bytes)`);
    const next = old.slice();
    const end = at + len;
    let p = at + maskLen;
    for (let i = 0; i < n; i++) {
      if (((src[at + maskLen - 1 - (i >> 3)]! >> (i & 7)) & 1) === 0) continue;
      if (p >= end) throw new DiffOverrunError(aid, tid, cmd, `the mask marks value ${i} but the body ends at byte ${len}`);
      const vl = src[p]!;
      if (p + 1 + vl > end) throw new DiffOverrunError(aid, tid, cmd, `value ${i} claims ${vl} bytes but ${end - p - 1} remain`);
      next[i] = asciiAt(src, p + 1, p + 1 + vl, old[i]!) ?? this.#text(src.subarray(p + 1, p + 1 + vl), { aid, tid, cmd }, `value ${i}`);
      p += 1 + vl;
    }
    return next;
  }

  #fact(text: string, ctx: { aid: number; tid: number; cmd: number }, meta: PacketMeta): FusionFact {
    let fact: BodyFact;
    try {
      // The size was checked on arrival (FULL) or before the rebuild (DIFF / HEART).
      fact = decompressBody(text, { precision: this.precision, maxBodySize: Number.POSITIVE_INFINITY });
    } catch (e) {
      if (e instanceof BodyTextError) throw new FusionBodyError(ctx, e);
      throw e;
    }
    (fact as FusionFact).__packet_meta__ = meta;
    return fact as FusionFact;
  }

  #text(bytes: Uint8Array, ctx: { aid: number; tid?: number; cmd?: number }, where: string): string {
    if (this.invalidUtf8 === 'drop') return utf8DecodeLossy(bytes);
    const s = utf8DecodeShort(bytes);
    if (s === undefined) throw new FusionUtf8Error(ctx, where);
    return s;
  }

  /**
   * Writes every changed registry to the registry cache's store and resolves when they are as
   * durable as the store says (`RegistryCache.flush`); resolves at once without a store.
   */
  flush(): Promise<number> {
    return this.registry.flush();
  }
}

const DECOMPOSE_TEXT = {
  'no-bar': 'the body text has no "|" after its header ("id.state.timestamp|...")',
  'no-dot': 'the body header has no "." before the timestamp token',
  'sensor-colon': 'a sensor segment has its ":" before the ">" ("sid>state.unit:value" expected)',
} as const;

const EMPTY = new Uint8Array(0);
/** Longest value a DIFF body carries (its length is one byte). */
const MAX_DIFF_VALUE = Wire.MAX_DIFF_VALUE_LENGTH;
const isFusionError = (e: unknown): e is FusionError => e instanceof FusionError;
const NO_KEYS: KeyLookup = { get: () => undefined };

function sameValues(a: readonly string[] | null, b: readonly string[]): boolean {
  if (a === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** UTF-8 bytes, with a fast path for ASCII; `undefined` for a lone surrogate. */
function asciiOrUtf8(s: string): Uint8Array | undefined {
  const n = s.length;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return utf8Encode(s);
    out[i] = c;
  }
  return out;
}


/**
 * The ASCII text of `bytes[start, end)`, `old` itself when it holds exactly that text (a value
 * that did not change costs no string), or `undefined` for a byte above 0x7f (the caller decodes
 * UTF-8). Reads the frame where it is, without a view per value.
 */
function asciiAt(bytes: Uint8Array, start: number, end: number, old: string): string | undefined {
  const len = end - start;
  let same = old.length === len;
  for (let i = 0; i < len; i++) {
    const c = bytes[start + i]!;
    if (c >= 0x80) return undefined;
    if (same && old.charCodeAt(i) !== c) same = false;
  }
  if (same) return old;
  if (len > 64) return undefined;
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(bytes[start + i]!);
  return s;
}
