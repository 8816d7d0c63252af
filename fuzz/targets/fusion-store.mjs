// Registry files of @opensynaptic/fusion's FileRegistryStore (in a tmpfs directory when there is
// one): load gives a registry or a typed RegistryStoreError; a loaded registry saved again loads
// back with the same templates (the repaired form is a fixed point); the loaded registry then
// serves a HEART frame without an untyped error.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { FileRegistryStore, OSVisualFusionEngine } from '../../packages/fusion/dist/index.js';
import { encodeFrame } from '../../packages/packet/dist/index.js';
import { expectTyped } from './common.mjs';

let store;
const AID = 4242;

function view(reg) {
  return JSON.stringify([...reg.templates].map(([tid, t]) => [tid, t.sig, t.values]));
}

export default {
  maxLen: 16384,
  dict: ['{', '}', '[', ']', '"', ':', ',', '"aid"', '"templates"', '"sig"', '"last_vals_bin"', '"01"', '"4242"', 'null', '5', '"*"', '"AA=="', '\\u0000', '\\ud800', '"D.1.{TS}|S1>\\u0001:\\u0001|"', '"S0sx"'],
  setup() {
    const base = mkdtempSync(`${process.platform === 'linux' ? '/dev/shm' : tmpdir()}/osfuzz-`);
    store = new FileRegistryStore({ root: base, durable: false });
  },
  fuzz(input) {
    const path = store.pathOf(AID);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, input);
    let reg;
    try {
      reg = store.load(AID);
    } catch (e) {
      expectTyped(e, 'FileRegistryStore.load');
      return;
    }
    if (reg === null) throw new Error('an existing file loaded as no registry');
    store.save(reg);
    const again = store.load(AID);
    if (again === null || view(again) !== view(reg)) throw new Error(`save then load changed the registry: ${view(reg)} -> ${again && view(again)}`);
    if (again.dirty) throw new Error('a file the store wrote itself loads as needing repair');
    // A receiver with this registry rebuilds HEART frames from it.
    const engine = new OSVisualFusionEngine({ backend: 'ts', registry: { store } });
    for (const tid of [...reg.templates.keys()].slice(0, 4)) {
      try {
        engine.decompress(encodeFrame({ cmd: 127, routes: AID, tid, timestamp: 1_700_000_000_000, body: new Uint8Array(0) }));
      } catch (e) {
        expectTyped(e, 'HEART from a loaded registry');
      }
    }
  },
};
