import { TypedEvents } from '@opensynaptic/internal';

/**
 * The transports' events: internal's `TypedEvents` (synchronous, no `node:events`, a throwing
 * listener reported on a microtask and breaking nothing), with each event carrying its `type`.
 */
export class Emitter<M extends object> {
  readonly #events = new TypedEvents<{ [K in keyof M]: M[K] & { readonly type: K } }>();

  on<K extends keyof M>(type: K, listener: (event: M[K] & { readonly type: K }) => void): () => void {
    return this.#events.on(type, listener);
  }

  /** Whether anyone listens to `type` (to skip building an event nobody reads). */
  has(type: keyof M): boolean {
    return this.#events.has(type);
  }

  emit<K extends keyof M>(type: K, payload: M[K]): void {
    if (this.#events.has(type)) this.#events.emit(type, { ...payload, type } as M[K] & { readonly type: K });
  }

  clear(): void {
    this.#events.clear();
  }
}
