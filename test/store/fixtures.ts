import fs from 'node:fs';
import path from 'node:path';
import { type DriverChoice, openPlain, type SqlDriver } from '../../nodes/lib/driver';
import { DURABILITIES, EVICTION_POLICIES } from '../../nodes/lib/options';
import { encodeNamespace, Store, type StoreLogger, type StoreOptions } from '../../nodes/lib/store';
import { tempDir } from '../support/harness';

/** Every durability mode and every eviction policy: feature tests run once for each where the behaviour applies. */
export { DURABILITIES, EVICTION_POLICIES };

let root: string | undefined;

/** A fresh directory for one test, inside one temp directory per test file (removed at exit). */
export function freshDir(): string {
  root ??= tempDir('flow-cache-store-');
  return fs.mkdtempSync(path.join(root, 't-'));
}

/** A path for a new database file in a fresh directory. */
export function tempFile(name = 'cache.sqlite'): string {
  return path.join(freshDir(), name);
}

/** A logger that keeps what it was told, so tests can assert on it. */
export class RecordingLogger implements StoreLogger {
  readonly warnings: string[] = [];
  readonly errors: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string): void {
    this.errors.push(message);
  }
}

/** Opens a store with no background sweep, so only the test decides when expired rows go. */
export function openStore(file: string, options: StoreOptions = {}): Promise<Store> {
  return Store.open(file, { sweepInterval: 0, ...options });
}

/**
 * Waits until every write accepted so far is in the file and the work its commit set off (eviction)
 * is done: flush() commits what is pending (deferred mode); a flush with nothing left to commit waits
 * for all database work already queued.
 */
export async function settled(store: Store): Promise<void> {
  await store.flush();
  await store.flush();
}

/** A second, independent connection to a database file: sees only what was committed to disk. */
export class RawDb {
  private constructor(private readonly db: SqlDriver) {}

  /** Through the driver the store under test uses (FLOW_CACHE_DRIVER, else the best one here). */
  static async open(file: string): Promise<RawDb> {
    return new RawDb(await openPlain(file, testDriver(), { busyTimeoutMs: 5000 }));
  }

  async all<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    // rows as plain objects, whichever driver made them (node:sqlite's have a null prototype)
    return (await this.db.query(sql, params)).map((row) => ({ ...row })) as T[];
  }

  async run(sql: string, params: unknown[] = []): Promise<void> {
    await this.db.query(sql, params);
  }

  /** How many rows the keyv table holds on disk (every namespace, expired or not). */
  async rowCount(): Promise<number> {
    const rows = await this.all<{ n: number }>('SELECT COUNT(*) AS n FROM keyv');
    return rows[0].n;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** The driver store tests run against: FLOW_CACHE_DRIVER (set per run by the test script), else auto. */
export function testDriver(): DriverChoice {
  const named = process.env.FLOW_CACHE_DRIVER;
  return named === 'node:sqlite' || named === 'sqlite3' ? named : 'auto';
}

/** Opens a raw connection, runs `read` and closes the connection again. */
export async function onDisk<T>(file: string, read: (db: RawDb) => Promise<T>): Promise<T> {
  const db = await RawDb.open(file);
  try {
    return await read(db);
  } finally {
    await db.close();
  }
}

/** Rows of one namespace on disk, by the key the caller used (namespace prefix removed). */
export async function diskKeys(file: string, namespace: string): Promise<string[]> {
  const prefix = `${encodeNamespace(namespace)}:`;
  const rows = await onDisk(file, (db) => db.all<{ key: string }>('SELECT key FROM keyv ORDER BY key'));
  return rows.filter((r) => r.key.startsWith(prefix)).map((r) => r.key.slice(prefix.length));
}
