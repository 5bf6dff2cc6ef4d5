/**
 * A Node-RED context store (settings.js `contextStorage`) on the package's SQLite store.
 *
 * All context is held in memory, loaded once at open(), so `flow.get('x')` is answered synchronously
 * on every SQLite driver, as the built-in stores answer it. Every change is written through to the
 * store, by default with the next group commit: the keys changed while one commit is under way go
 * to the store together, in one transaction, as soon as it is done (so a burst of sets costs a few
 * commits, not one each, and waits at most for one commit and its own); a set with a callback calls
 * back once its commit is done. With `flushInterval`, changes are written every that many seconds.
 * One row per top-level key of a scope, in the namespace `context:<scope>`, so a context file can be
 * the cache's file as well.
 */
import os from 'node:os';
import path from 'node:path';
import { now } from '../lib/clock';
import { CacheError, messageOf } from '../lib/errors';
import { acquireStore, type StoreLease } from '../lib/registry';
import { encodeValue } from '../lib/serialize';
import type { Store, StoreLogger } from '../lib/store';
import { describeImport, importLocalFileSystem } from './import-localfilesystem';
import { type ContextLogger, nodeRedUtil, type PathPart, type PropertyUtil } from './node-red-util';
import { blockedStep, describePath, undoFor } from './paths';

/** `config` of the context store in settings.js (Node-RED adds `settings.userDir`). */
export interface ContextStoreConfig {
  /** The SQLite file; relative to the userDir. Default `<userDir>/flow-cache/context.sqlite`. */
  path?: string;
  /** Seconds between writes; 0 (default) writes each change with the store's next group commit. */
  flushInterval?: number;
  /** 'localfilesystem': copy Node-RED's file context store (`<userDir>/context/`) in at open. */
  importFrom?: string;
  settings?: { userDir?: string };
}

/** What the context store uses from its surroundings; tests pass their own. */
export interface ContextStoreDeps {
  util?: PropertyUtil;
  logger?: ContextLogger;
}

type Callback = (error?: Error | null, ...values: unknown[]) => void;
type Scope = Record<string, unknown>;
/** scope -> top-level keys */
type KeySet = Map<string, Set<string>>;

/** A set with a callback, waiting for the commit of the keys it changed. */
interface Waiter {
  scope: string;
  keys: string[];
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The namespace of a scope in the store. */
export function namespaceOf(scope: string): string {
  return `context:${scope}`;
}
const PREFIX = 'context:';
/** Keys the global context object has as methods, which the built-in stores leave out of keys('global'). */
const GLOBAL_METHODS = new Set(['set', 'get', 'keys']);
const EMPTY: Scope = Object.freeze(Object.create(null));
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;
const FAILURE_LOG_MS = 60_000;
/** The longest interval a timer can wait (2^31 - 1 ms, about 24.8 days), in whole seconds. */
const MAX_FLUSH_INTERVAL_S = Math.floor((2 ** 31 - 1) / 1000);
const noop = (): void => undefined;

function userDirOf(config: ContextStoreConfig): string {
  return config.settings?.userDir || path.join(os.homedir(), '.node-red');
}

function checkCallback(callback: unknown): void {
  if (callback !== undefined && callback !== null && typeof callback !== 'function') throw new Error('Callback must be a function');
}

function invalidKey(key: unknown, why: string): Error {
  return new CacheError('INVALID_KEY', `Invalid context key ${typeof key === 'string' ? JSON.stringify(key) : String(key)}: ${why}`);
}

export class FlowCacheContext {
  /** The SQLite file the context is kept in. */
  readonly file: string;
  /** Milliseconds between writes; 0: each change goes into the next group commit. */
  readonly flushIntervalMs: number;
  private readonly importFrom: 'localfilesystem' | undefined;
  private readonly userDir: string;
  private readonly util: PropertyUtil;
  private readonly log: ContextLogger;
  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private lease: StoreLease | undefined;
  private store: Store | undefined;
  private readonly scopes = new Map<string, Scope>();
  /** Keys changed in memory and not yet handed to the store. */
  private dirty: KeySet = new Map();
  /** Keys whose write failed: written again by the retry timer, or with the next write. */
  private retrying: KeySet = new Map();
  private waiters: Waiter[] = [];
  /** The batch being committed: at most one at a time, so the changes made meanwhile form the next one. */
  private writing: Promise<void> | undefined;
  /** The keys of that batch. */
  private flying: KeySet = new Map();
  private writeScheduled = false;
  private lastError: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = 0;
  private failingSince: number | undefined;
  private lastFailureLog = 0;
  private readonly onExit = (): void => this.writeAtExit();

  constructor(config: ContextStoreConfig = {}, deps: ContextStoreDeps = {}) {
    if (config === null || typeof config !== 'object') throw new Error('flow-cache context: config must be an object');
    const interval = config.flushInterval ?? 0;
    if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0 || interval > MAX_FLUSH_INTERVAL_S) {
      throw new Error(
        `flow-cache context: flushInterval must be a number of seconds from 0 to ${MAX_FLUSH_INTERVAL_S}, got ${JSON.stringify(config.flushInterval)}`,
      );
    }
    if (config.importFrom !== undefined && config.importFrom !== 'localfilesystem') {
      throw new Error(`flow-cache context: importFrom must be 'localfilesystem', got ${JSON.stringify(config.importFrom)}`);
    }
    if (config.path !== undefined && (typeof config.path !== 'string' || config.path.trim() === '')) {
      throw new Error(`flow-cache context: path must be a file name, got ${JSON.stringify(config.path)}`);
    }
    this.userDir = userDirOf(config);
    this.file = config.path ? path.resolve(this.userDir, config.path.trim()) : path.join(this.userDir, 'flow-cache', 'context.sqlite');
    this.flushIntervalMs = Math.round(interval * 1000);
    this.importFrom = config.importFrom;
    const found = deps.util && deps.logger ? undefined : nodeRedUtil();
    this.util = deps.util ?? (found as NonNullable<typeof found>).util;
    this.log = deps.logger ?? prefixed((found as NonNullable<typeof found>).log);
  }

  /** Opens the file (moving a damaged one aside), copies localfilesystem context in if asked, and loads all context into memory. */
  async open(): Promise<void> {
    if (this.state === 'open' || this.state === 'opening') throw new Error('flow-cache context: already open');
    this.state = 'opening';
    const started = Date.now();
    const logger: StoreLogger = { warn: (m) => this.log.warn(m), error: (m) => this.log.error(m) };
    let lease: StoreLease;
    try {
      lease = await acquireStore(this.file, { logger });
    } catch (error) {
      this.state = 'closed';
      throw error;
    }
    try {
      if (this.importFrom) await this.importFiles(lease.store);
      await this.load(lease.store);
    } catch (error) {
      this.scopes.clear();
      this.state = 'closed';
      await lease.release();
      throw error;
    }
    this.lease = lease;
    this.store = lease.store;
    this.state = 'open';
    if (this.flushIntervalMs > 0) {
      this.timer = setInterval(() => void this.flush().catch(noop), this.flushIntervalMs);
      this.timer.unref();
    }
    // before the store's own exit handler, which writes what is queued when the process exits
    process.prependListener('exit', this.onExit);
    let keys = 0;
    for (const scope of this.scopes.values()) keys += Object.keys(scope).length;
    this.log.info(
      `${keys} context ${keys === 1 ? 'key' : 'keys'} of ${this.scopes.size} ${this.scopes.size === 1 ? 'scope' : 'scopes'} loaded from ${this.file} ` +
        `in ${Date.now() - started} ms (${this.lease.store.driver}; ${this.promise()})`,
    );
  }

  /** What a change's durability is, in the words of the start-up log line. */
  private promise(): string {
    if (this.flushIntervalMs > 0) return `changes written every ${this.flushIntervalMs / 1000} s: up to that much is lost if the process is killed`;
    if (this.syncCommits) return 'each change committed before set() returns';
    return 'each change committed within a group commit, about 250 ms at most; a set with a callback calls back once committed';
  }

  /** Writes what is not yet on disk, stops and lets go of the file. */
  async close(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'closing';
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
    try {
      await this.flush();
    } catch {
      // logged by the write that failed
    }
    const unsaved = this.pendingWrites;
    if (unsaved > 0) this.log.error(`${unsaved} context ${unsaved === 1 ? 'change' : 'changes'} could not be written to ${this.file} and are lost`);
    process.removeListener('exit', this.onExit);
    this.dirty.clear();
    this.retrying.clear();
    this.scopes.clear();
    const lease = this.lease;
    this.lease = undefined;
    this.store = undefined;
    this.state = 'closed';
    await lease?.release();
  }

  /** Reads one key, or several (an array), of a scope: returned, or passed to `callback(err, value...)`. */
  get(scope: string, key: string | string[], callback?: Callback): unknown {
    checkCallback(callback);
    let result: unknown;
    try {
      result = Array.isArray(key) ? key.map((k) => this.getOne(scope, k)) : this.getOne(scope, key);
    } catch (error) {
      if (!callback) throw error;
      callback(error as Error);
      return undefined;
    }
    if (!callback) return result;
    if (Array.isArray(key)) callback(undefined, ...(result as unknown[]));
    else callback(undefined, result);
    return undefined;
  }

  /**
   * Sets one key, or several (an array of keys with an array of values, or one value for the first
   * key and null for the others); `undefined` deletes. Without a callback the change is in memory at
   * once and written with the next group commit; `callback(err)` is called once it is committed.
   * A key or value that cannot be stored changes nothing: thrown, or passed to the callback.
   */
  set(scope: string, key: string | string[], value: unknown, callback?: Callback): void {
    checkCallback(callback);
    let commit: Promise<void> | undefined;
    try {
      commit = this.apply(scope, key, value, callback !== undefined && callback !== null);
    } catch (error) {
      if (!callback) throw error;
      callback(error as Error);
      return;
    }
    if (callback) {
      (commit ?? Promise.resolve()).then(
        () => this.callBack(callback, null),
        (error: Error) => this.callBack(callback, error),
      );
    }
  }

  /** The top-level keys of a scope. */
  keys(scope: string, callback?: Callback): string[] | undefined {
    checkCallback(callback);
    let keys = Object.keys(this.scopes.get(scope) ?? EMPTY);
    if (scope === 'global') keys = keys.filter((key) => !GLOBAL_METHODS.has(key));
    if (!callback) return keys;
    callback(null, keys);
    return undefined;
  }

  /** Removes a whole scope. */
  async delete(scope: string): Promise<void> {
    this.scopes.delete(scope);
    this.dirty.delete(scope);
    this.retrying.delete(scope);
    if (this.store && this.state === 'open') await this.store.clear(namespaceOf(scope));
  }

  /**
   * Removes the context of flows and nodes that no longer exist: a flow scope whose flow is not in
   * `activeNodes`, a node scope (`node:flow`) whose node or flow is not. Global context stays.
   */
  async clean(activeNodes: string[]): Promise<void> {
    const active = new Set(activeNodes);
    const gone: string[] = [];
    for (const scope of this.scopes.keys()) {
      if (scope === 'global') continue;
      const colon = scope.indexOf(':');
      const alive = colon === -1 ? active.has(scope) : active.has(scope.slice(0, colon)) && active.has(scope.slice(colon + 1));
      if (!alive) gone.push(scope);
    }
    await Promise.all(gone.map((scope) => this.delete(scope)));
  }

  /** Writes every change not yet on disk now (in `flushInterval` mode too, and those to retry); rejects if any write fails. */
  async flush(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.lastError = undefined;
    await this.writeDue(true);
    if (this.retrying.size > 0) throw this.lastError ?? new Error('context writes failed');
  }

  /**
   * Resolves once every change made so far that is due is committed (or has failed): in `flushInterval`
   * mode the batch under way, else every change.
   */
  async committed(): Promise<void> {
    if (this.flushIntervalMs > 0) await this.writing;
    else await this.writeDue(true);
  }

  /** How many changed keys are not yet on disk: waiting, being written, or to be retried. */
  get pendingWrites(): number {
    const keys = new Set<string>();
    for (const set of [this.dirty, this.retrying, this.flying]) for (const [scope, names] of set) for (const key of names) keys.add(`${scope}\u0000${key}`);
    return keys.size;
  }

  // ---- internals ----

  private getOne(scope: string, key: string): unknown {
    if (typeof key !== 'string' || key.length === 0) throw invalidKey(key, 'a key is a non-empty string');
    const data = this.scopes.get(scope) ?? EMPTY;
    try {
      return this.util.getObjectProperty(data, key);
    } catch (error) {
      if ((error as { code?: string }).code === 'INVALID_EXPR') throw error;
      return undefined;
    }
  }

  /**
   * Applies a set to memory, all of it or (on any error) none of it, and marks the keys for writing;
   * with `wait`, resolves once they are committed.
   */
  private apply(scope: string, key: string | string[], value: unknown, wait: boolean): Promise<void> | undefined {
    if (this.state !== 'open') throw new CacheError('STORE_CLOSED', `flow-cache context store ${this.file} is not open`);
    if (typeof scope !== 'string' || scope.length === 0) throw new Error(`Invalid context scope ${String(scope)}`);
    const keys = Array.isArray(key) ? key : [key];
    const values = Array.isArray(key) ? (Array.isArray(value) ? value : [value]) : [value];
    if (keys.length === 0) throw invalidKey(key, 'no key given');
    const existing = this.scopes.get(scope);
    const data: Scope = existing ?? Object.create(null);
    // every key is checked before anything changes: a bad key in an array of keys sets none of them
    for (const k of keys) this.parse(data, k);
    const undos: (() => void)[] = [];
    const touched = new Set<string>();
    const rollBack = () => {
      for (let i = undos.length - 1; i >= 0; i--) undos[i]();
    };
    try {
      for (let i = 0; i < keys.length; i++) {
        const v = i < values.length ? values[i] : null;
        const parts = this.parse(data, keys[i]);
        if (v !== undefined) {
          const blocked = blockedStep(data, parts);
          if (blocked) throw new CacheError('INVALID_KEY', `cannot set ${JSON.stringify(keys[i])}: ${blocked}`);
          // only the new value is checked (not all of its top-level key: a big object takes one nested write after another)
          checkStorable(describePath(parts), v);
          if (parts.length > 1 && reaches(v, ancestors(data, parts))) {
            throw new CacheError('UNSTORABLE_VALUE', `cannot store a circular reference at ${describePath(parts)}`);
          }
        }
        undos.push(undoFor(data, parts, v === undefined));
        this.util.setObjectProperty(data, keys[i], v);
        if (parts.length > 1 && v !== undefined)
          for (const container of ancestors(data, parts)) if (Array.isArray(container)) fillArrayGaps(container, new Set(), false);
        touched.add(String(parts[0]));
      }
    } catch (error) {
      rollBack();
      throw error;
    }
    if (!existing) this.scopes.set(scope, data);
    // node:sqlite commits a key before set() returns (a flow that sends its message on after a set
    // never gets ahead of the file); keys it cannot commit now go with the next group commit
    const queued = [...touched].filter((top) => !this.commitNow(scope, top));
    for (const top of queued) mark(this.dirty, scope, top);
    if (this.flushIntervalMs > 0) return undefined;
    if (queued.length === 0) return wait ? Promise.resolve() : undefined;
    this.scheduleWrite();
    if (!wait) return undefined;
    return new Promise<void>((resolve, reject) => this.waiters.push({ scope, keys: queued, resolve, reject }));
  }

  /**
   * Commits a top-level key now, where the store can (node:sqlite, no write of the key under way or
   * queued here or there); false leaves it to the next group commit. A value that cannot be stored
   * is left to the write path, which reports it.
   */
  private commitNow(scope: string, key: string): boolean {
    const store = this.store;
    if (!store || this.flushIntervalMs > 0 || !this.syncCommits) return false;
    if (this.dirty.get(scope)?.has(key) || this.flying.get(scope)?.has(key) || this.retrying.get(scope)?.has(key)) return false;
    return store.commitNow(namespaceOf(scope), key, this.scopes.get(scope)?.[key], { evictable: false });
  }

  /** Whether a change is committed before set() returns: on the synchronous driver (node:sqlite), without flushInterval. */
  get syncCommits(): boolean {
    return this.flushIntervalMs === 0 && this.store?.driver === 'node:sqlite';
  }

  /** Starts a write of the changed keys in the next turn of the event loop, unless one is under way (its end starts the next). */
  private scheduleWrite(): void {
    if (this.writeScheduled || this.writing) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      void this.writeDue(false);
    });
  }

  /**
   * Hands every changed key (and every key to retry) to the store at once, so they share one commit,
   * after the batch under way; resolves once committed (a failed write is retried, never thrown here).
   * Without `retries`, only changes start a write: keys to retry wait for their timer or go along.
   */
  private writeDue(retries: boolean): Promise<void> {
    const due = () => this.dirty.size > 0 || (retries && this.retrying.size > 0);
    if (this.writing) return this.writing.then(() => (due() ? this.writeDue(retries) : undefined));
    if (!due()) return Promise.resolve();
    const batchKeys = this.retrying;
    for (const [scope, keys] of this.dirty) for (const key of keys) mark(batchKeys, scope, key);
    this.dirty = new Map();
    this.retrying = new Map();
    this.flying = batchKeys;
    const waiters = this.waiters;
    this.waiters = [];
    const writes = new Map<string, Map<string, Promise<void>>>();
    for (const [scope, keys] of batchKeys) {
      const ofScope = new Map<string, Promise<void>>();
      writes.set(scope, ofScope);
      for (const key of keys) ofScope.set(key, this.write(scope, key));
    }
    for (const waiter of waiters) {
      Promise.all(waiter.keys.map((key) => writes.get(waiter.scope)?.get(key))).then(() => waiter.resolve(), waiter.reject);
    }
    const all: Promise<unknown>[] = [];
    for (const ofScope of writes.values()) all.push(...ofScope.values());
    const batch = Promise.allSettled(all).then(() => {
      this.writing = undefined;
      this.flying = new Map();
      // what changed while this batch was committed goes next, at once
      if (this.dirty.size > 0 && this.flushIntervalMs === 0 && this.state === 'open') void this.writeDue(false);
    });
    this.writing = batch;
    return batch;
  }

  /** Node-RED's parse of a key (its errors are Node-RED's INVALID_EXPR), plus what the store cannot hold. */
  private parse(data: Scope, key: unknown): PathPart[] {
    if (typeof key !== 'string' || key.length === 0) throw invalidKey(key, 'a key is a non-empty string');
    const parts = this.util.normalisePropertyExpression(key, data);
    if (parts.some((part) => part === '__proto__')) throw invalidKey(key, '__proto__ cannot be set');
    const top = String(parts[0]);
    if (top.length === 0) throw invalidKey(key, 'the top-level name is empty');
    if (LONE_SURROGATE.test(top)) throw invalidKey(key, 'it holds a lone UTF-16 surrogate');
    return parts;
  }

  /** Writes a top-level key's value in memory (or its absence) through to the store. */
  private write(scope: string, key: string): Promise<void> {
    const store = this.store;
    if (!store) return Promise.reject(new CacheError('STORE_CLOSED', `flow-cache context store ${this.file} is not open`));
    const namespace = namespaceOf(scope);
    const value = this.scopes.get(scope)?.[key];
    const commit: Promise<unknown> = value === undefined ? store.delete(namespace, key) : store.set(namespace, key, value, undefined, { evictable: false });
    const tracked = commit.then(
      () => this.succeeded(),
      (error: Error) => {
        this.failed(scope, key, error);
        throw error;
      },
    );
    tracked.catch(noop); // the error reaches callbacks through their waiters, and the log
    return tracked;
  }

  private succeeded(): void {
    if (this.failingSince === undefined || this.retrying.size > 0) return;
    this.log.warn(`context writes to ${this.file} succeed again`);
    this.failingSince = undefined;
    this.retryDelay = 0;
  }

  /**
   * A write failed. Memory keeps the value (flows go on reading it); unless the value itself cannot
   * be stored, the key is written again after 1 s, 2 s, 4 s … up to a minute, until it succeeds.
   */
  private failed(scope: string, key: string, error: Error): void {
    if (this.state !== 'open' && this.state !== 'closing') return;
    const unstorable = (error as CacheError).code === 'UNSTORABLE_VALUE';
    const at = now();
    if (unstorable) {
      this.log.error(
        `context ${scope} key ${JSON.stringify(key)} is not written to ${this.file}: ${renamed(describePath([key]), error as CacheError).message}`,
      );
      return;
    }
    if (!this.scopes.has(scope)) return; // the scope was deleted meanwhile
    mark(this.retrying, scope, key);
    this.lastError = error;
    const first = this.failingSince === undefined;
    this.failingSince ??= at;
    if (first || at - this.lastFailureLog >= FAILURE_LOG_MS) {
      this.lastFailureLog = at;
      this.log.error(`context writes to ${this.file} fail (${error.message}); ${this.pendingWrites} changed keys kept in memory and retried`);
    }
    if (this.state === 'open' && !this.retryTimer) {
      this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay ? this.retryDelay * 2 : RETRY_MIN_MS);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.flush().catch(noop);
      }, this.retryDelay);
      this.retryTimer.unref();
    }
  }

  /** Calls a caller's callback outside the promise chain; a callback that throws is logged, never left to crash the process. */
  private callBack(callback: Callback, error: Error | null): void {
    try {
      callback(error);
    } catch (thrown) {
      this.log.error(`a context set callback threw: ${(thrown as Error)?.stack ?? String(thrown)}`);
    }
  }

  /**
   * The process is exiting with changes not yet handed to the store (made in this turn of the event
   * loop, held by flushInterval, or to retry): they are queued in the store now, and its own exit
   * handler (next) commits them with a synchronous driver.
   */
  private writeAtExit(): void {
    const store = this.store;
    if (!store) return;
    for (const [scope, keys] of [...this.dirty, ...this.retrying, ...this.flying]) {
      for (const key of keys) {
        const value = this.scopes.get(scope)?.[key];
        const queued = value === undefined ? store.delete(namespaceOf(scope), key) : store.set(namespaceOf(scope), key, value, undefined, { evictable: false });
        queued.catch(noop);
      }
    }
  }

  private async importFiles(store: Store): Promise<void> {
    const dir = path.join(this.userDir, 'context');
    try {
      const result = await importLocalFileSystem(store, dir, namespaceOf);
      const report = describeImport(dir, result);
      if (report) (result.damaged.length > 0 || result.refused.length > 0 ? this.log.warn : this.log.info).call(this.log, report);
    } catch (error) {
      this.log.error(`could not copy the localfilesystem context from ${dir}: ${messageOf(error)}; it is tried again at the next start`);
    }
  }

  private async load(store: Store): Promise<void> {
    for (const namespace of await store.namespaces()) {
      if (!namespace.startsWith(PREFIX)) continue;
      const data: Scope = Object.create(null);
      for (const [key, entry] of await store.entries(namespace)) data[key] = entry.value;
      this.scopes.set(namespace.slice(PREFIX.length), data);
    }
  }
}

/**
 * Throws the store's error (naming the key, `where`, and the place in the value) for a value it cannot
 * hold. Array elements that are undefined or missing become null first, in place: what JSON, and so
 * localfilesystem after a restart, makes of them.
 */
function checkStorable(where: string, value: unknown): void {
  try {
    encodeValue(value);
    return;
  } catch (error) {
    const gap = /^cannot store (undefined|an empty array slot) at /.test(messageOf(error));
    if (!gap || !fillArrayGaps(value, new Set())) throw renamed(where, error as CacheError);
  }
  try {
    encodeValue(value);
  } catch (error) {
    throw renamed(where, error as CacheError);
  }
}

function renamed(where: string, error: CacheError): CacheError {
  return new CacheError(error.code ?? 'UNSTORABLE_VALUE', error.message.replace(/ at value(?=$|[.[<])/, ` at ${where}`));
}

/** The objects a nested write goes through: the top-level value down to the parent of the last step (those that exist). */
function ancestors(data: Scope, parts: readonly PathPart[]): object[] {
  const found: object[] = [];
  let target: unknown = data[String(parts[0])];
  for (let i = 1; i < parts.length && target !== null && typeof target === 'object'; i++) {
    found.push(target);
    target = (target as Record<string | number, unknown>)[parts[i]];
  }
  return found;
}

/** Whether `value` is, or holds (in arrays, plain objects, Maps and Sets), one of `targets`: storing it there would make a cycle. */
function reaches(value: unknown, targets: object[], seen = new Set<object>()): boolean {
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  if (targets.includes(value)) return true;
  seen.add(value);
  if (value instanceof Map) {
    for (const [k, v] of value) if (reaches(k, targets, seen) || reaches(v, targets, seen)) return true;
    return false;
  }
  if (value instanceof Set) {
    for (const item of value) if (reaches(item, targets, seen)) return true;
    return false;
  }
  if (Array.isArray(value)) return value.some((item) => reaches(item, targets, seen));
  const proto = Object.getPrototypeOf(value);
  if (proto !== null && Object.getPrototypeOf(proto) !== null) return false;
  return Object.keys(value).some((key) => reaches((value as Record<string, unknown>)[key], targets, seen));
}

/** Sets undefined and missing elements of the arrays in a value (plain objects and arrays; `deep`: walked all through) to null; whether any was. */
function fillArrayGaps(value: unknown, seen: Set<object>, deep = true): boolean {
  if (value === null || typeof value !== 'object' || seen.has(value)) return false;
  seen.add(value);
  let changed = false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (value[i] === undefined) {
        value[i] = null;
        changed = true;
      } else if (deep && fillArrayGaps(value[i], seen)) changed = true;
    }
    return changed;
  }
  if (!deep) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== null && Object.getPrototypeOf(proto) !== null) return false; // Date, Map, Buffer …: left as they are
  for (const key of Object.keys(value)) if (fillArrayGaps((value as Record<string, unknown>)[key], seen)) changed = true;
  return changed;
}

function mark(set: KeySet, scope: string, key: string): void {
  let keys = set.get(scope);
  if (!keys) {
    keys = new Set();
    set.set(scope, keys);
  }
  keys.add(key);
}

function prefixed(log: ContextLogger): ContextLogger {
  const tag = (message: string) => `[flow-cache context] ${message}`;
  return {
    info: (message) => log.info(tag(message)),
    warn: (message) => log.warn(tag(message)),
    error: (message) => log.error(tag(message)),
  };
}
