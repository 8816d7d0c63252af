/**
 * Loading `@opensynaptic/binding`, and the one answer to "is native available, and if not, why".
 *
 * The binding is napi-rs's layout: a JavaScript loader (generated `index.js`) and one optional
 * package per platform build, `@opensynaptic/binding-<platform>` (`linux-x64-gnu`...), that
 * npm installs only where its `os`/`cpu`/`libc` match. When the loader fails, this module says in
 * our words which of those steps failed, for which platform, and which package it looked for.
 */

/** The binding's package name; its platform builds are `${BINDING_PACKAGE}-<platform>`. */
export const BINDING_PACKAGE = '@opensynaptic/binding';

/** The machine a native build has to match. */
export interface NativeTarget {
  /** `process.platform`: `linux`, `darwin`, `win32`... */
  readonly platform: string;
  /** `process.arch`: `x64`, `arm64`... */
  readonly arch: string;
  /** The C library on Linux (`glibc` or `musl`), `null` elsewhere. */
  readonly libc: 'glibc' | 'musl' | null;
  /** napi-rs's name of the platform, the suffix of the package carrying its build (`linux-x64-gnu`). */
  readonly name: string;
}

/**
 * Why the native backend is not available:
 * - `disabled`: `OPENSYNAPTIC_CORE=ts`.
 * - `no-loader`: no Node.js module loader (a browser, Deno without Node compatibility, Node < 20.16).
 * - `binding-missing`: `@opensynaptic/binding` is not installed (optional dependencies omitted).
 * - `no-build`: no build is published for this platform.
 * - `build-missing`: a build exists for this platform but its package is not installed.
 * - `load-failed`: the platform package is installed but its `.node` did not load (a C library too old...).
 * - `incomplete`: the binding loaded but lacks functions this package calls (a build older than it).
 */
export type NativeUnavailableReason = 'disabled' | 'no-loader' | 'binding-missing' | 'no-build' | 'build-missing' | 'load-failed' | 'incomplete';

/** Why the native backend is not available, as facts and as one sentence. */
export interface NativeUnavailability {
  readonly reason: NativeUnavailableReason;
  /** One sentence naming the platform and the package looked for, where they matter. */
  readonly message: string;
  /** The machine, for the reasons where a build was looked for. */
  readonly target: NativeTarget | null;
  /** The package that was looked for (`@opensynaptic/binding-linux-x64-gnu`), or `null`. */
  readonly lookedFor: string | null;
  /** The underlying error (a failed `require`, a `dlopen` message...), if any. */
  readonly cause: unknown;
}

export interface NativeLoad {
  /** The loaded addon exports, or `null`. */
  readonly binding: unknown;
  /** Why the addon is not available, or `null` when it loaded. */
  readonly unavailable: NativeUnavailability | null;
}

interface ProcessLike {
  platform?: string;
  arch?: string;
  report?: { excludeNetwork?: boolean | undefined; getReport?: () => unknown };
  getBuiltinModule?: (id: string) => unknown;
}

type RequireFn = ((id: string) => unknown) & { resolve(id: string): string };

function processLike(): ProcessLike | undefined {
  return (globalThis as { process?: ProcessLike }).process;
}

/** An unavailability without a platform (disabled, no loader, incomplete binding). */
export function nativeUnavailable(reason: NativeUnavailableReason, message: string, cause: unknown = null): NativeUnavailability {
  return { reason, message, target: null, lookedFor: null, cause };
}

function isMusl(proc: ProcessLike): boolean {
  // Node's diagnostic report names the glibc it runs on; without one the C library is musl.
  // Only read on a failed load, so its few milliseconds never delay a working one.
  const report = proc.report;
  if (typeof report?.getReport !== 'function') return false;
  const exclude = report.excludeNetwork;
  try {
    report.excludeNetwork = true;
    const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
    return header !== undefined && header.glibcVersionRuntime === undefined;
  } catch {
    return false;
  } finally {
    report.excludeNetwork = exclude;
  }
}

/** napi-rs's name of a platform (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`...). */
export function napiPlatformName(platform: string, arch: string, libc: 'glibc' | 'musl' | null): string {
  if (platform === 'linux') {
    if (arch === 'arm') return libc === 'musl' ? 'linux-arm-musleabihf' : 'linux-arm-gnueabihf';
    return `linux-${arch}-${libc === 'musl' ? 'musl' : 'gnu'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  if (platform === 'android' && arch === 'arm') return 'android-arm-eabi';
  return `${platform}-${arch}`;
}

/** The machine this process runs on. */
export function currentNativeTarget(proc: ProcessLike | undefined = processLike()): NativeTarget {
  const platform = proc?.platform ?? 'unknown';
  const arch = proc?.arch ?? 'unknown';
  const libc = platform === 'linux' ? (proc && isMusl(proc) ? 'musl' : 'glibc') : null;
  return { platform, arch, libc, name: napiPlatformName(platform, arch, libc) };
}

function describe(t: NativeTarget): string {
  return `${t.platform} ${t.arch}${t.libc ? ` (${t.libc})` : ''}`;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

function notFound(error: unknown, id: string): boolean {
  const e = error as { code?: string; message?: string } | null;
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${id}`);
}

/**
 * Why `require('@opensynaptic/binding')` from `req` failed with `error`: the binding missing, no
 * build for `target`, its package missing, or its `.node` not loading.
 */
export function explainLoadFailure(req: RequireFn, error: unknown, target: NativeTarget = currentNativeTarget()): NativeUnavailability {
  let bindingJson: string;
  try {
    bindingJson = req.resolve(`${BINDING_PACKAGE}/package.json`);
  } catch (cause) {
    return nativeUnavailable(
      'binding-missing',
      `${BINDING_PACKAGE} is not installed (it is an optional dependency: an install without optional dependencies has only the TypeScript backend)`,
      cause,
    );
  }
  const lookedFor = `${BINDING_PACKAGE}-${target.name}`;
  const manifest = req(bindingJson) as { version?: string; optionalDependencies?: Record<string, string> };
  const builds = Object.keys(manifest.optionalDependencies ?? {})
    .filter((name) => name.startsWith(`${BINDING_PACKAGE}-`))
    .map((name) => name.slice(BINDING_PACKAGE.length + 1));
  const at = { target, lookedFor, cause: error };
  if (!builds.includes(target.name)) {
    return {
      reason: 'no-build',
      message:
        `no native build for ${describe(target)}: ${BINDING_PACKAGE}@${manifest.version} has no ${lookedFor}` +
        ` (builds exist for ${builds.join(', ')})`,
      ...at,
    };
  }
  // The platform package is resolved the way the binding's loader resolves it: from its folder.
  const { createRequire } = processLike()!.getBuiltinModule!('node:module') as { createRequire(from: string): RequireFn };
  const fromBinding = createRequire(bindingJson);
  try {
    fromBinding(lookedFor);
  } catch (cause) {
    if (notFound(cause, lookedFor)) {
      return {
        reason: 'build-missing',
        message:
          `${lookedFor}, the native build for ${describe(target)}, is not installed (installed without optional` +
          ` dependencies, or node_modules brought from another platform: reinstall here)`,
        ...at,
        cause,
      };
    }
    if ((cause as { code?: string } | null)?.code === 'MODULE_NOT_FOUND') {
      // The package is there but not its .node: a checkout of this repository before the build.
      return {
        reason: 'build-missing',
        message: `${lookedFor} is installed without its .node file (in a checkout: pnpm --filter ${BINDING_PACKAGE} build)`,
        ...at,
        cause,
      };
    }
    return { reason: 'load-failed', message: `${lookedFor}, the native build for ${describe(target)}, did not load: ${firstLine(cause)}`, ...at, cause };
  }
  return { reason: 'load-failed', message: `${BINDING_PACKAGE} did not load on ${describe(target)}: ${firstLine(error)}`, ...at };
}

/** Loads the binding through `req`, or says why it could not. */
export function loadBindingWith(req: RequireFn, target?: () => NativeTarget): NativeLoad {
  try {
    return { binding: req(BINDING_PACKAGE), unavailable: null };
  } catch (error) {
    return { binding: null, unavailable: explainLoadFailure(req, error, target?.()) };
  }
}

let loaded: NativeLoad | undefined;

/**
 * Loads `@opensynaptic/binding` once, through Node's own `require`, found without a static import
 * so bundlers for the browser never try to include a `.node` file.
 */
export function loadNative(): NativeLoad {
  if (loaded) return loaded;
  const getBuiltin = processLike()?.getBuiltinModule;
  if (typeof getBuiltin !== 'function') {
    loaded = { binding: null, unavailable: nativeUnavailable('no-loader', 'no Node.js module loader (a browser, or Node.js older than 20.16)') };
    return loaded;
  }
  try {
    const { createRequire } = getBuiltin('node:module') as { createRequire(from: string): RequireFn };
    loaded = loadBindingWith(createRequire((import.meta as { url: string }).url));
  } catch (error) {
    loaded = { binding: null, unavailable: nativeUnavailable('load-failed', `${BINDING_PACKAGE} did not load: ${firstLine(error)}`, error) };
  }
  return loaded;
}
