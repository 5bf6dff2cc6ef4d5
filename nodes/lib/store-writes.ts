// The store's write path: writes wait in a batch and are committed together (group commit), in
// deferred mode until the flush interval; a batch is one transaction; a failed batch is reported
// (immediate) or kept and retried with a growing delay (deferred); at exit a synchronous driver
// commits what is left.
import type { SqlDriver } from './driver';
import { messageOf, StoreIOError } from './errors';
import type { LruMap } from './lru';
import type { Durability, StoreLogger } from './options';
import { TABLE } from './schema';
import { hexKey, ROWS_PER_STATEMENT, type Row, rangeEnd, touchStatementsOf, writeStatementsOf } from './store-rows';
import { countRow, type SizeAccount, uncountRow } from './store-size';

// one row, bound directly: a write committed on its own, before the set that made it returns
const UPSERT_ONE = `INSERT INTO ${TABLE}(key, value, size, stored_at, accessed_at, expires_at, evictable)
  VALUES (CAST(unhex(?1) AS TEXT), ?2, ?3, ?4, ?4, ?5, ?6)
  ON CONFLICT(key) DO UPDATE SET value = excluded.value, size = excluded.size, stored_at = excluded.stored_at,
  accessed_at = excluded.accessed_at, expires_at = excluded.expires_at, evictable = excluded.evictable`;
const DELETE_ONE = `DELETE FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`;

/** What the store tells its users about itself ('health' events). */
export interface StoreHealth {
  ok: boolean;
  /** The failure, while writes cannot be committed. */
  error?: Error;
}

const MAX_DEFERRED_PENDING = 10_000;
/** Rows a synchronous driver writes in one tick: fewer rows keep ticks short. */
const SYNC_ROWS_PER_TICK = 250;
const EAGER_BATCH_ROWS = 2000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;

/** Writes that are committed together; the promise settles when they are. */
export interface Batch {
  puts: Map<string, Row | null>;
  clears: string[];
  bytes: number;
  /** Bytes of rows that may not be evicted. */
  pinned: number;
  promise?: Promise<void>;
  resolve?: () => void;
  reject?: (error: unknown) => void;
}

export function newBatch(): Batch {
  return { puts: new Map(), clears: [], bytes: 0, pinned: 0 };
}

export function batchPromise(batch: Batch): Promise<void> {
  if (!batch.promise) {
    batch.promise = new Promise<void>((resolve, reject) => {
      batch.resolve = resolve;
      batch.reject = reject;
    });
    batch.promise.catch(() => undefined); // waiters get the error; a batch nobody awaits must not crash the process
  }
  return batch.promise;
}

/** Lets other work run between two statements of a synchronous driver, so no single tick is long. */
function nextTick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** What the write path needs of the store. */
export interface WriteHost {
  readonly file: string;
  readonly logger: StoreLogger;
  readonly durability: Durability;
  readonly size: SizeAccount;
  /** Writes not yet committed, by full key (null: a delete); reads see them. */
  readonly pending: Map<string, Row | null>;
  readonly cache: LruMap<string, Row | null>;
  /** Read times not yet written (least-recently-used eviction). */
  readonly touched: Map<string, number>;
  /** The connection (it changes when a damaged file is replaced). */
  db(): SqlDriver;
  query(sql: string, params: readonly unknown[]): Promise<unknown[]>;
  isClosed(): boolean;
  /** A batch is committed and its writers are woken: what follows (the read cache after a clear, eviction). */
  committed(batch: Batch): Promise<void>;
  health(health: StoreHealth): void;
}

export class WritePath {
  /** The batch being filled. */
  batch: Batch = newBatch();
  private dbChain: Promise<unknown> = Promise.resolve();
  private flushScheduled = false;
  /** Clears of the batch being written, for a write at exit. */
  private inflightClears: string[] = [];
  /** Sealed batches with clears, not yet written: a write committed now must not come before them. */
  private queuedClears = 0;
  private inTransaction = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = 0;
  /** Set while a flush fails and is retried. */
  failure: Error | undefined;

  constructor(private readonly host: WriteHost) {}

  /** Whether a single write may be committed now, ahead of the batch: nothing queued could reach the file after it. */
  get clearToCommitNow(): boolean {
    if (this.host.durability !== 'immediate' || this.inTransaction || this.failure || this.retryTimer) return false;
    return this.queuedClears === 0 && this.batch.clears.length === 0;
  }

  /**
   * Commits one row (null: a delete) at once, on a synchronous driver, in one statement: atomic, and
   * committed when it returns (no transaction is open on the connection). `known` is what memory knows
   * of the key (undefined: nothing, then the file is asked). False when the driver is not synchronous
   * or the statement failed: nothing was written.
   */
  commitNow(fullKey: string, row: Row | null, known: Row | null | undefined): boolean {
    const querySync = this.host.db().querySync;
    if (!querySync) return false;
    let replaced = known;
    try {
      if (replaced === undefined) {
        const found = querySync(`SELECT size, evictable FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`, [hexKey(fullKey)])[0];
        replaced = found ? ({ size: Number(found.size), evictable: Number(found.evictable) !== 0 } as Row) : null;
      }
      if (row) querySync(UPSERT_ONE, [hexKey(fullKey), row.text, row.size, row.storedAt, row.expiresAt, row.evictable ? 1 : 0]);
      else querySync(DELETE_ONE, [hexKey(fullKey)]);
    } catch {
      return false;
    }
    this.host.size.committedNow(replaced, row);
    return true;
  }

  /** Puts the clear of a namespace (its key prefix) into the current batch, dropping the batch's writes in it; settles once committed. */
  clear(prefix: string): Promise<void> {
    for (const key of [...this.host.pending.keys()]) {
      if (key.startsWith(prefix)) {
        this.host.pending.delete(key);
        const queued = this.batch.puts.get(key);
        if (queued) uncountRow(this.batch, queued);
        this.batch.puts.delete(key);
      }
    }
    this.batch.clears.push(prefix);
    const commit = batchPromise(this.batch);
    this.scheduleFlush(true);
    return commit;
  }

  /** Stops a retry that waits (the store closes). */
  stopRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Resolves once every database task queued so far has run. */
  settled(): Promise<unknown> {
    return this.dbChain.catch(() => undefined);
  }

  /** Puts a write into the current batch; the promise settles when that batch is committed. */
  enqueue(fullKey: string, row: Row | null): Promise<void> {
    const previous = this.batch.puts.get(fullKey);
    if (previous) uncountRow(this.batch, previous);
    this.batch.puts.set(fullKey, row);
    if (row) countRow(this.batch, row);
    this.host.pending.set(fullKey, row);
    // reads see the row in `pending` until it is committed; the read cache keeps only keys that are read,
    // so a burst of writes to keys nobody reads does not churn it (nor keep its rows alive)
    this.host.cache.refresh(fullKey, row);
    const commit = batchPromise(this.batch);
    // a full batch goes to the database now, so the next one fills while this one is written
    if (this.host.durability === 'immediate' && this.batch.puts.size >= EAGER_BATCH_ROWS) this.runFlush();
    else this.scheduleFlush(false);
    return this.host.durability === 'deferred' ? Promise.resolve() : commit;
  }

  /** Commits everything written so far (in deferred mode too). */
  async flush(): Promise<void> {
    if (this.batch.puts.size === 0 && this.batch.clears.length === 0 && this.host.touched.size === 0) {
      await this.dbChain.catch(() => undefined);
      if (this.failure) throw new StoreIOError('write', this.host.file, this.failure);
      return;
    }
    const commit = batchPromise(this.batch);
    this.runFlush(true);
    await commit;
  }

  scheduleFlush(force: boolean): void {
    if (this.flushScheduled || this.retryTimer) return;
    if (this.host.durability === 'deferred' && !force && this.batch.puts.size < MAX_DEFERRED_PENDING) return;
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
    if (batch.puts.size === 0 && batch.clears.length === 0 && this.host.touched.size === 0) {
      void this.exclusive(async () => batch.resolve?.());
      return;
    }
    this.host.size.writing(batch);
    if (batch.clears.length > 0) this.queuedClears++;
    void this.exclusive(() => this.writeSealed(batch));
  }

  /** Writes a sealed batch (run one at a time, in order): commits it, or hands its failure on. */
  private async writeSealed(batch: Batch): Promise<void> {
    this.inflightClears = batch.clears;
    // the batch's clears no longer wait once it is written (or has failed: deferred mode queues them again)
    const clearsDone = () => {
      if (batch.clears.length > 0) this.queuedClears--;
    };
    try {
      await this.writeBatch(batch);
    } catch (error) {
      this.host.size.written(batch, false);
      this.inflightClears = [];
      clearsDone();
      this.failed(batch, error);
      return;
    }
    this.inflightClears = [];
    // the batch's writers wake up next tick, not in the tick that ran its last statement
    await this.pause();
    this.host.size.written(batch, true);
    for (const [key, row] of batch.puts) if (this.host.pending.get(key) === row) this.host.pending.delete(key);
    clearsDone();
    batch.resolve?.();
    if (this.failure) {
      this.failure = undefined;
      this.retryDelay = 0;
      this.host.logger.warn(`cache database ${this.host.file}: writes are committed again`);
      this.host.health({ ok: true });
    }
    await this.host.committed(batch);
  }

  /**
   * A batch could not be written. In immediate mode its writers get the error and nothing of it stays.
   * In deferred mode its writes were already acknowledged: they stay in memory (reads keep seeing
   * them) and go back into the next batch, which is retried with a growing delay.
   */
  private failed(batch: Batch, error: unknown): void {
    const failure = new StoreIOError('write', this.host.file, error);
    const first = this.failure === undefined;
    this.failure = failure;
    if (this.host.durability === 'immediate') {
      for (const [key, row] of batch.puts) {
        if (this.host.pending.get(key) === row) {
          this.host.pending.delete(key);
          this.host.cache.delete(key);
        }
      }
      batch.reject?.(failure);
      this.failure = undefined; // the writers were told (their nodes show it); the next write tries afresh
      return;
    }
    for (const [key, row] of batch.puts) {
      if (this.host.pending.get(key) !== row || this.batch.puts.has(key)) continue; // a newer write replaced it
      this.batch.puts.set(key, row);
      if (row) countRow(this.batch, row);
    }
    this.batch.clears.unshift(...batch.clears);
    this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay ? this.retryDelay * 2 : RETRY_MIN_MS);
    this.host.logger.error(`${failure.message}; ${this.host.pending.size} writes kept in memory, retrying in ${Math.round(this.retryDelay / 1000)} s`);
    if (first) this.host.health({ ok: false, error: failure });
    batch.reject?.(failure);
    if (!this.host.isClosed() && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.runFlush();
      }, this.retryDelay);
      this.retryTimer.unref();
    }
  }

  /** Runs database work one task at a time, in order. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.dbChain.then(task, task);
    this.dbChain = run.catch(() => undefined);
    return run;
  }

  /** Writes a batch in one transaction: all of it is committed, or none of it. */
  private async writeBatch(batch: Batch): Promise<void> {
    // a batch that is one statement is atomic by itself: no BEGIN/COMMIT round trips for it (a synchronous
    // driver writes a statement per row)
    const statementRows = this.host.db().querySync ? 1 : ROWS_PER_STATEMENT;
    const onlyPuts = batch.clears.length === 0 && this.host.touched.size === 0 && batch.puts.size <= statementRows;
    if (onlyPuts && [...batch.puts.values()].every((row) => row !== null)) {
      await this.writeStatements(batch);
      return;
    }
    await this.host.query('BEGIN IMMEDIATE', []);
    this.inTransaction = true;
    try {
      await this.writeStatements(batch);
      await this.host.query('COMMIT', []);
    } catch (error) {
      await this.host.query('ROLLBACK', []).catch(() => undefined);
      throw error;
    } finally {
      this.inTransaction = false;
    }
  }

  /** With a synchronous driver, lets other work run before the next statement. */
  async pause(): Promise<void> {
    if (this.host.db().querySync) await nextTick();
  }

  private async writeStatements(batch: Batch): Promise<void> {
    for (const prefix of batch.clears) {
      // a big namespace goes a thousand rows a statement, so a clear never holds the event loop for long
      for (;;) {
        const gone = await this.host.query(
          `DELETE FROM ${TABLE} WHERE key IN (SELECT key FROM ${TABLE} WHERE key >= ? AND key < ? LIMIT ${ROWS_PER_STATEMENT}) RETURNING 1`,
          [prefix, rangeEnd(prefix)],
        );
        if (gone.length < ROWS_PER_STATEMENT) break;
        await this.pause();
      }
    }
    const querySync = this.host.db().querySync;
    if (querySync) {
      await this.writeRowsSync(querySync, batch.puts);
      for (const [sql, params] of touchStatementsOf(this.host.touched)) querySync(sql, params);
      this.host.touched.clear();
      return;
    }
    const statements = writeStatementsOf(batch.puts, this.host.touched, ROWS_PER_STATEMENT);
    this.host.touched.clear();
    for (let i = 0; i < statements.length; i++) {
      if (i > 0) await this.pause();
      await this.host.query(statements[i][0], statements[i][1]);
    }
  }

  /**
   * A synchronous driver writes each row with one prepared statement, its values bound as they are:
   * no JSON to build in JavaScript and to take apart again in SQL. Other work runs between every
   * SYNC_ROWS_PER_TICK rows, so no single tick is long.
   */
  private async writeRowsSync(querySync: NonNullable<SqlDriver['querySync']>, puts: Map<string, Row | null>): Promise<void> {
    let inTick = 0;
    for (const [key, row] of puts) {
      if (++inTick > SYNC_ROWS_PER_TICK) {
        inTick = 1;
        await nextTick();
      }
      if (row) querySync(UPSERT_ONE, [hexKey(key), row.text, row.size, row.storedAt, row.expiresAt, row.evictable ? 1 : 0]);
      else querySync(DELETE_ONE, [hexKey(key)]);
    }
  }

  /**
   * The process is exiting (an uncaught error, process.exit) with writes not yet committed. A
   * synchronous driver (node:sqlite) writes them now; sqlite3 cannot, so the log says what is lost.
   */
  writeAtExit(): void {
    if (this.host.isClosed()) return;
    const clears = [...this.inflightClears, ...this.batch.clears];
    if (this.host.pending.size === 0 && clears.length === 0) return;
    const querySync = this.host.db().querySync;
    if (!querySync) {
      this.host.logger.error(
        `cache database ${this.host.file}: the process exited with ${this.host.pending.size} writes not yet committed; they are lost (the sqlite3 driver cannot write during exit)`,
      );
      return;
    }
    try {
      if (this.inTransaction) querySync('ROLLBACK');
      querySync('BEGIN IMMEDIATE');
      for (const prefix of clears) querySync(`DELETE FROM ${TABLE} WHERE key >= ? AND key < ?`, [prefix, rangeEnd(prefix)]);
      for (const [sql, params] of writeStatementsOf(this.host.pending, new Map(), ROWS_PER_STATEMENT)) querySync(sql, params);
      querySync('COMMIT');
    } catch (error) {
      this.host.logger.error(`cache database ${this.host.file}: ${this.host.pending.size} writes lost at exit: ${messageOf(error)}`);
    }
  }
}
