/** Where Debian installs the broker. */
export declare const MOSQUITTO: string;
/** Whether Debian's mosquitto is installed (`apt-get install mosquitto`). */
export declare function hasMosquitto(): boolean;
/** A free loopback port (bound, read, released). */
export declare function freePort(): Promise<number>;
/**
 * Debian's mosquitto on a free loopback port: anonymous, persistent (its database in a temporary
 * folder, written when it stops). `restart()` stops it with SIGTERM and starts it again on the
 * same port; `close()` stops it and removes its folder.
 */
export declare class Mosquitto {
  readonly port: number;
  readonly url: string;
  private constructor(port: number);
  static start(): Promise<Mosquitto>;
  stop(): Promise<void>;
  /** Starts the broker again on its port after `stop()`. */
  resume(): Promise<void>;
  restart(pauseMs?: number): Promise<void>;
  close(): Promise<void>;
}
