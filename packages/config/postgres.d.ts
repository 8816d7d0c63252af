/** The newest `bin` folder of Debian's PostgreSQL packages holding `initdb`, or `undefined`. */
export declare function findPostgresBin(): string | undefined;

/** Installs Debian's `postgresql` with apt-get when missing; returns its bin folder. */
export declare function installPostgres(log?: (message: string) => void): string;

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication, loopback only). */
  url: string;
  port: number;
  /** `postgres (PostgreSQL) 15.x`. */
  version: string;
  dataDir: string;
  /** Stops the server and removes its folder (synchronous, idempotent). */
  stop(): void;
  /** Takes the server down (fast shutdown: connections are cut), keeping its data, for fault tests. */
  stopServer(): void;
  /** Brings it back up on the same port. */
  startServer(): void;
}

/** Starts a private cluster in a temporary folder on a free loopback port (see the module comment). */
export declare function startPostgres(options?: { log?: (message: string) => void; fsync?: boolean }): Promise<PrivatePostgres>;

/** `start` or `stop` (fast shutdown, data kept) the server of a cluster made by `startPostgres`, from any process. */
export declare function controlPostgres(dataDir: string, action: 'start' | 'stop'): void;

/** A vitest global setup's PostgreSQL, provided to the tests as `pgUrl`, `pgDataDir` and `pgUnavailable` (see the module); resolves to the teardown. */
export declare function providePostgres(project: { provide(key: 'pgUrl' | 'pgDataDir' | 'pgUnavailable', value: string): void }): Promise<() => void>;
