import type { FrameBatch } from './batch.js';
import type { DecodedFrame, DecodeOptions, FrameFields } from './frame.js';

/** One implementation of the frame codec (TypeScript or native); both pass the same vectors. */
export interface FrameCodec {
  readonly backend: 'ts' | 'native';
  encodeFrame(fields: FrameFields): Uint8Array;
  decodeFrame(frame: Uint8Array, options?: DecodeOptions): DecodedFrame;
  /** Plain single-route frames back to back; frame i is `16 + body_i` bytes. */
  encodeFrames(batch: FrameBatch): Uint8Array;
  /** Checks and parses frame i = `buf[offsets[i]..offsets[i+1])` into `out`; returns the count. */
  decodeFrames(buf: Uint8Array, offsets: Uint32Array, out: Float64Array): number;
}
