/** A geohash's cell: its centre and half its size, degrees. */
export interface GeoPosition {
  geohash: string;
  lat: number;
  lon: number;
  /** Half the cell's height and width (the centre is within this of the true point). */
  latErr: number;
  lonErr: number;
}

/** Longest geohash decoded (22 characters: 110 bits, past a double's precision anyway). */
export const MAX_GEOHASH_LENGTH = 22;

const BASE32 = '0123456789bcdefghjkmnpqrstuvwxyz';
const VALUE = new Map<string, number>([...BASE32].map((c, i) => [c, i]));

/**
 * Decodes a geohash (the standard base-32 interleaving of longitude and latitude bits, longitude
 * first) to its cell's centre. Case is ignored; anything that is not 1..22 geohash characters
 * (a, i, l, o are not in the alphabet) gives `null`: text from a device never throws here.
 */
export function decodeGeohash(text: unknown): GeoPosition | null {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_GEOHASH_LENGTH) return null;
  const hash = text.toLowerCase();
  let latMin = -90;
  let latMax = 90;
  let lonMin = -180;
  let lonMax = 180;
  let even = true; // the first bit halves the longitude
  for (const c of hash) {
    const v = VALUE.get(c);
    if (v === undefined) return null;
    for (let bit = 4; bit >= 0; bit--) {
      const on = (v >> bit) & 1;
      if (even) {
        const mid = (lonMin + lonMax) / 2;
        if (on) lonMin = mid;
        else lonMax = mid;
      } else {
        const mid = (latMin + latMax) / 2;
        if (on) latMin = mid;
        else latMax = mid;
      }
      even = !even;
    }
  }
  return { geohash: hash, lat: (latMin + latMax) / 2, lon: (lonMin + lonMax) / 2, latErr: (latMax - latMin) / 2, lonErr: (lonMax - lonMin) / 2 };
}
