/**
 * The public names of `@opensynaptic/core`, values and types, from the source and from both built
 * entry points, so that moving a layer into its own package cannot drop or add one unnoticed.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The names that exist at run time. */
const VALUES = [
  'IdNotAssignedError',
  'InvalidSensorError',
  'InvalidValueError',
  'NoSendError',
  'OpenSynaptic',
  'OpenSynapticStandardizer',
  'STANDARDIZER_DEFAULTS',
  'StandardizeError',
  'StandardizeInputError',
  'UNASSIGNED_ID',
  'UnitLibrary',
  'UnitLibraryError',
  'UnitRangeError',
  'UnknownCommandError',
  'UnknownUnitError',
  'backendReport',
  'defaultUnitLibrary',
  'isOpenSynapticError',
  'loadPrefixFile',
  'loadUnitDirectory',
  'loadUnitFile',
];

/** The names that exist only for the type checker. */
const TYPES = [
  'AddOptions',
  'BackendInfo',
  'BackendReport',
  'DroppedSensor',
  'DuplicatePolicy',
  'FrameKind',
  'MatchRule',
  'OpenSynapticError',
  'OpenSynapticEvents',
  'OpenSynapticOptions',
  'PrefixDefinition',
  'PrefixInput',
  'PrefixSource',
  'ReferencePrefixFile',
  'ReferenceUnitFile',
  'ReceiveResult',
  'ReferenceUnitInfo',
  'ResolveFailure',
  'ResolvedUnit',
  'SendPacket',
  'SensorTuple',
  'SensorValue',
  'StandardizeErrorCode',
  'StandardizeExtras',
  'StandardizeReport',
  'StandardizedFact',
  'StandardizedSensor',
  'StandardizerOptions',
  'TimeSync',
  'TransmitOptions',
  'TransmitResult',
  'UnitDefinition',
  'UnitInput',
  'UnitPart',
  'UnitSource',
  'UnknownUnitReason',
];

const sorted = (names: Iterable<string>) => [...names].sort();
const ALL = sorted([...VALUES, ...TYPES]);

/** Every name a module exports, types included, as the type checker resolves it. */
function declaredExports(file: string, options: ts.CompilerOptions): string[] {
  const program = ts.createProgram([file], { noEmit: true, strict: true, skipLibCheck: true, types: [], ...options });
  const source = program.getSourceFile(file);
  if (source === undefined) throw new Error(`${file} was not read`);
  const symbol = program.getTypeChecker().getSymbolAtLocation(source);
  if (symbol === undefined) throw new Error(`${file} is not a module`);
  return sorted(program.getTypeChecker().getExportsOfModule(symbol).map((s) => s.name));
}

describe('@opensynaptic/core public exports', () => {
  it('the source exports exactly these values', async () => {
    expect(sorted(Object.keys(await import('../src/index.js')))).toEqual(sorted(VALUES));
  });

  it('the built ESM and CJS entries export exactly these values', async () => {
    expect(sorted(Object.keys(await import(join(root, 'dist/index.js'))))).toEqual(sorted(VALUES));
    const cjs = createRequire(import.meta.url)(join(root, 'dist/index.cjs')) as object;
    expect(sorted(Object.keys(cjs))).toEqual(sorted(VALUES));
  });

  it('re-exports the standardizer as the very objects of @opensynaptic/standardize', async () => {
    const core: Record<string, unknown> = await import('../src/index.js');
    const std: Record<string, unknown> = await import('@opensynaptic/standardize');
    // isOpenSynapticError is bundled into each package (a copy per package, one brand): the same
    // guard by behaviour, not the same object.
    const shared = Object.keys(std).filter((name) => name in core && name !== 'isOpenSynapticError');
    expect(shared.length).toBeGreaterThan(0);
    // The same classes, so `instanceof StandardizeError` holds whichever package an error is tested against.
    for (const name of shared) expect(core[name], name).toBe(std[name]);
    // Every value core exports beside the node's own comes from the standardizer.
    expect(sorted(Object.keys(core).filter((name) => !shared.includes(name)))).toEqual(['IdNotAssignedError', 'NoSendError', 'OpenSynaptic', 'UNASSIGNED_ID', 'UnknownCommandError', 'backendReport', 'isOpenSynapticError']);
  });

  it('the source exports exactly these values and types', () => {
    const bundler = { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, target: ts.ScriptTarget.ES2022 };
    expect(declaredExports(join(root, 'src/index.ts'), bundler)).toEqual(ALL);
  });

  it('both built declaration files export exactly these values and types', () => {
    const node16 = { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, target: ts.ScriptTarget.ES2022 };
    expect(declaredExports(join(root, 'dist/index.d.ts'), node16)).toEqual(ALL);
    expect(declaredExports(join(root, 'dist/index.d.cts'), node16)).toEqual(ALL);
  });
});
