// Size accounting and eviction: how many bytes the store holds (committed, being written, queued),
// whether a write fits under the size limit, and which cache entries eviction removes to make room.
// Counter and cooldown state (rows that are not evictable) is counted apart and never removed.
import { now } from './clock';
import { formatBytes, StoreFullError } from './errors';
import type { EvictionPolicy, StoreLogger } from './options';
import { META_TABLE, TABLE } from './schema';
import { fromHex, hexKey, ROWS_PER_STATEMENT, type Row } from './store-rows';

/** Bytes of a group of rows, and of those among them that may not be evicted. */
export interface Counted {
  bytes: number;
  pinned: number;
}

export interface EvictionRound {
  entries: number;
  bytes: number;
  at: number;
}

type Query = (sql: string, params: readonly unknown[]) => Promise<unknown[]>;

const EVICTION_LOG_MS = 60_000;

/** Adds a row to a group's counts. */
export function countRow(group: Counted, row: Row): void {
  group.bytes += row.size;
  if (!row.evictable) group.pinned += row.size;
}

/** Takes a row out of a group's counts. */
export function uncountRow(group: Counted, row: Row): void {
  group.bytes -= row.size;
  if (!row.evictable) group.pinned -= row.size;
}

/**
 * The bytes the store holds, as the size limit counts them: what the file holds (read from the
 * counters its triggers keep), what is being written, and what the caller's queued batch holds.
 * Every figure is an upper bound: a queued write adds its bytes but subtracts nothing for the row
 * it replaces on disk, unless a recount credited it.
 */
export class SizeAccount {
  committed: Counted = { bytes: 0, pinned: 0 };
  inflight: Counted = { bytes: 0, pinned: 0 };
  /**
   * What the counts above overstate, as the last recount found: rows in the file that writes not yet
   * committed replace or delete. Dropped whenever the counts are read from the file again or a batch fails.
   */
  credit: Counted = { bytes: 0, pinned: 0 };

  constructor(
    readonly limitBytes: number,
    /** Whether the policy removes cache entries to make room (false: a write over the limit is refused). */
    readonly evicts: boolean,
  ) {}

  /** Bytes the store would hold once `row` replaces `replaced` (what memory knows of its key), with `queued` waiting. */
  bytesAfter(replaced: Row | null | undefined, row: Row, queued: Counted): number {
    return this.committed.bytes + this.inflight.bytes + queued.bytes - this.credit.bytes + row.size - (replaced ? replaced.size : 0);
  }

  /**
   * Bytes that eviction could not free once `row` is stored: every row that may not be evicted, plus
   * `row` itself (eviction never removes the write that made room necessary).
   */
  keptAfter(replaced: Row | null | undefined, row: Row, queued: Counted): number {
    const replacedPinned = replaced && !replaced.evictable ? replaced.size : 0;
    return this.committed.pinned + this.inflight.pinned + queued.pinned - this.credit.pinned + row.size - replacedPinned;
  }

  /**
   * Whether `row` fits under the size cap by the counts in memory: with eviction off, the whole store
   * must fit; with eviction on, the rows eviction may not remove (and `row`) must.
   */
  fits(replaced: Row | null | undefined, row: Row, queued: Counted): boolean {
    if (!this.evicts) return this.bytesAfter(replaced, row, queued) <= this.limitBytes;
    return this.keptAfter(replaced, row, queued) <= this.limitBytes;
  }

  /** Throws StoreFullError if `row` does not fit. */
  assertRoom(replaced: Row | null | undefined, row: Row, queued: Counted): void {
    if (this.fits(replaced, row, queued)) return;
    if (!this.evicts) throw new StoreFullError(this.limitBytes, this.bytesAfter(replaced, row, queued));
    const kept = this.keptAfter(replaced, row, queued) - row.size;
    if (kept > 0) {
      throw new StoreFullError(this.limitBytes, row.size, `${formatBytes(kept)} of it is counter and cooldown state, which is never evicted`, 'fullPinned', {
        kept: formatBytes(kept),
      });
    }
    throw new StoreFullError(this.limitBytes, row.size, 'a single value may not be larger than the limit', 'fullTooLarge');
  }

  /** A batch goes to the database. */
  writing(batch: Counted): void {
    this.inflight.bytes += batch.bytes;
    this.inflight.pinned += batch.pinned;
  }

  /** A batch being written is committed (true) or failed (false). */
  written(batch: Counted, committed: boolean): void {
    this.inflight.bytes -= batch.bytes;
    this.inflight.pinned -= batch.pinned;
    if (committed) {
      this.committed.bytes += batch.bytes;
      this.committed.pinned += batch.pinned;
    } else {
      this.credit = { bytes: 0, pinned: 0 }; // what the batch would have replaced is in the file still
    }
  }

  /** A row committed on its own (replacing `replaced`, or deleting it when `row` is null). */
  committedNow(replaced: Row | null | undefined, row: Row | null): void {
    this.committed.bytes += (row?.size ?? 0) - (replaced?.size ?? 0);
    this.committed.pinned += (row && !row.evictable ? row.size : 0) - (replaced && !replaced.evictable ? replaced.size : 0);
  }

  /** The file was replaced by an empty one. */
  reset(): void {
    this.committed = { bytes: 0, pinned: 0 };
    this.credit = { bytes: 0, pinned: 0 };
  }

  /** Reads the byte counters the triggers keep, into the committed counts. */
  async readCounts(query: Query): Promise<Counted> {
    const rows = (await query(`SELECT name, value FROM ${META_TABLE} WHERE name IN ('bytes', 'pinned_bytes')`, [])) as {
      name: string;
      value: number;
    }[];
    const counts = { bytes: 0, pinned: 0 };
    for (const row of rows) {
      if (row.name === 'bytes') counts.bytes = Number(row.value);
      else counts.pinned = Number(row.value);
    }
    this.committed = { ...counts };
    this.credit = { bytes: 0, pinned: 0 }; // the file's counts hold what committed writes replaced
    return counts;
  }

  /**
   * Sets the credit: the rows in the file that `pending` writes replace or delete. Run with the
   * database to itself (nothing is written while it reads), after readCounts. A key written while it
   * reads gets no credit, which only leaves the counts an upper bound, as they are without one.
   */
  async creditPending(query: Query, pending: Map<string, Row | null>, queued: Counted, pause: () => Promise<void>): Promise<void> {
    const keys = [...pending.keys()];
    let replacedBytes = 0;
    let replacedPinned = 0;
    for (let i = 0; i < keys.length; i += ROWS_PER_STATEMENT) {
      if (i > 0) await pause();
      const chunk = keys.slice(i, i + ROWS_PER_STATEMENT).map(hexKey);
      const [found] = (await query(
        `SELECT total(size) AS bytes, total((1 - evictable) * size) AS pinned FROM ${TABLE} WHERE key IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))`,
        [JSON.stringify(chunk)],
      )) as { bytes: number; pinned: number }[];
      replacedBytes += Number(found.bytes);
      replacedPinned += Number(found.pinned);
    }
    // what the file will hold once every pending write is in it, against what the counts say now
    const inPending = { bytes: 0, pinned: 0 };
    for (const row of pending.values()) if (row) countRow(inPending, row);
    const counted = this.committed.bytes + this.inflight.bytes + queued.bytes;
    const countedPinned = this.committed.pinned + this.inflight.pinned + queued.pinned;
    this.credit = {
      bytes: Math.max(0, counted - (this.committed.bytes - replacedBytes + inPending.bytes)),
      pinned: Math.max(0, countedPinned - (this.committed.pinned - replacedPinned + inPending.pinned)),
    };
  }
}

/** What eviction needs of the store. */
export interface EvictionHost {
  readonly file: string;
  readonly logger: StoreLogger;
  query: Query;
  /** Drops keys removed on disk from the read cache. */
  forget(keys: string[]): void;
  /** Lets other work run between two statements. */
  pause(): Promise<void>;
  /** Tells the store's listeners about a round ('evicted' event). */
  announce(round: EvictionRound): void;
}

/** Removes cache entries (never counter or cooldown state) in the policy's order until the store is under its limit. */
export class Eviction {
  /** The last eviction round, for statuses and inspection. */
  last: EvictionRound | undefined;
  private sinceLog = { entries: 0, bytes: 0 };
  private lastLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly host: EvictionHost,
    private readonly account: SizeAccount,
    private readonly policy: EvictionPolicy,
    /** The column that orders candidates, oldest first. */
    private readonly orderColumn: string,
  ) {}

  /** Deletes cache entries by the policy until the store is back under its size limit; logs each round (at most once a minute). */
  async run(): Promise<void> {
    const { host, account } = this;
    await account.readCounts(host.query);
    let entries = 0;
    let bytes = 0;
    while (account.committed.bytes > account.limitBytes) {
      const candidates = (await host.query(
        `SELECT lower(hex(key)) AS hk, size FROM ${TABLE} WHERE evictable = 1 ORDER BY ${this.orderColumn}, rowid LIMIT ${ROWS_PER_STATEMENT}`,
        [],
      )) as { hk: string; size: number }[];
      if (candidates.length === 0) break;
      const victims: string[] = [];
      let excess = account.committed.bytes - account.limitBytes;
      for (const c of candidates) {
        if (excess <= 0) break;
        victims.push(c.hk);
        excess -= Number(c.size);
        bytes += Number(c.size);
      }
      await host.query(`DELETE FROM ${TABLE} WHERE key IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))`, [JSON.stringify(victims)]);
      entries += victims.length;
      host.forget(victims.map(fromHex));
      await account.readCounts(host.query);
      await host.pause();
    }
    if (entries > 0) this.evicted(entries, bytes);
  }

  private evicted(entries: number, bytes: number): void {
    const at = now();
    this.last = { entries, bytes, at };
    this.sinceLog.entries += entries;
    this.sinceLog.bytes += bytes;
    if (at - this.lastLog >= EVICTION_LOG_MS || at < this.lastLog) {
      const { entries: n, bytes: b } = this.sinceLog;
      this.host.logger.warn(
        `cache database ${this.host.file} reached its size limit of ${formatBytes(this.account.limitBytes)}: evicted ${n} cache entries (${formatBytes(b)}) by ${this.policy}`,
      );
      this.sinceLog = { entries: 0, bytes: 0 };
      this.lastLog = at;
    }
    this.host.announce(this.last);
  }
}
