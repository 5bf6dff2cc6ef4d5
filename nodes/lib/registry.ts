import path from 'node:path';
import { messageOf } from './errors';
import { resolveStoreOptions, type StoreOptions, sizeLimitBytes } from './options';
import { type CacheSpace, type FlightOptions, namespaceTtl } from './space';
import { type Entry, Store, type UpdateDecision, type UpdateResult } from './store';

interface Shared {
  opening: Promise<Store>;
  users: number;
}

const open = new Map<string, Shared>();
/** Stores whose last user has gone and that are still flushing and closing, by file. */
const closing = new Map<string, Promise<void>>();

/** A user's hold on a shared store; `release()` closes the store when its last user lets go. */
export interface StoreLease {
  store: Store;
  release(): Promise<void>;
}

/**
 * Opens the store for a database file, or shares the one already open: one Store per file, so
 * every node writing the same file goes through one group-commit queue and one read cache.
 *
 * The options of the first user of a file apply while it is open; once its last user has let go
 * the store is flushed and closed, and the next user opens it again with that user's options
 * (a redeploy that changes a cache-store's settings stops every node using it, then starts them).
 * An open waits for a close of the same file still in progress, so two Store objects never hold
 * one file at once. A failed open is not remembered, so the next user tries again (after a
 * permissions fix, say). Each lease is released at most once; releasing again does nothing.
 */
export async function acquireStore(file: string, options: StoreOptions = {}): Promise<StoreLease> {
  const key = path.resolve(file);
  let shared = open.get(key);
  if (!shared) {
    const previous = closing.get(key);
    const opening = previous ? previous.then(() => Store.open(key, options)) : Store.open(key, options);
    shared = { opening, users: 0 };
    open.set(key, shared);
    const current = shared;
    shared.opening.catch(() => {
      if (open.get(key) === current) open.delete(key);
    });
  }
  shared.users++;
  const holder = shared;
  let store: Store;
  try {
    store = await holder.opening;
  } catch (error) {
    holder.users--;
    throw error;
  }
  warnIfDifferent(store, options);
  let released = false;
  return {
    store,
    async release() {
      if (released) return;
      released = true;
      holder.users--;
      if (holder.users > 0) return;
      if (open.get(key) === holder) open.delete(key);
      const closed = closeQuietly(store, options);
      closing.set(key, closed);
      await closed;
      if (closing.get(key) === closed) closing.delete(key);
    },
  };
}

/** Closes a store whose last user has gone; a failure is logged, never left for the next open to trip over. */
async function closeQuietly(store: Store, options: StoreOptions): Promise<void> {
  try {
    await store.close();
  } catch (error) {
    options.logger?.error(`cache database ${store.file}: closing failed: ${messageOf(error)}`);
  }
}

/** A second user asking for other settings gets the file's settings, and a warning saying so. */
function warnIfDifferent(store: Store, options: StoreOptions): void {
  const wanted = resolveStoreOptions(options);
  const differences: string[] = [];
  if (sizeLimitBytes(wanted.sizeLimitMb) !== store.sizeLimitBytes) differences.push(`size limit ${store.sizeLimitBytes / 1024 / 1024} MB`);
  if (wanted.evictionPolicy !== store.evictionPolicy) differences.push(`eviction policy ${store.evictionPolicy}`);
  if (wanted.durability !== store.durability) differences.push(`durability ${store.durability}`);
  if (differences.length > 0) {
    options.logger?.warn(
      `${store.file} is already open with other settings; its ${differences.join(', ')} apply until every node using the file has been ` +
        'stopped or redeployed (give each store its own file to keep them apart)',
    );
  }
}

/** One namespace of a store, with the namespace's default TTL applied to writes that give none. */
export class CacheNamespace implements CacheSpace {
  readonly kind = 'sqlite' as const;
  constructor(
    readonly store: Store,
    readonly name: string,
    readonly defaultTtl = 0,
  ) {}

  get backend(): Store {
    return this.store;
  }

  get(key: string): Promise<Entry | undefined> {
    return this.store.get(this.name, key);
  }

  set(key: string, value: unknown, ttlSeconds?: number): Promise<Entry> {
    return this.store.set(this.name, key, value, namespaceTtl(ttlSeconds, this.defaultTtl));
  }

  delete(key: string): Promise<boolean> {
    return this.store.delete(this.name, key);
  }

  clear(): Promise<void> {
    return this.store.clear(this.name);
  }

  keys(): Promise<string[]> {
    return this.store.keys(this.name);
  }

  entries(): Promise<[string, Entry][]> {
    return this.store.entries(this.name);
  }

  /** One process holds the file, and its callers already join their flights: the work just runs. */
  singleFlight(_flightKey: string, work: () => Promise<Entry>, _options: FlightOptions): Promise<Entry> {
    return work();
  }

  /** The same namespace without a default TTL: for state kept until it is changed (counts), whatever the store's default. */
  withoutDefaultTtl(): CacheNamespace {
    return this.defaultTtl === 0 ? this : new CacheNamespace(this.store, this.name, 0);
  }

  /** Atomic read-modify-write; a decision without a TTL gets the namespace default. */
  update(key: string, change: (current: Entry | undefined) => UpdateDecision): Promise<UpdateResult> {
    return this.store.update(this.name, key, (current) => {
      const decision = change(current);
      if (decision && 'value' in decision) return { ...decision, ttl: namespaceTtl(decision.ttl, this.defaultTtl) };
      return decision;
    });
  }
}

/** The files of the stores open right now (any user: nodes, the context store), for inspection. */
export function openStoreFiles(): string[] {
  return [...open.keys()];
}
