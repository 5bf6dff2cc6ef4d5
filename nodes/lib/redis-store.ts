// The Redis backend: namespaces kept on a Redis (or Valkey) server that several Node-RED processes
// share. One client (one connection, commands pipelined) per server, database and user, shared by
// every namespace on it (redis-connection.ts; redis-registry.ts hands them out). What a key is
// called and what it holds: redis-keys.ts.
import { randomUUID } from 'node:crypto';
import { CacheError, messageOf } from './errors';
import { pause, type RedisBackend } from './redis-connection';
import { flightLock, makeRecord, namespaceBase, namespacePattern, parseEntry, redisKeyOf, sha1 } from './redis-keys';
import { type CacheSpace, type FlightOptions, namespaceTtl } from './space';
import type { UpdateDecision, UpdateResult } from './store';
import type { Entry } from './store-rows';

export { AnswerWatch, RedisBackend, type RedisConnection } from './redis-connection';
export { redactUrl, redisUrlHasSecret, shownRedisUrl } from './redis-url';

/** Attempts of one update when other processes keep writing the key between its read and its write. */
const MAX_UPDATE_ATTEMPTS = 1000;
const SCAN_COUNT = 1000;
const DELETE_BATCH = 500;
/** How long a flight's outcome stays readable for the processes that waited on it, at least. */
const FLIGHT_OUTCOME_MIN_MS = 10_000;
const FLIGHT_POLL_FIRST_MS = 5;
const FLIGHT_POLL_MAX_MS = 100;

// Compare-and-set of one key: writes only if the key still holds what the update read
// (ARGV[1] '0': absent; '1': present with SHA-1 ARGV[2]); ARGV[3] 'set' (ARGV[4] text, ARGV[5] PX or '0') or 'del'.
const CAS_SCRIPT = `local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if cur then return 0 end
elseif (not cur) or redis.sha1hex(cur) ~= ARGV[2] then
  return 0
end
if ARGV[3] == 'del' then
  redis.call('DEL', KEYS[1])
elseif ARGV[5] == '0' then
  redis.call('SET', KEYS[1], ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
end
return 1`;
// A flight ends: its outcome is kept for the waiters (KEYS[2], PX ARGV[3]), then its lock goes if it is still this flight's.
const LAND_SCRIPT = `redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

const CAS_SHA = sha1(CAS_SCRIPT);
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
    const k = this.redisKey(key);
    const record = makeRecord(value, namespaceTtl(ttlSeconds, this.defaultTtl));
    const write = () => this.backend.run((client) => (record.px ? client.set(k, record.text, { PX: record.px }) : client.set(k, record.text)));
    // behind an update of the key still under way here, else at once (one connection keeps the order of what follows)
    await (this.backend.busy(k) ? this.backend.withKey(k, write) : write());
    return { value, storedAt: record.storedAt, expiresAt: record.expiresAt };
  }

  async delete(key: string): Promise<boolean> {
    const k = this.redisKey(key);
    const remove = () => this.backend.run((client) => client.del(k));
    const removed = await (this.backend.busy(k) ? this.backend.withKey(k, remove) : remove());
    return Number(removed) > 0;
  }

  /** SCAN MATCH over this namespace's keys and UNLINK in batches: the rest of the database is never touched. */
  async clear(): Promise<void> {
    await this.backend.run(async (client, watch) => {
      let batch: string[] = [];
      for await (const keys of client.scanIterator({ MATCH: namespacePattern(this.base), COUNT: SCAN_COUNT })) {
        watch.answered();
        batch.push(...(keys as string[]));
        if (batch.length >= DELETE_BATCH) {
          await client.unlink(batch);
          watch.answered();
          batch = [];
        }
      }
      if (batch.length > 0) await client.unlink(batch);
    });
  }

  private async redisKeys(): Promise<string[]> {
    return this.backend.run(async (client, watch) => {
      const found = new Set<string>();
      for await (const keys of client.scanIterator({ MATCH: namespacePattern(this.base), COUNT: SCAN_COUNT })) {
        watch.answered();
        for (const k of keys as string[]) found.add(k);
      }
      return [...found].sort();
    });
  }

  async keys(): Promise<string[]> {
    const start = this.base.length + 1;
    return (await this.redisKeys()).map((k) => k.slice(start));
  }

  async entries(): Promise<[string, Entry][]> {
    const keys = await this.redisKeys();
    const start = this.base.length + 1;
    const result: [string, Entry][] = [];
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const chunk = keys.slice(i, i + DELETE_BATCH);
      const texts = await this.backend.run((client) => client.mGet(chunk));
      texts.forEach((text, j) => {
        // gone (expired, deleted) between the scan and the read
        if (text !== null && text !== undefined) result.push([chunk[j].slice(start), parseEntry(String(text), chunk[j])]);
      });
    }
    return result;
  }

  withoutDefaultTtl(): RedisNamespace {
    return this.defaultTtl === 0 ? this : new RedisNamespace(this.backend, this.name, this.prefix, 0);
  }

  /**
   * Atomic read-modify-write across every process on the server: read the key, let `change` decide,
   * write only if the key still holds what was read (a compare-and-set script), else read again and
   * decide again. Within this process updates of one key run one after another, so only other
   * processes' writes can make an attempt start over. Throwing from `change` writes nothing.
   */
  update(key: string, change: (current: Entry | undefined) => UpdateDecision): Promise<UpdateResult> {
    const k = this.redisKey(key);
    return this.backend.withKey(k, () =>
      this.backend.run(async (client, watch) => {
        for (let attempt = 1; ; attempt++) {
          const raw = await client.get(k);
          // the message may have failed already (no answer in time): then nothing is decided or written for it
          watch.answered();
          const text = raw === null || raw === undefined ? undefined : String(raw);
          const previous = text === undefined ? undefined : parseEntry(text, k);
          const decision = change(previous);
          if (decision === undefined) return { previous, entry: previous };
          let args: string[];
          let entry: Entry | undefined;
          if ('delete' in decision) {
            args = ['del', '', '0'];
            entry = undefined;
          } else {
            const record = makeRecord(decision.value, namespaceTtl(decision.ttl, this.defaultTtl));
            args = ['set', record.text, String(record.px)];
            entry = { value: decision.value, storedAt: record.storedAt, expiresAt: record.expiresAt };
          }
          const expected = text === undefined ? ['0', ''] : ['1', sha1(text)];
          const written = await this.backend.script(client, CAS_SCRIPT, CAS_SHA, [k], [...expected, ...args]);
          watch.answered();
          if (Number(written) === 1) return { previous, entry };
          if (attempt >= MAX_UPDATE_ATTEMPTS) {
            throw new CacheError('STORE_BUSY', `Redis key ${k} changed under ${attempt} attempts to update it; try again`, {
              text: 'redisBusy',
              values: { key, attempts: attempt },
            });
          }
          // another process wrote in between: read again, a little later the more often it happens
          if (attempt > 2) await pause(Math.floor(Math.random() * Math.min(attempt, 20)));
        }
      }),
    );
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
