// Opening a store's file: checks that it is a regular file of ours (or none yet), takes the lock that
// keeps a second process out, moves a damaged file of ours aside, and connects with the schema up to date.
import { now } from './clock';
import { DRIVER_CHOICES, type DriverChoice, openDriver, openPlain, resolveDriver, type SqlDriver } from './driver';
import { CacheError, messageOf, StoreIOError } from './errors';
import { describeHolder, type FileLock, type Holder, takeLock } from './file-lock';
import { EVICTION_POLICY_TABLE, type ResolvedStoreOptions, resolveStoreOptions, type StoreLogger, type StoreOptions } from './options';
import { configureConnection, ensureSchema } from './schema';
import { checkFile, isCorruption, moveAside, prepareDirectory, prepareFile } from './sqlite-file';

export const BUSY_TIMEOUT_MS = 5000;

/** Makes the store on a connection; a failure closes the connection. */
type Make<T> = (db: SqlDriver, lock: FileLock, options: ResolvedStoreOptions, logger: StoreLogger) => Promise<T>;

/** The error a second process gets for a database another process holds. */
function lockedError(file: string, holder: Holder | undefined): CacheError {
  return new CacheError(
    'STORE_LOCKED',
    `cache database ${file} is in use by ${describeHolder(holder)}; a database file serves one Node-RED process at a time (give each its own file, or use a shared backend)`,
    { text: 'locked', values: { file, holder: describeHolder(holder) } },
  );
}

/**
 * Opens (creating if needed) the database file. A file of ours that is damaged is moved aside and
 * replaced; any other file (not SQLite, or another program's database) is refused and left
 * untouched; a file another process has open is refused with an error naming that process.
 */
export async function openStoreFile<T>(file: string, given: StoreOptions, make: Make<T>): Promise<T> {
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
      return await connect(file, lock, options, logger, driver, make);
    } catch (error) {
      if (!isCorruption(error)) throw error instanceof CacheError ? error : new StoreIOError('open', file, error);
      setAside(file, messageOf(error), logger);
      try {
        return await connect(file, lock, options, logger, driver, make);
      } catch (again) {
        throw new StoreIOError('open', file, again);
      }
    }
  } catch (error) {
    await lock.release().catch(() => undefined);
    throw error;
  }
}

async function connect<T>(file: string, lock: FileLock, options: ResolvedStoreOptions, logger: StoreLogger, driver: DriverChoice, make: Make<T>): Promise<T> {
  const db = await openDatabase(file, options, driver);
  try {
    return await make(db, lock, options, logger);
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
}

/** Connects to a file of ours, brings its schema up to date and records this process as its holder. */
export async function openDatabase(file: string, options: ResolvedStoreOptions, driver: DriverChoice): Promise<SqlDriver> {
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

/** The driver used when a store names none: FLOW_CACHE_DRIVER if set, else the best this Node.js has. */
function defaultDriver(): DriverChoice {
  const named = process.env.FLOW_CACHE_DRIVER;
  return named && (DRIVER_CHOICES as readonly string[]).includes(named) ? (named as DriverChoice) : 'auto';
}

/** Moves a damaged database of ours aside, logs where it went, and leaves an empty file in its place. */
export function setAside(file: string, why: string, logger: StoreLogger): void {
  const aside = moveAside(file, now());
  logger.error(`cache database ${file} is damaged (${why}); moved it to ${aside} and started an empty one`);
  prepareFile(file);
}
