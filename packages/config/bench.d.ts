export interface BenchCase {
  name: string;
  inner: number;
  /** Items processed per call (batch APIs): times are reported per item. */
  items?: number;
  impls: Record<string, () => void>;
}
export declare function compare(title: string, cases: BenchCase[], options?: { time?: number }): Promise<Record<string, string>[]>;
