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
