/**
 * The OpenSynaptic fusion engine: per-device template registries, FULL / DIFF / HEART frames,
 * and their decode back to facts.
 */
export { decompose, type Decomposed, rebuild, TS_MARK, VALUE_MARK } from './decompose.js';
export {
  type FusionEngineOptions,
  type FusionFact,
  type FusionParseResult,
  type FusionSecurity,
  type FusionStrategy,
  OSVisualFusionEngine,
  type PacketMeta,
} from './engine.js';
export * from './errors.js';
export { backendInfo, type FusionOperation } from './native-binding.js';
// A native (addon) failure the TypeScript code never has; bundled per package, so test it with
// `isOpenSynapticError(err, code)`, not `instanceof`.
export {
  type BackendInfo,
  type BackendMode,
  type BackendName,
  isOpenSynapticError,
  NativeBackendError,
  type NativeBackendErrorCode,
  type NativeUnavailability,
  NativeUnavailableError,
  type OpenSynapticError,
} from '@opensynaptic/internal';
export { NATIVE_MAX_FRAME } from './native-io.js';
export type { FusionBatchError, FusionBatchResult } from './native-sender.js';
export { DeviceRegistry, type FusionTemplate, MAX_TEMPLATE_ID } from './registry.js';
export { registryFilePath } from './registry-file.js';
export { DEFAULT_MAX_REGISTRIES, REGISTRY_CACHE_DEFAULTS, RegistryCache, type RegistryCacheOptions, type SweepResult } from './registry-cache.js';
export * from './store-errors.js';
export {
  type FileTemplateStoreOptions,
  openFileTemplateStore,
  registryFileLayout,
  registryFromRecord,
  registryRecord,
  type TemplateKinds,
  type TemplateRecord,
  type TemplateStore,
  templateKey,
} from './template-store.js';
