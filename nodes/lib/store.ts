import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { now } from './clock';
import { CacheError, StoreFullError, StoreIOError } from './errors';
import { LruMap } from './lru';
import { decodeJson, encodeValue, type Json } from './serialize';
import { damageOf, isCorruption, moveAside, prepareFile } from './sqlite-file';

export type EvictionPolicy = 'least-recently-stored' | 'least-recently-used' | 'none';
export type Durability = 'immediate' | 'deferred';

export const EVICTION_POLICIES: readonly EvictionPolicy[] = ['least-recently-stored', 'least-recently-used', 'none'];
export const DURABILITIES: readonly Durability[] = ['immediate', 'deferred'];

/** Where the store reports what it cannot throw to a caller (flush failures in deferred mode, recovery). */
export interface StoreLogger {
  warn(message: string): void;
  error(message: string): void;
}

export interface StoreOptions {
  /** Limit of stored bytes (values and their metadata), default 100 MB. */
  sizeLimitMb?: number;
  evictionPolicy?: EvictionPolicy;
  durability?: Durability;
  /** Seconds between flushes in deferred mode (default 30). */
  flushInterval?: number;
  /** Seconds between sweeps of expired entries (default 60; 0 = no active sweep). */
  sweepInterval?: number;
  /** Entries held in the in-memory read cache (default 10,000). */
  readCacheEntries?: number;
  logger?: StoreLogger;
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

/** What an update function returns: a value to store (with an optional TTL in seconds), `{delete: true}` or undefined to change nothing. */
export type UpdateDecision = { value: unknown; ttl?: number } | { delete: true } | undefined;

// One row as held in memory: `text` is exactly what the value column holds.
interface Row {
  text: string;
  storedAt: number;
  expiresAt: number | null;
  size: number;
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
  promise?: Promise<void>;
  resolve?: () => void;
  reject?: (error: unknown) => void;
}

const TABLE = 'keyv';
// rows arrive as one JSON array of [hexKey(key), value text, size, storedAt, expiresAt]; "WHERE true" lets SQLite parse the upsert
const UPSERT_ROWS = `INSERT INTO ${TABLE}(key, value, size, stored_at, accessed_at, expires_at)
  SELECT CAST(unhex(r.value ->> 0) AS TEXT), r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 3, r.value ->> 4 FROM json_each(?) AS r WHERE true
  ON CONFLICT(key) DO UPDATE SET value = excluded.value, size = excluded.size, stored_at = excluded.stored_at,
  accessed_at = excluded.accessed_at, expires_at = excluded.expires_at`;
const MAX_DEFERRED_PENDING = 10_000;
const ROWS_PER_STATEMENT = 1000;
const EAGER_BATCH_ROWS = 2000;
const TOUCH_FLUSH_MS = 1_000;
const MAX_DATE_MS = 8.64e15; // the last instant a JavaScript Date can hold
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

function rangeEnd(prefix: string): string {
  // prefix ends with ':'; ';' is the next code point, so [prefix, end) holds exactly the namespace
  return `${prefix.slice(0, -1)};`;
}

function newBatch(): Batch {
  return { puts: new Map(), clears: [], bytes: 0 };
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

function parseRow(text: string): Row {
  const parsed = JSON.parse(text) as { s: number; e: number | null };
  return { text, storedAt: parsed.s, expiresAt: parsed.e, size: Buffer.byteLength(text) };
}

/**
 * A persistent key-value store in one SQLite file (through keyv's SQLite adapter), with namespaces,
 * expiry, a size cap, group commit, a write-through read cache and per-key atomic updates.
 */
export class Store {
  readonly file: string;
  readonly sizeLimitBytes: number;
  readonly evictionPolicy: EvictionPolicy;
  readonly durability: Durability;

  private adapter!: KeyvSqlite;
  private keyv!: Keyv<string>;
  private readonly options: StoreOptions;
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
  private epoch = 0;
  private closed = false;
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(file: string, adapter: KeyvSqlite, options: StoreOptions, logger: StoreLogger) {
    this.file = file;
    this.options = options;
    this.logger = logger;
    this.sizeLimitBytes = Math.round((options.sizeLimitMb ?? 100) * 1024 * 1024);
    this.evictionPolicy = options.evictionPolicy ?? 'least-recently-stored';
    this.durability = options.durability ?? 'immediate';
    this.cache = new LruMap(options.readCacheEntries ?? 10_000);
    this.attach(adapter);
    const sweepSeconds = options.sweepInterval ?? 60;
    if (sweepSeconds > 0) this.every(sweepSeconds * 1000, () => this.sweep());
    if (this.durability === 'deferred') this.every((options.flushInterval ?? 30) * 1000, () => this.flush());
    if (this.evictionPolicy === 'least-recently-used') this.every(TOUCH_FLUSH_MS, () => this.touched.size > 0 && this.flush());
  }

  private attach(adapter: KeyvSqlite): void {
    this.adapter = adapter;
    this.keyv = new Keyv<string>({
      store: adapter,
      useKeyPrefix: false,
      throwOnErrors: true,
      // rows carry their own expiry; keyv sees plain text and never expires or rewrites it
      serialize: (data) => String((data as { value: unknown }).value),
      deserialize: <Value>(text: string) => ({ value: text as unknown as Value }),
    });
    this.keyv.on('error', () => undefined); // thrown to the caller by throwOnErrors
  }

  /** Opens (creating if needed) the database file; a damaged file is moved aside and replaced. */
  static async open(file: string, options: StoreOptions = {}): Promise<Store> {
    const logger = options.logger ?? { warn: () => undefined, error: () => undefined };
    validateOptions(options);
    try {
      prepareFile(file);
    } catch (error) {
      throw new StoreIOError('create', file, error);
    }
    const damage = damageOf(file);
    if (damage) {
      const aside = moveAside(file, now());
      logger.error(`cache database ${file} is damaged (${damage}); moved it to ${aside} and started an empty one`);
      prepareFile(file);
    }
    try {
      return await Store.connect(file, options, logger);
    } catch (error) {
      if (!isCorruption(error)) throw new StoreIOError('open', file, error);
      const aside = moveAside(file, now());
      logger.error(`cache database ${file} is damaged (${(error as Error).message}); moved it to ${aside} and started an empty one`);
      prepareFile(file);
      try {
        return await Store.connect(file, options, logger);
      } catch (again) {
        throw new StoreIOError('open', file, again);
      }
    }
  }

  private static async connect(file: string, options: StoreOptions, logger: StoreLogger): Promise<Store> {
    const adapter = await Store.openAdapter(file, options);
    try {
      const store = new Store(file, adapter, options, logger);
      store.committedBytes = await store.readBytes();
      return store;
    } catch (error) {
      await adapter.disconnect().catch(() => undefined);
      throw error;
    }
  }

  /** Connects to the file and brings its schema up to date (WAL, extra columns, indexes, byte count). */
  private static async openAdapter(file: string, options: StoreOptions): Promise<KeyvSqlite> {
    const adapter = new KeyvSqlite({ uri: `sqlite://${file}`, table: TABLE, busyTimeout: 5000 });
    adapter.on('error', () => undefined); // the same error rejects the first query below
    try {
      await adapter.query('PRAGMA journal_mode=WAL');
      await adapter.query('PRAGMA synchronous=NORMAL');
      const columns = new Set(((await adapter.query(`PRAGMA table_info(${TABLE})`)) as { name: string }[]).map((c) => c.name));
      const added: [string, string][] = [
        ['size', 'INTEGER NOT NULL DEFAULT 0'],
        ['stored_at', 'INTEGER NOT NULL DEFAULT 0'],
        ['accessed_at', 'INTEGER NOT NULL DEFAULT 0'],
        ['expires_at', 'INTEGER'],
      ];
      for (const [name, type] of added) {
        if (!columns.has(name)) await adapter.query(`ALTER TABLE ${TABLE} ADD COLUMN ${name} ${type}`);
      }
      await adapter.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_stored_at ON ${TABLE}(stored_at)`);
      // the access-time index serves only least-recently-used eviction; elsewhere it would slow every write
      if (options.evictionPolicy === 'least-recently-used') await adapter.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_accessed_at ON ${TABLE}(accessed_at)`);
      else await adapter.query(`DROP INDEX IF EXISTS ${TABLE}_accessed_at`);
      await adapter.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_expires_at ON ${TABLE}(expires_at) WHERE expires_at IS NOT NULL`);
      await adapter.query('CREATE TABLE IF NOT EXISTS flow_cache_meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)');
      // the sum is computed only when the row is missing: summing every row on each open made startup grow with the store
      await adapter.query(`INSERT OR IGNORE INTO flow_cache_meta(name, value) SELECT 'bytes', (SELECT COALESCE(SUM(size), 0) FROM ${TABLE})
        WHERE NOT EXISTS (SELECT 1 FROM flow_cache_meta WHERE name = 'bytes')`);
      await adapter.query(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_bytes_insert AFTER INSERT ON ${TABLE}
        BEGIN UPDATE flow_cache_meta SET value = value + NEW.size WHERE name = 'bytes'; END`);
      await adapter.query(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_bytes_update AFTER UPDATE OF size ON ${TABLE}
        BEGIN UPDATE flow_cache_meta SET value = value + NEW.size - OLD.size WHERE name = 'bytes'; END`);
      await adapter.query(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_bytes_delete AFTER DELETE ON ${TABLE}
        BEGIN UPDATE flow_cache_meta SET value = value - OLD.size WHERE name = 'bytes'; END`);
      return adapter;
    } catch (error) {
      await adapter.disconnect().catch(() => undefined);
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
        await this.adapter.disconnect().catch(() => undefined);
        const aside = moveAside(this.file, now());
        this.logger.error(`cache database ${this.file} is damaged (${(error as Error).message}); moved it to ${aside} and started an empty one`);
        prepareFile(this.file);
        this.attach(await Store.openAdapter(this.file, this.options));
        this.cache.clear();
        this.epoch++;
        this.committedBytes = 0;
      } catch (failure) {
        this.logger.error(`cache database ${this.file}: recovery failed: ${(failure as Error).message}`);
      } finally {
        this.recovering = false;
      }
    });
  }

  /** Bytes stored on disk (values and metadata), as the size limit counts them. */
  async bytesUsed(): Promise<number> {
    await this.flush();
    return this.readBytes();
  }

  /** Reads a key; expired entries read as absent (and are removed). */
  async get(namespace: string, key: string): Promise<Entry | undefined> {
    const fullKey = this.fullKey(namespace, key);
    const known = this.memoryRow(fullKey);
    const row = known !== undefined ? this.live(fullKey, known) : await this.withKey(fullKey, async () => this.live(fullKey, await this.loadRow(fullKey)));
    return row ? toEntry(row) : undefined;
  }

  /** Writes a value with a TTL in seconds (0 or undefined: no expiry); resolves once committed (immediate mode). */
  async set(namespace: string, key: string, value: unknown, ttlSeconds?: number): Promise<Entry> {
    const fullKey = this.fullKey(namespace, key);
    const row = this.makeRow(value, ttlSeconds);
    // nothing queued on this key and room to spare: enqueue now (no await, so nothing can come between)
    const commit =
      !this.locks.has(fullKey) && this.fits(fullKey, row)
        ? this.enqueue(fullKey, row)
        : (await this.withKey(fullKey, () => (this.fits(fullKey, row) ? Promise.resolve({ commit: this.enqueue(fullKey, row) }) : this.enqueueAfterRecount(fullKey, row)))).commit;
    await commit;
    return { value, storedAt: row.storedAt, expiresAt: row.expiresAt };
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
        if (queued) this.batch.bytes -= queued.size;
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
    const rows = (await this.query(`SELECT key FROM ${TABLE} WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key`, [
      prefix,
      rangeEnd(prefix),
      now(),
    ])) as { key: string }[];
    return rows.map((r) => r.key.slice(prefix.length));
  }

  /** Deletes every expired entry from disk; resolves to how many were removed. */
  async sweep(): Promise<number> {
    if (this.closed) return 0;
    return this.exclusive(async () => {
      const rows = (await this.query(`DELETE FROM ${TABLE} WHERE expires_at IS NOT NULL AND expires_at <= ? RETURNING key`, [now()])) as {
        key: string;
      }[];
      this.forget(rows.map((r) => r.key));
      return rows.length;
    });
  }

  /** Commits everything written so far (in deferred mode too). */
  async flush(): Promise<void> {
    if (this.batch.puts.size === 0 && this.batch.clears.length === 0 && this.touched.size === 0) {
      await this.dbChain.catch(() => undefined);
      return;
    }
    const commit = batchPromise(this.batch);
    this.runFlush();
    await commit;
  }

  /** Flushes pending writes, stops the timers and closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const timer of this.timers) clearInterval(timer);
    try {
      await this.flush();
    } catch (error) {
      this.logger.error(`cache database ${this.file}: writes lost at close: ${(error as Error).message}`);
    }
    this.closed = true;
    await this.dbChain.catch(() => undefined);
    await this.adapter.disconnect();
  }

  // ---- internals ----

  private fullKey(namespace: string, key: string): string {
    this.assertOpen();
    if (typeof key !== 'string' || key.length === 0) throw new CacheError('INVALID_KEY', 'key must be a non-empty string');
    // the driver writes a lone surrogate as U+FFFD, so two such keys would share one row on disk
    if (LONE_SURROGATE.test(key)) throw new CacheError('INVALID_KEY', 'key must be well-formed text: it holds a lone UTF-16 surrogate');
    let prefix = this.prefixes.get(namespace);
    if (prefix === undefined) {
      prefix = `${encodeNamespace(namespace)}:`;
      if (this.prefixes.size >= 1_000) this.prefixes.clear(); // namespaces are few (one per flow); this only bounds a misuse
      this.prefixes.set(namespace, prefix);
    }
    return prefix + key;
  }

  private assertOpen(): void {
    if (this.closed) throw new CacheError('STORE_CLOSED', `cache database ${this.file} is closed`);
  }

  private every(ms: number, task: () => unknown): void {
    const timer = setInterval(() => {
      Promise.resolve()
        .then(task)
        .catch((error: unknown) => this.logger.error(`cache database ${this.file}: ${(error as Error).message}`));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private makeRow(value: unknown, ttlSeconds: number | undefined): Row {
    if (ttlSeconds !== undefined && (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds < 0)) {
      throw new CacheError('INVALID_TTL', `ttl must be a number of seconds >= 0, got ${String(ttlSeconds)}`);
    }
    const storedAt = now();
    const expiresAt = ttlSeconds ? storedAt + Math.round(ttlSeconds * 1000) : null;
    // a huge TTL would overflow to Infinity, which JSON cannot hold: the row would never be readable again
    if (expiresAt !== null && !(expiresAt <= MAX_DATE_MS)) {
      throw new CacheError('INVALID_TTL', `ttl of ${String(ttlSeconds)} s ends after the last date that can be stored`);
    }
    const text = rowText(encodeValue(value), storedAt, expiresAt);
    return { text, storedAt, expiresAt, size: Buffer.byteLength(text) };
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
    if (row.expiresAt !== null && row.expiresAt <= now()) {
      this.enqueue(fullKey, null);
      return undefined;
    }
    if (this.evictionPolicy === 'least-recently-used') this.touched.set(fullKey, now());
    return row;
  }

  private async loadRow(fullKey: string): Promise<Row | null> {
    const known = this.memoryRow(fullKey);
    if (known !== undefined) return known;
    const epoch = this.epoch;
    let text: string | undefined;
    try {
      text = await this.keyv.get(fullKey);
    } catch (error) {
      if (isCorruption(error)) this.recover(error);
      throw new StoreIOError('read', this.file, error);
    }
    const row = text === undefined ? null : parseRow(text);
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
    return this.committedBytes + this.inflightBytes + this.batch.bytes + row.size - (replaced ? replaced.size : 0);
  }

  /** Whether `row` fits under the size cap by the counts in memory (always true unless the policy is none). */
  private fits(fullKey: string, row: Row): boolean {
    return this.evictionPolicy !== 'none' || this.bytesAfter(fullKey, row) <= this.sizeLimitBytes;
  }

  /** Makes the counts exact before refusing a write: loads the row it replaces and re-reads the bytes on disk. */
  private async recount(fullKey: string): Promise<void> {
    if (this.memoryRow(fullKey) === undefined) await this.loadRow(fullKey);
    await this.exclusive(async () => {
      this.committedBytes = await this.readBytes(); // no batch is in flight while this runs
    });
  }

  /** Throws StoreFullError if `row` does not fit; the caller enqueues right after, with no await between. */
  private assertRoom(fullKey: string, row: Row): void {
    if (this.fits(fullKey, row)) return;
    throw new StoreFullError(this.sizeLimitBytes, this.bytesAfter(fullKey, row));
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
    const row = this.makeRow(decision.value, decision.ttl);
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
    if (previous) this.batch.bytes -= previous.size;
    this.batch.puts.set(fullKey, row);
    if (row) this.batch.bytes += row.size;
    this.pending.set(fullKey, row);
    this.cache.set(fullKey, row);
    const commit = batchPromise(this.batch);
    // a full batch goes to the database now, so the next one fills while this one is written
    if (this.durability === 'immediate' && this.batch.puts.size >= EAGER_BATCH_ROWS) this.runFlush();
    else this.scheduleFlush(false);
    return this.durability === 'deferred' ? Promise.resolve() : commit;
  }

  private scheduleFlush(force: boolean): void {
    if (this.flushScheduled) return;
    if (this.durability === 'deferred' && !force && this.batch.puts.size < MAX_DEFERRED_PENDING) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.runFlush();
    });
  }

  /** Seals the current batch and queues its write behind the writes already queued. */
  private runFlush(): void {
    const batch = this.batch;
    this.batch = newBatch(); // sealed: a write after this point belongs to the next batch and its commit
    if (batch.puts.size === 0 && batch.clears.length === 0 && this.touched.size === 0) {
      void this.exclusive(async () => batch.resolve?.());
      return;
    }
    this.inflightBytes += batch.bytes;
    void this.exclusive(async () => {
      try {
        await this.writeBatch(batch);
        this.committedBytes += batch.bytes;
        this.inflightBytes -= batch.bytes;
        for (const [key, row] of batch.puts) if (this.pending.get(key) === row) this.pending.delete(key);
        if (batch.clears.length > 0) this.forgetCleared(batch);
        batch.resolve?.();
      } catch (error) {
        this.inflightBytes -= batch.bytes;
        for (const [key, row] of batch.puts) {
          if (this.pending.get(key) === row) {
            this.pending.delete(key);
            this.cache.delete(key);
          }
        }
        const failure = new StoreIOError('write', this.file, error);
        if (this.durability === 'deferred') this.logger.error(failure.message);
        batch.reject?.(failure);
        return;
      }
      if (this.evictionPolicy !== 'none' && this.committedBytes > this.sizeLimitBytes) await this.evict();
    });
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
    const onlyPuts = batch.clears.length === 0 && this.touched.size === 0 && batch.puts.size <= ROWS_PER_STATEMENT;
    if (onlyPuts && [...batch.puts.values()].every((row) => row !== null)) {
      await this.writeStatements(batch);
      return;
    }
    await this.query('BEGIN IMMEDIATE', []);
    try {
      await this.writeStatements(batch);
      await this.query('COMMIT', []);
    } catch (error) {
      await this.query('ROLLBACK', []).catch(() => undefined);
      throw error;
    }
  }

  private async writeStatements(batch: Batch): Promise<void> {
    for (const prefix of batch.clears) {
      await this.query(`DELETE FROM ${TABLE} WHERE key >= ? AND key < ?`, [prefix, rangeEnd(prefix)]);
    }
    const deletes: string[] = [];
    const puts: [string, Row][] = [];
    for (const [key, row] of batch.puts) {
      if (row) puts.push([key, row]);
      else deletes.push(key);
    }
    for (let i = 0; i < deletes.length; i += ROWS_PER_STATEMENT) {
      const chunk = deletes.slice(i, i + ROWS_PER_STATEMENT);
      await this.query(`DELETE FROM ${TABLE} WHERE key IN (${chunk.map(() => '?').join(',')})`, chunk);
    }
    for (let i = 0; i < puts.length; i += ROWS_PER_STATEMENT) {
      // one JSON parameter per statement: a short SQL text, cheap to prepare, and no per-value binding
      const rows = puts.slice(i, i + ROWS_PER_STATEMENT).map(([key, row]) => [hexKey(key), row.text, row.size, row.storedAt, row.expiresAt]);
      await this.query(UPSERT_ROWS, [JSON.stringify(rows)]);
    }
    if (this.touched.size > 0) {
      const touches = [...this.touched];
      this.touched.clear();
      for (let i = 0; i < touches.length; i += ROWS_PER_STATEMENT) {
        await this.query(
          `UPDATE ${TABLE} SET accessed_at = t.value ->> 1 FROM json_each(?) AS t WHERE ${TABLE}.key = CAST(unhex(t.value ->> 0) AS TEXT)`,
          [JSON.stringify(touches.slice(i, i + ROWS_PER_STATEMENT).map(([key, at]) => [hexKey(key), at]))],
        );
      }
    }
  }

  /** Deletes entries by the eviction policy until the store is back under its size limit. */
  private async evict(): Promise<void> {
    this.committedBytes = await this.readBytes();
    const order = this.evictionPolicy === 'least-recently-used' ? 'accessed_at' : 'stored_at';
    while (this.committedBytes > this.sizeLimitBytes) {
      const candidates = (await this.query(`SELECT key, size FROM ${TABLE} ORDER BY ${order}, rowid LIMIT ?`, [ROWS_PER_STATEMENT])) as {
        key: string;
        size: number;
      }[];
      if (candidates.length === 0) break;
      const victims: string[] = [];
      let excess = this.committedBytes - this.sizeLimitBytes;
      for (const c of candidates) {
        if (excess <= 0) break;
        victims.push(c.key);
        excess -= c.size;
      }
      await this.query(`DELETE FROM ${TABLE} WHERE key IN (${victims.map(() => '?').join(',')})`, victims);
      this.forget(victims);
      this.committedBytes = await this.readBytes();
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

  private async readBytes(): Promise<number> {
    const rows = (await this.query(`SELECT value FROM flow_cache_meta WHERE name = 'bytes'`, [])) as { value: number }[];
    return rows[0]?.value ?? 0;
  }

  private async query(sql: string, params: unknown[]): Promise<unknown[]> {
    try {
      return (await this.adapter.query(sql, params)) as unknown[];
    } catch (error) {
      if (error instanceof CacheError) throw error;
      if (isCorruption(error)) this.recover(error);
      throw new StoreIOError('use', this.file, error);
    }
  }
}

function validateOptions(options: StoreOptions): void {
  if (options.sizeLimitMb !== undefined && !(Number.isFinite(options.sizeLimitMb) && options.sizeLimitMb > 0)) {
    throw new CacheError('INVALID_OPTION', `sizeLimitMb must be a number > 0, got ${String(options.sizeLimitMb)}`);
  }
  if (options.evictionPolicy !== undefined && !EVICTION_POLICIES.includes(options.evictionPolicy)) {
    throw new CacheError('INVALID_OPTION', `evictionPolicy must be one of ${EVICTION_POLICIES.join(', ')}, got ${String(options.evictionPolicy)}`);
  }
  if (options.durability !== undefined && !DURABILITIES.includes(options.durability)) {
    throw new CacheError('INVALID_OPTION', `durability must be one of ${DURABILITIES.join(', ')}, got ${String(options.durability)}`);
  }
  if (options.flushInterval !== undefined && !(Number.isFinite(options.flushInterval) && options.flushInterval > 0)) {
    throw new CacheError('INVALID_OPTION', `flushInterval must be a number of seconds > 0, got ${String(options.flushInterval)}`);
  }
}
