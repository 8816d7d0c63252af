/**
 * Test helpers shared by the packages' test suites (never bundled: only tests import this entry).
 */

/** Median of `runs` timings (ms) of `run(input(r))`, each input built outside the timed part. */
export function medianMs<T>(input: (r: number) => T, run: (x: T) => void, runs: number, stopAboveMs = Number.POSITIVE_INFINITY): number {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const x = input(r);
    const start = performance.now();
    run(x);
    const t = performance.now() - start;
    // A run this slow already decides the comparison: do not repeat it (quadratic code takes seconds).
    if (t > stopAboveMs) return t;
    times.push(t);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

/**
 * How many times slower `run` is on the adversarial inputs than on the benign ones: medians of
 * `runs` timings each, in the same process, after a warm-up on benign inputs. Input `r` of each
 * kind should differ from the others, so that no cache answers for a repeated one.
 */
export function slowdown<T>(benign: (r: number) => T, adversarial: (r: number) => T, run: (x: T) => void, runs = 5, bound = 10): number {
  for (let r = 0; r < 3; r++) run(benign(r + 100));
  const base = Math.max(medianMs(benign, run, runs), 0.05);
  return medianMs(adversarial, run, runs, base * bound * 20) / base;
}
