/**
 * A small typed event source for sans-IO objects (the node, transports): synchronous delivery in
 * registration order, no dependency on Node's `events` (browsers have none) and no `Event`
 * objects to allocate. A listener that throws cannot break the caller's operation half way: its
 * error is reported on a microtask (an uncaught exception, as `EventTarget` reports it) and the
 * other listeners still run.
 */

/** Receives one event. */
export type Listener<T> = (event: T) => void;

export class TypedEvents<M extends { [K in keyof M]: unknown }> {
  readonly #listeners = new Map<keyof M, Listener<never>[]>();

  /** Calls `listener` for every `name` event until the returned function is called. */
  on<K extends keyof M>(name: K, listener: Listener<M[K]>): () => void {
    const list = this.#listeners.get(name);
    // Copy on write: an emit in progress keeps the list it started with.
    this.#listeners.set(name, list === undefined ? [listener] : [...list, listener]);
    return () => this.off(name, listener);
  }

  /** Calls `listener` for the next `name` event only. */
  once<K extends keyof M>(name: K, listener: Listener<M[K]>): () => void {
    const off = this.on(name, (event) => {
      off();
      listener(event);
    });
    return off;
  }

  /** Removes `listener` (its first registration) from `name`. */
  off<K extends keyof M>(name: K, listener: Listener<M[K]>): void {
    const list = this.#listeners.get(name);
    if (list === undefined) return;
    const i = list.indexOf(listener as Listener<never>);
    if (i < 0) return;
    const next = list.filter((_, j) => j !== i);
    if (next.length === 0) this.#listeners.delete(name);
    else this.#listeners.set(name, next);
  }

  /** Removes every listener (a destroyed object keeps none alive). */
  clear(): void {
    this.#listeners.clear();
  }

  /** Whether anything listens to `name` (lets callers skip building an event nobody reads). */
  has(name: keyof M): boolean {
    return this.#listeners.has(name);
  }

  /** Delivers `event` to every listener of `name`. */
  emit<K extends keyof M>(name: K, event: M[K]): void {
    const list = this.#listeners.get(name) as Listener<M[K]>[] | undefined;
    if (list === undefined) return;
    for (const listener of list) {
      try {
        listener(event);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
