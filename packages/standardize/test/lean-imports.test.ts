/**
 * Normalising units loads the standardizer and the Python number helpers of the body codec, not
 * the node, fusion or the handshake: the built package is required in a fresh process and every
 * module it loaded is listed.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The workspace packages (`packages/<name>`) whose files a CommonJS `require` of `specifier` loads. */
function loadedPackages(specifier: string): string[] {
  const script = `require(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(require.cache)));`;
  const run = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, OPENSYNAPTIC_CORE: 'ts' } });
  if (run.status !== 0) throw new Error(`node exited ${run.status}: ${run.stderr}`);
  const marker = `${sep}packages${sep}`;
  const names = new Set<string>();
  for (const file of JSON.parse(run.stdout) as string[]) {
    const at = file.lastIndexOf(marker);
    if (at >= 0) names.add(file.slice(at + marker.length).split(sep)[0]!);
  }
  return [...names].sort();
}

describe('@opensynaptic/standardize loads only what it uses', () => {
  it('requires the standardizer and packet (for ./body), never core, fusion or the handshake', () => {
    const loaded = loadedPackages('@opensynaptic/standardize');
    expect(loaded).toContain('standardize');
    expect(loaded).toContain('packet');
    for (const heavy of ['core', 'fusion', 'handshake']) expect(loaded).not.toContain(heavy);
  });
});
