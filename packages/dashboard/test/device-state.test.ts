import { OpenSynapticServer } from '@opensynaptic/server';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DashboardService, type DeviceView } from '../src/index.js';
import { until } from './helpers.js';

describe('device state from the thresholds', () => {
  const server = new OpenSynapticServer({ transports: [{ medium: 'udp', options: { host: '127.0.0.1', port: 0 } }] });
  let now = 1_000_000;
  const d = new DashboardService(server, { port: 0, staleAfterMs: 5000, offlineAfterMs: 20_000, feedIntervalMs: 20, healthIntervalMs: 3_600_000, clock: () => now });
  afterAll(() => d.destroy());

  const devices = async () => ((await (await fetch(`http://127.0.0.1:${d.address.port}/api/devices`)).json()) as { devices: DeviceView[]; thresholds: object }).devices;

  it('goes online → stale → offline as the clock passes the thresholds, and each change is pushed', async () => {
    await d.start();
    const ws = new WebSocket(`ws://127.0.0.1:${d.address.port}/api/live`);
    const states: string[] = [];
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type: string; devices: DeviceView[] };
      if (m.type === 'update') for (const v of m.devices) if (states.at(-1) !== v.state) states.push(v.state);
    });
    await new Promise((ok) => ws.once('open', ok));
    d.onReading({ aid: 7, deviceId: 'D7', strategy: 'FULL', timestampMs: now, receivedAtMs: now, sensors: [{ id: 'T1', state: 'OK', value: 300, unit: 'K' }] });
    expect((await devices())[0]).toMatchObject({ key: '7:D7', state: 'online', lastSeenMs: now });
    now += 5001;
    // Read through the API first: the change must still be pushed to the feed.
    expect((await devices())[0]?.state).toBe('stale');
    await until(() => states.includes('stale'), 'the pushed stale state');
    now += 15_000;
    expect((await devices())[0]?.state).toBe('offline');
    await until(() => states.includes('offline'), 'the pushed changes');
    expect(states).toEqual(['online', 'stale', 'offline']);
    ws.close();
  });
});
