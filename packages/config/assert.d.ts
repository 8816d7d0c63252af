/** The error `fn()` throws; with `type`, checked to be one (else the test fails). Fails when nothing is thrown. */
export declare function thrown(fn: () => unknown): unknown;
export declare function thrown<E>(fn: () => unknown, type: abstract new (...args: never[]) => E): E;
