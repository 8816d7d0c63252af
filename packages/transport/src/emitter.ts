/**
 * A small typed event emitter (no `node:events`, so it runs in browsers). A listener that throws
 * does not stop the others or the transport: its error is rethrown asynchronously, where the
 * platform reports uncaught errors.
 */
export class Emitter<M extends object> {
  #listeners = new Map<keyof M, Set<(event: never) => void>>();

  on<K extends keyof M>(type: K, listener: (event: M[K] & { readonly type: K }) => void): () => void {
    let set = this.#listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(type, set);
    }
    set.add(listener as (event: never) => void);
    return () => {
      set.delete(listener as (event: never) => void);
    };
  }

  /** Whether anyone listens to `type` (to skip building an event nobody reads). */
  has(type: keyof M): boolean {
    return (this.#listeners.get(type)?.size ?? 0) > 0;
  }

  emit<K extends keyof M>(type: K, payload: M[K]): void {
    const set = this.#listeners.get(type);
    if (set === undefined || set.size === 0) return;
    const event = { ...payload, type } as never;
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
