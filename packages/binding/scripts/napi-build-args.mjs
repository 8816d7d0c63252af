// The one `napi build` command line of this package, shared by the build and the drift check so
// that both generate index.js / index.d.ts with the same options.
export function napiBuildArgs(outputDir) {
  return [
    'build',
    '--platform',
    '--release',
    '--manifest-path',
    '../../crates/opensynaptic-napi/Cargo.toml',
    '--output-dir',
    outputDir,
    '--js',
    'index.js',
    '--dts',
    'index.d.ts',
  ];
}
