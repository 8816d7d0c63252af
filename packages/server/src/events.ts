/** A small typed emitter: listeners run synchronously; one that throws is reported on a microtask and breaks nothing. */
export class Emitter<E extends object> {
  readonly #listeners = new Map<keyof E, Set<(event: never) => void>>();

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof E>(type: K, listener: (event: E[K]) => void): () => void {
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

  off<K extends keyof E>(type: K, listener: (event: E[K]) => void): void {
    this.#listeners.get(type)?.delete(listener as (event: never) => void);
  }

  emit<K extends keyof E>(type: K, event: E[K]): void {
    const set = this.#listeners.get(type);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as (event: E[K]) => void)(event);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
