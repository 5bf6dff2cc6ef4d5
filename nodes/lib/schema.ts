/**
 * The database layout: keyv's table with our columns, indexes, byte counters and the header mark
 * that tells our files from any other. Creation and upgrades run in one transaction, so two
 * processes opening a new file at once cannot both add a column.
 */
import { type SqlDriver, sqliteCode } from './driver';

/** `PRAGMA application_id` of every database this package writes: "FCch" in the file header (offset 68). */
export const APPLICATION_ID = 0x46436368;

export const TABLE = 'keyv';
export const PAGE_SIZE = 1024;
export const META_TABLE = 'flow_cache_meta';

/** Tables a database of ours may hold; a file with any other table belongs to another program. */
export const OUR_TABLES: readonly string[] = [TABLE, META_TABLE];

const COLUMNS: readonly [string, string][] = [
  ['size', 'INTEGER NOT NULL DEFAULT 0'],
  ['stored_at', 'INTEGER NOT NULL DEFAULT 0'],
  ['accessed_at', 'INTEGER NOT NULL DEFAULT 0'],
  ['expires_at', 'INTEGER'],
  // 1: a cache by nature (cache-set values, ttl-fetch answers), the only rows eviction may remove
  ['evictable', 'INTEGER NOT NULL DEFAULT 1'],
];

// the byte counters: 'bytes' of every row, 'pinned_bytes' of rows eviction may not remove. Each trigger
// touches only the counters that change: an update that keeps a row's size and kind (a counter, a
// cooldown, a sensor value of the same length) touches none, an evictable row never 'pinned_bytes'.
const TRIGGERS: Record<string, string> = {
  [`${TABLE}_bytes_insert`]: `CREATE TRIGGER ${TABLE}_bytes_insert AFTER INSERT ON ${TABLE}
  BEGIN UPDATE ${META_TABLE} SET value = value + CASE name WHEN 'bytes' THEN NEW.size ELSE (1 - NEW.evictable) * NEW.size END
  WHERE name = 'bytes' OR (name = 'pinned_bytes' AND NEW.evictable = 0); END`,
  [`${TABLE}_bytes_update`]: `CREATE TRIGGER ${TABLE}_bytes_update AFTER UPDATE OF size, evictable ON ${TABLE}
  WHEN NEW.size IS NOT OLD.size OR NEW.evictable IS NOT OLD.evictable
  BEGIN UPDATE ${META_TABLE} SET value = value + CASE name WHEN 'bytes' THEN NEW.size - OLD.size
  ELSE (1 - NEW.evictable) * NEW.size - (1 - OLD.evictable) * OLD.size END
  WHERE name = 'bytes' OR (name = 'pinned_bytes' AND (NEW.evictable = 0 OR OLD.evictable = 0)); END`,
  [`${TABLE}_bytes_delete`]: `CREATE TRIGGER ${TABLE}_bytes_delete AFTER DELETE ON ${TABLE}
  BEGIN UPDATE ${META_TABLE} SET value = value - CASE name WHEN 'bytes' THEN OLD.size ELSE (1 - OLD.evictable) * OLD.size END
  WHERE name = 'bytes' OR (name = 'pinned_bytes' AND OLD.evictable = 0); END`,
};

/** What each connection to a database of ours sets for itself (the rest lives in the file). */
export async function configureConnection(db: SqlDriver): Promise<void> {
  await db.query('PRAGMA synchronous=NORMAL');
}

/** How long ensureSchema waits, by default, for another connection that is switching the same file to WAL (ms). */
export const WAL_SWITCH_WAIT_MS = 5000;

/**
 * Switches the file to write-ahead logging. On a file that is not yet in WAL mode, SQLite reads the
 * header under a shared lock and then upgrades to a write lock to mark it; when two connections do
 * this at once, the upgrade of one would deadlock with the other, so SQLite answers SQLITE_BUSY at
 * once without calling the busy handler. The statement has then ended and dropped its lock: trying
 * again waits (through the busy handler) for the other connection to finish and finds the file
 * already in WAL mode.
 */
async function switchToWal(db: SqlDriver, waitMs: number): Promise<void> {
  const deadline = performance.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      await db.query('PRAGMA journal_mode=WAL');
      return;
    } catch (error) {
      if (sqliteCode(error) !== 'SQLITE_BUSY' || performance.now() >= deadline) throw error;
      // a short, growing, random pause so that two connections do not meet again in step
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 5 * attempt)));
    }
  }
}

/**
 * Brings a database of ours up to date; `leastRecentlyUsed` decides whether the access-time index is
 * kept. Safe when several connections (in one process or several) run it on the same file at once,
 * also on a new file: each waits up to `waitMs` for the others.
 */
export async function ensureSchema(db: SqlDriver, leastRecentlyUsed: boolean, waitMs = WAL_SWITCH_WAIT_MS): Promise<void> {
  // small pages for a new file: a durable write rewrites whole pages (the row's, its index entries',
  // the byte counter's), so 1 KiB pages send a quarter of the bytes of 4 KiB ones to the card;
  // an existing file keeps the page size it was made with
  await db.query(`PRAGMA page_size=${PAGE_SIZE}`);
  await switchToWal(db, waitMs);
  await configureConnection(db);
  await db.query('BEGIN IMMEDIATE');
  try {
    const [{ application_id: mark }] = await db.query('PRAGMA application_id');
    if (Number(mark) !== APPLICATION_ID) await db.query(`PRAGMA application_id = ${APPLICATION_ID}`);
    await db.query(`CREATE TABLE IF NOT EXISTS ${TABLE}(key VARCHAR(255) PRIMARY KEY, value TEXT )`);
    const columns = new Set((await db.query(`PRAGMA table_info(${TABLE})`)).map((c) => String(c.name)));
    const addedEvictable = !columns.has('evictable');
    for (const [name, type] of COLUMNS) {
      if (!columns.has(name)) await db.query(`ALTER TABLE ${TABLE} ADD COLUMN ${name} ${type}`);
    }
    await db.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_stored_at ON ${TABLE}(stored_at)`);
    // the access-time index serves only least-recently-used eviction; elsewhere it would slow every write
    if (leastRecentlyUsed) await db.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_accessed_at ON ${TABLE}(accessed_at)`);
    else await db.query(`DROP INDEX IF EXISTS ${TABLE}_accessed_at`);
    await db.query(`CREATE INDEX IF NOT EXISTS ${TABLE}_expires_at ON ${TABLE}(expires_at) WHERE expires_at IS NOT NULL`);
    await db.query(`CREATE TABLE IF NOT EXISTS ${META_TABLE}(name TEXT PRIMARY KEY, value INTEGER NOT NULL)`);
    if (addedEvictable) {
      // rows written before the column existed: counter and cooldown state is never evictable
      await db.query(
        `UPDATE ${TABLE} SET evictable = 0 WHERE substr(key, instr(key, ':') + 1, 9) = 'cooldown:' OR substr(key, instr(key, ':') + 1, 8) = 'counter:'`,
      );
      await db.query(`DELETE FROM ${META_TABLE} WHERE name = 'pinned_bytes'`);
    }
    // the sums are computed only when a row is missing: summing every row on each open made startup grow with the store
    await db.query(`INSERT OR IGNORE INTO ${META_TABLE}(name, value) SELECT 'bytes', (SELECT COALESCE(SUM(size), 0) FROM ${TABLE})
      WHERE NOT EXISTS (SELECT 1 FROM ${META_TABLE} WHERE name = 'bytes')`);
    await db.query(`INSERT OR IGNORE INTO ${META_TABLE}(name, value) SELECT 'pinned_bytes', (SELECT COALESCE(SUM(size), 0) FROM ${TABLE} WHERE evictable = 0)
      WHERE NOT EXISTS (SELECT 1 FROM ${META_TABLE} WHERE name = 'pinned_bytes')`);
    // triggers are replaced only when their text changed, so opening a current file writes nothing
    const existing = new Map((await db.query(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger'`)).map((r) => [String(r.name), String(r.sql)]));
    for (const [name, sql] of Object.entries(TRIGGERS)) {
      if (existing.get(name) === sql) continue;
      await db.query(`DROP TRIGGER IF EXISTS ${name}`);
      await db.query(sql);
    }
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Whether an existing SQLite file that carries no mark of ours holds only what we would write (keyv's
 * table, our meta table) or nothing: files written before the mark existed, or an empty database.
 * Reads the schema only; changes nothing.
 */
export async function looksLikeOurs(db: SqlDriver): Promise<string | undefined> {
  const tables = (await db.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`)).map((r) => String(r.name));
  const foreign = tables.filter((name) => !OUR_TABLES.includes(name));
  if (foreign.length > 0) return `it holds tables of another program (${foreign.slice(0, 5).join(', ')})`;
  if (tables.includes(TABLE)) {
    const columns = new Set((await db.query(`PRAGMA table_info(${TABLE})`)).map((c) => String(c.name)));
    if (!columns.has('key') || !columns.has('value')) return `its ${TABLE} table has another layout`;
  }
  return undefined;
}
