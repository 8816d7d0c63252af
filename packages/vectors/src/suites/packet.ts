import {
  decodeTimestampToken,
  FrameError,
  getCodec,
  parseRouteId,
} from '@opensynaptic/packet';
import { decodeWithFusion } from './fusion.js';
import type { CaseResult, Suite, VectorCase } from '../types.js';
import { bytesToHex, Checker, hexToBytes, isOurError } from '../util.js';

/** Error texts the frame layer produces; any other expected error comes from the fusion layer. */
const FRAME_ERRORS = [/^Packet too short$/, /^Incomplete Binary Header$/, /^CRC16 mismatch$/, /^CRC8 mismatch$/, /^Missing secure key for aid=\d+$/, /^Unknown Command 0x[0-9a-f]+$/];

/** The vectors give raw 4-byte route ids as 8 hex digits; other strings are device-id text. */
function routeId(v: unknown): number {
  if (typeof v === 'string' && /^[0-9a-f]{8}$/.test(v)) return parseRouteId(hexToBytes(v));
  return parseRouteId(v as number | string);
}

function build(c: VectorCase, backend: 'ts' | 'native'): CaseResult {
  const codec = getCodec(backend);
  const i = c.input;
  const e = c.expected;
  const k = new Checker();
  const encode = () =>
    bytesToHex(
      codec.encodeFrame({
        cmd: i.cmd as number,
        routes: (i.route_ids as unknown[]).map(routeId),
        tid: Number(i.tid),
        timestamp: decodeTimestampToken(i.ts_token as string),
        body: hexToBytes(i.body as string),
        key: i.session_key ? hexToBytes(i.session_key as string) : null,
      }),
    );
  if ('raises' in e) k.throws('encodeFrame', encode, isOurError);
  else k.eq('frame', encode, e.frame);
  return k.result(c.id);
}

interface Meta {
  cmd?: number;
  base_cmd?: number;
  secure?: boolean;
  source_aid?: number;
  crc16_ok?: boolean;
  crc8_ok?: boolean;
  timestamp_raw?: number;
  server_stamped?: boolean;
  tid?: string;
}

function decode(c: VectorCase, backend: 'ts' | 'native'): CaseResult {
  const codec = getCodec(backend);
  const i = c.input;
  const decoded = (c.expected.decoded ?? {}) as { error?: unknown; __packet_meta__?: Meta };
  const meta = decoded.__packet_meta__ ?? {};
  const frame = hexToBytes(i.frame as string);
  const key = i.receiver_session_key_for_aid_42 as string | null;
  const keys = key ? new Map([[42, hexToBytes(key)]]) : undefined;
  const k = new Checker();
  const frameError = typeof decoded.error === 'string' && FRAME_ERRORS.some((r) => r.test(decoded.error as string));
  let got: ReturnType<typeof codec.decodeFrame> | undefined;
  let err: unknown;
  try {
    got = codec.decodeFrame(frame, { keys });
  } catch (x) {
    err = x;
  }
  // Fields of the reference's __packet_meta__ this layer knows, from the frame or the error.
  const header = got ?? (err instanceof FrameError ? err.header : undefined);
  const compare = (h: NonNullable<typeof header>) => {
    if (meta.cmd !== undefined) k.eq('meta.cmd', () => h.cmd, meta.cmd);
    if (meta.base_cmd !== undefined) k.eq('meta.base_cmd', () => h.baseCmd, meta.base_cmd);
    if (meta.secure !== undefined) k.eq('meta.secure', () => h.secure, meta.secure);
    if (meta.source_aid !== undefined) k.eq('meta.source_aid', () => h.sourceAid, meta.source_aid);
    if (meta.tid !== undefined) k.eq('meta.tid', () => h.tid, Number(meta.tid));
    // A server-stamped frame carries 0; the receiver's own clock fills it in above this layer.
    if (meta.timestamp_raw !== undefined) {
      k.eq('meta.timestamp_raw', () => h.timestamp, meta.server_stamped ? 0 : meta.timestamp_raw);
    }
  };
  if (frameError) {
    if (!(err instanceof FrameError)) {
      k.fail(`expected ${String(decoded.error)}, ${got ? 'decoded fine' : `threw ${(err as Error)?.message}`}`);
    } else {
      k.eq('error', () => err.referenceText, decoded.error);
      compare(err.header);
    }
    return k.result(c.id);
  }
  if (!got) {
    k.fail(`frame should pass the frame checks but threw ${isOurError(err) ? (err as Error).message : String(err)}`);
    return k.result(c.id);
  }
  compare(got);
  if (meta.crc16_ok !== undefined) k.eq('meta.crc16_ok', () => true, meta.crc16_ok);
  if (meta.crc8_ok !== undefined) k.eq('meta.crc8_ok', () => true, meta.crc8_ok);
  return k.result(c.id, 'frame checks and header pass; the decoded fact needs the fusion layer');
}

/** packet.json: frame building, and decoding through a fresh fusion receiver (frame checks, templates, facts). */
export const packetSuite: Suite = {
  kind: 'packet',
  sniff: (f) => 'frame_layout' in f,
  run(file, backend) {
    return file.cases.map((c) => {
      if (!('frame' in c.input)) return build(c, backend);
      // The frame layer's own checks first, then the whole decode through a fusion receiver.
      const frameLevel = decode(c, backend);
      return frameLevel.status === 'fail' ? frameLevel : decodeWithFusion(c, backend);
    });
  },
};
