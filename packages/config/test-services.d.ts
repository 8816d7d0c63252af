/** Where Debian installs the programs the tests start. */
export declare const MOSQUITTO: string;
export declare const SOCAT: string;

/** Installs Debian's mosquitto and socat when missing (once per test run, from a globalSetup). */
export declare function ensureTestPrograms(log?: (message: string) => void): void;

/** A free loopback TCP port (bound, read, released). */
export declare function freePort(): Promise<number>;

/**
 * Debian's mosquitto on a free loopback port, started by the test (anonymous, persistent in a
 * temporary folder). `restart()` stops it with SIGTERM and starts it again on the same port.
 */
export declare class Mosquitto {
  readonly port: number;
  readonly url: string;
  private constructor(port: number);
  static start(): Promise<Mosquitto>;
  /** Stops the broker (SIGTERM: it saves its database) and waits for it to exit. */
  stop(): Promise<void>;
  restart(pauseMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A pseudo-terminal pair joined by Debian's socat: `a` and `b` are stable links to the two ends. */
export declare class PtyPair {
  readonly a: string;
  readonly b: string;
  private constructor(dir: string, child: unknown);
  static start(): Promise<PtyPair>;
  close(): Promise<void>;
}
