/**
 * Transpiles `entries` (TypeScript files of the repository) and the relative modules they import
 * to plain ES modules in `outDir`; `@opensynaptic/internal` from source, other workspace packages
 * from their built `dist`. Returns the `file:` URL of each compiled entry.
 */
export declare function compileForChild(entries: readonly string[], outDir: string): string[];

/** A deterministic generator of numbers in [0, 1). */
export declare function seededRandom(seed: number): () => number;

export interface KillLoopOptions {
  /** The child's script (it prints `ready` once, then one line per acknowledged item). */
  script: string;
  /** Arguments of the child in each round. */
  args?: (round: number) => string[];
  /** How many times the child is started and SIGKILLed. */
  rounds: number;
  /** The kill comes a random 'minMs..maxMs' after `ready` (defaults 20 and 400). */
  minMs?: number;
  maxMs?: number;
  /** Seed of the kill times. */
  seed?: number;
  /** Called after each kill with the complete lines the child printed (without `ready`). */
  check: (round: number, lines: string[]) => void | Promise<void>;
}

/** Starts, SIGKILLs and checks a child process `rounds` times (see `KillLoopOptions`). */
export declare function killLoop(options: KillLoopOptions): Promise<void>;
