// The store's read path: what memory knows of a key (a write not yet committed wins over the read
// cache), what the file says when memory knows nothing (at once on node:sqlite, else asynchronously
// holding the key), and whether a row is still live (expired, or stamped by a clock since set back).
import { now } from './clock';
import type { SqlDriver, SqlRow } from './driver';
import { StoreIOError } from './errors';
import type { KeyQueue } from './key-queue';
import type { LruMap } from './lru';
import { TABLE } from './schema';
import { isCorruption } from './sqlite-file';
import { hexKey, parseRow, type Row, restamp } from './store-rows';

/** A row stamped further than this ahead of the clock means the clock went back. */
export const CLOCK_SLACK_MS = 1000;

/** One row by its full key (hex, see hexKey). */
const SELECT_ROW = `SELECT value, evictable FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`;

/** What the read path needs of the store. */
export interface ReadHost {
  readonly file: string;
  /** Writes not yet committed, by full key (null: a delete). */
  readonly pending: Map<string, Row | null>;
  readonly cache: LruMap<string, Row | null>;
  /** Read times not yet written (least-recently-used eviction). */
  readonly touched: Map<string, number>;
  /** The per-key queue of tasks (update, a read that waits). */
  readonly locks: KeyQueue;
  /** Whether reads are recorded (least-recently-used eviction). */
  readonly tracksReads: boolean;
  /** The connection (it changes when a damaged file is replaced). */
  db(): SqlDriver;
  /** Changes whenever something may have made a read under way out of date (a clear, a write committed at once). */
  epoch(): number;
  /** Whether a damaged file is being replaced. */
  recovering(): boolean;
  /** Damage found by a read: the file is replaced. */
  recover(error: unknown): void;
  /** Queues a write (the restamp of a row from the future, the removal of an expired one). */
  enqueue(fullKey: string, row: Row | null): void;
}

/** The row a SELECT_ROW found (null: none). */
function rowFound(found: SqlRow | undefined): Row | null {
  return found === undefined ? null : parseRow(String(found.value), Number(found.evictable) !== 0);
}

export class ReadPath {
  constructor(private readonly host: ReadHost) {}

  /** The row known in memory: a pending write wins over the read cache; null means known absent. */
  memoryRow(fullKey: string): Row | null | undefined {
    const pending = this.host.pending.get(fullKey);
    if (pending !== undefined) return pending;
    return this.host.cache.get(fullKey);
  }

  /** Returns the row unless it expired; an expired row is queued for removal. */
  live(fullKey: string, row: Row | null | undefined): Row | undefined {
    if (!row) return undefined;
    const at = now();
    if (row.storedAt > at + CLOCK_SLACK_MS) {
      // stamped in the future: the clock went back; the entry keeps its TTL from now, never longer
      row = restamp(row, at);
      this.host.enqueue(fullKey, row);
    }
    if (row.expiresAt !== null && row.expiresAt <= at) {
      this.host.enqueue(fullKey, null);
      return undefined;
    }
    if (this.host.tracksReads) this.host.touched.set(fullKey, at);
    return row;
  }

  /** The row of a key, from memory or else read from the file (call holding the key). */
  async loadRow(fullKey: string): Promise<Row | null> {
    const known = this.memoryRow(fullKey);
    if (known !== undefined) return known;
    const epoch = this.host.epoch();
    let found: SqlRow | undefined;
    try {
      found = (await this.host.db().query(SELECT_ROW, [hexKey(fullKey)]))[0];
    } catch (error) {
      throw this.readFailed(error);
    }
    const row = rowFound(found);
    if (epoch === this.host.epoch() && !this.host.pending.has(fullKey)) this.host.cache.set(fullKey, row);
    return this.memoryRow(fullKey) ?? row;
  }

  /**
   * The row of a key (null: known absent) without waiting: from memory, else read at once where the
   * driver can; undefined when it must be waited for (read asynchronously, or behind the key's queue).
   * `queued`: a row in memory counts only while no task holds the key (an update must wait its turn).
   */
  knownRow(fullKey: string, queued: boolean): Row | null | undefined {
    const busy = this.host.locks.busy(fullKey);
    if (queued && busy) return undefined;
    const known = this.memoryRow(fullKey);
    if (known !== undefined || busy) return known;
    return this.loadRowNow(fullKey);
  }

  /**
   * The row of a key that memory does not know, read at once where the driver can (node:sqlite):
   * nothing can come between the read and what the caller does with it, so no key lock is needed.
   * Undefined where the driver cannot read at once (sqlite3), or while a damaged file is replaced.
   */
  private loadRowNow(fullKey: string): Row | null | undefined {
    const querySync = this.host.db().querySync;
    if (!querySync || this.host.recovering()) return undefined;
    let found: SqlRow | undefined;
    try {
      found = querySync(SELECT_ROW, [hexKey(fullKey)])[0];
    } catch (error) {
      throw this.readFailed(error);
    }
    const row = rowFound(found);
    this.host.cache.set(fullKey, row);
    return row;
  }

  /** A read failed: damage starts the file's replacement; the caller gets a read error. */
  private readFailed(error: unknown): StoreIOError {
    if (isCorruption(error)) this.host.recover(error);
    return new StoreIOError('read', this.host.file, error);
  }
}
