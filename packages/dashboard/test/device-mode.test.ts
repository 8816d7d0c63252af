import { describe, expect, it } from 'vitest';
import { DeviceBook } from '../src/devices.js';

describe('device mode', () => {
  it('names the authenticated mode by its suite (auth-psk, auth-x25519), then secure or plain', () => {
    const book = new DeviceBook({ maxDevices: 10, staleAfterMs: 5000, offlineAfterMs: 20_000 });
    const reading = (aid: number, extra: object) => book.reading({ aid, deviceId: `D${aid}`, strategy: 'FULL', timestampMs: 1, receivedAtMs: 1, sensors: [], ...extra }, null).view.mode;
    expect(reading(1, { authenticated: true, authMode: 'auth-x25519' })).toBe('auth-x25519');
    expect(reading(2, { authenticated: true, authMode: 'auth-psk' })).toBe('auth-psk');
    // A reading from a server before suite 2 carries no authMode: its sessions were all suite 1.
    expect(reading(3, { authenticated: true })).toBe('auth-psk');
    expect(reading(4, { secure: true })).toBe('secure');
    expect(reading(5, {})).toBe('plain');
    // The latest frame's mode: the same device going plain.
    expect(reading(1, {})).toBe('plain');
  });
});
