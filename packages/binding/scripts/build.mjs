// Builds the addon for this machine (or for `--target <triple>`): a cargo release build into
// .build/, then the .node into its platform package, npm/<platform>/, where the generated loader
// finds it (the workspace links those packages as the binding's optional dependencies, the way
// npm installs them for users). The committed index.js / index.d.ts are left alone:
// scripts/generated.mjs compares them with napi's output, or rewrites them. Extra arguments go
// to `napi build`.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { napiBuildArgs } from './napi-build-args.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.build');
execFileSync('napi', [...napiBuildArgs('.build'), ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });

const built = readdirSync(out).filter((f) => /^opensynaptic\..+\.node$/.test(f));
if (built.length === 0) throw new Error('napi build wrote no .node file into .build/');
for (const file of built) {
  const platform = file.slice('opensynaptic.'.length, -'.node'.length);
  const dir = join(root, 'npm', platform);
  if (!existsSync(join(dir, 'package.json'))) {
    throw new Error(`${file}: no platform package npm/${platform}/ (add the target to napi.targets, then run napi create-npm-dirs)`);
  }
  copyFileSync(join(out, file), join(dir, file));
  console.log(`${file} -> npm/${platform}/`);
}
