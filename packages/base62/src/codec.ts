/** The Base62 codec's operations (one TypeScript implementation). */
export interface Base62Codec {
  readonly backend: 'ts';
  /** Exact signed 64-bit integer → text. RangeError outside int64. */
  encodeBigInt(value: bigint): string;
  /** Text → exact signed 64-bit integer. */
  decodeBigInt(text: string): bigint;
  /**
   * Number → text without precision, truncating toward zero (the reference's
   * `use_precision=False`, used for coefficients and route ids).
   */
  encodeInt(value: number): string;
  /** Text → number without precision (nearest double above 2^53). */
  decodeInt(text: string): number;
  /** Fixed-point: `round_half_even(value × 10^precision)` on the binary product, as text. */
  encode(value: number, precision?: number): string;
  /** Fixed-point: integer ÷ 10^precision, rounded to 8 decimals like the reference. */
  decode(text: string, precision?: number): number;
  /** `encode` over many values in one call. */
  encodeBatch(values: ArrayLike<number>, precision?: number): string[];
  /** `decode` over many texts in one call. */
  decodeBatch(texts: readonly string[], precision?: number): Float64Array;
}
