export interface SinkBenchCase {
  name: string;
  /** Readings per transaction. */
  batchSize: number;
  /** A fresh sink opened with the bench's buffering options. */
  open(options: Record<string, unknown>): Promise<{
    write(frames: unknown[]): Promise<number>;
    flush(): Promise<void>;
    status(): Promise<{ committed: number; lost: number; batches: number }>;
    close(): Promise<void>;
  }>;
}
/** Runs the cases (`BENCH_SECONDS` per case, default 4) and prints a table. */
export declare function benchSink(title: string, cases: SinkBenchCase[], options?: { seconds?: number }): Promise<Record<string, string | number>[]>;
