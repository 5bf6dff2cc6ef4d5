/** Base class of every error the cache raises on purpose; `code` is stable for flows that branch on it. */
export class CacheError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'CacheError';
    this.code = code;
  }
}

/** A value that cannot be stored (function, symbol, circular reference, unknown class instance). */
export class UnstorableValueError extends CacheError {
  readonly path: string;
  constructor(path: string, what: string) {
    super('UNSTORABLE_VALUE', `cannot store ${what} at ${path}`);
    this.name = 'UnstorableValueError';
    this.path = path;
  }
}

/** A write that cannot fit under the store's size limit: eviction is off, or what it may free is not enough. */
export class StoreFullError extends CacheError {
  constructor(limitBytes: number, neededBytes: number, reason = 'eviction policy is "none"') {
    super('STORE_FULL', `store is full: ${formatBytes(neededBytes)} needed, limit ${formatBytes(limitBytes)} reached and ${reason}`);
    this.name = 'StoreFullError';
  }
}

/** The database could not be opened, read or written; wraps the driver's error. */
export class StoreIOError extends CacheError {
  override readonly cause: unknown;
  constructor(action: string, file: string, cause: unknown) {
    super('STORE_IO', `cannot ${action} cache database ${file}: ${cause instanceof Error ? cause.message : String(cause)}`);
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
