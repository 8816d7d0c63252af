// Session and lease files of @opensynaptic/handshake (JsonFileStore): a manager or allocator
// opening any file either works or throws a typed error; what it flushes opens again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { IdAllocator, JsonFileStore, OSHandshakeManager } from '../../packages/handshake/dist/index.js';
import { buildSecureDictReady } from '../../packages/handshake/dist/index.js';
import { expectTyped, splitNul } from './common.mjs';

let dir;
const clock = () => 1_700_000_000;

function open(sessionPath, leasePath) {
  const allocator = new IdAllocator({ clock, store: new JsonFileStore(leasePath), maxLeases: 64 });
  const mgr = new OSHandshakeManager({ clock, allocator, sessionStore: new JsonFileStore(sessionPath), maxSessions: 64 });
  return { allocator, mgr };
}

export default {
  maxLen: 16384,
  dict: ['{', '}', '[', ']', '"', ':', ',', '"42"', '"sessions"', '"leases"', '"key"', '"state"', '"SECURE"', '"PLAINTEXT"', '"last"', 'null', '5', '-1', '1e400', '"__proto__"', '"constructor"', '"version"', '"expiresAt"', '"released"', '"next"', '"id"', '"lastSeen"', '"pendingKey"', '"pendingTimestamp"', '"firstPlaintextTs"', '"DICT_READY"', '"INIT"', '18446744073709551616', '"99999999999999999999"'],
  setup() {
    dir = mkdtempSync(`${process.platform === 'linux' ? '/dev/shm' : tmpdir()}/osfuzz-hs-`);
  },
  fuzz(input) {
    const [sessions, leases] = splitNul(input);
    const sp = `${dir}/sessions.json`;
    const lp = `${dir}/leases.json`;
    rmSync(lp, { force: true });
    writeFileSync(sp, sessions);
    if (leases.length > 0) writeFileSync(lp, leases);
    let o;
    try {
      o = open(sp, lp);
    } catch (e) {
      expectTyped(e, 'opening the stores');
      return;
    }
    try {
      for (const aid of [1, 42, 4294967294]) {
        o.mgr.getSession(aid);
        o.mgr.getTxKey(aid);
        o.mgr.checkTimestamp(aid, 1_700_000_000_000);
      }
      o.mgr.classifyAndDispatch(buildSecureDictReady(42, 1_700_000_000_000));
      o.allocator.allocate('aa:bb');
      o.mgr.flush();
      o.allocator.flush();
    } catch (e) {
      expectTyped(e, 'using loaded stores');
    }
    try {
      open(sp, lp);
    } catch (e) {
      throw new Error(`files written by the stores do not open again: ${e.message}`);
    }
  },
};
