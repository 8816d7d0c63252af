import { describe, expect, it } from 'vitest';
import {
  CMD,
  cmdName,
  DATA_CMDS,
  isCtrl,
  isData,
  isPlainData,
  isSecureData,
  normalizeData,
  roleAccepts,
  secureVariant,
} from '../src/index.js';

describe('command bytes', () => {
  it('keeps the frozen values of the protocol', () => {
    expect(CMD.DATA_FULL).toBe(0x3f);
    expect(CMD.DATA_DIFF).toBe(0xaa);
    expect(CMD.DATA_HEART).toBe(0x7f);
    expect(CMD.SECURE_CHANNEL_ACK).toBe(14);
    expect(Object.isFrozen(CMD)).toBe(true);
  });

  it('pairs every data command with its secure twin', () => {
    for (const plain of [CMD.DATA_FULL, CMD.DATA_DIFF, CMD.DATA_HEART]) {
      const secure = secureVariant(plain);
      expect(secure).toBe(plain + 1);
      expect(isSecureData(secure)).toBe(true);
      expect(normalizeData(secure)).toBe(plain);
      expect(secureVariant(secure)).toBe(secure);
    }
  });

  it('leaves non-data bytes alone and classifies every byte exactly once', () => {
    for (let b = 0; b < 256; b++) {
      if (!isData(b)) {
        expect(normalizeData(b)).toBe(b);
        expect(secureVariant(b)).toBe(b);
      }
      expect(isData(b) && isCtrl(b)).toBe(false);
      expect(isData(b)).toBe(DATA_CMDS.has(b));
      expect(isPlainData(b) || isSecureData(b)).toBe(isData(b));
      if (cmdName(b) === undefined) expect(isData(b) || isCtrl(b)).toBe(false);
    }
  });

  it('filters inbound commands by role', () => {
    expect(roleAccepts('duplex', CMD.DATA_FULL)).toBe(true);
    expect(roleAccepts('tx_only', CMD.DATA_FULL)).toBe(false);
    expect(roleAccepts('tx_only', CMD.PING)).toBe(false);
    expect(roleAccepts('tx_only', CMD.PONG)).toBe(true);
    expect(roleAccepts('rx_only', CMD.PING)).toBe(true);
    expect(roleAccepts('rx_only', CMD.ID_ASSIGN)).toBe(false);
    expect(roleAccepts('rx_only', CMD.DATA_DIFF_SEC)).toBe(true);
    expect(roleAccepts('tx_only', 0x50)).toBe(true);
  });
});

describe('authenticated-mode command bytes (extension)', () => {
  it('collide with none of the frozen bytes and are not reference data or control', async () => {
    const m = await import('../src/index.js');
    const frozen = new Set<number>(Object.values(m.CMD));
    const auth = Object.values(m.AUTH_CMD);
    expect(new Set(auth).size).toBe(auth.length);
    for (const b of auth) {
      expect(frozen.has(b)).toBe(false);
      expect(m.cmdName(b)).toBeUndefined();
      expect(m.isData(b) || m.isCtrl(b)).toBe(false);
    }
  });

  it('pairs each plain data command with its authenticated twin and back', async () => {
    const m = await import('../src/index.js');
    for (const [plain, auth] of [
      [m.DATA_FULL, m.AUTH_FULL],
      [m.DATA_DIFF, m.AUTH_DIFF],
      [m.DATA_HEART, m.AUTH_HEART],
    ]) {
      expect(m.authVariant(plain!)).toBe(auth);
      expect(m.plainOfAuth(auth!)).toBe(plain);
      expect(m.isAuthData(auth!)).toBe(true);
    }
    for (let b = 0; b < 256; b++) {
      if (!m.isAuthData(b)) expect(m.plainOfAuth(b)).toBe(b);
      if (!m.isPlainData(b)) expect(m.authVariant(b)).toBe(b);
    }
  });
});
