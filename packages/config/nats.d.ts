/** Where Debian's package puts the server. */
export declare const NATS_SERVER_PATHS: readonly string[];
/** The installed `nats-server`, or `undefined`. */
export declare function findNatsServer(): string | undefined;
/** Installs Debian's `nats-server` with apt-get when missing; returns its path. */
export declare function installNatsServer(log?: (message: string) => void): string;

export interface NatsNode {
  readonly name: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
}

/**
 * Debian's nats-server on free loopback ports: one node or a JetStream cluster of three, each
 * store in a temporary folder. `kill(i)` SIGKILLs a node, `restart(i)` starts it again on its
 * ports and folder, `close()` ends them all and removes the folders.
 */
export declare class NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** The client URLs of every node. */
  readonly urls: string[];
  private constructor(dir: string, bin: string);
  static start(options?: { nodes?: 1 | 3; log?: (message: string) => void; timeoutMs?: number }): Promise<NatsCluster>;
  /** The last 4,000 characters of node `i`'s output. */
  log(i: number): string;
  waitHealthy(timeoutMs?: number): Promise<void>;
  kill(i: number): Promise<void>;
  restart(i: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}
