/** Where Debian installs socat. */
export declare const SOCAT: string;

/** A pseudo-terminal pair joined by Debian's socat: `a` and `b` are stable links to the two ends. */
export declare class PtyPair {
  readonly a: string;
  readonly b: string;
  private constructor(dir: string, child: unknown);
  static start(): Promise<PtyPair>;
  /** Stops socat (SIGTERM) and removes the links' folder. */
  close(): Promise<void>;
}
