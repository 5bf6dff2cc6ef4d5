// The one face every node sees of its namespace, whichever backend keeps it: a SQLite file
// (CacheNamespace) or a Redis server shared by several Node-RED processes (RedisNamespace).
import type { EventEmitter } from 'node:events';
import type { Entry, StoreHealth, UpdateDecision, UpdateResult } from './store';

/** Which kind of store keeps a namespace. */
export type BackendKind = 'sqlite' | 'redis';

/** What a backend tells its users about itself: `disconnected` while a server cannot be reached (Redis). */
export interface SpaceHealth extends StoreHealth {
  disconnected?: boolean;
}

/**
 * The store behind a namespace, as seen by whoever shows its news: `healthy` now, and events
 * 'health' (SpaceHealth: writes failing, a server lost or back) and, for SQLite, 'evicted'.
 */
export interface SpaceBackend extends EventEmitter {
  readonly healthy: boolean;
  /** What is wrong while it is not healthy, where the backend knows (Redis: disconnected, and why). */
  readonly health?: SpaceHealth;
}

/** The TTL a write gets in a namespace: one that gives none (undefined or 0) gets the namespace's default, if it has one. */
export function namespaceTtl(ttlSeconds: number | undefined, defaultTtl: number): number | undefined {
  return ttlSeconds === undefined || ttlSeconds === 0 ? defaultTtl || undefined : ttlSeconds;
}

/** How a single flight waits for, and tells other processes about, its outcome. */
export interface FlightOptions {
  /** The key the work stores its entry under: what a process that waited reads once the flight has landed. */
  key: string;
  /** How long the flight may take before it is given up by every process (the lock's expiry), ms. */
  holdMs: number;
  /** How long a caller waits for another process's flight before it fails with `timeout()`, ms. */
  waitMs: number;
  /** The error of a waiter whose wait ran out. */
  timeout(): Error;
  /** The work's error as JSON, for a waiter in another process (undefined: a plain error with its message). */
  encodeError?(error: unknown): unknown;
  /** That JSON as an error again, in the waiting process. */
  decodeError?(data: unknown): Error;
}

/**
 * One namespace of a store: what every node works with. Keys never leak between namespaces; values
 * keep their types (Date, Buffer, Map, BigInt... through the same serializer on every backend).
 *
 * `update` is atomic per key, also across processes on a shared backend. `change` must decide from
 * `current` alone: on a shared backend it may be called again with a newer entry when another
 * process wrote the key between the read and the write (only the last call's decision is stored),
 * so whatever it records outside must be set afresh on every call.
 */
export interface CacheSpace {
  /** The namespace's name, as the store keeps it apart from the others. */
  readonly name: string;
  /** The namespace's default TTL in seconds (0 = none). */
  readonly defaultTtl: number;
  readonly kind: BackendKind;
  readonly backend: SpaceBackend;
  get(key: string): Promise<Entry | undefined>;
  set(key: string, value: unknown, ttlSeconds?: number): Promise<Entry>;
  delete(key: string): Promise<boolean>;
  /** Removes every key of this namespace and nothing else. */
  clear(): Promise<void>;
  /** The unexpired keys of the namespace (inspection, not hot paths). */
  keys(): Promise<string[]>;
  /** Every unexpired entry of the namespace, by key (inspection and start-up scans, not hot paths). */
  entries(): Promise<[string, Entry][]>;
  /** Atomic read-modify-write; a decision without a TTL gets the namespace default. */
  update(key: string, change: (current: Entry | undefined) => UpdateDecision): Promise<UpdateResult>;
  /** The same namespace without a default TTL: for state kept until it is changed (counts), whatever the store's default. */
  withoutDefaultTtl(): CacheSpace;
  /**
   * Runs `work` (which stores its answer under `options.key`) for `flightKey` at most once at a time
   * among every user of the store: within one process the caller already joins flights, so on a
   * process-local store this simply runs `work`; on a shared one, other processes wait for the
   * holder's outcome and read its entry (or get its error) instead of running `work` themselves.
   * A holder that dies lets go when its hold expires.
   */
  singleFlight(flightKey: string, work: () => Promise<Entry>, options: FlightOptions): Promise<Entry>;
}
