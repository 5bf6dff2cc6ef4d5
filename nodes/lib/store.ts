import { EventEmitter } from 'node:events';
import { now } from './clock';
import { DRIVER_CHOICES, type DriverChoice, type DriverName, openDriver, openPlain, resolveDriver, type SqlDriver } from './driver';
import { CacheError, formatBytes, messageOf, StoreFullError, StoreIOError } from './errors';
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
import { configureConnection, ensureSchema, META_TABLE, TABLE } from './schema';
import { decodeJson, encodeValue, type Json } from './serialize';
import { checkFile, isCorruption, moveAside, prepareDirectory, prepareFile } from './sqlite-file';

export type { Durability, EvictionPolicy, StoreLogger, StoreOptions } from './options';
export { DURABILITIES, EVICTION_POLICIES, STORE_DEFAULTS } from './options';

/** What the store tells its users about itself ('health' and 'evicted' events). */
export interface StoreHealth {
  ok: boolean;
  /** The failure, while writes cannot be committed. */
  error?: Error;
}

export interface EvictionRound {
  entries: number;
  bytes: number;
  at: number;
}

/** A stored value with its timestamps (ms since the epoch). */
export interface Entry {
  value: unknown;
  storedAt: number;
  /** null: never expires. */
  expiresAt: number | null;
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

// One row as held in memory: `text` is exactly what the value column holds.
interface Row {
  text: string;
  storedAt: number;
  expiresAt: number | null;
  size: number;
  /** Whether the size limit may remove the row. */
  evictable: boolean;
  /** The parsed value column, kept after the first read: decodeJson builds a fresh copy from it each time. */
  parsed?: { v: Json };
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

// rows arrive as one JSON array of [hexKey(key), value text, size, storedAt, expiresAt, evictable]; "WHERE true" lets SQLite parse the upsert
const UPSERT_ROWS = `INSERT INTO ${TABLE}(key, value, size, stored_at, accessed_at, expires_at, evictable)
  SELECT CAST(unhex(r.value ->> 0) AS TEXT), r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 3, r.value ->> 4, r.value ->> 5
  FROM json_each(?) AS r WHERE true
  ON CONFLICT(key) DO UPDATE SET value = excluded.value, size = excluded.size, stored_at = excluded.stored_at,
  accessed_at = excluded.accessed_at, expires_at = excluded.expires_at, evictable = excluded.evictable`;
// one row, bound directly (a write committed on its own, before set() returns)
const UPSERT_ONE = `INSERT INTO ${TABLE}(key, value, size, stored_at, accessed_at, expires_at, evictable)
  VALUES (CAST(unhex(?1) AS TEXT), ?2, ?3, ?4, ?4, ?5, ?6)
  ON CONFLICT(key) DO UPDATE SET value = excluded.value, size = excluded.size, stored_at = excluded.stored_at,
  accessed_at = excluded.accessed_at, expires_at = excluded.expires_at, evictable = excluded.evictable`;
const DELETE_ONE = `DELETE FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`;
// rows stamped after `now` (the clock went back): stamped anew at `now`, keeping their TTL from there
const RESTAMP_FUTURE = `UPDATE ${TABLE} SET stored_at = ?1,
  expires_at = CASE WHEN expires_at IS NULL THEN NULL ELSE ?1 + (expires_at - stored_at) END,
  value = '{"s":' || ?1 || ',"e":' || COALESCE(?1 + (expires_at - stored_at), 'null') || substr(value, instr(value, ',"v":')),
  size = length(CAST('{"s":' || ?1 || ',"e":' || COALESCE(?1 + (expires_at - stored_at), 'null') || substr(value, instr(value, ',"v":')) AS BLOB))
  WHERE key IN (SELECT key FROM ${TABLE} WHERE stored_at > ?2 LIMIT ${1000}) RETURNING lower(hex(key)) AS hk`;
const MAX_DEFERRED_PENDING = 10_000;
const ROWS_PER_STATEMENT = 1000;
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
const EVICTION_LOG_MS = 60_000;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The part of a full key that names the namespace: hex, so SQL LIKE and case folding cannot mix namespaces. */
export function encodeNamespace(namespace: string): string {
  if (typeof namespace !== 'string' || namespace.length === 0) throw new CacheError('INVALID_NAMESPACE', 'namespace must be a non-empty string');
  return Buffer.from(namespace, 'utf8').toString('hex');
}

/** A key as UTF-8 hex, for passing keys inside a JSON parameter (SQLite's JSON functions cut text at U+0000). */
function hexKey(key: string): string {
  return Buffer.from(key, 'utf8').toString('hex');
}

function fromHex(hex: string): string {
  return Buffer.from(hex, 'hex').toString('utf8');
}

function rangeEnd(prefix: string): string {
  // prefix ends with ':'; ';' is the next code point, so [prefix, end) holds exactly the namespace
  return `${prefix.slice(0, -1)};`;
}

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

/** The entry of a row, a fresh copy of its value; the parsed text is kept for the next read (only read rows are parsed). */
function toEntry(row: Row): Entry {
  row.parsed ??= JSON.parse(row.text) as { v: Json };
  const parsed = row.parsed;
  return { value: decodeJson(parsed.v), storedAt: row.storedAt, expiresAt: row.expiresAt };
}

function rowText(valueText: string, storedAt: number, expiresAt: number | null): string {
  return `{"s":${storedAt},"e":${expiresAt === null ? 'null' : expiresAt},"v":${valueText}}`;
}

function parseRow(text: string, evictable: boolean): Row {
  const parsed = JSON.parse(text) as { s: number; e: number | null };
  return { text, storedAt: parsed.s, expiresAt: parsed.e, size: Buffer.byteLength(text), evictable };
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
  private committedBytes = 0;
  private inflightBytes = 0;
  private committedPinned = 0;
  private inflightPinned = 0;
  /**
   * What the counts above overstate, as the last recount found: rows in the file that writes not yet
   * committed replace or delete (the counts add a write's bytes but subtract nothing for what it
   * replaces). Dropped whenever the counts are read from the file again or a batch fails.
   */
  private credit = { bytes: 0, pinned: 0 };
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
  private evictedSinceLog = { entries: 0, bytes: 0 };
  private lastEvictionLog = Number.NEGATIVE_INFINITY;
  /** The last eviction round, for statuses and inspection. */
  lastEviction: EvictionRound | undefined;
  private readonly onExit = (): void => this.writeAtExit();

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
      await store.readCounts();
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
        this.committedBytes = 0;
        this.committedPinned = 0;
        this.credit = { bytes: 0, pinned: 0 };
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
    return (await this.readCounts()).bytes;
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
      if (row) querySync(UPSERT_ONE, [hexKey(fullKey), row.text, row.size, row.storedAt, row.expiresAt, row.evictable ? 1 : 0]);
      else querySync(DELETE_ONE, [hexKey(fullKey)]);
    } catch {
      return false;
    }
    this.committedBytes += (row?.size ?? 0) - (replaced?.size ?? 0);
    this.committedPinned += (row && !row.evictable ? row.size : 0) - (replaced && !replaced.evictable ? replaced.size : 0);
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
        if (queued) this.uncount(this.batch, queued);
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
  async keys(namespace: string): Promise<string[]> {
    await this.flush();
    const prefix = `${encodeNamespace(namespace)}:`;
    const rows = (await this.query(
      `SELECT lower(hex(key)) AS hk FROM ${TABLE} WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key`,
      [prefix, rangeEnd(prefix), now()],
    )) as { key: string }[];
    return (rows as unknown as { hk: string }[]).map((r) => fromHex(r.hk).slice(prefix.length));
  }

  /**
   * Every unexpired entry of a namespace, read from disk in one pass after a flush (for loading a
   * namespace into memory at start; not a hot path).
   */
  async entries(namespace: string): Promise<[string, Entry][]> {
    await this.flush();
    const prefix = `${encodeNamespace(namespace)}:`;
    const rows = (await this.query(
      `SELECT lower(hex(key)) AS hk, value, evictable FROM ${TABLE} WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key`,
      [prefix, rangeEnd(prefix), now()],
    )) as { hk: string; value: string; evictable: number }[];
    return rows.map((r) => [fromHex(r.hk).slice(prefix.length), toEntry(parseRow(String(r.value), Number(r.evictable) !== 0))]);
  }

  /** The names of the namespaces that hold rows on disk (after a flush). */
  async namespaces(): Promise<string[]> {
    await this.flush();
    const rows = (await this.query(`SELECT DISTINCT substr(key, 1, instr(key, ':') - 1) AS ns FROM ${TABLE}`, [])) as { ns: string }[];
    return rows.map((r) => Buffer.from(String(r.ns), 'hex').toString('utf8')).sort();
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

  /** Bytes the store would hold once `row` replaces what memory knows of the key (an upper bound). */
  private bytesAfter(fullKey: string, row: Row): number {
    const replaced = this.memoryRow(fullKey);
    return this.committedBytes + this.inflightBytes + this.batch.bytes - this.credit.bytes + row.size - (replaced ? replaced.size : 0);
  }

  /**
   * Bytes that eviction could not free once `row` is stored: every row that may not be evicted, plus
   * `row` itself (eviction never removes the write that made room necessary). An upper bound.
   */
  private keptAfter(fullKey: string, row: Row): number {
    const replaced = this.memoryRow(fullKey);
    const replacedPinned = replaced && !replaced.evictable ? replaced.size : 0;
    return this.committedPinned + this.inflightPinned + this.batch.pinned - this.credit.pinned + row.size - replacedPinned;
  }

  /**
   * Whether `row` fits under the size cap by the counts in memory: with eviction off, the whole store
   * must fit; with eviction on, the rows eviction may not remove (and `row`) must.
   */
  private fits(fullKey: string, row: Row): boolean {
    if (!this.policy.evicts) return this.bytesAfter(fullKey, row) <= this.sizeLimitBytes;
    return this.keptAfter(fullKey, row) <= this.sizeLimitBytes;
  }

  /**
   * Makes the counts exact before refusing a write: loads the row it replaces, re-reads the bytes on
   * disk and credits what the writes not yet committed will replace or delete there (deferred mode:
   * a delete frees its room at once, as it does in immediate mode, not at the next flush).
   */
  private async recount(fullKey: string): Promise<void> {
    if (this.memoryRow(fullKey) === undefined) await this.loadRow(fullKey);
    await this.exclusive(async () => {
      await this.readCounts(); // no batch is in flight while this runs
      await this.creditPending();
    });
  }

  /**
   * Sets the credit: the rows in the file that pending writes replace or delete. Run with the database
   * to itself (nothing is written while it reads), after readCounts. A key written while it reads gets
   * no credit, which only leaves the counts an upper bound, as they are without one.
   */
  private async creditPending(): Promise<void> {
    const keys = [...this.pending.keys()];
    let replacedBytes = 0;
    let replacedPinned = 0;
    for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
      if (i > 0) await this.pause();
      const chunk = keys.slice(i, i + ROWS_PER_STATEMENT).map(hexKey);
      const [found] = (await this.query(
        `SELECT total(size) AS bytes, total((1 - evictable) * size) AS pinned FROM ${TABLE} WHERE key IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))`,
        [JSON.stringify(chunk)],
      )) as { bytes: number; pinned: number }[];
      replacedBytes += Number(found.bytes);
      replacedPinned += Number(found.pinned);
    }
    // what the file will hold once every pending write is in it, against what the counts say now
    let pendingBytes = 0;
    let pendingPinned = 0;
    for (const row of this.pending.values()) {
      if (!row) continue;
      pendingBytes += row.size;
      if (!row.evictable) pendingPinned += row.size;
    }
    const counted = this.committedBytes + this.inflightBytes + this.batch.bytes;
    const countedPinned = this.committedPinned + this.inflightPinned + this.batch.pinned;
    this.credit = {
      bytes: Math.max(0, counted - (this.committedBytes - replacedBytes + pendingBytes)),
      pinned: Math.max(0, countedPinned - (this.committedPinned - replacedPinned + pendingPinned)),
    };
  }

  /** Throws StoreFullError if `row` does not fit; the caller enqueues right after, with no await between. */
  private assertRoom(fullKey: string, row: Row): void {
    if (this.fits(fullKey, row)) return;
    if (!this.policy.evicts) throw new StoreFullError(this.sizeLimitBytes, this.bytesAfter(fullKey, row));
    const kept = this.keptAfter(fullKey, row) - row.size;
    if (kept > 0) {
      throw new StoreFullError(
        this.sizeLimitBytes,
        row.size,
        `${formatBytes(kept)} of it is counter and cooldown state, which is never evicted`,
        'fullPinned',
        {
          kept: formatBytes(kept),
        },
      );
    }
    throw new StoreFullError(this.sizeLimitBytes, row.size, 'a single value may not be larger than the limit', 'fullTooLarge');
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
    this.assertRoom(fullKey, row); // no await between this check and the enqueue
    return { commit: this.enqueue(fullKey, row) }; // wrapped: returning the promise itself would hold the lock until the commit
  }

  /** Puts a write into the current batch; the promise settles when that batch is committed. */
  private enqueue(fullKey: string, row: Row | null): Promise<void> {
    const previous = this.batch.puts.get(fullKey);
    if (previous) this.uncount(this.batch, previous);
    this.batch.puts.set(fullKey, row);
    if (row) this.count(this.batch, row);
    this.pending.set(fullKey, row);
    this.cache.set(fullKey, row);
    const commit = batchPromise(this.batch);
    // a full batch goes to the database now, so the next one fills while this one is written
    if (this.durability === 'immediate' && this.batch.puts.size >= EAGER_BATCH_ROWS) this.runFlush();
    else this.scheduleFlush(false);
    return this.durability === 'deferred' ? Promise.resolve() : commit;
  }

  private count(batch: Batch, row: Row): void {
    batch.bytes += row.size;
    if (!row.evictable) batch.pinned += row.size;
  }

  private uncount(batch: Batch, row: Row): void {
    batch.bytes -= row.size;
    if (!row.evictable) batch.pinned -= row.size;
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
    this.inflightBytes += batch.bytes;
    this.inflightPinned += batch.pinned;
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
      this.inflightBytes -= batch.bytes;
      this.inflightPinned -= batch.pinned;
      this.inflightClears = [];
      this.failed(batch, error);
      return;
    }
    this.inflightClears = [];
    // the batch's writers wake up next tick, not in the tick that ran its last statement
    await this.pause();
    this.committedBytes += batch.bytes;
    this.inflightBytes -= batch.bytes;
    this.committedPinned += batch.pinned;
    this.inflightPinned -= batch.pinned;
    for (const [key, row] of batch.puts) if (this.pending.get(key) === row) this.pending.delete(key);
    if (batch.clears.length > 0) this.forgetCleared(batch);
    batch.resolve?.();
    if (this.failure) {
      this.failure = undefined;
      this.retryDelay = 0;
      this.logger.warn(`cache database ${this.file}: writes are committed again`);
      this.emit('health', { ok: true } satisfies StoreHealth);
    }
    if (this.policy.evicts && this.committedBytes > this.sizeLimitBytes) await this.evict();
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
    this.credit = { bytes: 0, pinned: 0 }; // what the batch would have replaced is in the file still
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
      if (row) this.count(this.batch, row);
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

  /**
   * Deletes cache entries (never counter or cooldown state) by the eviction policy until the store is
   * back under its size limit; logs each round (at most once a minute, with the totals since).
   */
  private async evict(): Promise<void> {
    await this.readCounts();
    const order = this.policy.orderColumn ?? 'stored_at';
    let entries = 0;
    let bytes = 0;
    while (this.committedBytes > this.sizeLimitBytes) {
      const candidates = (await this.query(
        `SELECT lower(hex(key)) AS hk, size FROM ${TABLE} WHERE evictable = 1 ORDER BY ${order}, rowid LIMIT ${ROWS_PER_STATEMENT}`,
        [],
      )) as { hk: string; size: number }[];
      if (candidates.length === 0) break;
      const victims: string[] = [];
      let excess = this.committedBytes - this.sizeLimitBytes;
      for (const c of candidates) {
        if (excess <= 0) break;
        victims.push(c.hk);
        excess -= Number(c.size);
        bytes += Number(c.size);
      }
      await this.query(`DELETE FROM ${TABLE} WHERE key IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))`, [JSON.stringify(victims)]);
      entries += victims.length;
      this.forget(victims.map(fromHex));
      await this.readCounts();
      await this.pause();
    }
    if (entries > 0) this.evicted(entries, bytes);
  }

  private evicted(entries: number, bytes: number): void {
    const at = now();
    this.lastEviction = { entries, bytes, at };
    this.evictedSinceLog.entries += entries;
    this.evictedSinceLog.bytes += bytes;
    if (at - this.lastEvictionLog >= EVICTION_LOG_MS || at < this.lastEvictionLog) {
      const { entries: n, bytes: b } = this.evictedSinceLog;
      this.logger.warn(
        `cache database ${this.file} reached its size limit of ${formatBytes(this.sizeLimitBytes)}: evicted ${n} cache entries (${formatBytes(b)}) by ${this.evictionPolicy}`,
      );
      this.evictedSinceLog = { entries: 0, bytes: 0 };
      this.lastEvictionLog = at;
    }
    this.emit('evicted', this.lastEviction);
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

  /** Reads the byte counters the triggers keep, into the committed counts. */
  private async readCounts(): Promise<{ bytes: number; pinned: number }> {
    const rows = (await this.query(`SELECT name, value FROM ${META_TABLE} WHERE name IN ('bytes', 'pinned_bytes')`, [])) as {
      name: string;
      value: number;
    }[];
    const counts = { bytes: 0, pinned: 0 };
    for (const row of rows) {
      if (row.name === 'bytes') counts.bytes = Number(row.value);
      else counts.pinned = Number(row.value);
    }
    this.committedBytes = counts.bytes;
    this.committedPinned = counts.pinned;
    this.credit = { bytes: 0, pinned: 0 }; // the file's counts hold what committed writes replaced
    return counts;
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

  // ---- inspection: what the admin API (and the editor's sidebar through it) reads ----

  /**
   * One page of a namespace's unexpired keys, filtered, sorted and paged in the database, never by
   * loading every key: `filter` matches the start of a key (`match: 'prefix'`, a range of the key
   * index) or any part of it (`'substring'`, ASCII letters in either case); sorted by key or by last
   * write (newest first); the next page starts after `after`, the last key of the page before. Writes
   * not yet committed are committed first, so the page shows what the nodes wrote.
   */
  async listKeys(namespace: string, options: KeyListOptions = {}): Promise<KeyPage> {
    this.assertOpen();
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_KEY_PAGE) {
      throw new CacheError('INVALID_INPUT', `limit must be a whole number from 0 to ${MAX_KEY_PAGE}, got ${String(options.limit)}`);
    }
    const prefix = `${encodeNamespace(namespace)}:`;
    const filter = options.filter ?? '';
    const match = options.match ?? 'prefix';
    const sort = options.sort ?? 'key';
    await this.flush();
    // [low, low + 0xFF) holds every key that starts with low: no UTF-8 text has a byte 0xFF
    const low = Buffer.from(match === 'prefix' ? prefix + filter : prefix, 'utf8');
    const where = ['key >= CAST(unhex(?) AS TEXT)', 'key < CAST(unhex(?) AS TEXT)', '(expires_at IS NULL OR expires_at > ?)'];
    const params: unknown[] = [low.toString('hex'), `${low.toString('hex')}ff`, now()];
    if (match === 'substring' && filter !== '') {
      // compared as bytes after the namespace (text functions stop at a U+0000); SQLite's lower() folds
      // ASCII letters only, and the filter is folded the same way
      where.push(`instr(CAST(lower(CAST(substr(CAST(key AS BLOB), ${prefix.length + 1}) AS TEXT)) AS BLOB), unhex(?)) > 0`);
      params.push(hexKey(filter.replace(/[A-Z]+/g, (letters) => letters.toLowerCase())));
    }
    const [{ n }] = (await this.query(`SELECT count(*) AS n FROM ${TABLE} WHERE ${where.join(' AND ')}`, params)) as { n: number }[];
    if (limit === 0) return { keys: [], total: Number(n) };
    const after = options.after;
    let order = 'key';
    if (sort === 'stored') {
      order = 'stored_at DESC, key';
      if (after) {
        where.push('(stored_at < ? OR (stored_at = ? AND key > CAST(unhex(?) AS TEXT)))');
        params.push(after.storedAt ?? Number.MAX_SAFE_INTEGER, after.storedAt ?? Number.MAX_SAFE_INTEGER, hexKey(prefix + after.key));
      }
    } else if (after) {
      where.push('key > CAST(unhex(?) AS TEXT)');
      params.push(hexKey(prefix + after.key));
    }
    const rows = (await this.query(
      `SELECT lower(hex(key)) AS hk, stored_at, expires_at, size, evictable FROM ${TABLE} WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${limit + 1}`,
      params,
    )) as { hk: string; stored_at: number; expires_at: number | null; size: number; evictable: number }[];
    const keys: KeyInfo[] = rows.slice(0, limit).map((r) => ({
      key: fromHex(r.hk).slice(prefix.length),
      storedAt: Number(r.stored_at),
      expiresAt: r.expires_at === null ? null : Number(r.expires_at),
      size: Number(r.size),
      evictable: Number(r.evictable) !== 0,
    }));
    const last = keys[keys.length - 1];
    return { keys, total: Number(n), next: rows.length > limit ? { key: last.key, storedAt: last.storedAt } : undefined };
  }

  /**
   * Entries, expired entries not yet removed, bytes and the last write of each namespace on disk (of
   * one namespace, if named), after committing pending writes.
   */
  async namespaceStats(namespace?: string): Promise<NamespaceStats[]> {
    this.assertOpen();
    await this.flush();
    const range = namespace === undefined ? '' : 'WHERE key >= ?2 AND key < ?3';
    const params: unknown[] = [now()];
    if (namespace !== undefined) {
      const prefix = `${encodeNamespace(namespace)}:`;
      params.push(prefix, rangeEnd(prefix));
    }
    const rows = (await this.query(
      `SELECT substr(key, 1, instr(key, ':') - 1) AS ns, count(*) AS entries, total(expires_at IS NOT NULL AND expires_at <= ?1) AS expired,
      total(size) AS bytes, max(stored_at) AS last FROM ${TABLE} ${range} GROUP BY ns`,
      params,
    )) as { ns: string; entries: number; expired: number; bytes: number; last: number | null }[];
    return rows
      .map((r) => ({
        namespace: fromHex(String(r.ns)),
        entries: Number(r.entries),
        expired: Number(r.expired),
        bytes: Number(r.bytes),
        lastWrite: r.last === null ? null : Number(r.last),
      }))
      .sort((a, b) => (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0));
  }

  /**
   * One unexpired entry as it is on disk, with its size and whether eviction may remove it, without
   * counting as a use (least-recently-used eviction does not see it); pending writes are committed first.
   */
  async inspect(namespace: string, key: string): Promise<InspectedEntry | undefined> {
    const fullKey = this.fullKey(namespace, key);
    await this.flush();
    const found = (await this.query(`SELECT value, size, evictable FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`, [hexKey(fullKey)]))[0] as
      | { value: string; size: number; evictable: number }
      | undefined;
    if (!found) return undefined;
    const row = parseRow(String(found.value), Number(found.evictable) !== 0);
    if (row.expiresAt !== null && row.expiresAt <= now()) return undefined;
    return { ...toEntry(row), size: Number(found.size), evictable: row.evictable };
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

/** A row stamped at `at` instead of its future stamp, keeping its TTL (the value text is reused as is). */
function restamp(row: Row, at: number): Row {
  const expiresAt = row.expiresAt === null ? null : at + Math.max(0, row.expiresAt - row.storedAt);
  const text = `{"s":${at},"e":${expiresAt === null ? 'null' : expiresAt}${row.text.slice(row.text.indexOf(',"v":'))}`;
  return { text, storedAt: at, expiresAt, size: Buffer.byteLength(text), evictable: row.evictable, parsed: row.parsed };
}

/** The statements that write `puts` (null: delete) and access times: a thousand rows each, one JSON parameter per statement. */
function writeStatementsOf(puts: Map<string, Row | null>, touched: Map<string, number>, perStatement: number): [string, unknown[]][] {
  const statements: [string, unknown[]][] = [];
  const deletes: string[] = [];
  const rows: [string, Row][] = [];
  for (const [key, row] of puts) {
    if (row) rows.push([key, row]);
    else deletes.push(key);
  }
  for (let i = 0; i < deletes.length; i += ROWS_PER_STATEMENT) {
    const chunk = deletes.slice(i, i + ROWS_PER_STATEMENT);
    statements.push([`DELETE FROM ${TABLE} WHERE key IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))`, [JSON.stringify(chunk.map(hexKey))]]);
  }
  for (let i = 0; i < rows.length; i += perStatement) {
    // one JSON parameter per statement: a short SQL text, cheap to prepare, and no per-value binding
    const chunk = rows.slice(i, i + perStatement).map(([key, row]) => [hexKey(key), row.text, row.size, row.storedAt, row.expiresAt, row.evictable ? 1 : 0]);
    statements.push([UPSERT_ROWS, [JSON.stringify(chunk)]]);
  }
  if (touched.size > 0) {
    const touches = [...touched];
    for (let i = 0; i < touches.length; i += ROWS_PER_STATEMENT) {
      statements.push([
        `UPDATE ${TABLE} SET accessed_at = t.value ->> 1 FROM json_each(?) AS t WHERE ${TABLE}.key = CAST(unhex(t.value ->> 0) AS TEXT)`,
        [JSON.stringify(touches.slice(i, i + ROWS_PER_STATEMENT).map(([key, at]) => [hexKey(key), at]))],
      ]);
    }
  }
  return statements;
}

/** The most keys one page of listKeys holds. */
export const MAX_KEY_PAGE = 1000;

export interface KeyListOptions {
  /** Text the keys start with (`match: 'prefix'`, default) or hold (`'substring'`); empty: every key. */
  filter?: string;
  match?: 'prefix' | 'substring';
  /** 'key' (default, ascending) or 'stored' (last write first). */
  sort?: 'key' | 'stored';
  /** Keys per page, 0 to MAX_KEY_PAGE (default 50; 0: only the total). */
  limit?: number;
  /** The last key of the page before (with its storedAt when sorted by last write). */
  after?: { key: string; storedAt?: number };
}

/** A key as a listing shows it (ms since the epoch). */
export interface KeyInfo {
  key: string;
  storedAt: number;
  expiresAt: number | null;
  /** Bytes of the row as the size limit counts them. */
  size: number;
  evictable: boolean;
}

export interface KeyPage {
  keys: KeyInfo[];
  /** Keys matching the filter, in every page. */
  total: number;
  /** Where the next page starts; absent on the last page. */
  next?: { key: string; storedAt: number };
}

export interface NamespaceStats {
  namespace: string;
  /** Rows on disk, expired ones included. */
  entries: number;
  /** Rows past their expiry that nothing has removed yet. */
  expired: number;
  bytes: number;
  /** The latest write (ms), null if none is known. */
  lastWrite: number | null;
}

export interface InspectedEntry extends Entry {
  size: number;
  evictable: boolean;
}
