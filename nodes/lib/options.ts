// The store's settings in one place: their defaults, the eviction policies, and the one check every
// caller (the store, the shared-store registry, the cache-store config node, the editor) relies on.
import { DRIVER_CHOICES, type DriverChoice } from './driver';
import { CacheError } from './errors';

export type Durability = 'immediate' | 'deferred';

/** What each eviction policy removes first when the size limit is reached. */
export const EVICTION_POLICY_TABLE = {
  /** Oldest write first. */
  'least-recently-stored': { orderColumn: 'stored_at', tracksReads: false, evicts: true },
  /** Longest unread first: reads are recorded (in batches, once a second). */
  'least-recently-used': { orderColumn: 'accessed_at', tracksReads: true, evicts: true },
  /** Nothing is removed: a write that does not fit fails with STORE_FULL. */
  none: { orderColumn: undefined, tracksReads: false, evicts: false },
} as const;

export type EvictionPolicy = keyof typeof EVICTION_POLICY_TABLE;
export const EVICTION_POLICIES = Object.keys(EVICTION_POLICY_TABLE) as readonly EvictionPolicy[];
export const DURABILITIES: readonly Durability[] = ['immediate', 'deferred'];

/** The defaults of every store setting; an unset or empty setting means these. */
export const STORE_DEFAULTS = {
  /** The database file, relative to Node-RED's userDir. */
  path: 'flow-cache/cache.sqlite',
  /** 'flow': one namespace per flow tab; 'shared': one named namespace for every flow. */
  scope: 'flow',
  /** Seconds; 0 = entries never expire unless a node or message gives a TTL. */
  defaultTtl: 0,
  sizeLimitMb: 100,
  evictionPolicy: 'least-recently-stored' as EvictionPolicy,
  durability: 'immediate' as Durability,
  /** Seconds between flushes in deferred mode. */
  flushInterval: 30,
  /** Seconds between sweeps of expired entries (0 = no active sweep). */
  sweepInterval: 60,
  /** Entries held in the in-memory read cache. */
  readCacheEntries: 10_000,
  /** '' = the host's time zone. */
  timezone: '',
} as const;

/** Where the store reports what it cannot throw to a caller (flush failures in deferred mode, recovery). */
export interface StoreLogger {
  warn(message: string): void;
  error(message: string): void;
}

export interface StoreOptions {
  /** Limit of stored bytes (values and their metadata). */
  sizeLimitMb?: number;
  evictionPolicy?: EvictionPolicy;
  durability?: Durability;
  /** Seconds between flushes in deferred mode. */
  flushInterval?: number;
  /** Seconds between sweeps of expired entries (0 = no active sweep). */
  sweepInterval?: number;
  /** Entries held in the in-memory read cache. */
  readCacheEntries?: number;
  /** SQLite driver: 'auto' (default: node:sqlite where Node.js has it, else sqlite3), or one by name. */
  driver?: DriverChoice;
  logger?: StoreLogger;
}

/** Store options with every default filled in, after the check. */
export type ResolvedStoreOptions = Required<Omit<StoreOptions, 'logger' | 'driver'>> & Pick<StoreOptions, 'logger' | 'driver'>;

function isPositive(value: number): boolean {
  return Number.isFinite(value) && value > 0;
}

/** Checks store options and fills in the defaults; a bad one is a CacheError INVALID_OPTION naming it. */
export function resolveStoreOptions(options: StoreOptions = {}): ResolvedStoreOptions {
  const resolved: ResolvedStoreOptions = {
    sizeLimitMb: options.sizeLimitMb ?? STORE_DEFAULTS.sizeLimitMb,
    evictionPolicy: options.evictionPolicy ?? STORE_DEFAULTS.evictionPolicy,
    durability: options.durability ?? STORE_DEFAULTS.durability,
    flushInterval: options.flushInterval ?? STORE_DEFAULTS.flushInterval,
    sweepInterval: options.sweepInterval ?? STORE_DEFAULTS.sweepInterval,
    readCacheEntries: options.readCacheEntries ?? STORE_DEFAULTS.readCacheEntries,
    driver: options.driver,
    logger: options.logger,
  };
  const bad = (message: string, option = message.split(' ')[0]) =>
    new CacheError('INVALID_OPTION', message, { text: `option.${option}`, values: { value: String(options[option as keyof StoreOptions]) } });
  if (!isPositive(resolved.sizeLimitMb)) throw bad(`sizeLimitMb must be a number of MB > 0, got ${String(options.sizeLimitMb)}`);
  if (!Object.hasOwn(EVICTION_POLICY_TABLE, resolved.evictionPolicy)) {
    throw bad(`evictionPolicy must be one of ${EVICTION_POLICIES.join(', ')}, got ${String(options.evictionPolicy)}`);
  }
  if (!DURABILITIES.includes(resolved.durability)) throw bad(`durability must be one of ${DURABILITIES.join(', ')}, got ${String(options.durability)}`);
  if (!isPositive(resolved.flushInterval)) throw bad(`flushInterval must be a number of seconds > 0, got ${String(options.flushInterval)}`);
  if (!(Number.isFinite(resolved.sweepInterval) && resolved.sweepInterval >= 0)) {
    throw bad(`sweepInterval must be a number of seconds >= 0, got ${String(options.sweepInterval)}`);
  }
  if (!(Number.isInteger(resolved.readCacheEntries) && resolved.readCacheEntries >= 0)) {
    throw bad(`readCacheEntries must be a whole number >= 0, got ${String(options.readCacheEntries)}`);
  }
  if (resolved.driver !== undefined && !DRIVER_CHOICES.includes(resolved.driver)) {
    throw bad(`driver must be one of ${DRIVER_CHOICES.join(', ')}, got ${String(options.driver)}`);
  }
  return resolved;
}

/** The size limit in bytes, as the store counts it. */
export function sizeLimitBytes(sizeLimitMb: number): number {
  return Math.round(sizeLimitMb * 1024 * 1024);
}
