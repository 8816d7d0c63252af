/**
 * One build shape for every public package: dual ESM/CJS with a declaration file per format
 * (`.d.ts` beside the ESM entry, `.d.cts` beside the CJS one), so each `exports` condition
 * resolves its own types.
 *
 * @param {Record<string, string>} entry
 * @param {import('tsup').Options} [extra]
 * @returns {import('tsup').Options}
 */
export function packageBuild(entry, extra = {}) {
  return {
    entry,
    format: ['esm', 'cjs'],
    // `@opensynaptic/internal` is private and bundled into the code, so its types are inlined too
    // (published declarations must resolve from published packages alone). Mapped to its source,
    // it is compiled with the package instead of being taken for an external module.
    dts: { compilerOptions: { baseUrl: '.', paths: { '@opensynaptic/internal': ['../internal/src/index.ts'] } } },
    // No source maps: the output is not minified (a stack trace already reads like the source),
    // the maps were 62% of the install, and `src/` is not published for them to point at.
    sourcemap: false,
    clean: true,
    target: 'es2022',
    platform: 'neutral',
    // `import.meta.url` must keep working in the CommonJS output (used to locate the optional
    // native binding without a static import that browser bundlers would follow).
    shims: true,
    splitting: false,
    treeshake: true,
    ...extra,
  };
}
