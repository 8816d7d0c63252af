import type { Store } from './contract.js';

/**
 * A store's `flush` run in the background for a write-behind caller (fusion's registry cache,
 * the handshake's sessions and leases): at most one at a time, and a request made while one runs
 * starts one more after it, so every write issued before a request is covered by a flush that
 * starts after it. Failures go to `onError` (never an unhandled rejection); the store keeps the
 * unflushed writes pending, so the next flush retries them. Runs no timer: callers request a
 * flush from their own sweep or after a write.
 */
export class BackgroundFlush {
  readonly #store: Pick<Store, 'flush'>;
  readonly #onError: (error: unknown) => void;
  #running: Promise<void> | null = null;
  #again = false;

  constructor(store: Pick<Store, 'flush'>, onError: (error: unknown) => void) {
    this.#store = store;
    this.#onError = onError;
  }

  /** Whether a background flush is running. */
  get running(): boolean {
    return this.#running !== null;
  }

  /** Starts a flush, or asks for one more after the one running. */
  request(): void {
    if (this.#running !== null) {
      this.#again = true;
      return;
    }
    this.#running = this.#store
      .flush()
      .catch((error: unknown) => {
        try {
          this.#onError(error);
        } catch {
          // A throwing handler must not turn into an unhandled rejection.
        }
      })
      .finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          this.request();
        }
      });
  }

  /** Resolves once no background flush runs (the ones requested meanwhile included). */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }
}
