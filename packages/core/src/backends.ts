import { backendInfo as crc } from '@opensynaptic/crc';
import { backendInfo as fusion } from '@opensynaptic/fusion';
import type { BackendInfo } from '@opensynaptic/internal';
import { backendInfo as packet } from '@opensynaptic/packet';

/** The backend facts of every accelerated package, by its short name. */
export interface BackendReport {
  readonly crc: BackendInfo;
  readonly packet: BackendInfo;
  readonly fusion: BackendInfo;
}

/**
 * One call that reports, for each accelerated package, the requested mode, which backend serves
 * each operation (`backend` is `mixed` when `auto` splits them), whether the addon loaded and, if
 * not, why (`nativeUnavailable`).
 * Base62, the standardizer and the handshake have one (TypeScript) implementation and are not listed.
 */
export function backendReport(): BackendReport {
  return Object.freeze({ crc: crc(), packet: packet(), fusion: fusion() });
}
