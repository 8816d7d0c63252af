// Test helper: the error a call throws, for assertions on its class, code and message.
export function thrown(fn, type) {
  try {
    fn();
  } catch (e) {
    if (type !== undefined && !(e instanceof type)) throw new Error(`expected a ${type.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    return e;
  }
  throw new Error(`expected ${type === undefined ? 'a throw' : `a ${type.name}`}, nothing was thrown`);
}
