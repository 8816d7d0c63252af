import type { DeviceRegistry, RegistryStore } from './registry.js';
import { checkAid, RegistryStoreError } from './store-errors.js';

/** Options of {@link MemoryRegistryStore}. */
export interface MemoryRegistryStoreOptions {
  /**
   * How many registries the store keeps (integer >= 1, default 1,000,000). Past it, the one
   * least recently saved or loaded is forgotten, so a flood of forged source AIDs cannot grow
   * memory without bound.
   */
  maxRegistries?: number | undefined;
}

/** Default {@link MemoryRegistryStoreOptions.maxRegistries}. */
export const DEFAULT_MAX_REGISTRIES = 1_000_000;

/**
 * Keeps registries in memory, as the live objects (no copy, no serialisation): nothing survives
 * a restart. Works everywhere (browsers included); the default store of `RegistryCache`.
 */
export class MemoryRegistryStore implements RegistryStore {
  /** The bound given (or defaulted) at construction. */
  readonly maxRegistries: number;
  /** How many times `save` ran (handy to check write throttling). */
  saves = 0;
  // Map insertion order doubles as the recency order: re-inserting on use moves an entry last.
  readonly #registries = new Map<number, DeviceRegistry>();

  constructor(options: MemoryRegistryStoreOptions = {}) {
    const max = options.maxRegistries ?? DEFAULT_MAX_REGISTRIES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RegistryStoreError('ERR_FUSION_STORE_OPTION', `maxRegistries must be an integer >= 1, got ${String(max)}`);
    }
    this.maxRegistries = max;
  }

  /** How many registries the store holds. */
  get size(): number {
    return this.#registries.size;
  }

  /** The registry saved for `aid` (the same object), or `null`. */
  load(aid: number): DeviceRegistry | null {
    checkAid(aid);
    const map = this.#registries;
    const registry = map.get(aid);
    if (registry === undefined) return null;
    map.delete(aid);
    map.set(aid, registry);
    return registry;
  }

  /** Keeps `registry` (by reference); forgets the least recently used one past `maxRegistries`. */
  save(registry: DeviceRegistry): void {
    checkAid(registry.aid);
    const map = this.#registries;
    map.delete(registry.aid);
    map.set(registry.aid, registry);
    this.saves++;
    if (map.size > this.maxRegistries) {
      // Only ever one over the bound, so the oldest key is the only one to drop.
      const oldest = map.keys().next();
      if (oldest.done !== true) map.delete(oldest.value);
    }
  }

  /** Forgets `aid`. */
  delete(aid: number): void {
    checkAid(aid);
    this.#registries.delete(aid);
  }
}
