import { EventEmitter } from 'node:events';
import { now } from './clock';
import { DRIVER_CHOICES, type DriverChoice, type DriverName, openDriver, openPlain, resolveDriver, type SqlDriver } from './driver';
import { CacheError, messageOf, StoreIOError } from './errors';
import { describeHolder, type FileLock, type Holder, takeLock } from './file-lock';
import { LruMap } from './lru';
import {
  type Durability,
  EVICTION_POLICY_TABLE,
  type EvictionPolicy,
  type ResolvedStoreOptions,
  resolveStoreOptions,
  type StoreLogger,
  type StoreOptions,
  sizeLimitBytes,
} from './options';
import { configureConnection, ensureSchema, TABLE } from './schema';
import { encodeValue } from './serialize';
import { checkFile, isCorruption, moveAside, prepareDirectory, prepareFile } from './sqlite-file';
import { type InspectedEntry, type KeyListOptions, type KeyPage, type NamespaceStats, StoreQueries } from './store-queries';
import {
  type Entry,
  encodeNamespace,
  fromHex,
  hexKey,
  parseRow,
  RESTAMP_FUTURE,
  ROWS_PER_STATEMENT,
  type Row,
  rangeEnd,
  restamp,
  rowText,
  toEntry,
  writeStatementsOf,
} from './store-rows';
import { countRow, Eviction, type EvictionRound, SizeAccount, uncountRow } from './store-size';

export type { Durability, EvictionPolicy, StoreLogger, StoreOptions } from './options';
export { DURABILITIES, EVICTION_POLICIES, STORE_DEFAULTS } from './options';
export { type InspectedEntry, type KeyInfo, type KeyListOptions, type KeyPage, MAX_KEY_PAGE, type NamespaceStats } from './store-queries';
export type { Entry } from './store-rows';
export { encodeNamespace } from './store-rows';
export type { EvictionRound } from './store-size';

/** What the store tells its users about itself ('health' and 'evicted' events). */
export interface StoreHealth {
  ok: boolean;
  /** The failure, while writes cannot be committed. */
  error?: Error;
}

/** The result of an atomic read-modify-write. */
export interface UpdateResult {
  previous: Entry | undefined;
  /** The entry after the update; undefined if the update deleted or left the key absent. */
  entry: Entry | undefined;
}

/**
 * What an update function returns: a value to store (with an optional TTL in seconds), `{delete: true}`
 * or undefined to change nothing. `evictable: false` marks state (counts, cooldowns) that the size
 * limit may never remove; by default an entry is a cache and may be evicted.
 */
export type UpdateDecision = { value: unknown; ttl?: number; evictable?: boolean } | { delete: true } | undefined;

export interface SetOptions {
  /** false: never removed to make room (default true). */
  evictable?: boolean;
}

interface UpdateStep {
  result: UpdateResult;
  commit?: Promise<void>;
  tooBig?: Row;
}

interface Batch {
  puts: Map<string, Row | null>;
  clears: string[];
  bytes: number;
  /** Bytes of rows that may not be evicted. */
  pinned: number;
  promise?: Promise<void>;
  resolve?: () => void;
  reject?: (error: unknown) => void;
}

const MAX_DEFERRED_PENDING = 10_000;
/** Rows a write statement carries on a synchronous driver: each statement runs in one tick, so fewer rows keep ticks short. */
const SYNC_ROWS_PER_STATEMENT = 250;
const EAGER_BATCH_ROWS = 2000;
const TOUCH_FLUSH_MS = 1_000;
const MAX_DATE_MS = 8.64e15; // the last instant a JavaScript Date can hold
const BUSY_TIMEOUT_MS = 5000;
/** A row stamped further than this ahead of the clock means the clock went back. */
const CLOCK_SLACK_MS = 1000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function newBatch(): Batch {
  return { puts: new Map(), clears: [], bytes: 0, pinned: 0 };
}

/** Lets other work run between two statements of a synchronous driver, so no single tick is long. */
function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function batchPromise(batch: Batch): Promise<void> {
  if (!batch.promise) {
    batch.promise = new Promise<void>((resolve, reject) => {
      batch.resolve = resolve;
      batch.reject = reject;
    });
    batch.promise.catch(() => undefined); // waiters get the error; a batch nobody awaits must not crash the process
  }
  return batch.promise;
}

/** The error a second process gets for a database another process holds. */
function lockedError(file: string, holder: Holder | undefined): CacheError {
  return new CacheError(
    'STORE_LOCKED',
    `cache database ${file} is in use by ${describeHolder(holder)}; a database file serves one Node-RED process at a time (give each its own file, or use a shared backend)`,
    { text: 'locked', values: { file, holder: describeHolder(holder) } },
  );
}

/**
 * A persistent key-value store in one SQLite file (node:sqlite, or sqlite3 through keyv's SQLite adapter), with namespaces,
 * expiry, a size cap, group commit, a write-through read cache and per-key atomic updates.
 */
export class Store extends EventEmitter {
  readonly file: string;
  readonly sizeLimitBytes: number;
  readonly evictionPolicy: EvictionPolicy;
  readonly durability: Durability;
  readonly driver: DriverName;
  private readonly policy: (typeof EVICTION_POLICY_TABLE)[EvictionPolicy];

  private db: SqlDriver;
  private readonly lock: FileLock;
  private readonly options: ResolvedStoreOptions;
  private recovering = false;
  private readonly logger: StoreLogger;
  private readonly cache: LruMap<string, Row | null>;
  private readonly pending = new Map<string, Row | null>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly touched = new Map<string, number>();
  private readonly prefixes = new Map<string, string>();
  private batch: Batch = newBatch();
  private dbChain: Promise<unknown> = Promise.resolve();
  private flushScheduled = false;
  /** Clears of the batch being written, for a write at exit. */
  private inflightClears: string[] = [];
  /** Sealed batches with clears, not yet written: a write committed now must not come before them. */
  private queuedClears = 0;
  private inTransaction = false;
  private epoch = 0;
  private closed = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = 0;
  private failure: Error | undefined;
  private readonly size: SizeAccount;
  private readonly eviction: Eviction;
  private readonly onExit = (): void => this.writeAtExit();
  private readonly queries = new StoreQueries({
    query: (sql, params) => this.query(sql, params),
    flush: () => this.flush(),
    assertOpen: () => this.assertOpen(),
    fullKey: (namespace, key) => this.fullKey(namespace, key),
  });

  private constructor(file: string, db: SqlDriver, lock: FileLock, options: ResolvedStoreOptions, logger: StoreLogger) {
    super();
    this.file = file;
    this.db = db;
    this.lock = lock;
    this.driver = db.name;
    this.options = options;
    this.logger = logger;
    this.sizeLimitBytes = sizeLimitBytes(options.sizeLimitMb);
    this.evictionPolicy = options.evictionPolicy;
    this.policy = EVICTION_POLICY_TABLE[options.evictionPolicy];
    this.durability = options.durability;
    this.cache = new LruMap(options.readCacheEntries);
    this.size = new SizeAccount(this.sizeLimitBytes, this.policy.evicts);
    const host = {
      file,
      logger,
      query: (sql: string, params: readonly unknown[]) => this.query(sql, params),
      forget: (keys: string[]) => this.forget(keys),
      pause: () => this.pause(),
      announce: (round: EvictionRound) => this.emit('evicted', round),
    };
    this.eviction = new Eviction(host, this.size, this.evictionPolicy, this.policy.orderColumn ?? 'stored_at');
    if (options.sweepInterval > 0) this.every(options.sweepInterval * 1000, () => this.sweep());
    if (this.durability === 'deferred') this.every(options.flushInterval * 1000, () => this.flush());
    if (EVICTION_POLICY_TABLE[this.evictionPolicy].tracksReads) this.every(TOUCH_FLUSH_MS, () => this.touched.size > 0 && this.flush());
    process.on('exit', this.onExit);
  }

  /**
   * Opens (creating if needed) the database file. A file of ours that is damaged is moved aside and
   * replaced; any other file (not SQLite, or another program's database) is refused and left
   * untouched; a file another process has open is refused with an error naming that process.
   */
  static async open(file: string, given: StoreOptions = {}): Promise<Store> {
    const options = resolveStoreOptions(given);
    const logger = options.logger ?? { warn: () => undefined, error: () => undefined };
    const driver = options.driver ?? defaultDriver();
    try {
      resolveDriver(driver);
      prepareDirectory(file);
    } catch (error) {
      throw new StoreIOError('create', file, error);
    }
    // a file that is not ours is refused before anything, not even its lock file, is created beside it
    await checkFile(file, driver);
    let taken: Awaited<ReturnType<typeof takeLock>>;
    try {
      taken = await takeLock(file, driver);
    } catch (error) {
      throw new StoreIOError('lock', file, error);
    }
    if ('holder' in taken) throw lockedError(file, taken.holder);
    const lock = taken;
    try {
      // judged again under the lock: a process that had the file a moment ago may have been checkpointing
      // it (page 1, with the new page count, is written before the pages after it), which the header read
      // before the lock took for a truncated file
      const damage = await checkFile(file, driver);
      if (damage) setAside(file, damage, logger);
      try {
        prepareFile(file);
      } catch (error) {
        throw new StoreIOError('create', file, error);
      }
      try {
        return await Store.connect(file, lock, options, logger, driver);
      } catch (error) {
        if (!isCorruption(error)) throw error instanceof CacheError ? error : new StoreIOError('open', file, error);
        setAside(file, messageOf(error), logger);
        try {
          return await Store.connect(file, lock, options, logger, driver);
        } catch (again) {
          throw new StoreIOError('open', file, again);
        }
      }
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
  }

  private static async connect(file: string, lock: FileLock, options: ResolvedStoreOptions, logger: StoreLogger, driver: DriverChoice): Promise<Store> {
    const db = await Store.openDatabase(file, options, driver);
    try {
      const store = new Store(file, db, lock, options, logger);
      await store.size.readCounts((sql, params) => store.query(sql, params));
      return store;
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
  }

  /** Connects to a file of ours, brings its schema up to date and records this process as its holder. */
  private static async openDatabase(file: string, options: ResolvedStoreOptions, driver: DriverChoice): Promise<SqlDriver> {
    const leastRecentlyUsed = EVICTION_POLICY_TABLE[options.evictionPolicy].tracksReads;
    if (resolveDriver(driver) === 'sqlite3') {
      // keyv's adapter creates its table as it connects, which would fix the page size of a new file:
      // the schema is made first, on a plain connection
      const setup = await openPlain(file, driver, { busyTimeoutMs: BUSY_TIMEOUT_MS });
      try {
        await ensureSchema(setup, leastRecentlyUsed, BUSY_TIMEOUT_MS);
      } finally {
        await setup.close();
      }
    }
    const db = await openDriver(file, driver, { busyTimeoutMs: BUSY_TIMEOUT_MS });
    try {
      if (db.name === 'sqlite3') await configureConnection(db);
      else await ensureSchema(db, leastRecentlyUsed, BUSY_TIMEOUT_MS);
      return db;
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Damage found while running (pages behind a sound header): the operation that met it fails, the
   * file is moved aside and a fresh one takes its place; writes queued after the damage go to it.
   */
  private recover(error: unknown): void {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    void this.exclusive(async () => {
      try {
        await this.db.close().catch(() => undefined);
        setAside(this.file, messageOf(error), this.logger);
        this.db = await Store.openDatabase(this.file, this.options, this.db.name);
        this.cache.clear();
        this.epoch++;
        this.size.reset();
      } catch (failure) {
        this.logger.error(`cache database ${this.file}: recovery failed: ${messageOf(failure)}`);
      } finally {
        this.recovering = false;
      }
    });
  }

  /** Bytes stored on disk (values and metadata), as the size limit counts them. */
  async bytesUsed(): Promise<number> {
    await this.flush();
    return (await this.size.readCounts((sql, params) => this.query(sql, params))).bytes;
  }

  /** The last eviction round, for statuses and inspection. */
  get lastEviction(): EvictionRound | undefined {
    return this.eviction.last;
  }

  /** Whether writes are being committed; false while a flush fails and is retried. */
  get healthy(): boolean {
    return this.failure === undefined;
  }

  /** Writes not yet committed to disk (deferred mode, or a failing disk). */
  get pendingWrites(): number {
    return this.pending.size;
  }

  /** Reads a key; expired entries read as absent (and are removed). */
  async get(namespace: string, key: string): Promise<Entry | undefined> {
    const fullKey = this.fullKey(namespace, key);
    const known = this.memoryRow(fullKey);
    const row = known !== undefined ? this.live(fullKey, known) : await this.withKey(fullKey, async () => this.live(fullKey, await this.loadRow(fullKey)));
    return row ? toEntry(row) : undefined;
  }

  /** Writes a value with a TTL in seconds (0 or undefined: no expiry); resolves once committed (immediate mode). */
  async set(namespace: string, key: string, value: unknown, ttlSeconds?: number, options: SetOptions = {}): Promise<Entry> {
    const fullKey = this.fullKey(namespace, key);
    const row = this.makeRow(value, ttlSeconds, options.evictable !== false);
    // nothing queued on this key and room to spare: enqueue now (no await, so nothing can come between)
    const commit =
      !this.locks.has(fullKey) && this.fits(fullKey, row)
        ? this.enqueue(fullKey, row)
        : (
            await this.withKey(fullKey, () =>
              this.fits(fullKey, row) ? Promise.resolve({ commit: this.enqueue(fullKey, row) }) : this.enqueueAfterRecount(fullKey, row),
            )
          ).commit;
    await commit;
    return { value, storedAt: row.storedAt, expiresAt: row.expiresAt };
  }

  /**
   * Writes a value (or, with `undefined`, deletes the key) and commits it before returning: only on
   * a synchronous driver (node:sqlite), in immediate mode, and only when nothing queued could reach
   * the file after it (no write of the key waiting, no clear queued, no transaction of a batch under
   * way, no failing writes) and the value fits. Returns false with nothing done otherwise, and when
   * the statement fails: the caller then writes through set() or delete(), which report the failure.
   */
  commitNow(namespace: string, key: string, value: unknown, options: SetOptions = {}): boolean {
    const querySync = this.db.querySync;
    if (!querySync || this.durability !== 'immediate' || this.closed || this.recovering || this.inTransaction) return false;
    if (this.failure || this.retryTimer || this.queuedClears > 0 || this.batch.clears.length > 0) return false;
    let fullKey: string;
    let row: Row | null;
    try {
      fullKey = this.fullKey(namespace, key);
      row = value === undefined ? null : this.makeRow(value, undefined, options.evictable !== false);
    } catch {
      return false;
    }
    if (this.locks.has(fullKey) || this.pending.has(fullKey)) return false;
    if (row && !this.fits(fullKey, row)) return false;
    let replaced = this.memoryRow(fullKey);
    try {
      if (replaced === undefined) {
        const found = querySync(`SELECT size, evictable FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`, [hexKey(fullKey)])[0];
        replaced = found ? ({ size: Number(found.size), evictable: Number(found.evictable) !== 0 } as Row) : null;
      }
      // one statement: atomic, and committed when it returns (no transaction is open on the connection)
      for (const [sql, params] of writeStatementsOf(new Map([[fullKey, row]]), new Map(), 1)) querySync(sql, params);
    } catch {
      return false;
    }
    this.size.committedNow(replaced, row);
    // a read under way started before this write: it must not put the old row into the read cache
    this.epoch++;
    this.cache.set(fullKey, row);
    return true;
  }

  /** Removes a key; resolves to whether an unexpired entry was there. */
  async delete(namespace: string, key: string): Promise<boolean> {
    const result = await this.update(namespace, key, () => ({ delete: true }));
    return result.previous !== undefined;
  }

  /**
   * Atomic read-modify-write of one key: `change` sees the current entry (never a stale one) and no
   * other write to the key runs between its read and its write. Throwing from `change` writes nothing.
   */
  async update(namespace: string, key: string, change: (current: Entry | undefined) => UpdateDecision): Promise<UpdateResult> {
    const fullKey = this.fullKey(namespace, key);
    // nothing queued on this key and its row in memory: the read-modify-write runs synchronously
    const known = this.locks.has(fullKey) ? undefined : this.memoryRow(fullKey);
    const step =
      known !== undefined
        ? this.decide(fullKey, this.live(fullKey, known), change)
        : await this.withKey(fullKey, async () => {
            const locked = this.decide(fullKey, this.live(fullKey, this.memoryRow(fullKey) ?? (await this.loadRow(fullKey))), change);
            // recount while still holding the key, so no other update reads the row before this one is queued
            if (locked.tooBig) locked.commit = (await this.enqueueAfterRecount(fullKey, locked.tooBig)).commit;
            return { ...locked, tooBig: undefined };
          });
    if (step.tooBig) {
      // decided synchronously with the key free: taking the key now comes before any other update of it
      const row = step.tooBig;
      step.commit = (await this.withKey(fullKey, () => this.enqueueAfterRecount(fullKey, row))).commit;
    }
    if (step.commit) await step.commit;
    return step.result;
  }

  /** Removes every key of a namespace and nothing else. */
  async clear(namespace: string): Promise<void> {
    this.assertOpen();
    const prefix = `${encodeNamespace(namespace)}:`;
    for (const key of [...this.pending.keys()]) {
      if (key.startsWith(prefix)) {
        this.pending.delete(key);
        const queued = this.batch.puts.get(key);
        if (queued) uncountRow(this.batch, queued);
        this.batch.puts.delete(key);
      }
    }
    for (const key of [...this.cache.keys()]) if (key.startsWith(prefix)) this.cache.delete(key);
    for (const key of [...this.touched.keys()]) if (key.startsWith(prefix)) this.touched.delete(key);
    this.batch.clears.push(prefix);
    this.epoch++;
    const commit = batchPromise(this.batch);
    this.scheduleFlush(true);
    await commit;
  }

  /** Lists the unexpired keys of a namespace (reads the disk; meant for inspection, not hot paths). */
  keys(namespace: string): Promise<string[]> {
    return this.queries.keys(namespace);
  }

  /** Every unexpired entry of a namespace, read from disk in one pass after a flush (not a hot path). */
  entries(namespace: string): Promise<[string, Entry][]> {
    return this.queries.entries(namespace);
  }

  /** The names of the namespaces that hold rows on disk (after a flush). */
  namespaces(): Promise<string[]> {
    return this.queries.namespaces();
  }

  /** Deletes every expired entry from disk; resolves to how many were removed. */
  async sweep(): Promise<number> {
    if (this.closed) return 0;
    return this.exclusive(async () => {
      // a thousand rows a statement, so a sweep of many rows never holds the event loop for long
      let removed = 0;
      for (;;) {
        const at = now();
        const rows = (await this.query(
          `DELETE FROM ${TABLE} WHERE key IN (SELECT key FROM ${TABLE} WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ${ROWS_PER_STATEMENT}) RETURNING lower(hex(key)) AS hk`,
          [at],
        )) as { key: string }[];
        this.forget((rows as unknown as { hk: string }[]).map((r) => fromHex(r.hk)));
        removed += rows.length;
        if (rows.length < ROWS_PER_STATEMENT) break;
        await this.pause();
      }
      for (;;) {
        const at = now();
        const rows = (await this.query(RESTAMP_FUTURE, [at, at + CLOCK_SLACK_MS])) as { key: string }[];
        this.forget((rows as unknown as { hk: string }[]).map((r) => fromHex(r.hk)));
        if (rows.length < ROWS_PER_STATEMENT) break;
        await this.pause();
      }
      // writes not yet committed (deferred mode) were stamped by the same clock: restamped too, so they
      // do not reach the file from the future at the next flush
      const at = now();
      for (const [fullKey, row] of [...this.pending]) {
        if (row && row.storedAt > at + CLOCK_SLACK_MS) void this.enqueue(fullKey, restamp(row, at));
      }
      return removed;
    });
  }

  /** Commits everything written so far (in deferred mode too). */
  async flush(): Promise<void> {
    if (this.batch.puts.size === 0 && this.batch.clears.length === 0 && this.touched.size === 0) {
      await this.dbChain.catch(() => undefined);
      if (this.failure) throw new StoreIOError('write', this.file, this.failure);
      return;
    }
    const commit = batchPromise(this.batch);
    this.runFlush(true);
    await commit;
  }

  /** Flushes pending writes, stops the timers and closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const timer of this.timers) clearInterval(timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    try {
      await this.flush();
    } catch (error) {
      this.logger.error(`cache database ${this.file}: ${this.pending.size} writes lost at close: ${messageOf(error)}`);
    }
    this.closed = true;
    process.removeListener('exit', this.onExit);
    await this.dbChain.catch(() => undefined);
    try {
      await this.db.close();
    } finally {
      await this.lock.release();
    }
  }

  // ---- internals ----

  private fullKey(namespace: string, key: string): string {
    this.assertOpen();
    if (typeof key !== 'string' || key.length === 0) throw new CacheError('INVALID_KEY', 'key must be a non-empty string', { text: 'keyEmpty' });
    // the driver writes a lone surrogate as U+FFFD, so two such keys would share one row on disk
    if (LONE_SURROGATE.test(key))
      throw new CacheError('INVALID_KEY', 'key must be well-formed text: it holds a lone UTF-16 surrogate', { text: 'keySurrogate' });
    let prefix = this.prefixes.get(namespace);
    if (prefix === undefined) {
      prefix = `${encodeNamespace(namespace)}:`;
      if (this.prefixes.size >= 1_000) this.prefixes.clear(); // namespaces are few (one per flow); this only bounds a misuse
      this.prefixes.set(namespace, prefix);
    }
    return prefix + key;
  }

  private assertOpen(): void {
    if (this.closed) throw new CacheError('STORE_CLOSED', `cache database ${this.file} is closed`, { text: 'closed', values: { file: this.file } });
  }

  private every(ms: number, task: () => unknown): void {
    const timer = setInterval(() => {
      Promise.resolve()
        .then(task)
        .catch((error: unknown) => this.logger.error(`cache database ${this.file}: ${messageOf(error)}`));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private makeRow(value: unknown, ttlSeconds: number | undefined, evictable: boolean): Row {
    if (ttlSeconds !== undefined && (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds < 0)) {
      throw new CacheError('INVALID_TTL', `ttl must be a number of seconds >= 0, got ${String(ttlSeconds)}`, {
        text: 'ttl',
        values: { value: String(ttlSeconds) },
      });
    }
    const storedAt = now();
    const expiresAt = ttlSeconds ? storedAt + Math.round(ttlSeconds * 1000) : null;
    // a huge TTL would overflow to Infinity, which JSON cannot hold: the row would never be readable again
    if (expiresAt !== null && !(expiresAt <= MAX_DATE_MS)) {
      throw new CacheError('INVALID_TTL', `ttl of ${String(ttlSeconds)} s ends after the last date that can be stored`, {
        text: 'ttlTooLong',
        values: { value: String(ttlSeconds) },
      });
    }
    const text = rowText(encodeValue(value), storedAt, expiresAt);
    return { text, storedAt, expiresAt, size: Buffer.byteLength(text), evictable };
  }

  /** The row known in memory: a pending write wins over the read cache; null means known absent. */
  private memoryRow(fullKey: string): Row | null | undefined {
    const pending = this.pending.get(fullKey);
    if (pending !== undefined) return pending;
    return this.cache.get(fullKey);
  }

  /** Returns the row unless it expired; an expired row is queued for removal. */
  private live(fullKey: string, row: Row | null | undefined): Row | undefined {
    if (!row) return undefined;
    const at = now();
    if (row.storedAt > at + CLOCK_SLACK_MS) {
      // stamped in the future: the clock went back; the entry keeps its TTL from now, never longer
      row = restamp(row, at);
      this.enqueue(fullKey, row);
    }
    if (row.expiresAt !== null && row.expiresAt <= at) {
      this.enqueue(fullKey, null);
      return undefined;
    }
    if (this.policy.tracksReads) this.touched.set(fullKey, now());
    return row;
  }

  private async loadRow(fullKey: string): Promise<Row | null> {
    const known = this.memoryRow(fullKey);
    if (known !== undefined) return known;
    const epoch = this.epoch;
    let found: { value: unknown; evictable: unknown } | undefined;
    try {
      found = (await this.db.query(`SELECT value, evictable FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`, [hexKey(fullKey)]))[0] as typeof found;
    } catch (error) {
      if (isCorruption(error)) this.recover(error);
      throw new StoreIOError('read', this.file, error);
    }
    const row = found === undefined ? null : parseRow(String(found.value), Number(found.evictable) !== 0);
    if (epoch === this.epoch && !this.pending.has(fullKey)) this.cache.set(fullKey, row);
    return this.memoryRow(fullKey) ?? row;
  }

  /** Runs `task` after every earlier task for the same key has finished. */
  private withKey<T>(fullKey: string, task: () => Promise<T>): Promise<T> {
    const before = this.locks.get(fullKey);
    const run = before ? before.then(task, task) : task();
    const tail = run.catch(() => undefined);
    this.locks.set(fullKey, tail);
    void tail.then(() => {
      if (this.locks.get(fullKey) === tail) this.locks.delete(fullKey);
    });
    return run;
  }

  /** Whether `row` fits under the size cap by the counts in memory (store-size.ts). */
  private fits(fullKey: string, row: Row): boolean {
    return this.size.fits(this.memoryRow(fullKey), row, this.batch);
  }

  /**
   * Makes the counts exact before refusing a write: loads the row it replaces, re-reads the bytes on
   * disk and credits what the writes not yet committed will replace or delete there (deferred mode:
   * a delete frees its room at once, as it does in immediate mode, not at the next flush).
   */
  private async recount(fullKey: string): Promise<void> {
    if (this.memoryRow(fullKey) === undefined) await this.loadRow(fullKey);
    await this.exclusive(async () => {
      await this.size.readCounts((sql, params) => this.query(sql, params)); // no batch is in flight while this runs
      await this.size.creditPending(
        (sql, params) => this.query(sql, params),
        this.pending,
        this.batch,
        () => this.pause(),
      );
    });
  }

  /**
   * The synchronous part of update(): applies `change` to the current row and enqueues the result,
   * unless the new row may not fit (policy none): then `tooBig` holds it for a recount first.
   */
  private decide(fullKey: string, currentRow: Row | undefined, change: (current: Entry | undefined) => UpdateDecision): UpdateStep {
    const previous = currentRow ? toEntry(currentRow) : undefined;
    const decision = change(previous);
    if (decision === undefined) return { result: { previous, entry: previous } };
    if ('delete' in decision) {
      const commit = currentRow || this.pending.has(fullKey) ? this.enqueue(fullKey, null) : undefined;
      return { commit, result: { previous, entry: undefined } };
    }
    const row = this.makeRow(decision.value, decision.ttl, decision.evictable !== false);
    const result = { previous, entry: { value: decision.value, storedAt: row.storedAt, expiresAt: row.expiresAt } };
    if (!this.fits(fullKey, row)) return { tooBig: row, result };
    return { commit: this.enqueue(fullKey, row), result };
  }

  /** Enqueues a row once exact byte counts confirm it fits (else StoreFullError); call holding the key's lock. */
  private async enqueueAfterRecount(fullKey: string, row: Row): Promise<{ commit: Promise<void> }> {
    await this.recount(fullKey);
    this.size.assertRoom(this.memoryRow(fullKey), row, this.batch); // no await between this check and the enqueue
    return { commit: this.enqueue(fullKey, row) }; // wrapped: returning the promise itself would hold the lock until the commit
  }

  /** Puts a write into the current batch; the promise settles when that batch is committed. */
  private enqueue(fullKey: string, row: Row | null): Promise<void> {
    const previous = this.batch.puts.get(fullKey);
    if (previous) uncountRow(this.batch, previous);
    this.batch.puts.set(fullKey, row);
    if (row) countRow(this.batch, row);
    this.pending.set(fullKey, row);
    this.cache.set(fullKey, row);
    const commit = batchPromise(this.batch);
    // a full batch goes to the database now, so the next one fills while this one is written
    if (this.durability === 'immediate' && this.batch.puts.size >= EAGER_BATCH_ROWS) this.runFlush();
    else this.scheduleFlush(false);
    return this.durability === 'deferred' ? Promise.resolve() : commit;
  }

  private scheduleFlush(force: boolean): void {
    if (this.flushScheduled || this.retryTimer) return;
    if (this.durability === 'deferred' && !force && this.batch.puts.size < MAX_DEFERRED_PENDING) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.runFlush();
    });
  }

  /**
   * Seals the current batch and queues its write behind the writes already queued. While a failed
   * write waits for its retry, only an explicit flush (or close) writes before the retry is due.
   */
  private runFlush(explicit = false): void {
    if (this.retryTimer && !explicit) return;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const batch = this.batch;
    this.batch = newBatch(); // sealed: a write after this point belongs to the next batch and its commit
    if (batch.puts.size === 0 && batch.clears.length === 0 && this.touched.size === 0) {
      void this.exclusive(async () => batch.resolve?.());
      return;
    }
    this.size.writing(batch);
    const clears = batch.clears.length > 0 ? 1 : 0;
    this.queuedClears += clears;
    void this.exclusive(async () => {
      try {
        await this.writeSealed(batch);
      } finally {
        this.queuedClears -= clears;
      }
    });
  }

  /** Writes a sealed batch (run one at a time, in order): commits it, or hands its failure on. */
  private async writeSealed(batch: Batch): Promise<void> {
    this.inflightClears = batch.clears;
    try {
      await this.writeBatch(batch);
    } catch (error) {
      this.size.written(batch, false);
      this.inflightClears = [];
      this.failed(batch, error);
      return;
    }
    this.inflightClears = [];
    // the batch's writers wake up next tick, not in the tick that ran its last statement
    await this.pause();
    this.size.written(batch, true);
    for (const [key, row] of batch.puts) if (this.pending.get(key) === row) this.pending.delete(key);
    if (batch.clears.length > 0) this.forgetCleared(batch);
    batch.resolve?.();
    if (this.failure) {
      this.failure = undefined;
      this.retryDelay = 0;
      this.logger.warn(`cache database ${this.file}: writes are committed again`);
      this.emit('health', { ok: true } satisfies StoreHealth);
    }
    if (this.policy.evicts && this.size.committed.bytes > this.sizeLimitBytes) await this.eviction.run();
  }

  /**
   * A batch could not be written. In immediate mode its writers get the error and nothing of it stays.
   * In deferred mode its writes were already acknowledged: they stay in memory (reads keep seeing
   * them) and go back into the next batch, which is retried with a growing delay.
   */
  private failed(batch: Batch, error: unknown): void {
    const failure = new StoreIOError('write', this.file, error);
    const first = this.failure === undefined;
    this.failure = failure;
    if (this.durability === 'immediate') {
      for (const [key, row] of batch.puts) {
        if (this.pending.get(key) === row) {
          this.pending.delete(key);
          this.cache.delete(key);
        }
      }
      batch.reject?.(failure);
      this.failure = undefined; // the writers were told (their nodes show it); the next write tries afresh
      return;
    }
    for (const [key, row] of batch.puts) {
      if (this.pending.get(key) !== row || this.batch.puts.has(key)) continue; // a newer write replaced it
      this.batch.puts.set(key, row);
      if (row) countRow(this.batch, row);
    }
    this.batch.clears.unshift(...batch.clears);
    this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay ? this.retryDelay * 2 : RETRY_MIN_MS);
    this.logger.error(`${failure.message}; ${this.pending.size} writes kept in memory, retrying in ${Math.round(this.retryDelay / 1000)} s`);
    if (first) this.emit('health', { ok: false, error: failure } satisfies StoreHealth);
    batch.reject?.(failure);
    if (!this.closed && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.runFlush();
      }, this.retryDelay);
      this.retryTimer.unref();
    }
  }

  /** Runs database work one task at a time, in order. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.dbChain.then(task, task);
    this.dbChain = run.catch(() => undefined);
    return run;
  }

  /** Writes a batch in one transaction: all of it is committed, or none of it. */
  private async writeBatch(batch: Batch): Promise<void> {
    // a batch that is one statement is atomic by itself: no BEGIN/COMMIT round trips for it
    const onlyPuts = batch.clears.length === 0 && this.touched.size === 0 && batch.puts.size <= this.rowsPerStatement;
    if (onlyPuts && [...batch.puts.values()].every((row) => row !== null)) {
      await this.writeStatements(batch);
      return;
    }
    await this.query('BEGIN IMMEDIATE', []);
    this.inTransaction = true;
    try {
      await this.writeStatements(batch);
      await this.query('COMMIT', []);
    } catch (error) {
      await this.query('ROLLBACK', []).catch(() => undefined);
      throw error;
    } finally {
      this.inTransaction = false;
    }
  }

  private get rowsPerStatement(): number {
    return this.db.querySync ? SYNC_ROWS_PER_STATEMENT : ROWS_PER_STATEMENT;
  }

  /** With a synchronous driver, lets other work run before the next statement. */
  private async pause(): Promise<void> {
    if (this.db.querySync) await nextTick();
  }

  private async writeStatements(batch: Batch): Promise<void> {
    for (const prefix of batch.clears) {
      // a big namespace goes a thousand rows a statement, so a clear never holds the event loop for long
      for (;;) {
        const gone = await this.query(
          `DELETE FROM ${TABLE} WHERE key IN (SELECT key FROM ${TABLE} WHERE key >= ? AND key < ? LIMIT ${ROWS_PER_STATEMENT}) RETURNING 1`,
          [prefix, rangeEnd(prefix)],
        );
        if (gone.length < ROWS_PER_STATEMENT) break;
        await this.pause();
      }
    }
    const statements = writeStatementsOf(batch.puts, this.touched, this.rowsPerStatement);
    this.touched.clear();
    for (let i = 0; i < statements.length; i++) {
      if (i > 0) await this.pause();
      await this.query(statements[i][0], statements[i][1]);
    }
  }

  /**
   * The process is exiting (an uncaught error, process.exit) with writes not yet committed. A
   * synchronous driver (node:sqlite) writes them now; sqlite3 cannot, so the log says what is lost.
   */
  private writeAtExit(): void {
    if (this.closed) return;
    const clears = [...this.inflightClears, ...this.batch.clears];
    if (this.pending.size === 0 && clears.length === 0) return;
    const querySync = this.db.querySync;
    if (!querySync) {
      this.logger.error(
        `cache database ${this.file}: the process exited with ${this.pending.size} writes not yet committed; they are lost (the sqlite3 driver cannot write during exit)`,
      );
      return;
    }
    try {
      if (this.inTransaction) querySync('ROLLBACK');
      querySync('BEGIN IMMEDIATE');
      for (const prefix of clears) querySync(`DELETE FROM ${TABLE} WHERE key >= ? AND key < ?`, [prefix, rangeEnd(prefix)]);
      for (const [sql, params] of writeStatementsOf(this.pending, new Map(), ROWS_PER_STATEMENT)) querySync(sql, params);
      querySync('COMMIT');
    } catch (error) {
      this.logger.error(`cache database ${this.file}: ${this.pending.size} writes lost at exit: ${messageOf(error)}`);
    }
  }

  /** After a clear is committed: drops what reads cached from disk while it waited, keeping writes made after it. */
  private forgetCleared(batch: Batch): void {
    this.epoch++;
    for (const key of [...this.cache.keys()]) {
      if (batch.puts.has(key) || this.pending.has(key)) continue;
      if (batch.clears.some((prefix) => key.startsWith(prefix))) this.cache.delete(key);
    }
  }

  /** Drops keys removed on disk from the read cache, unless a newer write is pending. */
  private forget(keys: string[]): void {
    this.epoch++;
    for (const key of keys) if (!this.pending.has(key)) this.cache.delete(key);
  }

  private async query(sql: string, params: readonly unknown[]): Promise<unknown[]> {
    try {
      return await this.db.query(sql, params);
    } catch (error) {
      if (error instanceof CacheError) throw error;
      if (isCorruption(error)) this.recover(error);
      throw new StoreIOError('use', this.file, error);
    }
  }

  // ---- inspection: what the admin API (and the editor's sidebar through it) reads (store-queries.ts) ----

  /** One page of a namespace's unexpired keys, filtered, sorted and paged in the database. */
  listKeys(namespace: string, options: KeyListOptions = {}): Promise<KeyPage> {
    return this.queries.listKeys(namespace, options);
  }

  /** Entries, expired entries, bytes and the last write of each namespace on disk (of one, if named). */
  namespaceStats(namespace?: string): Promise<NamespaceStats[]> {
    return this.queries.namespaceStats(namespace);
  }

  /** One unexpired entry as it is on disk, with its size and whether eviction may remove it. */
  inspect(namespace: string, key: string): Promise<InspectedEntry | undefined> {
    return this.queries.inspect(namespace, key);
  }
}

/** The driver used when a store names none: FLOW_CACHE_DRIVER if set, else the best this Node.js has. */
function defaultDriver(): DriverChoice {
  const named = process.env.FLOW_CACHE_DRIVER;
  return named && (DRIVER_CHOICES as readonly string[]).includes(named) ? (named as DriverChoice) : 'auto';
}

/** Moves a damaged database of ours aside, logs where it went, and leaves an empty file in its place. */
function setAside(file: string, why: string, logger: StoreLogger): void {
  const aside = moveAside(file, now());
  logger.error(`cache database ${file} is damaged (${why}); moved it to ${aside} and started an empty one`);
  prepareFile(file);
}
