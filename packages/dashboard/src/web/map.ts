import * as L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import type { DeviceView } from '../devices.js';

/** The map settings the server sends in its hello. */
export interface MapConfig {
  tileUrl: string | null;
  attribution: string;
}

/** Devices drawn with their names always shown (more: names on hover). */
const LABELS_MAX = 100;

/** Grid steps in degrees, coarse to fine. */
const STEPS = [30, 15, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 0.0005, 0.0002, 0.0001];

/**
 * The device map: each device with a position (from the geohash its frames carry) as a circle
 * marker, over the tile server's map when one is set and reachable, else over a plain
 * latitude/longitude grid drawn by the page itself (vector lines, no images).
 */
export class DeviceMap {
  readonly #el: HTMLElement;
  readonly #map: L.Map;
  readonly #grid = L.layerGroup();
  readonly #markers = new Map<string, { marker: L.CircleMarker; geohash: string }>();
  readonly #onSelect: (key: string) => void;
  #tiles: L.TileLayer | null = null;
  #tilesLoaded = false;
  #fitted = 0;
  #selected: string | null = null;

  constructor(el: HTMLElement, onSelect: (key: string) => void) {
    this.#el = el;
    this.#onSelect = onSelect;
    this.#map = L.map(el, { center: [20, 0], zoom: 1, worldCopyJump: true, attributionControl: true });
    this.#grid.addTo(this.#map);
    this.#map.on('moveend zoomend', () => this.#drawGrid());
    this.#mode('grid');
    this.#drawGrid();
  }

  /** Sets the tile server (from the hello); none: the grid only. */
  configure(config: MapConfig | undefined): void {
    const url = config?.tileUrl ?? null;
    if (this.#tiles !== null && (this.#tiles as unknown as { _url: string })._url === url) return;
    this.#tiles?.remove();
    this.#tiles = null;
    this.#tilesLoaded = false;
    this.#mode('grid');
    if (url === null) return;
    const tiles = L.tileLayer(url, { attribution: config?.attribution ?? '', maxZoom: 19 });
    tiles.on('tileload', () => {
      this.#tilesLoaded = true;
      this.#mode('tiles');
    });
    // Unreachable (or refused): the grid stays, the devices are drawn on it all the same.
    tiles.on('tileerror', () => {
      if (!this.#tilesLoaded) this.#mode('grid');
    });
    tiles.addTo(this.#map);
    this.#tiles = tiles;
  }

  #mode(mode: 'grid' | 'tiles'): void {
    this.#el.dataset.mode = mode;
    if (mode === 'tiles') this.#grid.remove();
    else if (!this.#map.hasLayer(this.#grid)) this.#grid.addTo(this.#map);
  }

  /** Latitude and longitude lines every step fitting the view (about 4..10 of them), labelled. */
  #drawGrid(): void {
    this.#grid.clearLayers();
    const b = this.#map.getBounds();
    const south = Math.max(-90, b.getSouth());
    const north = Math.min(90, b.getNorth());
    const west = b.getWest();
    const east = b.getEast();
    const span = Math.max(north - south, (east - west) / 2);
    const step = STEPS.find((s) => span / s >= 4) ?? (STEPS[STEPS.length - 1] as number);
    const style = { color: '#9aa5b1', weight: 1, opacity: 0.7, interactive: false };
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    const label = (text: string, at: L.LatLngExpression) => L.marker(at, { interactive: false, icon: L.divIcon({ className: 'grid-label', html: text, iconSize: [60, 14], iconAnchor: [-2, 14] }) });
    let lines = 0;
    for (let lat = Math.ceil(south / step) * step; lat <= north && lines < 400; lat += step, lines++) {
      L.polyline([[lat, west], [lat, east]], style).addTo(this.#grid);
      label(`${lat.toFixed(digits)}°`, [lat, west]).addTo(this.#grid);
    }
    for (let lon = Math.ceil(west / step) * step; lon <= east && lines < 800; lon += step, lines++) {
      L.polyline([[south, lon], [north, lon]], style).addTo(this.#grid);
      label(`${(((lon + 540) % 360) - 180).toFixed(digits)}°`, [south, lon]).addTo(this.#grid);
    }
    this.#el.dataset.gridLines = String(lines);
  }

  /** Draws the devices that have a position (only the ones whose geohash changed are moved). */
  update(devices: Iterable<DeviceView>, selected: string | null): void {
    const seen = new Set<string>();
    for (const d of devices) {
      const p = d.position;
      if (p === null || p === undefined) continue;
      seen.add(d.key);
      const known = this.#markers.get(d.key);
      if (known !== undefined) {
        if (known.geohash !== p.geohash) {
          known.marker.setLatLng([p.lat, p.lon]);
          known.geohash = p.geohash;
        }
        continue;
      }
      const marker = L.circleMarker([p.lat, p.lon], { radius: 7, color: '#1d2430', weight: 1.5, fillColor: '#2b6cb0', fillOpacity: 0.85, className: 'device-marker' });
      // Names always shown while they can be read; past that, on hover.
      marker.bindTooltip(d.deviceId, { permanent: this.#markers.size < LABELS_MAX, direction: 'right', offset: [8, 0], className: 'device-label' });
      marker.on('click', () => this.#onSelect(d.key));
      marker.addTo(this.#map);
      this.#markers.set(d.key, { marker, geohash: p.geohash });
    }
    for (const [key, m] of this.#markers) {
      if (seen.has(key)) continue;
      m.marker.remove();
      this.#markers.delete(key);
    }
    if (selected !== this.#selected) {
      this.#markers.get(this.#selected ?? '')?.marker.setStyle({ fillColor: '#2b6cb0', radius: 7 });
      this.#markers.get(selected ?? '')?.marker.setStyle({ fillColor: '#d97706', radius: 9 });
      this.#selected = selected;
    }
    this.#el.dataset.devices = String(this.#markers.size);
    // Fit the view when devices appear (not on every move: the user may have zoomed).
    if (this.#markers.size > this.#fitted) {
      this.#fitted = this.#markers.size;
      const bounds = L.latLngBounds([...this.#markers.values()].map((m) => m.marker.getLatLng()));
      this.#map.fitBounds(bounds.pad(0.3), { maxZoom: 12, animate: false });
    }
  }

  /** Leaflet measures its container: after it was hidden or resized. */
  resize(): void {
    this.#map.invalidateSize();
  }
}
