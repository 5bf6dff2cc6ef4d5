/** Every `code` a CacheError can carry: stable, for flows that branch on msg.error / catch nodes. */
export type ErrorCode =
  // bad input from a message or a dialog
  | 'INVALID_INPUT'
  | 'INVALID_KEY'
  | 'INVALID_NAMESPACE'
  | 'INVALID_OPTION'
  | 'INVALID_TTL'
  | 'NOT_A_COUNT'
  | 'UNSTORABLE_VALUE'
  // the store
  | 'STORE_BUSY'
  | 'STORE_CLOSED'
  | 'STORE_DISCONNECTED'
  | 'STORE_FOREIGN_FILE'
  | 'STORE_FULL'
  | 'STORE_INVALID'
  | 'STORE_IO'
  | 'STORE_LOCKED'
  | 'STORE_MISSING'
  | 'NODE_CLOSING'
  // ttl-fetch's upstream
  | 'UPSTREAM_ABORTED'
  | 'UPSTREAM_HTTP'
  | 'UPSTREAM_NOT_JSON'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_TOO_LARGE'
  | 'UPSTREAM_UNREACHABLE';

/** Base class of every error the cache raises on purpose; `code` is stable for flows that branch on it. */
export class CacheError extends Error {
  readonly code: ErrorCode;
  /**
   * The message as a text key and its values, for callers that show it in the user's language:
   * Node-RED nodes look `text` up under `cache-store.store` in their catalogue.
   */
  readonly detail: ErrorDetail | undefined;
  constructor(code: ErrorCode, message: string, detail?: ErrorDetail) {
    super(message);
    this.name = 'CacheError';
    this.code = code;
    this.detail = detail;
  }
}

export interface ErrorDetail {
  text: string;
  values?: Record<string, string | number>;
}

/** A value that cannot be stored (function, symbol, circular reference, unknown class instance). */
export class UnstorableValueError extends CacheError {
  readonly path: string;
  constructor(path: string, what: string) {
    super('UNSTORABLE_VALUE', `cannot store ${what} at ${path}`, { text: 'unstorable', values: { what, path } });
    this.name = 'UnstorableValueError';
    this.path = path;
  }
}

/** A write that cannot fit under the store's size limit: eviction is off, or what it may free is not enough. */
export class StoreFullError extends CacheError {
  constructor(
    limitBytes: number,
    neededBytes: number,
    reason = 'eviction policy is "none"',
    reasonText = 'fullNoEviction',
    reasonValues: Record<string, string> = {},
  ) {
    super('STORE_FULL', `store is full: ${formatBytes(neededBytes)} needed, limit ${formatBytes(limitBytes)} reached and ${reason}`, {
      text: reasonText,
      values: { needed: formatBytes(neededBytes), limit: formatBytes(limitBytes), ...reasonValues },
    });
    this.name = 'StoreFullError';
  }
}

/** The database could not be opened, read or written; wraps the driver's error. */
export type StoreAction = 'create' | 'lock' | 'open' | 'read' | 'write' | 'use';

export class StoreIOError extends CacheError {
  override readonly cause: unknown;
  constructor(action: StoreAction, file: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super('STORE_IO', `cannot ${action} cache database ${file}: ${why}`, { text: `io.${action}`, values: { file, cause: why } });
    this.name = 'StoreIOError';
    this.cause = cause;
  }
}

/** Bad input from a message or a node's configuration. */
export class InputError extends CacheError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
    this.name = 'InputError';
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** The message of anything thrown: an Error's message, else the value as text. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return String(error);
  } catch {
    return 'unknown error';
  }
}
