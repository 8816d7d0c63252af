import { HandshakeFieldError } from './errors.js';

/**
 * Throws `HandshakeFieldError` (`ERR_HANDSHAKE_FIELD`) naming the first option of `renamed` that
 * `options` still gives: options whose unit changed (seconds → ms) were renamed, and an old name
 * is refused rather than silently read in the new unit.
 */
export function refuseRenamed(options: object | null | undefined, renamed: Readonly<Record<string, string>>): void {
  if (options === null || typeof options !== 'object') return;
  for (const old of Object.keys(renamed)) {
    if ((options as Record<string, unknown>)[old] !== undefined) throw new HandshakeFieldError(old, `this option is gone; pass ${renamed[old]}`);
  }
}
