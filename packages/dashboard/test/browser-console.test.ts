/// <reference lib="dom" />
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { committed, type OpenedBrowser, openBrowser, type Stack, stack, until, withGeohash } from './helpers.js';

const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const TOKEN = 'a-browser-console-token';

describe('the console, the decoded inspector and the map in a real browser (Debian chromium)', () => {
  let s: Stack;
  let browser: OpenedBrowser;
  let page: Page;
  let problems: string[] = [];

  const waitFor = async <A>(fn: (arg: A) => boolean, arg: A, what: string): Promise<void> => {
    try {
      await page.waitForFunction(fn as never, arg, { timeout: 15_000 });
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message.split('\n')[0]} (page: ${problems.join('; ') || 'no errors'})`);
    }
  };

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // The console's write action needs a token; no tile server: the map draws its grid.
    s = await stack(3, { token: TOKEN, staleAfterMs: 600_000, consoleTimeoutMs: 5000 });
    // Two devices know where they are (Aarhus, San Francisco); the third sends no geohash.
    withGeohash(s.devices[0] as NonNullable<Stack['devices'][0]>, 'u1zr2tf');
    withGeohash(s.devices[1] as NonNullable<Stack['devices'][0]>, '9q8yyk8');
    // Three FULL frames, then a DIFF: the temperature moves, the humidity does not.
    for (let i = 0; i < 4; i++) for (const d of s.devices) await d.send();
    await until(async () => (await committed(s.server)) === 4 * 3 * 2, 'the readings stored');
    browser = await openBrowser({ viewport: { width: 1280, height: 1000 } });
    page = browser.page;
    problems = browser.problems;
    await page.goto(s.dashboard.url({ withToken: true }), { waitUntil: 'load', timeout: 30_000 });
    await waitFor((n) => document.querySelectorAll('#devices tbody tr[data-key]').length === n, 3, 'three device rows');
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('draws the devices with a position on the plain grid (no tile server)', async () => {
    await waitFor((n) => document.querySelector('#map')?.getAttribute('data-devices') === String(n), 2, 'two devices on the map');
    expect(await page.getAttribute('#map', 'data-mode')).toBe('grid');
    expect(Number(await page.getAttribute('#map', 'data-grid-lines'))).toBeGreaterThan(2);
    // Leaflet drew them as vector circles, with their names.
    expect(await page.$$eval('#map path.device-marker', (p) => p.length)).toBe(2);
    const labels = await page.$$eval('#map .device-label', (els) => els.map((e) => e.textContent).sort());
    expect(labels).toEqual(['sim-1', 'sim-2']);
    // Aarhus lies north-east of San Francisco on the screen too.
    const boxes = await page.$$eval('#map path.device-marker', (ps) => ps.map((p) => p.getBoundingClientRect()).map((r) => ({ x: r.x, y: r.y })));
    const [a, b] = boxes as [{ x: number; y: number }, { x: number; y: number }];
    expect(Math.abs(a.x - b.x)).toBeGreaterThan(50);
    expect(await page.$$eval('#map img.leaflet-tile', (t) => t.length)).toBe(0);
    await page.locator('.map-panel').screenshot({ path: join(ARTIFACTS, 'console-1-map-grid.png') });
  });

  it('shows the decoded fields of a DIFF in the inspector', async () => {
    const d = s.devices[0];
    if (d === undefined) throw new Error('no device');
    await page.click(`#devices tbody tr[data-key="${d.aid}:${d.name}"]`);
    await waitFor((n) => document.querySelector('#frames')?.getAttribute('data-frames') === String(n), 4, 'the inspected frames');
    // Newest first: the DIFF, then three FULL frames.
    const commands = await page.$$eval('#frames tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent));
    expect(commands).toEqual(['DATA_DIFF', 'DATA_FULL', 'DATA_FULL', 'DATA_FULL']);
    const diff = page.locator('#frames tbody tr').first();
    expect(await diff.locator('.decoded li[data-sensor="T1"]').getAttribute('data-changed')).toBe('true');
    expect(await diff.locator('.decoded li[data-sensor="H1"]').getAttribute('data-changed')).toBe('false');
    const note = (await diff.locator('.decoded-note').textContent()) ?? '';
    expect(note).toContain('changed: T1 (by the DIFF mask)');
    expect(note).toContain('geohash u1zr2tf');
    expect((await diff.locator('.decoded .template').textContent()) ?? '').toContain('T1>');
    // The temperature the DIFF carried, in the stored unit (kelvin): 20 + 4 × 0.5 °C.
    expect((await diff.locator('.decoded li[data-sensor="T1"]').textContent()) ?? '').toContain('295.15');
    await page.locator('.frames').screenshot({ path: join(ARTIFACTS, 'console-2-inspector.png') });
  });

  it('sends a PING from the console and shows its PONG', async () => {
    await page.selectOption('#c-action', 'ping');
    await page.click('#c-send');
    await waitFor(() => document.querySelector('#console-log li[data-reply="PONG"]') !== null, undefined, 'the PONG in the console');
    const li = page.locator('#console-log li').first();
    expect(await li.getAttribute('data-sent')).toBe('PING');
    expect(Number(await li.getAttribute('data-rtt'))).toBeGreaterThanOrEqual(0);
    const text = (await li.textContent()) ?? '';
    const seq = /PING seq (\d+)/.exec(text)?.[1];
    expect(seq).toBeDefined();
    expect(text).toContain(`PONG seq ${seq}`);
    expect(await page.textContent('#c-status')).toMatch(/^PONG in [\d.]+ ms$/);
    // TIME_REQUEST too, and an id out of range is refused with the API's message.
    await page.selectOption('#c-action', 'time-request');
    await page.click('#c-send');
    await waitFor(() => document.querySelector('#console-log li[data-reply="TIME_RESPONSE"]') !== null, undefined, 'the TIME_RESPONSE');
    await page.selectOption('#c-action', 'id-assign');
    await page.fill('#c-id', '0');
    await page.click('#c-send');
    await waitFor(() => document.querySelector('#c-status')?.getAttribute('data-error') === 'ERR_DASHBOARD_CONSOLE', undefined, 'the refused id');
    await page.locator('.console').screenshot({ path: join(ARTIFACTS, 'console-3-ping-pong.png') });
    await page.screenshot({ path: join(ARTIFACTS, 'console-4-page.png'), fullPage: true });
    expect(problems.filter((p) => !/status of 400/.test(p))).toEqual([]);
  });
});

describe('the map with a tile server set: tiles when it answers, the grid when it does not', () => {
  let s: Stack;
  let browser: OpenedBrowser;
  let page: Page;
  let tiles: Server;
  let tilesUp = false;
  let tileRequests = 0;
  // A 1×1 PNG: what a tile server sends, as far as the page can tell.
  const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    tiles = createServer((req, res) => {
      tileRequests++;
      // Down: the connection is cut, as from a tile server that cannot be reached.
      if (!tilesUp) return req.socket.destroy();
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
      res.end(PNG);
    });
    await new Promise<void>((ok) => tiles.listen(0, '127.0.0.1', ok));
    const port = (tiles.address() as AddressInfo).port;
    s = await stack(1, { staleAfterMs: 600_000, tileUrl: `http://127.0.0.1:${port}/{z}/{x}/{y}.png`, tileAttribution: 'test tiles' });
    withGeohash(s.devices[0] as NonNullable<Stack['devices'][0]>, 'u1zr2tf');
    await s.devices[0]?.send();
    await until(async () => (await committed(s.server)) === 2, 'the reading stored');
    browser = await openBrowser({ viewport: { width: 1280, height: 1000 } });
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
    await new Promise((ok) => tiles?.close(ok));
  });

  it('draws the device on the grid while the tile server cannot be reached', async () => {
    await page.goto(s.dashboard.url(), { waitUntil: 'load', timeout: 30_000 });
    await page.waitForFunction(() => document.querySelector('#map')?.getAttribute('data-devices') === '1', undefined, { timeout: 15_000 });
    await until(() => tileRequests > 0, 'the page asking for tiles');
    // Give the failed tiles their time: the grid stays.
    await page.waitForTimeout(500);
    expect(await page.getAttribute('#map', 'data-mode')).toBe('grid');
    expect(await page.$$eval('#map path.device-marker', (p) => p.length)).toBe(1);
    expect(Number(await page.getAttribute('#map', 'data-grid-lines'))).toBeGreaterThan(2);
    await page.locator('.map-panel').screenshot({ path: join(ARTIFACTS, 'console-5-map-tiles-down.png') });
  });

  it('shows the tiles once the tile server answers (the page allows its origin)', async () => {
    tilesUp = true;
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => document.querySelector('#map')?.getAttribute('data-mode') === 'tiles', undefined, { timeout: 15_000 });
    expect(await page.$$eval('#map img.leaflet-tile-loaded', (t) => t.length)).toBeGreaterThan(0);
    expect(await page.$$eval('#map path.device-marker', (p) => p.length)).toBe(1);
    expect((await page.textContent('.leaflet-control-attribution')) ?? '').toContain('test tiles');
  });
});
