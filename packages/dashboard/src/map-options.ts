import { optionError } from './errors.js';

/** Checks the tile server option; returns its origin for the page's Content-Security-Policy. */
export function tileOption(url: string | null | undefined, attribution: string | undefined): { url: string | null; attribution: string; origin: string | null } {
  if (attribution !== undefined && (typeof attribution !== 'string' || attribution.length > 1000)) throw optionError('tileAttribution', 'must be a string of at most 1000 characters');
  if (url === undefined || url === null || url === '') return { url: null, attribution: attribution ?? '', origin: null };
  if (typeof url !== 'string' || url.length > 2000 || !/\{z\}/.test(url) || !/\{x\}/.test(url) || !/\{y\}/.test(url)) throw optionError('tileUrl', 'must be a URL template holding {z}, {x} and {y}');
  let parsed: URL;
  try {
    parsed = new URL(url.replace(/\{s\}/g, 'a').replace(/\{[xyz]\}/g, '0'));
  } catch {
    throw optionError('tileUrl', `${JSON.stringify(url.slice(0, 80))} is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw optionError('tileUrl', 'must be http: or https:');
  // {s} stands for a few subdomains: the CSP allows them all.
  const host = new URL(url.replace(/\{s\}\./, 'sub.').replace(/\{[xyz]\}/g, '0')).host;
  const origin = `${parsed.protocol}//${url.includes('{s}.') ? host.replace(/^sub\./, '*.') : parsed.host}`;
  return { url, attribution: attribution ?? '', origin };
}
