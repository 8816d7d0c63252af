/**
 * OpenSynaptic node core: the `OpenSynaptic` node, and the UCUM standardizer's names re-exported
 * from `@opensynaptic/standardize` (which holds it, so that normalising units alone does not load
 * fusion and the handshake).
 */
export {
  InvalidSensorError,
  InvalidValueError,
  StandardizeError,
  type StandardizeErrorCode,
  StandardizeInputError,
  UnitLibraryError,
  UnitRangeError,
  UnknownUnitError,
  type UnknownUnitReason,
  type DroppedSensor,
  OpenSynapticStandardizer,
  type SensorTuple,
  type SensorValue,
  type StandardizedFact,
  type StandardizedSensor,
  STANDARDIZER_DEFAULTS,
  type StandardizeExtras,
  type StandardizeReport,
  type StandardizerOptions,
  type UnitPart,
  loadPrefixFile,
  loadUnitDirectory,
  loadUnitFile,
  type AddOptions,
  defaultUnitLibrary,
  type DuplicatePolicy,
  type MatchRule,
  type PrefixDefinition,
  type PrefixInput,
  type PrefixSource,
  type ReferencePrefixFile,
  type ReferenceUnitFile,
  type ReferenceUnitInfo,
  type ResolvedUnit,
  type ResolveFailure,
  type UnitDefinition,
  type UnitInput,
  UnitLibrary,
  type UnitSource,
} from '@opensynaptic/standardize';
export { IdNotAssignedError, OpenSynaptic, type OpenSynapticOptions, type TransmitOptions, type TransmitResult, UNASSIGNED_ID } from './node.js';
export { backendReport, type BackendReport } from './backends.js';
export { type BackendInfo, isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
