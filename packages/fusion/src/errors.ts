import { DATA_DIFF } from '@opensynaptic/cmd';
import { tidText } from '@opensynaptic/packet';
import { brandError } from '@opensynaptic/internal';

/**
 * Codes of the fusion engine's errors.
 * - `ERR_FUSION_INPUT`: body text handed to the sender that cannot become a frame (no `|` after
 *   the header, no timestamp token, a value longer than a DIFF length byte can say...), or whose
 *   template the receiver could not rebuild (a stray `\x01` or `{TS}`).
 * - `ERR_FUSION_TEMPLATE_MISSING`: a DIFF or HEART frame for a template this receiver never learned.
 * - `ERR_FUSION_NO_VALUES`: the template is known but holds no values to rebuild from.
 * - `ERR_FUSION_DIFF_OVERRUN`: a DIFF body whose mask or value lengths point past its end.
 * - `ERR_FUSION_UTF8`: bytes that are not UTF-8 where text is required.
 * - `ERR_FUSION_BODY`: the (rebuilt) body text does not decode to a fact; `cause` is the
 *   `BodyTextError` naming the part at fault.
 */
export type FusionErrorCode =
  | 'ERR_FUSION_INPUT'
  | 'ERR_FUSION_TEMPLATE_MISSING'
  | 'ERR_FUSION_NO_VALUES'
  | 'ERR_FUSION_DIFF_OVERRUN'
  | 'ERR_FUSION_UTF8'
  | 'ERR_FUSION_BODY';

/** Where the failing frame came from: its source AID, template id and command, when known. */
export interface FusionErrorContext {
  aid: number;
  tid?: number | undefined;
  cmd?: number | undefined;
}

/** A frame or body the fusion engine cannot process. Names the device and template concerned. */
export class FusionError extends Error {
  // Recognised by `isOpenSynapticError` in any build or package, where `instanceof` is not.
  static {
    brandError(this);
  }
  override readonly name: string = 'FusionError';
  readonly code: FusionErrorCode;
  /** Source AID of the frame (the local id on the sending side). */
  readonly aid: number;
  /** Template id, when one was read or assigned. */
  readonly tid: number | undefined;
  /** Command byte on the wire, when known. */
  readonly cmd: number | undefined;
  /** The reference receiver's error text for the same frame, when it reports one. */
  readonly referenceText: string | undefined;
  constructor(code: FusionErrorCode, context: FusionErrorContext, detail: string, referenceText?: string, options?: { cause?: unknown }) {
    const where = context.tid === undefined ? `aid ${context.aid}` : `aid ${context.aid}, tid ${context.tid}`;
    super(`${where}: ${detail}`, options);
    this.code = code;
    this.aid = context.aid;
    this.tid = context.tid;
    this.cmd = context.cmd;
    this.referenceText = referenceText;
  }
}


function cmdHex(cmd: number): string {
  return `0x${cmd.toString(16).toUpperCase()}`;
}

export class TemplateMissingError extends FusionError {
  override readonly name = 'TemplateMissingError';
  constructor(aid: number, tid: number, cmd: number, baseCmd: number) {
    super(
      'ERR_FUSION_TEMPLATE_MISSING',
      { aid, tid, cmd },
      `template ${tidText(tid)} is unknown (no FULL frame learned it); ${baseCmd === DATA_DIFF ? 'DIFF' : 'HEART'} cannot be rebuilt`,
      `Template ${tidText(tid)} missing for ${cmdHex(baseCmd)}`,
    );
  }
}

export class NoCachedValuesError extends FusionError {
  override readonly name = 'NoCachedValuesError';
  constructor(aid: number, tid: number, cmd: number) {
    super('ERR_FUSION_NO_VALUES', { aid, tid, cmd }, 'the template holds no values to rebuild from', `No cached values for TID=${tidText(tid)}`);
  }
}

export class DiffOverrunError extends FusionError {
  override readonly name = 'DiffOverrunError';
  constructor(aid: number, tid: number, cmd: number, detail: string) {
    super('ERR_FUSION_DIFF_OVERRUN', { aid, tid, cmd }, detail);
  }
}

export class FusionUtf8Error extends FusionError {
  override readonly name = 'FusionUtf8Error';
  constructor(context: FusionErrorContext, where: string) {
    super('ERR_FUSION_UTF8', context, `${where} is not valid UTF-8 (set invalidUtf8: 'drop' to drop bad bytes as the reference does)`);
  }
}

export class FusionBodyError extends FusionError {
  override readonly name = 'FusionBodyError';
  constructor(context: FusionErrorContext, cause: Error) {
    super('ERR_FUSION_BODY', context, `body text does not decode: ${cause.message}`, undefined, { cause });
  }
}

export class FusionInputError extends FusionError {
  override readonly name = 'FusionInputError';
  constructor(context: FusionErrorContext, detail: string, cause?: unknown) {
    super('ERR_FUSION_INPUT', context, detail, undefined, cause === undefined ? undefined : { cause });
  }
}
