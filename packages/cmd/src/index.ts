/**
 * OpenSynaptic command bytes. Every frame and control packet starts with one of these in its
 * first byte. They are frozen: changing a value is a breaking protocol change.
 *
 * Data commands come in plain/secure pairs; the secure variant carries a body XORed with the
 * session key (see `@opensynaptic/crc`, `xorPayload`). The data command bytes are the ones the
 * native addon uses (`Wire`, generated from crates/opensynaptic-contract).
 */
import { Wire } from '@opensynaptic/internal';

/** First template frame: the whole body text. 1 byte, 0x3F. */
export const DATA_FULL = Wire.DATA_FULL;
/** Secure FULL: body XORed with the session key. 1 byte, 0x40. */
export const DATA_FULL_SEC = Wire.DATA_FULL_SEC;
/** Changed values only, after a FULL taught the template. 1 byte, 0xAA. */
export const DATA_DIFF = Wire.DATA_DIFF;
/** Secure DIFF. 1 byte, 0xAB. */
export const DATA_DIFF_SEC = Wire.DATA_DIFF_SEC;
/** Nothing changed: header and timestamp only, empty body. 1 byte, 0x7F. */
export const DATA_HEART = Wire.DATA_HEART;
/** Secure HEART. 1 byte, 0x80. */
export const DATA_HEART_SEC = Wire.DATA_HEART_SEC;

/** `[1][seq:2 BE][JSON meta, UTF-8]`: a device asks for an id. */
export const ID_REQUEST = 1;
/** `[2][seq:2 BE][aid:4 BE]([server time:8 BE])`: the server assigns an id. */
export const ID_ASSIGN = 2;
/** `[3][seq:2 BE][count:2 BE][JSON meta]`: a gateway asks for a pool of ids. */
export const ID_POOL_REQ = 3;
/** `[4][seq:2 BE][count:2 BE][aid:4 BE]*count`: the pool. */
export const ID_POOL_RES = 4;
/** `[5][seq:2 BE]`: positive acknowledgement. */
export const HANDSHAKE_ACK = 5;
/** `[6][seq:2 BE][reason, UTF-8]`: negative acknowledgement. */
export const HANDSHAKE_NACK = 6;
/** `[9][seq:2 BE]`. */
export const PING = 9;
/** `[10][seq:2 BE]`. */
export const PONG = 10;
/** `[11][seq:2 BE]`: ask for the server clock. */
export const TIME_REQUEST = 11;
/** `[12][seq:2 BE][unix seconds:8 BE]`. */
export const TIME_RESPONSE = 12;
/** `[13][aid:4 BE][ts:8 BE]`: the receiver holds the session key. */
export const SECURE_DICT_READY = 13;
/** `[14][aid:4 BE]`: the receiver decoded a secure frame; the channel is up. */
export const SECURE_CHANNEL_ACK = 14;

/** Every named command byte, under the reference's names. */
export const CMD = Object.freeze({
  DATA_FULL,
  DATA_FULL_SEC,
  DATA_DIFF,
  DATA_DIFF_SEC,
  DATA_HEART,
  DATA_HEART_SEC,
  ID_REQUEST,
  ID_ASSIGN,
  ID_POOL_REQ,
  ID_POOL_RES,
  HANDSHAKE_ACK,
  HANDSHAKE_NACK,
  PING,
  PONG,
  TIME_REQUEST,
  TIME_RESPONSE,
  SECURE_DICT_READY,
  SECURE_CHANNEL_ACK,
} as const);

export type CmdName = keyof typeof CMD;

/** The three plain data commands. */
export const PLAIN_DATA_CMDS: ReadonlySet<number> = new Set([DATA_FULL, DATA_DIFF, DATA_HEART]);
/** The three secure data commands. */
export const SECURE_DATA_CMDS: ReadonlySet<number> = new Set([DATA_FULL_SEC, DATA_DIFF_SEC, DATA_HEART_SEC]);
/** All six data commands. */
export const DATA_CMDS: ReadonlySet<number> = new Set([...PLAIN_DATA_CMDS, ...SECURE_DATA_CMDS]);
/** The twelve control commands. */
export const CTRL_CMDS: ReadonlySet<number> = new Set([
  ID_REQUEST,
  ID_ASSIGN,
  ID_POOL_REQ,
  ID_POOL_RES,
  HANDSHAKE_ACK,
  HANDSHAKE_NACK,
  PING,
  PONG,
  TIME_REQUEST,
  TIME_RESPONSE,
  SECURE_DICT_READY,
  SECURE_CHANNEL_ACK,
]);

/**
 * Control commands a transmit-only node still accepts: the answers to what it asks for.
 * It drops every inbound data frame.
 */
export const TX_ONLY_CTRL_CMDS: ReadonlySet<number> = new Set([
  ID_ASSIGN,
  ID_POOL_RES,
  HANDSHAKE_ACK,
  HANDSHAKE_NACK,
  PONG,
  TIME_RESPONSE,
  SECURE_DICT_READY,
  SECURE_CHANNEL_ACK,
]);

/**
 * Commands a receive-only node accepts. Only control bytes are filtered with it; data always
 * passes (it is in the set anyway).
 */
export const RX_ONLY_CMDS: ReadonlySet<number> = new Set([
  HANDSHAKE_ACK,
  HANDSHAKE_NACK,
  PING,
  TIME_REQUEST,
  ...DATA_CMDS,
]);

const NAMES: readonly (CmdName | undefined)[] = (() => {
  const names: (CmdName | undefined)[] = new Array(256).fill(undefined);
  for (const [name, value] of Object.entries(CMD)) names[value] = name as CmdName;
  return names;
})();

// A 256-entry table makes the hot checks a single indexed load.
const FLAG_DATA = 1;
const FLAG_SECURE = 2;
const FLAG_CTRL = 4;
const FLAGS = (() => {
  const flags = new Uint8Array(256);
  for (const c of PLAIN_DATA_CMDS) flags[c] = FLAG_DATA;
  for (const c of SECURE_DATA_CMDS) flags[c] = FLAG_DATA | FLAG_SECURE;
  for (const c of CTRL_CMDS) flags[c] = FLAG_CTRL;
  return flags;
})();

/** The reference's name for a command byte, or `undefined` for an unassigned byte. */
export function cmdName(cmd: number): CmdName | undefined {
  return NAMES[cmd];
}

/** True for the six data commands (plain or secure). */
export function isData(cmd: number): boolean {
  return ((FLAGS[cmd] ?? 0) & FLAG_DATA) !== 0;
}

/** True for DATA_FULL, DATA_DIFF and DATA_HEART. */
export function isPlainData(cmd: number): boolean {
  return (FLAGS[cmd] ?? 0) === FLAG_DATA;
}

/** True for the three secure data commands. */
export function isSecureData(cmd: number): boolean {
  return ((FLAGS[cmd] ?? 0) & FLAG_SECURE) !== 0;
}

/** True for the twelve control commands. */
export function isCtrl(cmd: number): boolean {
  return ((FLAGS[cmd] ?? 0) & FLAG_CTRL) !== 0;
}

/** Secure data command → its plain twin; any other byte is returned unchanged. */
export function normalizeData(cmd: number): number {
  return isSecureData(cmd) ? cmd - 1 : cmd;
}

/** Plain data command → its secure twin; any other byte is returned unchanged. */
export function secureVariant(cmd: number): number {
  return isPlainData(cmd) ? cmd + 1 : cmd;
}

/** How a node takes part in the conversation. */
export type DeviceRole = 'duplex' | 'tx_only' | 'rx_only';

/** Device roles, in the reference's spelling. */
export const DEVICE_ROLES: readonly DeviceRole[] = ['duplex', 'tx_only', 'rx_only'];

/**
 * Whether a node of this role processes an inbound packet starting with `cmd`.
 * Unassigned bytes pass (they are answered with a NACK by the handshake layer).
 */
export function roleAccepts(role: DeviceRole, cmd: number): boolean {
  if (role === 'tx_only') {
    if (isData(cmd)) return false;
    return isCtrl(cmd) ? TX_ONLY_CTRL_CMDS.has(cmd) : true;
  }
  if (role === 'rx_only') return isCtrl(cmd) ? RX_ONLY_CMDS.has(cmd) : true;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Authenticated mode: an extension of this project, not of the reference. These bytes are
// unassigned in the frozen table above (a reference or C-library peer answers them with its
// "Unknown CMD" NACK, which is how a device learns that a server is legacy). See the package
// README and @opensynaptic/handshake's "Authenticated mode" for the layouts.

/**
 * Authenticated FULL: `[0xC1][route_count:1][route_id:4 BE]*n[tid:1][ts:6 BE][sid:1][seq:3 BE]
 * [ChaCha20-Poly1305 ciphertext of the plain body][tag:16]`; no CRCs (the tag covers every byte).
 * 1 byte, 0xC1.
 */
export const AUTH_FULL = 0xc1;
/** Authenticated DIFF (plain twin DATA_DIFF), the AUTH_FULL layout. 1 byte, 0xC2. */
export const AUTH_DIFF = 0xc2;
/** Authenticated HEART (plain twin DATA_HEART), the AUTH_FULL layout with an empty body. 1 byte, 0xC3. */
export const AUTH_HEART = 0xc3;
/** `[0xC8][aid:4 BE][suite:1][kid:1][client nonce:16]` (23 bytes; suite 2 adds `[ephemeral X25519 public key:32]`, 55): a device asks for an authenticated session. */
export const AUTH_HELLO = 0xc8;
/** `[0xC9][aid:4 BE][suite:1][kid:1][sid:1][server nonce:16][tag:16]` (40 bytes): the server's answer, proving it holds the key. */
export const AUTH_WELCOME = 0xc9;
/** `[0xCA][aid:4 BE][reason:1]` (6 bytes): the server refuses a HELLO or an authenticated frame (not authenticated itself). */
export const AUTH_REJECT = 0xca;

/** The authenticated-mode command bytes (this project's extension), by name. */
export const AUTH_CMD = Object.freeze({ AUTH_FULL, AUTH_DIFF, AUTH_HEART, AUTH_HELLO, AUTH_WELCOME, AUTH_REJECT } as const);
export type AuthCmdName = keyof typeof AUTH_CMD;

/** The three authenticated data commands. */
export const AUTH_DATA_CMDS: ReadonlySet<number> = new Set([AUTH_FULL, AUTH_DIFF, AUTH_HEART]);

/** True for AUTH_FULL, AUTH_DIFF and AUTH_HEART. */
export function isAuthData(cmd: number): boolean {
  return cmd === AUTH_FULL || cmd === AUTH_DIFF || cmd === AUTH_HEART;
}

/** Plain data command (DATA_FULL / DIFF / HEART) → its authenticated twin; any other byte is returned unchanged. */
export function authVariant(cmd: number): number {
  return cmd === DATA_FULL ? AUTH_FULL : cmd === DATA_DIFF ? AUTH_DIFF : cmd === DATA_HEART ? AUTH_HEART : cmd;
}

/** Authenticated data command → its plain twin; any other byte is returned unchanged. */
export function plainOfAuth(cmd: number): number {
  return cmd === AUTH_FULL ? DATA_FULL : cmd === AUTH_DIFF ? DATA_DIFF : cmd === AUTH_HEART ? DATA_HEART : cmd;
}

/** Commands have no native implementation: a table lookup is already the fastest path. */
export const backend = 'ts' as const;

// cmd throws nothing itself; the guard is here too so every package offers the one way to test errors.
export { isOpenSynapticError, type OpenSynapticError } from '@opensynaptic/internal';
