import { cmdName } from '@opensynaptic/cmd';
import type { ReceiveResult, SensorTuple } from '@opensynaptic/core';
import { isOpenSynapticError } from '@opensynaptic/internal';
import { CliError, EXIT, type ExitCode } from './errors.js';

/** The reference's name of a command byte, or its number in hex. */
export function cmdLabel(cmd: number): string {
  return cmdName(cmd) ?? `0x${cmd.toString(16).padStart(2, '0')}`;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Hex text to bytes; spaces, colons and a `0x` prefix are allowed between bytes. */
export function fromHex(text: string, what: string): Uint8Array {
  const clean = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (clean.length === 0) throw new CliError('ERR_CLI_INPUT', `${what}: no hex digits`);
  if (clean.length % 2 !== 0) throw new CliError('ERR_CLI_INPUT', `${what}: odd number of hex digits (${clean.length})`);
  if (!/^[0-9a-f]*$/i.test(clean)) throw new CliError('ERR_CLI_INPUT', `${what}: not hex (only 0-9, a-f, spaces and colons are allowed)`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Parses an integer option within bounds; a bad one is a usage error naming the option. */
export function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError('ERR_CLI_USAGE', `${name}: ${JSON.stringify(value)} is not an integer in ${min}..${max}`);
  return n;
}

/**
 * Sensors from the command line: `ID:VALUE:UNIT[:STATE]` each (state `OK` by default), or a JSON
 * array of `[id, state, value, unit]` tuples as the node takes them.
 */
export function parseSensors(specs: readonly string[], json: string | undefined): SensorTuple[] {
  const out: SensorTuple[] = [];
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (e) {
      throw new CliError('ERR_CLI_INPUT', `--sensors-json: not JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(parsed)) throw new CliError('ERR_CLI_INPUT', '--sensors-json: expected an array of [id, state, value, unit] tuples');
    for (const [i, t] of parsed.entries()) {
      if (!Array.isArray(t) || t.length !== 4) throw new CliError('ERR_CLI_INPUT', `--sensors-json[${i}]: expected [id, state, value, unit], got ${JSON.stringify(t)}`);
      out.push(t as unknown as SensorTuple);
    }
  }
  for (const spec of specs) {
    const parts = spec.split(':');
    const [id, value, unit, state = 'OK'] = parts;
    const v = Number(value);
    if (parts.length < 3 || parts.length > 4 || !id || !unit || value === undefined || value.trim() === '' || !Number.isFinite(v)) {
      throw new CliError('ERR_CLI_INPUT', `sensor ${JSON.stringify(spec)}: expected ID:VALUE:UNIT[:STATE] with a finite number as VALUE (e.g. T1:21.5:Cel)`);
    }
    out.push([id, state, v, unit]);
  }
  if (out.length === 0) throw new CliError('ERR_CLI_USAGE', 'no sensors: give ID:VALUE:UNIT arguments or --sensors-json');
  return out;
}

/** The same reading as a JSON message would carry it: what a frame's size is compared with. */
export function readingJson(deviceId: string, sensors: readonly SensorTuple[], timestampMs: number): string {
  return JSON.stringify({ device: deviceId, t: timestampMs, sensors: sensors.map(([id, state, value, unit]) => ({ id, state, value, unit })) });
}

export interface SensorView {
  id: string;
  state: string;
  value: unknown;
  unit: string;
}

/** The sensors of a decoded fact (`s<i>_id`, `s<i>_s`, `s<i>_v`, `s<i>_u`), in order. */
export function factSensors(fact: Record<string, unknown>): SensorView[] {
  const out: SensorView[] = [];
  for (let i = 1; `s${i}_id` in fact; i++) {
    out.push({ id: String(fact[`s${i}_id`]), state: String(fact[`s${i}_s`] ?? ''), value: fact[`s${i}_v`], unit: String(fact[`s${i}_u`] ?? '') });
  }
  return out;
}

/** A receive result as plain JSON-able data (bytes as hex, errors as code and message). */
/** A described receive result: its kind and command, and the fields of that kind. */
export interface Described {
  type: ReceiveResult['type'];
  cmd: number;
  cmdName: string;
  [field: string]: unknown;
}

export function describeReceive(out: ReceiveResult): Described {
  const base = { type: out.type, cmd: out.cmd, cmdName: cmdLabel(out.cmd) };
  switch (out.type) {
    case 'data':
      return { ...base, aid: out.aid, timestampMs: out.timestampMs, deviceId: out.fact.id, sensors: factSensors(out.fact as unknown as Record<string, unknown>), fact: out.fact };
    case 'control':
      return { ...base, result: out.result };
    case 'ignored':
      return { ...base, reason: out.reason, code: out.code };
    default:
      return { ...base, error: errorJson(out.error) };
  }
}

export function errorJson(error: unknown): { code: string; message: string } {
  if (error instanceof Error) return { code: (error as { code?: unknown }).code === undefined ? 'ERR_CLI_FAILURE' : String((error as { code?: unknown }).code), message: error.message };
  return { code: 'ERR_CLI_FAILURE', message: String(error) };
}

/** The exit code for an error of any @opensynaptic package (by its code), or of the CLI. */
export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  if (!isOpenSynapticError(error)) return EXIT.FAILURE;
  const code = error.code;
  if (code === 'ERR_HANDSHAKE_TIMEOUT' || code === 'ERR_TRANSPORT_TIMEOUT') return EXIT.TIMEOUT;
  if (code === 'ERR_HANDSHAKE_NACK') return EXIT.REFUSED;
  if (code === 'ERR_TRANSPORT_OPTION' || code === 'ERR_STORE_QUERY' || code === 'ERR_STORE_OPTION') return EXIT.USAGE;
  if (code.startsWith('ERR_TRANSPORT_') || code.startsWith('ERR_STORE_')) return EXIT.UNAVAILABLE;
  return EXIT.BAD_INPUT;
}

/** JSON.stringify that writes bytes as hex and bigints as numbers' text. */
export function stringify(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v) => (v instanceof Uint8Array ? toHex(v) : typeof v === 'bigint' ? v.toString() : v), indent);
}
