// Registry files of @opensynaptic/fusion (the reference's format, read by the file template
// store's layout): bytes that are UTF-8 decode to a registry record or a typed
// RegistryStoreError; a record encoded again decodes back to the same templates (the file the
// store writes is a fixed point); and a receiver holding that registry serves a HEART frame
// without an untyped error.
import { OSVisualFusionEngine, RegistryCache, registryFileLayout, registryFromRecord } from '../../packages/fusion/dist/index.js';
import { encodeFrame } from '../../packages/packet/dist/index.js';
import { expectTyped } from './common.mjs';

const AID = 4242;
const KEY = String(AID);
const layout = registryFileLayout();
const utf8 = new TextDecoder('utf-8', { fatal: true });

function view(record) {
  return JSON.stringify(record.templates);
}

export default {
  maxLen: 16384,
  dict: ['{', '}', '[', ']', '"', ':', ',', '"aid"', '"templates"', '"sig"', '"last_vals_bin"', '"01"', '"4242"', 'null', '5', '"*"', '"AA=="', '\\u0000', '\\ud800', '"D.1.{TS}|S1>\\u0001:\\u0001|"', '"S0sx"'],
  fuzz(input) {
    try {
      utf8.decode(input);
    } catch {
      return; // not text: the file store reports it as ERR_STORE_CORRUPT before the codec
    }
    let record;
    try {
      record = layout.decode(KEY, input);
    } catch (e) {
      expectTyped(e, 'registry file decode');
      return;
    }
    const again = layout.decode(KEY, layout.encode(KEY, record));
    if (view(again) !== view(record)) throw new Error(`encode then decode changed the registry: ${view(record)} -> ${view(again)}`);
    // A receiver with this registry rebuilds HEART frames from it.
    const registry = new RegistryCache();
    registry.changed(registryFromRecord(record));
    const engine = new OSVisualFusionEngine({ backend: 'ts', registry });
    for (const [tid] of record.templates.slice(0, 4)) {
      try {
        engine.decompress(encodeFrame({ cmd: 127, routes: AID, tid, timestamp: 1_700_000_000_000, body: new Uint8Array(0) }));
      } catch (e) {
        expectTyped(e, 'HEART from a loaded registry');
      }
    }
  },
};
