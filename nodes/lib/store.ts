import { EventEmitter } from 'node:events';
import { now } from './clock';
import type { DriverName, SqlDriver } from './driver';
import { CacheError, messageOf, StoreIOError } from './errors';
import type { FileLock } from './file-lock';
import { KeyQueue } from './key-queue';
import { LruMap } from './lru';
import {
  type Durability,
  EVICTION_POLICY_TABLE,
  type EvictionPolicy,
  type ResolvedStoreOptions,
  type StoreLogger,
  type StoreOptions,
  sizeLimitBytes,
} from './options';
import { TABLE } from './schema';
import { encodeValue } from './serialize';
import { isCorruption } from './sqlite-file';
import { openDatabase, openStoreFile, setAside } from './store-open';
import { type InspectedEntry, type KeyListOptions, type KeyPage, type NamespaceStats, StoreQueries } from './store-queries';
import { CLOCK_SLACK_MS, ReadPath } from './store-reads';
import {
  checkKey,
  type Entry,
  encodeNamespace,
  fromHex,
  RESTAMP_FUTURE,
  ROWS_PER_STATEMENT,
  type Row,
  restamp,
  rowText,
  stampsOf,
  toEntry,
} from './store-rows';
import { Eviction, type EvictionRound, SizeAccount } from './store-size';
import { type Batch, WritePath } from './store-writes';

export type { Durability, EvictionPolicy, StoreLogger, StoreOptions } from './options';
export { DURABILITIES, EVICTION_POLICIES, STORE_DEFAULTS } from './options';
export { type InspectedEntry, type KeyInfo, type KeyListOptions, type KeyPage, MAX_KEY_PAGE, type NamespaceStats } from './store-queries';
export type { Entry } from './store-rows';
export { encodeNamespace } from './store-rows';
export type { EvictionRound } from './store-size';
export type { StoreHealth } from './store-writes';

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

const TOUCH_FLUSH_MS = 1_000;

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
  private readonly locks = new KeyQueue();
  private readonly touched = new Map<string, number>();
  private readonly prefixes = new Map<string, string>();
  private epoch = 0;
  private closed = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly size: SizeAccount;
  private readonly eviction: Eviction;
  private readonly writes: WritePath;
  private readonly reads: ReadPath;
  private readonly onExit = (): void => this.writes.writeAtExit();
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
      pause: () => this.writes.pause(),
      announce: (round: EvictionRound) => this.emit('evicted', round),
    };
    this.eviction = new Eviction(host, this.size, this.evictionPolicy, this.policy.orderColumn ?? 'stored_at');
    this.reads = new ReadPath({
      file,
      pending: this.pending,
      cache: this.cache,
      touched: this.touched,
      locks: this.locks,
      tracksReads: this.policy.tracksReads,
      db: () => this.db,
      epoch: () => this.epoch,
      recovering: () => this.recovering,
      recover: (error) => this.recover(error),
      enqueue: (fullKey, row) => void this.writes.enqueue(fullKey, row),
    });
    this.writes = new WritePath({
      file,
      logger,
      durability: this.durability,
      size: this.size,
      pending: this.pending,
      cache: this.cache,
      touched: this.touched,
      db: () => this.db,
      query: (sql, params) => this.query(sql, params),
      isClosed: () => this.closed,
      committed: (batch) => this.committed(batch),
      health: (health) => this.emit('health', health),
    });
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
  static open(file: string, given: StoreOptions = {}): Promise<Store> {
    return openStoreFile(file, given, async (db, lock, options, logger) => {
      const store = new Store(file, db, lock, options, logger);
      await store.size.readCounts((sql, params) => store.query(sql, params));
      return store;
    });
  }

  /**
   * Damage found while running (pages behind a sound header): the operation that met it fails, the
   * file is moved aside and a fresh one takes its place; writes queued after the damage go to it.
   */
  private recover(error: unknown): void {
    if (this.recovering || this.closed) return;
    this.recovering = true;
    void this.writes.exclusive(async () => {
      try {
        await this.db.close().catch(() => undefined);
        setAside(this.file, messageOf(error), this.logger);
        this.db = await openDatabase(this.file, this.options, this.db.name);
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
    return this.writes.failure === undefined;
  }

  /** Writes not yet committed to disk (deferred mode, or a failing disk). */
  get pendingWrites(): number {
    return this.pending.size;
  }

  /** Reads a key; expired entries read as absent (and are removed). */
  async get(namespace: string, key: string): Promise<Entry | undefined> {
    const fullKey = this.fullKey(namespace, key);
    const known = this.reads.knownRow(fullKey, false);
    const row =
      known !== undefined
        ? this.reads.live(fullKey, known)
        : await this.locks.run(fullKey, async () => this.reads.live(fullKey, await this.reads.loadRow(fullKey)));
    return row ? toEntry(row) : undefined;
  }

  /** Writes a value with a TTL in seconds (0 or undefined: no expiry); resolves once committed (immediate mode). */
  set(namespace: string, key: string, value: unknown, ttlSeconds?: number, options?: SetOptions): Promise<Entry> {
    let fullKey: string;
    let row: Row;
    try {
      fullKey = this.fullKey(namespace, key);
      row = this.makeRow(value, ttlSeconds, options?.evictable !== false);
    } catch (error) {
      return Promise.reject(error);
    }
    // what waits for the commit is the entry and no more (a set's frame would keep all of the above alive)
    const entry: Entry = { value, storedAt: row.storedAt, expiresAt: row.expiresAt };
    const settled = () => entry;
    // nothing queued on this key and room to spare: enqueue now (synchronously, so nothing can come between)
    if (!this.locks.busy(fullKey) && this.fits(fullKey, row)) return this.writes.enqueue(fullKey, row).then(settled);
    return this.locks
      .run(fullKey, () => (this.fits(fullKey, row) ? Promise.resolve({ commit: this.writes.enqueue(fullKey, row) }) : this.enqueueAfterRecount(fullKey, row)))
      .then((step) => step.commit)
      .then(settled);
  }

  /**
   * Writes a value (or, with `undefined`, deletes the key) and commits it before returning: only on
   * a synchronous driver (node:sqlite), in immediate mode, and only when nothing queued could reach
   * the file after it (no write of the key waiting, no clear queued, no transaction of a batch under
   * way, no failing writes) and the value fits. Returns false with nothing done otherwise, and when
   * the statement fails: the caller then writes through set() or delete(), which report the failure.
   */
  commitNow(namespace: string, key: string, value: unknown, options: SetOptions = {}): boolean {
    if (!this.db.querySync || this.closed || this.recovering || !this.writes.clearToCommitNow) return false;
    let fullKey: string;
    let row: Row | null;
    try {
      fullKey = this.fullKey(namespace, key);
      row = value === undefined ? null : this.makeRow(value, undefined, options.evictable !== false);
    } catch {
      return false;
    }
    if (this.locks.busy(fullKey) || this.pending.has(fullKey)) return false;
    if (row && !this.fits(fullKey, row)) return false;
    if (!this.writes.commitNow(fullKey, row, this.reads.memoryRow(fullKey))) return false;
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
  update(namespace: string, key: string, change: (current: Entry | undefined) => UpdateDecision): Promise<UpdateResult> {
    let fullKey: string;
    let step: UpdateStep;
    try {
      fullKey = this.fullKey(namespace, key);
      // nothing queued on this key and its row in memory: the read-modify-write runs synchronously
      const known = this.reads.knownRow(fullKey, true);
      if (known === undefined) return this.updateLocked(fullKey, change);
      step = this.decide(fullKey, this.reads.live(fullKey, known), change);
    } catch (error) {
      return Promise.reject(error);
    }
    // what waits for the commit is the result and no more (an update's frame would keep the rest alive)
    const { result, tooBig } = step;
    const settled = () => result;
    if (tooBig) {
      // decided synchronously with the key free: taking the key now comes before any other update of it
      return this.locks
        .run(fullKey, () => this.enqueueAfterRecount(fullKey, tooBig))
        .then((queued) => queued.commit)
        .then(settled);
    }
    return step.commit ? step.commit.then(settled) : Promise.resolve(result);
  }

  /** update() of a key whose row is not in memory, or that another task holds: decided holding the key. */
  private async updateLocked(fullKey: string, change: (current: Entry | undefined) => UpdateDecision): Promise<UpdateResult> {
    const step = await this.locks.run(fullKey, async () => {
      // a row memory knows is taken without an await, so nothing (a clear) comes between it and the decision
      const locked = this.decide(fullKey, this.reads.live(fullKey, this.reads.memoryRow(fullKey) ?? (await this.reads.loadRow(fullKey))), change);
      // recount while still holding the key, so no other update reads the row before this one is queued
      if (locked.tooBig) locked.commit = (await this.enqueueAfterRecount(fullKey, locked.tooBig)).commit;
      return locked;
    });
    if (step.commit) await step.commit;
    return step.result;
  }

  /** Removes every key of a namespace and nothing else. */
  async clear(namespace: string): Promise<void> {
    this.assertOpen();
    const prefix = `${encodeNamespace(namespace)}:`;
    for (const key of [...this.cache.keys()]) if (key.startsWith(prefix)) this.cache.delete(key);
    for (const key of [...this.touched.keys()]) if (key.startsWith(prefix)) this.touched.delete(key);
    this.epoch++;
    await this.writes.clear(prefix);
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
    return this.writes.exclusive(async () => {
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
        await this.writes.pause();
      }
      for (;;) {
        const at = now();
        const rows = (await this.query(RESTAMP_FUTURE, [at, at + CLOCK_SLACK_MS])) as { key: string }[];
        this.forget((rows as unknown as { hk: string }[]).map((r) => fromHex(r.hk)));
        if (rows.length < ROWS_PER_STATEMENT) break;
        await this.writes.pause();
      }
      // writes not yet committed (deferred mode) were stamped by the same clock: restamped too, so they
      // do not reach the file from the future at the next flush
      const at = now();
      for (const [fullKey, row] of [...this.pending]) {
        if (row && row.storedAt > at + CLOCK_SLACK_MS) void this.writes.enqueue(fullKey, restamp(row, at));
      }
      return removed;
    });
  }

  /** Commits everything written so far (in deferred mode too). */
  flush(): Promise<void> {
    return this.writes.flush();
  }

  /** Flushes pending writes, stops the timers and closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const timer of this.timers) clearInterval(timer);
    this.writes.stopRetry();
    try {
      await this.flush();
    } catch (error) {
      this.logger.error(`cache database ${this.file}: ${this.pending.size} writes lost at close: ${messageOf(error)}`);
    }
    this.closed = true;
    process.removeListener('exit', this.onExit);
    await this.writes.settled();
    try {
      await this.db.close();
    } finally {
      await this.lock.release();
    }
  }

  // ---- internals ----

  private fullKey(namespace: string, key: string): string {
    this.assertOpen();
    checkKey(key);
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
    const { storedAt, expiresAt } = stampsOf(ttlSeconds);
    const text = rowText(encodeValue(value), storedAt, expiresAt);
    return { text, storedAt, expiresAt, size: Buffer.byteLength(text), evictable };
  }

  /** Whether `row` fits under the size cap by the counts in memory (store-size.ts). */
  private fits(fullKey: string, row: Row): boolean {
    return this.size.fits(this.reads.memoryRow(fullKey), row, this.writes.batch);
  }

  /**
   * Makes the counts exact before refusing a write: loads the row it replaces, re-reads the bytes on
   * disk and credits what the writes not yet committed will replace or delete there (deferred mode:
   * a delete frees its room at once, as it does in immediate mode, not at the next flush).
   */
  private async recount(fullKey: string): Promise<void> {
    if (this.reads.memoryRow(fullKey) === undefined) await this.reads.loadRow(fullKey);
    await this.writes.exclusive(async () => {
      await this.size.readCounts((sql, params) => this.query(sql, params)); // no batch is in flight while this runs
      await this.size.creditPending(
        (sql, params) => this.query(sql, params),
        this.pending,
        this.writes.batch,
        () => this.writes.pause(),
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
      const commit = currentRow || this.pending.has(fullKey) ? this.writes.enqueue(fullKey, null) : undefined;
      return { commit, result: { previous, entry: undefined } };
    }
    const row = this.makeRow(decision.value, decision.ttl, decision.evictable !== false);
    const result = { previous, entry: { value: decision.value, storedAt: row.storedAt, expiresAt: row.expiresAt } };
    if (!this.fits(fullKey, row)) return { tooBig: row, result };
    return { commit: this.writes.enqueue(fullKey, row), result };
  }

  /** Enqueues a row once exact byte counts confirm it fits (else StoreFullError); call holding the key's lock. */
  private async enqueueAfterRecount(fullKey: string, row: Row): Promise<{ commit: Promise<void> }> {
    await this.recount(fullKey);
    this.size.assertRoom(this.reads.memoryRow(fullKey), row, this.writes.batch); // no await between this check and the enqueue
    return { commit: this.writes.enqueue(fullKey, row) }; // wrapped: returning the promise itself would hold the lock until the commit
  }

  /** A batch is committed: the read cache forgets what a clear in it removed; eviction runs if the store is over its limit. */
  private async committed(batch: Batch): Promise<void> {
    if (batch.clears.length > 0) this.forgetCleared(batch);
    if (this.policy.evicts && this.size.committed.bytes > this.sizeLimitBytes) await this.eviction.run();
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
