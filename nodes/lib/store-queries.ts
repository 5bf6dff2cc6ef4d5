// The store's read-only queries over the whole table: key listings, namespace statistics and the
// inspection of one entry, as the admin API and the sidebar use them, and the namespace-wide reads
// (keys, entries, namespaces). Every query commits the writes still pending first, so it shows what
// the nodes wrote.
import { now } from './clock';
import { CacheError } from './errors';
import { TABLE } from './schema';
import { type Entry, encodeNamespace, fromHex, hexKey, parseRow, rangeEnd, toEntry } from './store-rows';

/** What the queries need of the store. */
export interface QueryHost {
  query(sql: string, params: readonly unknown[]): Promise<unknown[]>;
  /** Commits every pending write. */
  flush(): Promise<void>;
  /** Throws if the store is closed. */
  assertOpen(): void;
  /** The key as stored: its namespace's prefix and the key, checked. */
  fullKey(namespace: string, key: string): string;
}

export class StoreQueries {
  constructor(private readonly host: QueryHost) {}

  /** Lists the unexpired keys of a namespace (reads the disk; meant for inspection, not hot paths). */
  async keys(namespace: string): Promise<string[]> {
    await this.host.flush();
    const prefix = `${encodeNamespace(namespace)}:`;
    const rows = (await this.host.query(
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
    await this.host.flush();
    const prefix = `${encodeNamespace(namespace)}:`;
    const rows = (await this.host.query(
      `SELECT lower(hex(key)) AS hk, value, evictable FROM ${TABLE} WHERE key >= ? AND key < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key`,
      [prefix, rangeEnd(prefix), now()],
    )) as { hk: string; value: string; evictable: number }[];
    return rows.map((r) => [fromHex(r.hk).slice(prefix.length), toEntry(parseRow(String(r.value), Number(r.evictable) !== 0))]);
  }

  /** The names of the namespaces that hold rows on disk (after a flush). */
  async namespaces(): Promise<string[]> {
    await this.host.flush();
    const rows = (await this.host.query(`SELECT DISTINCT substr(key, 1, instr(key, ':') - 1) AS ns FROM ${TABLE}`, [])) as { ns: string }[];
    return rows.map((r) => Buffer.from(String(r.ns), 'hex').toString('utf8')).sort();
  }

  /**
   * One page of a namespace's unexpired keys, filtered, sorted and paged in the database, never by
   * loading every key: `filter` matches the start of a key (`match: 'prefix'`, a range of the key
   * index) or any part of it (`'substring'`, ASCII letters in either case); sorted by key or by last
   * write (newest first); the next page starts after `after`, the last key of the page before. Writes
   * not yet committed are committed first, so the page shows what the nodes wrote.
   */
  async listKeys(namespace: string, options: KeyListOptions = {}): Promise<KeyPage> {
    this.host.assertOpen();
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_KEY_PAGE) {
      throw new CacheError('INVALID_INPUT', `limit must be a whole number from 0 to ${MAX_KEY_PAGE}, got ${String(options.limit)}`);
    }
    const prefix = `${encodeNamespace(namespace)}:`;
    const filter = options.filter ?? '';
    const match = options.match ?? 'prefix';
    const sort = options.sort ?? 'key';
    await this.host.flush();
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
    const [{ n }] = (await this.host.query(`SELECT count(*) AS n FROM ${TABLE} WHERE ${where.join(' AND ')}`, params)) as { n: number }[];
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
    const rows = (await this.host.query(
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
    this.host.assertOpen();
    await this.host.flush();
    const range = namespace === undefined ? '' : 'WHERE key >= ?2 AND key < ?3';
    const params: unknown[] = [now()];
    if (namespace !== undefined) {
      const prefix = `${encodeNamespace(namespace)}:`;
      params.push(prefix, rangeEnd(prefix));
    }
    const rows = (await this.host.query(
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
    const fullKey = this.host.fullKey(namespace, key);
    await this.host.flush();
    const found = (await this.host.query(`SELECT value, size, evictable FROM ${TABLE} WHERE key = CAST(unhex(?) AS TEXT)`, [hexKey(fullKey)]))[0] as
      | { value: string; size: number; evictable: number }
      | undefined;
    if (!found) return undefined;
    const row = parseRow(String(found.value), Number(found.evictable) !== 0);
    if (row.expiresAt !== null && row.expiresAt <= now()) return undefined;
    return { ...toEntry(row), size: Number(found.size), evictable: row.evictable };
  }
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
