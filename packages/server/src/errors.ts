import { brandError } from '@opensynaptic/internal';

/**
 * Codes of {@link ServerError}:
 * - `ERR_SERVER_CONFIG`: a configuration value outside what is allowed (`key`, `value`, `allowed`).
 * - `ERR_SERVER_OPTION`: a constructor option outside its documented range (`key` names it).
 * - `ERR_SERVER_STATE`: a call the lifecycle state does not allow (start twice, start after stop).
 * - `ERR_SERVER_SERVICE`: a service name registered twice, unknown, or a service that failed.
 * - `ERR_SERVER_DEPENDENCY`: an optional package (a store driver) that is not installed.
 * - `ERR_SERVER_TIMEOUT`: `ensureId` / `ensureTime` ran out of attempts.
 * - `ERR_SERVER_PACKET`: `sendTo` got no bytes (not a non-empty `Uint8Array`) or a bad aid.
 * - `ERR_SERVER_PACKET_SIZE`: `sendTo` got more bytes than `maxSendBytes` or the transport takes.
 * - `ERR_SERVER_UNKNOWN_DEVICE`: `sendTo` an aid no data frame came from (or forgotten).
 * - `ERR_SERVER_TRANSPORT`: `sendTo` a device whose transport stopped, or whose send failed.
 */
export type ServerErrorCode =
  | 'ERR_SERVER_CONFIG'
  | 'ERR_SERVER_OPTION'
  | 'ERR_SERVER_STATE'
  | 'ERR_SERVER_SERVICE'
  | 'ERR_SERVER_DEPENDENCY'
  | 'ERR_SERVER_TIMEOUT'
  | 'ERR_SERVER_PACKET'
  | 'ERR_SERVER_PACKET_SIZE'
  | 'ERR_SERVER_UNKNOWN_DEVICE'
  | 'ERR_SERVER_TRANSPORT';

/** Every error this package throws or rejects with; test it with `isOpenSynapticError(err, code?)`. */
export class ServerError extends Error {
  static {
    brandError(ServerError);
  }
  override readonly name: string = 'ServerError';
  readonly code: ServerErrorCode;
  /** The option or configuration key concerned, when there is one. */
  readonly key: string | undefined;
  constructor(code: ServerErrorCode, message: string, options: { key?: string | undefined; cause?: unknown } = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.key = options.key;
  }
}

/** One problem of a configuration: the dotted key, the value found, what is allowed. */
export interface ConfigIssue {
  key: string;
  value: unknown;
  allowed: string;
}

/** A configuration that does not validate: `issues` lists every bad key (the message names them). */
export class ConfigError extends ServerError {
  override readonly name = 'ConfigError';
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], source?: string) {
    const lines = issues.map((i) => `${i.key}: ${describeValue(i.value)} is not allowed (${i.allowed})`);
    super('ERR_SERVER_CONFIG', `${source === undefined ? 'configuration' : source}: ${lines.join('; ')}`, { key: issues[0]?.key });
    this.issues = issues;
  }
}

/** A short text of a value for a message (never the whole of a large one). */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? 'undefined' : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function optionError(key: string, detail: string): ServerError {
  return new ServerError('ERR_SERVER_OPTION', `${key}: ${detail}`, { key });
}
