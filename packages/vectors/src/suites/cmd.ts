import {
  cmdName,
  isCtrl,
  isData,
  isPlainData,
  isSecureData,
  normalizeData,
  roleAccepts,
  RX_ONLY_CMDS,
  secureVariant,
} from '@opensynaptic/cmd';
import type { Suite } from '../types.js';
import { Checker } from '../util.js';

/** cmd.json: classification of every byte (the command table has no native variant). */
export const cmdSuite: Suite = {
  kind: 'cmd',
  sniff: (f) => typeof f.cases[0]?.input?.byte === 'number',
  run(file) {
    return file.cases.map((c) => {
      const b = c.input.byte as number;
      const e = c.expected;
      const k = new Checker();
      const checks: Record<string, () => unknown> = {
        name: () => cmdName(b) ?? null,
        is_data: () => isData(b),
        is_plain_data: () => isPlainData(b),
        is_secure: () => isSecureData(b),
        normalize_data_cmd: () => normalizeData(b),
        secure_variant_cmd: () => secureVariant(b),
        is_ctrl: () => isCtrl(b),
        tx_only_ctrl_allowed: () => isCtrl(b) && roleAccepts('tx_only', b),
        rx_only_allowed: () => RX_ONLY_CMDS.has(b),
        fusion_fallback_is_secure: () => isSecureData(b),
        fusion_fallback_normalize: () => normalizeData(b),
      };
      for (const [field, want] of Object.entries(e)) {
        const run = checks[field];
        if (run) k.eq(field, run, want);
        else k.fail(`no check for field ${field}`);
      }
      return k.result(c.id);
    });
  },
};
