/**
 * Fusion's registries on the one store contract (`@opensynaptic/store`): the `templates` kind,
 * keyed by the AID in decimal, one record per device. `openFileTemplateStore` keeps the
 * reference node's `device_registry` layout and file format byte for byte (see `registry-file.ts`),
 * so a reference node and this package can still share a registry folder.
 */
import { FileStore, type FileStoreOptions, type FilesLayout, type Store, StoreError } from '@opensynaptic/store';
import { decodeRegistryFile, encodeRegistryFile, registryFilePath } from './registry-file.js';
import { DeviceRegistry } from './registry.js';
import { MAX_AID } from './store-errors.js';

/** One device's templates as stored: a plain copy, so later changes of the live registry do not touch a pending write. */
export interface TemplateRecord {
  readonly aid: number;
  /** `[tid, sig, values]` in the registry's order; `values` is `null` when unknown. */
  readonly templates: readonly (readonly [number, string, readonly string[] | null])[];
}

/** The kinds of a template store. */
export interface TemplateKinds {
  templates: TemplateRecord;
}

/** A store of the contract that keeps fusion's templates. */
export type TemplateStore = Store<TemplateKinds>;

/** The record of `registry` (a copy). */
export function registryRecord(registry: DeviceRegistry): TemplateRecord {
  const templates: [number, string, readonly string[] | null][] = [];
  for (const [tid, t] of registry.templates) templates.push([tid, t.sig, t.values === null ? null : [...t.values]]);
  return { aid: registry.aid, templates };
}

/** A new registry holding `record`'s templates (not dirty). */
export function registryFromRecord(record: TemplateRecord): DeviceRegistry {
  const registry = new DeviceRegistry(record.aid);
  for (const [tid, sig, values] of record.templates) registry.put(tid, sig, values === null ? null : [...values]);
  registry.dirty = false;
  return registry;
}

/** The store key of `aid`: its decimal form. */
export function templateKey(aid: number): string {
  return String(aid);
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const AID_KEY = /^(?:0|[1-9][0-9]{0,9})$/;

function aidOfKey(key: string): number {
  const aid = AID_KEY.test(key) ? Number(key) : -1;
  if (aid < 0 || aid > MAX_AID) throw new StoreError('ERR_STORE_KEY', `a templates key is an AID 0..${MAX_AID} in decimal, got ${JSON.stringify(key.slice(0, 40))}`, { kind: 'templates', key });
  return aid;
}

/** The reference's `device_registry` layout as a `files` layout: `<root>/00/00/42.json`. */
export function registryFileLayout(): FilesLayout<TemplateRecord> {
  return {
    type: 'files',
    dir: '',
    depth: 2,
    pathOf: (key) => registryFilePath('', aidOfKey(key)).slice(1),
    keyOf(rel) {
      const m = /^([0-9]{2})\/([0-9]{2})\/([0-9]{1,10})\.json$/.exec(rel);
      if (m === null || !AID_KEY.test(m[3]!) || Number(m[3]) > MAX_AID) return undefined;
      return registryFilePath('', Number(m[3])).slice(1) === rel ? m[3] : undefined;
    },
    encode: (_key, record) => utf8Encoder.encode(encodeRegistryFile(registryFromRecord(record))),
    decode: (key, bytes) => registryRecord(decodeRegistryFile(aidOfKey(key), utf8Decoder.decode(bytes))),
  };
}

/** Options of {@link openFileTemplateStore}: those of `FileStore.open` that apply. */
export type FileTemplateStoreOptions = Pick<FileStoreOptions<TemplateKinds>, 'root' | 'durable' | 'onCorrupt' | 'onQuarantine' | 'staleTempMs' | 'concurrency'>;

/** A file store of templates in the reference's registry layout and format (Node only). */
export function openFileTemplateStore(options: FileTemplateStoreOptions | string): Promise<FileStore<TemplateKinds>> {
  const opts = typeof options === 'string' ? { root: options } : options;
  return FileStore.open<TemplateKinds>({ ...opts, kinds: ['templates'], layouts: { templates: registryFileLayout() } });
}
