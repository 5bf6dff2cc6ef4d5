// Rows as the store holds them in memory and writes them to its table: the text of a row, the key
// encodings that keep namespaces apart in SQL, and the statements that write a batch of rows. The
// Redis backend keeps the same text under its keys, with the same key check and TTL stamps.
import { now } from './clock';
import { CacheError } from './errors';
import { TABLE } from './schema';
import { decodeJson, type Json } from './serialize';

/** A stored value with its timestamps (ms since the epoch). */
export interface Entry {
  value: unknown;
  storedAt: number;
  /** null: never expires. */
  expiresAt: number | null;
}

/** The last instant a JavaScript Date can hold. */
const MAX_DATE_MS = 8.64e15;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Rows a statement carries (and rows a sweep, clear or eviction round removes at a time). */
export const ROWS_PER_STATEMENT = 1000;

// One row as held in memory: `text` is exactly what the value column holds.
export interface Row {
  text: string;
  storedAt: number;
  expiresAt: number | null;
  size: number;
  /** Whether the size limit may remove the row. */
  evictable: boolean;
  /** The parsed value column, kept after the first read: decodeJson builds a fresh copy from it each time. */
  parsed?: { v: Json };
}

// rows arrive as one JSON array of [hexKey(key), value text, size, storedAt, expiresAt, evictable]; "WHERE true" lets SQLite parse the upsert
const UPSERT_ROWS = `INSERT INTO ${TABLE}(key, value, size, stored_at, accessed_at, expires_at, evictable)
  SELECT CAST(unhex(r.value ->> 0) AS TEXT), r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 3, r.value ->> 4, r.value ->> 5
  FROM json_each(?) AS r WHERE true
  ON CONFLICT(key) DO UPDATE SET value = excluded.value, size = excluded.size, stored_at = excluded.stored_at,
  accessed_at = excluded.accessed_at, expires_at = excluded.expires_at, evictable = excluded.evictable`;
// rows stamped after `now` (the clock went back): stamped anew at `now`, keeping their TTL from there
export const RESTAMP_FUTURE = `UPDATE ${TABLE} SET stored_at = ?1,
  expires_at = CASE WHEN expires_at IS NULL THEN NULL ELSE ?1 + (expires_at - stored_at) END,
  value = '{"s":' || ?1 || ',"e":' || COALESCE(?1 + (expires_at - stored_at), 'null') || substr(value, instr(value, ',"v":')),
  size = length(CAST('{"s":' || ?1 || ',"e":' || COALESCE(?1 + (expires_at - stored_at), 'null') || substr(value, instr(value, ',"v":')) AS BLOB))
  WHERE key IN (SELECT key FROM ${TABLE} WHERE stored_at > ?2 LIMIT ${ROWS_PER_STATEMENT}) RETURNING lower(hex(key)) AS hk`;

/** The part of a full key that names the namespace: hex, so SQL LIKE and case folding cannot mix namespaces. */
export function encodeNamespace(namespace: string): string {
  if (typeof namespace !== 'string' || namespace.length === 0) throw new CacheError('INVALID_NAMESPACE', 'namespace must be a non-empty string');
  return Buffer.from(namespace, 'utf8').toString('hex');
}

/** A key as UTF-8 hex, for passing keys inside a JSON parameter (SQLite's JSON functions cut text at U+0000). */
export function hexKey(key: string): string {
  return Buffer.from(key, 'utf8').toString('hex');
}

export function fromHex(hex: string): string {
  return Buffer.from(hex, 'hex').toString('utf8');
}

export function rangeEnd(prefix: string): string {
  // prefix ends with ':'; ';' is the next code point, so [prefix, end) holds exactly the namespace
  return `${prefix.slice(0, -1)};`;
}

/** The entry of a row, a fresh copy of its value; the parsed text is kept for the next read (only read rows are parsed). */
export function toEntry(row: Row): Entry {
  row.parsed ??= JSON.parse(row.text) as { v: Json };
  const parsed = row.parsed;
  return { value: decodeJson(parsed.v), storedAt: row.storedAt, expiresAt: row.expiresAt };
}

/** Refuses a key that is empty or not well-formed text. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new CacheError('INVALID_KEY', 'key must be a non-empty string', { text: 'keyEmpty' });
  // UTF-8 (the SQLite drivers', Redis's) turns a lone surrogate into U+FFFD, so two such keys would share one row or Redis key
  if (LONE_SURROGATE.test(key)) throw new CacheError('INVALID_KEY', 'key must be well-formed text: it holds a lone UTF-16 surrogate', { text: 'keySurrogate' });
}

/**
 * The stamps of a value written now with a TTL in seconds (0 or undefined: no expiry), and the TTL in
 * ms, at least `minTtlMs` (Redis's PX takes no 0). A bad TTL is INVALID_TTL and nothing is written.
 */
export function stampsOf(ttlSeconds: number | undefined, minTtlMs = 0): { storedAt: number; expiresAt: number | null; ttlMs: number } {
  if (ttlSeconds !== undefined && (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds < 0)) {
    throw new CacheError('INVALID_TTL', `ttl must be a number of seconds >= 0, got ${String(ttlSeconds)}`, {
      text: 'ttl',
      values: { value: String(ttlSeconds) },
    });
  }
  const storedAt = now();
  const ttlMs = ttlSeconds ? Math.max(minTtlMs, Math.round(ttlSeconds * 1000)) : 0;
  const expiresAt = ttlSeconds ? storedAt + ttlMs : null;
  // a huge TTL would overflow to Infinity, which JSON cannot hold: the entry would never be readable again
  if (expiresAt !== null && !(expiresAt <= MAX_DATE_MS)) {
    throw new CacheError('INVALID_TTL', `ttl of ${String(ttlSeconds)} s ends after the last date that can be stored`, {
      text: 'ttlTooLong',
      values: { value: String(ttlSeconds) },
    });
  }
  return { storedAt, expiresAt, ttlMs };
}

export function rowText(valueText: string, storedAt: number, expiresAt: number | null): string {
  return `{"s":${storedAt},"e":${expiresAt === null ? 'null' : expiresAt},"v":${valueText}}`;
}

export function parseRow(text: string, evictable: boolean): Row {
  const parsed = JSON.parse(text) as { s: number; e: number | null };
  return { text, storedAt: parsed.s, expiresAt: parsed.e, size: Buffer.byteLength(text), evictable };
}

/** A row stamped at `at` instead of its future stamp, keeping its TTL (the value text is reused as is). */
export function restamp(row: Row, at: number): Row {
  const expiresAt = row.expiresAt === null ? null : at + Math.max(0, row.expiresAt - row.storedAt);
  const text = `{"s":${at},"e":${expiresAt === null ? 'null' : expiresAt}${row.text.slice(row.text.indexOf(',"v":'))}`;
  return { text, storedAt: at, expiresAt, size: Buffer.byteLength(text), evictable: row.evictable, parsed: row.parsed };
}

/** The statements that write `puts` (null: delete) and access times: a thousand rows each, one JSON parameter per statement. */
export function writeStatementsOf(puts: Map<string, Row | null>, touched: Map<string, number>, perStatement: number): [string, unknown[]][] {
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
  statements.push(...touchStatementsOf(touched));
  return statements;
}

/** The statements that write access times (least-recently-used eviction), a thousand rows each. */
export function touchStatementsOf(touched: Map<string, number>): [string, unknown[]][] {
  const statements: [string, unknown[]][] = [];
  const touches = [...touched];
  for (let i = 0; i < touches.length; i += ROWS_PER_STATEMENT) {
    statements.push([
      `UPDATE ${TABLE} SET accessed_at = t.value ->> 1 FROM json_each(?) AS t WHERE ${TABLE}.key = CAST(unhex(t.value ->> 0) AS TEXT)`,
      [JSON.stringify(touches.slice(i, i + ROWS_PER_STATEMENT).map(([key, at]) => [hexKey(key), at]))],
    ]);
  }
  return statements;
}
