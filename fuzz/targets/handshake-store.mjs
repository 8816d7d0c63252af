// Session and lease files of @opensynaptic/handshake, as their importers read them (the files
// of earlier versions, and snapshots): any JSON either converts to store records or is refused
// with a typed error; what it converts to converts again, unchanged (the records the stores
// keep are a fixed point of the checks).
import { ALLOCATOR_STATE_KEY, leaseSnapshotWrites, sessionSnapshotWrites } from '../../packages/handshake/dist/index.js';
import { expectTyped, splitNul } from './common.mjs';

const text = new TextDecoder();

function json(bytes) {
  try {
    return { ok: true, value: JSON.parse(text.decode(bytes)) };
  } catch {
    return { ok: false }; // not JSON: the store reports it before these checks
  }
}

function sessions(value) {
  let writes;
  try {
    writes = sessionSnapshotWrites(value);
  } catch (e) {
    expectTyped(e, 'session snapshot');
    return;
  }
  const snapshot = { version: 2, sessions: Object.fromEntries(writes.map((w) => [w.key, w.value])) };
  const again = sessionSnapshotWrites(snapshot);
  if (JSON.stringify(again) !== JSON.stringify(writes)) throw new Error('session records do not convert to themselves');
}

function leases(value) {
  let writes;
  try {
    writes = leaseSnapshotWrites(value);
  } catch (e) {
    expectTyped(e, 'lease snapshot');
    return;
  }
  const state = writes.find((w) => w.key === ALLOCATOR_STATE_KEY).value;
  const snapshot = {
    version: 2,
    start: 1,
    end: 0xfffffffe,
    next: state.next,
    leases: writes.filter((w) => w.key !== ALLOCATOR_STATE_KEY).map((w) => ({ id: Number(w.key), ...w.value })),
    released: state.released,
    reserved: state.reserved,
  };
  const again = leaseSnapshotWrites(snapshot);
  if (JSON.stringify(again) !== JSON.stringify(writes)) throw new Error('lease records do not convert to themselves');
}

export default {
  maxLen: 16384,
  dict: ['{', '}', '[', ']', '"', ':', ',', '"42"', '"sessions"', '"leases"', '"key"', '"state"', '"SECURE"', '"PLAINTEXT"', '"last"', 'null', '5', '-1', '1e400', '"__proto__"', '"constructor"', '"version"', '"expiresAt"', '"expiresAtMs"', '"released"', '"reserved"', '"next"', '"id"', '"lastSeen"', '"lastSeenMs"', '"pendingKey"', '"pendingTimestamp"', '"firstPlaintextTs"', '"DICT_READY"', '"INIT"', '18446744073709551616', '"99999999999999999999"'],
  fuzz(input) {
    const [s, l] = splitNul(input);
    const a = json(s);
    if (a.ok) sessions(a.value);
    const b = json(l);
    if (b.ok) leases(b.value);
  },
};
