/**
 * Waits until `done()` holds, polling every `everyMs` (default 5): rejects naming `what` after `ms`
 * (default 10000), so a test fails rather than hangs.
 */
export declare function until(done: () => boolean | Promise<boolean>, what?: string, ms?: number, everyMs?: number): Promise<void>;
