// Test helper: waits until a condition holds, polling, and fails (never hangs) after a bound.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(done, what = 'the condition', ms = 10_000, everyMs = 5) {
  const end = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `until` for a value: resolves with the first result of `get()` that is not `undefined`. */
export async function untilValue(get, what = 'the value', ms = 10_000, everyMs = 5) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
