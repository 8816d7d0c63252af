/**
 * The UCUM standardizer: sensor readings → a fact with values in standard units, each named by its
 * physical attribute, byte-compatible with the reference's `OpenSynapticStandardizer`.
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
} from './errors.js';
export {
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
  standardValue,
  type UnitPart,
} from './standardizer.js';
export { loadPrefixFile, loadUnitDirectory, loadUnitFile } from './unit-files.js';
export {
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
} from './unit-library.js';
// The one way to test errors of any @opensynaptic package (bundled per package: not `instanceof`).
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
