/**
 * Waits until `done()` holds, polling every `everyMs` (default 5): rejects naming `what` after `ms`
 * (default 10000), so a test fails rather than hangs.
 */
export declare function until(done: () => boolean | Promise<boolean>, what?: string, ms?: number, everyMs?: number): Promise<void>;
/** `until` for a value: resolves with the first result of `get()` that is not `undefined`; rejects naming `what` after `ms`. */
export declare function untilValue<T>(get: () => T | undefined | Promise<T | undefined>, what?: string, ms?: number, everyMs?: number): Promise<T>;
