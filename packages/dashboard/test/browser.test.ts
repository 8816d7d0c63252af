/// <reference lib="dom" />
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ReadingsSink } from '@opensynaptic/store';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { committed, freePort, type OpenedBrowser, openBrowser, type Stack, stack, until } from './helpers.js';

/** Screenshots of each step (gitignored), for a person to look at after a run. */
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');

interface Row {
  aid: number;
  deviceId: string;
  sensorId: string;
  value: number;
  timestampMs: number;
}

describe('the page in a real browser (Debian chromium), against a real server with simulated UDP devices', () => {
  let s: Stack;
  let browser: OpenedBrowser;
  let page: Page;
  let problems: string[] = [];

  /** page.waitForFunction, failing with what the page reported (errors, its connection state). */
  const waitFor = async <A>(fn: (arg: A) => boolean, arg: A, what: string): Promise<void> => {
    try {
      await page.waitForFunction(fn as never, arg, { timeout: 15_000 });
    } catch (e) {
      const conn = await page.textContent('#conn').catch(() => '?');
      throw new Error(`${what}: ${(e as Error).message.split('\n')[0]} (connection: ${conn}; page: ${problems.join('; ') || 'no errors'})`);
    }
  };

  /** What the SQLite sink holds (read from it directly: the dashboard may be down). */
  const stored = async (aid: number, sensor: string): Promise<Row[]> => {
    const sink = s.server.services.get('storage')?.sink as ReadingsSink;
    return (await sink.query({ aid, sensorId: sensor })) as Row[];
  };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // A fixed port, so that the page finds the dashboard again after its restart. Devices stay
    // online for the whole run: starting chromium (installing it, on a fresh machine) can take
    // longer than the default 10 s; the state thresholds have their own test.
    s = await stack(3, { port: await freePort(), staleAfterMs: 600_000 });
    for (let i = 0; i < 4; i++) for (const d of s.devices) await d.send();
    await until(async () => (await committed(s.server)) === 4 * 3 * 2, 'the first readings stored');
    browser = await openBrowser({ viewport: { width: 1280, height: 900 } });
    page = browser.page;
    problems = browser.problems;
    await page.goto(s.dashboard.url(), { waitUntil: 'load', timeout: 30_000 });
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('shows every device, live', async () => {
    await waitFor((n) => document.querySelectorAll('#devices tbody tr[data-key]').length === n, 3, 'three device rows');
    expect(await page.textContent('#conn'), problems.join('; ')).toBe('live');
    const names = await page.$$eval('#devices tbody tr[data-key] td:first-child', (tds) => tds.map((td) => td.textContent).sort());
    expect(names, problems.join('; ')).toEqual(['sim-1', 'sim-2', 'sim-3']);
    const states = await page.$$eval('#devices tbody .state', (els) => els.map((e) => e.textContent));
    expect(states, problems.join('; ')).toEqual(['online', 'online', 'online']);
    // Search narrows the table.
    await page.fill('#search', 'sim-2');
    await waitFor((n) => document.querySelectorAll('#devices tbody tr[data-key]').length === n, 1, 'one row after the search');
    await page.fill('#search', '');
    await page.screenshot({ path: join(ARTIFACTS, '1-devices.png'), fullPage: true });
  });

  it('plots the stored history with one point per stored reading', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    await page.click(`#devices tbody tr[data-key="${d.aid}:${d.name}"]`);
    const rows = await stored(d.aid, 'T1');
    expect(rows).toHaveLength(4);
    await waitFor((n) => document.querySelector('#plot')?.getAttribute('data-points') === String(n), rows.length, 'the plotted points');
    expect(await page.getAttribute('#plot', 'data-sensor')).toBe('T1');
    // uPlot drew its canvas.
    expect(await page.$$eval('#plot canvas', (c) => c.length)).toBeGreaterThan(0);
    // The inspector lists the device's data frames (4 sent so far).
    await waitFor((n) => document.querySelector('#frames')?.getAttribute('data-frames') === String(n), 4, 'the inspected frames');
    expect(await page.$$eval('#frames tbody tr td:nth-child(2)', (tds) => tds.every((td) => (td.textContent ?? '').startsWith('DATA_')))).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, '2-history.png'), fullPage: true });
  });

  it('updates a sensor value as it arrives (pushed, no reload)', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    const before = await page.getAttribute('[data-sensor="T1"]', 'data-value');
    await d.send([['T1', 'OK', 55.5, 'Cel'], ['H1', 'OK', 60, '%']]);
    await until(async () => (await stored(d.aid, 'T1')).length === 5, 'the new reading stored');
    const latest = (await stored(d.aid, 'T1')).at(-1) as Row;
    await waitFor((v) => document.querySelector('[data-sensor="T1"]')?.getAttribute('data-value') === String(v), latest.value, 'the live value');
    expect(before).not.toBe(String(latest.value));
    await page.screenshot({ path: join(ARTIFACTS, '3-live-value.png'), fullPage: true });
  });

  it('keeps each device row across updates, searches and sorts, patching its cells', async () => {
    const d = s.devices[1];
    if (d === undefined) throw new Error('no device');
    const row = `#devices tbody tr[data-key="${d.aid}:${d.name}"]`;
    // A mark on the row's element: a table rebuilt per update would lose it.
    await page.$eval(row, (tr) => {
      (tr as unknown as { marked: boolean }).marked = true;
    });
    const marked = () => page.$eval(row, (tr) => (tr as unknown as { marked?: boolean }).marked === true);
    const mix = await page.textContent(`${row} td:nth-child(6)`);
    await d.send();
    await waitFor(([sel, before]) => document.querySelector(`${sel} td:nth-child(6)`)?.textContent !== before, [row, mix] as const, 'the strategy mix updated');
    expect(await marked(), problems.join('; ')).toBe(true);
    // Filtered out and back: the same row.
    await page.fill('#search', 'sim-1');
    await waitFor((sel) => document.querySelector(sel) === null, row, 'the row filtered out');
    await page.fill('#search', '');
    await waitFor((n) => document.querySelectorAll('#devices tbody tr[data-key]').length === n, 3, 'three rows again');
    expect(await marked()).toBe(true);
    // Sorted by aid, descending (two clicks): the rows move, in order.
    await page.click('#devices th[data-sort="aid"]');
    await page.click('#devices th[data-sort="aid"]');
    const desc = s.devices.map((x) => String(x.aid)).sort((a, b) => Number(b) - Number(a));
    await waitFor((want) => Array.from(document.querySelectorAll('#devices tbody tr[data-key] td:nth-child(2)')).map((td) => td.textContent).join() === want.join(), desc, 'rows by aid, descending');
    expect(await marked()).toBe(true);
    await page.click('#devices th[data-sort="deviceId"]');
    await waitFor((want) => Array.from(document.querySelectorAll('#devices tbody tr[data-key] td:first-child')).map((td) => td.textContent).join() === want, 'sim-1,sim-2,sim-3', 'rows by name again');
  });

  it('links a CSV export holding the stored rows', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    await page.click('#h-reload');
    const rows = await stored(d.aid, 'T1');
    await waitFor((n) => document.querySelector('#plot')?.getAttribute('data-points') === String(n), rows.length, 'the plotted points');
    const csv = await page.evaluate(async () => {
      const href = (document.querySelector('#h-csv') as HTMLAnchorElement).href;
      const res = await fetch(href);
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    });
    expect(csv.status).toBe(200);
    expect(csv.type).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\r\n').slice(1);
    expect(lines.map((l) => Number(l.split(',')[6]))).toEqual(rows.map((r) => r.value));
    expect(lines.map((l) => Number(l.split(',')[0]))).toEqual(rows.map((r) => r.timestampMs));
  });

  it('shows the health panel from the pushed status document', async () => {
    await waitFor((t) => (document.querySelector('#health')?.textContent ?? '').includes(t), 'udp (udp) running', 'the health panel');
    const text = (await page.textContent('#health')) ?? '';
    expect(text).toContain('storage');
    await page.screenshot({ path: join(ARTIFACTS, '4-health.png'), fullPage: true });
  });

  it('reconnects after the dashboard restarts and resyncs what it missed', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    await s.dashboard.stop();
    await waitFor((t) => document.querySelector('#conn')?.textContent === t, 'reconnecting', 'the page noticing the restart');
    // A reading while the page is cut off: the hello of the new connection brings it.
    await d.send([['T1', 'OK', 77.25, 'Cel'], ['H1', 'OK', 61, '%']]);
    await until(async () => (await stored(d.aid, 'T1')).length === 6, 'the reading stored');
    const latest = (await stored(d.aid, 'T1')).at(-1) as Row;
    await s.dashboard.start();
    await waitFor((t) => document.querySelector('#conn')?.textContent === t, 'live', 'the page reconnected');
    await waitFor((v) => document.querySelector('[data-sensor="T1"]')?.getAttribute('data-value') === String(v), latest.value, 'the resynced value');
    await page.screenshot({ path: join(ARTIFACTS, '5-after-restart.png'), fullPage: true });
    // The page reported nothing but the refused connections of the restart.
    expect(problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|api\/live/.test(p))).toEqual([]);
  });
});
