import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// @opensynaptic/binding is an optional dependency: the published types must not need it (the
// engine's binding type is the generated one, but only inside the package).
describe('published types', () => {
  for (const file of ['index.d.ts', 'index.d.cts']) {
    it(`${file} does not import the optional binding`, () => {
      const text = readFileSync(new URL(`../dist/${file}`, import.meta.url), 'utf8');
      expect(text).toMatch(/export \{/);
      expect(text).not.toMatch(/from ['"]@opensynaptic\/binding['"]/);
    });
  }
});
