// The Redis backend: namespaces kept on a Redis (or Valkey) server that several Node-RED processes
// share. One client (one connection, commands pipelined) per server, database and user, shared by
// every namespace on it (redis-registry.ts hands them out).
//
// RedisNamespace composes the parts: the connection (redis-connection.ts), what a key is called and
// holds (redis-keys.ts), writes and the atomic update (redis-writes.ts), reading a whole namespace
// (redis-queries.ts) and the single flight across processes (redis-flight.ts).
import type { RedisBackend } from './redis-connection';
import { flight } from './redis-flight';
import { flightLock, namespaceBase, parseEntry, redisKeyOf } from './redis-keys';
import { namespaceEntries, namespaceKeys } from './redis-queries';
import { clearNamespace, deleteKey, setKey, updateKey } from './redis-writes';
import { type CacheSpace, type FlightOptions, namespaceTtl } from './space';
import type { UpdateDecision, UpdateResult } from './store';
import type { Entry } from './store-rows';

export { AnswerWatch, RedisBackend, type RedisConnection } from './redis-connection';
export { redactUrl, redisUrlHasSecret, shownRedisUrl } from './redis-url';

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

  /** One flight among every process on the server (redis-flight.ts). */
  async singleFlight(flightKey: string, work: () => Promise<Entry>, options: FlightOptions): Promise<Entry> {
    return flight(this.backend, flightLock(this.base, flightKey), work, options, (key) => this.get(key));
  }
}
