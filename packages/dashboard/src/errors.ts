import { brandError } from '@opensynaptic/internal';

/**
 * Codes of {@link DashboardError}:
 * - `ERR_DASHBOARD_OPTION`: an option outside its documented range (`key` names it).
 * - `ERR_DASHBOARD_QUERY`: a bad query parameter of the HTTP API (`key` names it; answered 400).
 * - `ERR_DASHBOARD_STATE`: a call the lifecycle does not allow (the address before `start()`).
 * - `ERR_DASHBOARD_CONSOLE`: a bad console request (`key` names the field; answered 400).
 * - `ERR_DASHBOARD_RULE`: a bad alert rule given to the API (`key` names the field; answered 400).
 * - `ERR_DASHBOARD_BUSY`: too many console requests waiting for replies (`maxConsolePending`; answered 503).
 */
export type DashboardErrorCode = 'ERR_DASHBOARD_OPTION' | 'ERR_DASHBOARD_QUERY' | 'ERR_DASHBOARD_STATE' | 'ERR_DASHBOARD_CONSOLE' | 'ERR_DASHBOARD_BUSY' | 'ERR_DASHBOARD_RULE';

/** Every error this package throws; test it with `isOpenSynapticError(err, code?)`. */
export class DashboardError extends Error {
  static {
    brandError(DashboardError);
  }
  override readonly name: string = 'DashboardError';
  readonly code: DashboardErrorCode;
  /** The option or query parameter concerned, when there is one. */
  readonly key: string | undefined;
  constructor(code: DashboardErrorCode, message: string, options: { key?: string | undefined; cause?: unknown } = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    this.code = code;
    this.key = options.key;
  }
}

export function optionError(key: string, detail: string): DashboardError {
  return new DashboardError('ERR_DASHBOARD_OPTION', `${key}: ${detail}`, { key });
}

export function queryError(key: string, detail: string): DashboardError {
  return new DashboardError('ERR_DASHBOARD_QUERY', `query parameter "${key}": ${detail}`, { key });
}
