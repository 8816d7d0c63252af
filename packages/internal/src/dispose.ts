/**
 * `await using` for a class with an async `destroy()`: defines the method under the platform's
 * `Symbol.asyncDispose` on its prototype where there is one (Node 20.16 may have none; the type
 * side is each package's own `AsyncDisposableLike`, typed only where the consumer's lib has it).
 */
export function installAsyncDispose(ctor: { readonly prototype: { destroy(): Promise<void> } }): void {
  const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
  if (asyncDispose === undefined) return;
  Object.defineProperty(ctor.prototype, asyncDispose, {
    configurable: true,
    writable: true,
    value(this: { destroy(): Promise<void> }) {
      return this.destroy();
    },
  });
}
