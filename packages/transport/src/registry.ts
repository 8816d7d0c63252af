import { DriverError, type Transport } from '@opensynaptic/transport/core';

/** What a driver module provides: a name and a factory taking that driver's options. */
export interface TransportDriver {
  /** The lower-case name it is registered under (`udp`). */
  readonly name: string;
  /** Makes a transport (not started) from plain options, checking each (typed errors naming the option). */
  create(options: object): Transport;
}

/** Loads a driver on first use (a dynamic `import()`). */
export type DriverLoader = () => Promise<TransportDriver>;

/**
 * The key of a medium as the reference keys its transporters: trimmed, lower case (`" UDP "` is
 * `udp`). Anything but a non-empty name of `a-z 0-9 _ . -` is an `ERR_TRANSPORT_DRIVER`.
 */
export function mediumKey(name: unknown): string {
  const key = typeof name === 'string' ? name.trim().toLowerCase() : '';
  if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(key)) {
    throw new DriverError('ERR_TRANSPORT_DRIVER', String(name), `a driver name must be a non-empty name of a-z 0-9 _ . - (at most 64); got ${typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : typeof name}`);
  }
  return key;
}

/**
 * Drivers by lower-case name, each loaded on first use: a program that only ever creates UDP
 * transports never loads the MQTT, WebSocket or serial modules, nor their dependencies.
 */
export class DriverRegistry {
  #loaders = new Map<string, DriverLoader>();
  #loaded = new Map<string, Promise<TransportDriver>>();

  /** Registers (or replaces) a driver under `name` (normalised by {@link mediumKey}). */
  register(name: string, driver: DriverLoader | TransportDriver): this {
    const key = mediumKey(name);
    this.#loaded.delete(key);
    if (typeof driver === 'function') this.#loaders.set(key, driver);
    else this.#loaders.set(key, () => Promise.resolve(driver));
    return this;
  }

  has(name: string): boolean {
    try {
      return this.#loaders.has(mediumKey(name));
    } catch {
      return false;
    }
  }

  /** Registered names, sorted. */
  names(): string[] {
    return [...this.#loaders.keys()].sort();
  }

  /** Whether the driver's module was loaded already (for tests of laziness and for reports). */
  isLoaded(name: string): boolean {
    return this.#loaded.has(mediumKey(name));
  }

  /** The driver, loading its module on first use. A loader that fails is tried again next time. */
  load(name: string): Promise<TransportDriver> {
    let key: string;
    try {
      key = mediumKey(name);
    } catch (e) {
      return Promise.reject(e);
    }
    const loaded = this.#loaded.get(key);
    if (loaded) return loaded;
    const loader = this.#loaders.get(key);
    if (loader === undefined) {
      return Promise.reject(new DriverError('ERR_TRANSPORT_DRIVER', key, `no driver named "${key}"; registered: ${this.names().join(', ') || 'none'}`));
    }
    const promise = loader().then(
      (driver) => {
        if (typeof driver?.create !== 'function') throw new DriverError('ERR_TRANSPORT_DRIVER', key, `the loader of "${key}" gave no driver (an object with create(options))`);
        return driver;
      },
      (e: unknown) => {
        throw e instanceof DriverError ? e : new DriverError('ERR_TRANSPORT_DRIVER', key, `the driver module of "${key}" failed to load`, e);
      },
    );
    this.#loaded.set(key, promise);
    promise.catch(() => this.#loaded.delete(key));
    return promise;
  }

  /** Loads the driver and makes a transport (not started). */
  async create(name: string, options: object = {}): Promise<Transport> {
    const driver = await this.load(name);
    return driver.create(options);
  }
}

/**
 * The registry with the built-in drivers: `udp`; `tcp` and `unix` (streaming or reference mode);
 * `mqtt`; `websocket` (alias `ws`); `serial` (aliases `uart`, `rs485`, the reference's keys).
 * Each loads its own entry point of this package on first use.
 */
export const drivers: DriverRegistry = new DriverRegistry()
  .register('udp', async () => (await import('@opensynaptic/transport/udp')).udpDriver)
  .register('tcp', async () => (await import('@opensynaptic/transport/tcp')).tcpDriver)
  .register('unix', async () => (await import('@opensynaptic/transport/tcp')).unixDriver)
  .register('mqtt', async () => (await import('@opensynaptic/transport/mqtt')).mqttDriver)
  .register('websocket', async () => (await import('@opensynaptic/transport/websocket')).websocketDriver)
  .register('ws', async () => (await import('@opensynaptic/transport/websocket')).websocketDriver)
  .register('serial', async () => (await import('@opensynaptic/transport/serial')).serialDriver)
  .register('uart', async () => (await import('@opensynaptic/transport/serial')).serialDriver)
  .register('rs485', async () => (await import('@opensynaptic/transport/serial')).serialDriver);

/** `drivers.create(name, options)`: a transport of the named driver (not started). */
export function createTransport(name: string, options: object = {}): Promise<Transport> {
  return drivers.create(name, options);
}
