// The Redis backend: namespaces kept on a Redis (or Valkey) server that several Node-RED processes
// share. One client (one connection, commands pipelined) per server, database and user, shared by
// every namespace on it (redis-connection.ts; redis-registry.ts hands them out). What a key is
// called and what it holds: redis-keys.ts; writes and the atomic update: redis-writes.ts; reading a
// whole namespace: redis-queries.ts.
import { randomUUID } from 'node:crypto';
import { CacheError, messageOf } from './errors';
import { pause, type RedisBackend } from './redis-connection';
import { flightLock, namespaceBase, parseEntry, redisKeyOf, sha1 } from './redis-keys';
import { namespaceEntries, namespaceKeys } from './redis-queries';
import { clearNamespace, deleteKey, setKey, updateKey } from './redis-writes';
import { type CacheSpace, type FlightOptions, namespaceTtl } from './space';
import type { UpdateDecision, UpdateResult } from './store';
import type { Entry } from './store-rows';

export { AnswerWatch, RedisBackend, type RedisConnection } from './redis-connection';
export { redactUrl, redisUrlHasSecret, shownRedisUrl } from './redis-url';

/** How long a flight's outcome stays readable for the processes that waited on it, at least. */
const FLIGHT_OUTCOME_MIN_MS = 10_000;
const FLIGHT_POLL_FIRST_MS = 5;
const FLIGHT_POLL_MAX_MS = 100;

// A flight ends: its outcome is kept for the waiters (KEYS[2], PX ARGV[3]), then its lock goes if it is still this flight's.
const LAND_SCRIPT = `redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

const LAND_SHA = sha1(LAND_SCRIPT);

/** One namespace on a Redis server: the CacheSpace every node uses, atomic per key across processes. */
export class RedisNamespace implements CacheSpace {
  readonly kind = 'redis' as const;
  /** `<prefix><namespace hex>`: every key of the namespace starts with it and a ':'. */
  private readonly base: string;

  constructor(
    readonly backend: RedisBackend,
    readonly name: string,
    readonly prefix: string,
    readonly defaultTtl = 0,
  ) {
    this.base = namespaceBase(prefix, name);
  }

  /** The Redis key of a key of this namespace. */
  redisKey(key: string): string {
    return redisKeyOf(this.base, key);
  }

  async get(key: string): Promise<Entry | undefined> {
    const k = this.redisKey(key);
    const text = await this.backend.run((client) => client.get(k));
    return text === null || text === undefined ? undefined : parseEntry(String(text), k);
  }

  async set(key: string, value: unknown, ttlSeconds?: number): Promise<Entry> {
    return setKey(this.backend, this.redisKey(key), value, namespaceTtl(ttlSeconds, this.defaultTtl));
  }

  async delete(key: string): Promise<boolean> {
    return deleteKey(this.backend, this.redisKey(key));
  }

  /** Removes every key of this namespace and nothing else in the database. */
  async clear(): Promise<void> {
    await clearNamespace(this.backend, this.base);
  }

  async keys(): Promise<string[]> {
    return namespaceKeys(this.backend, this.base);
  }

  async entries(): Promise<[string, Entry][]> {
    return namespaceEntries(this.backend, this.base);
  }

  withoutDefaultTtl(): RedisNamespace {
    return this.defaultTtl === 0 ? this : new RedisNamespace(this.backend, this.name, this.prefix, 0);
  }

  /** Atomic read-modify-write across every process on the server (redis-writes.ts); throwing from `change` writes nothing. */
  update(key: string, change: (current: Entry | undefined) => UpdateDecision): Promise<UpdateResult> {
    return updateKey(this.backend, this.redisKey(key), key, this.defaultTtl, change);
  }

  /**
   * One flight among every process on the server: a lock key taken with SET NX PX `holdMs`. The
   * holder runs `work`, then keeps its outcome under a key of its own for the waiters and lets the
   * lock go, in one script. Waiters poll for the outcome with backoff; they read the entry the holder
   * stored, or get its error. A holder that dies leaves the lock to expire, and the next caller takes it.
   */
  async singleFlight(flightKey: string, work: () => Promise<Entry>, options: FlightOptions): Promise<Entry> {
    const lock = flightLock(this.base, flightKey);
    const deadline = Date.now() + options.waitMs;
    const holdMs = Math.max(1, Math.round(options.holdMs));
    let pollMs = FLIGHT_POLL_FIRST_MS;
    for (;;) {
      const token = randomUUID();
      const taken = await this.backend.run((client) => client.set(lock, token, { NX: true, PX: holdMs }));
      if (taken === 'OK') return this.hold(lock, token, work, options);
      // someone else holds it: wait for their outcome, or for the lock to go without one (the holder died)
      let holder = await this.backend.run((client) => client.get(lock));
      while (holder !== null && holder !== undefined) {
        const left = deadline - Date.now();
        if (left <= 0) throw options.timeout();
        await pause(Math.min(pollMs, left));
        pollMs = Math.min(FLIGHT_POLL_MAX_MS, Math.ceil(pollMs * 1.5));
        const [outcome, still] = await this.backend.run((client) => client.mGet([`${lock}:${holder}`, lock]));
        if (outcome !== null && outcome !== undefined) {
          const landed = this.landed(String(outcome), options);
          if (landed instanceof Error) throw landed;
          const entry = await this.get(options.key);
          if (entry) return entry;
          break; // the answer is already gone (cleared, expired): take a flight of our own
        }
        holder = still;
      }
      if (Date.now() >= deadline) throw options.timeout();
    }
  }

  private async hold(lock: string, token: string, work: () => Promise<Entry>, options: FlightOptions): Promise<Entry> {
    let entry: Entry | undefined;
    let failure: unknown;
    let failed = false;
    try {
      entry = await work();
    } catch (error) {
      failed = true;
      failure = error;
    }
    const outcome = failed ? { ok: false, error: this.encodeFailure(failure, options) } : { ok: true };
    try {
      const keepMs = String(Math.max(FLIGHT_OUTCOME_MIN_MS, Math.round(options.waitMs)));
      await this.backend.run((client) =>
        this.backend.script(client, LAND_SCRIPT, LAND_SHA, [lock, `${lock}:${token}`], [token, JSON.stringify(outcome), keepMs]),
      );
    } catch {
      // the waiters see the lock expire without an outcome and take a flight of their own
    }
    if (failed) throw failure;
    return entry as Entry;
  }

  private encodeFailure(error: unknown, options: FlightOptions): unknown {
    try {
      const encoded = options.encodeError?.(error);
      if (encoded !== undefined) return { custom: encoded };
    } catch {
      // fall back to the message
    }
    const code = error instanceof CacheError ? error.code : undefined;
    return { message: messageOf(error), code };
  }

  private landed(text: string, options: FlightOptions): Error | undefined {
    let outcome: { ok?: boolean; error?: { custom?: unknown; message?: string; code?: string } };
    try {
      outcome = JSON.parse(text) as typeof outcome;
    } catch {
      return new Error('a single flight in another process left an unreadable outcome');
    }
    if (outcome.ok) return undefined;
    const error = outcome.error ?? {};
    if ('custom' in error && options.decodeError) return options.decodeError(error.custom);
    const message = error.message ?? 'the request failed in another process';
    return error.code ? new CacheError(error.code as CacheError['code'], message) : new Error(message);
  }
}
