import { slowdown } from '@opensynaptic/internal/testing';
import { describe, expect, it } from 'vitest';
import { BodyTextError, decompressBody } from '../src/body/index.js';
import { ADVERSARIAL, benignBody, DENSE, denseBody, SIZE } from './adversarial-bodies.js';

function decode(text: string): void {
  try {
    decompressBody(text);
  } catch (e) {
    if (!(e instanceof BodyTextError)) throw e;
  }
}

describe('decompressBody runs in time linear in its input', () => {
  for (const [name, body] of Object.entries(ADVERSARIAL)) {
    it(`${name}: within 10x of a benign body of the same size`, () => {
      expect(body(0).length).toBeGreaterThanOrEqual(SIZE);
      const ratio = slowdown(DENSE.has(name) ? denseBody : benignBody, body, decode);
      expect(ratio).toBeLessThanOrEqual(10);
    });
  }
});
