// The Redis backend: namespaces kept on a Redis (or Valkey) server that several Node-RED processes
// share. One client (one connection, commands pipelined) per server, database and user, shared by
// every namespace on it (redis-registry.ts hands them out).
//
// Keys: `<prefix><namespace as UTF-8 hex>:<key>`, so two namespaces never mix and one namespace is
// exactly what `SCAN MATCH <prefix><hex>:*` finds. Values: the SQLite store's row text
// ({"s": storedAt, "e": expiresAt, "v": value through the shared serializer}), so values keep their
// types. Expiry is Redis's own (PX). A single flight's lock and outcome live beside the namespace
// under `<prefix><hex>#flight:...`, which neither `keys` nor `clear` see.
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createClient } from '@redis/client';
import { CacheError, messageOf, StoreFullError } from './errors';
import { KeyQueue } from './key-queue';
import type { StoreLogger } from './options';
import { redactUrl } from './redis-url';
import { decodeJson, encodeValue, type Json } from './serialize';
import { type CacheSpace, type FlightOptions, namespaceTtl, type SpaceHealth } from './space';
import type { UpdateDecision, UpdateResult } from './store';
import { checkKey, type Entry, encodeNamespace, rowText, stampsOf } from './store-rows';

export { redactUrl, redisUrlHasSecret, shownRedisUrl } from './redis-url';

/** Where a Redis store lives and how to log in; the password never appears in a message. */
export interface RedisConnection {
  /** redis:// or rediss:// (TLS), host and port only: no user, password, path or query. */
  url: string;
  /** The database number (SELECT), 0 by default. */
  database?: number;
  username?: string;
  password?: string;
  logger?: StoreLogger;
  /** How long a command may wait for its answer before it fails as disconnected, ms (default 5000). */
  commandTimeoutMs?: number;
  /** How long one connection attempt may take, ms (default 5000). */
  connectTimeoutMs?: number;
  /** The longest wait between two reconnection attempts, ms (default 5000). */
  maxReconnectDelayMs?: number;
}

type Client = ReturnType<typeof createClient>;

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

function sha1(text: string): string {
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

const CAS_SHA = sha1(CAS_SCRIPT);
const LAND_SHA = sha1(LAND_SCRIPT);

function parseEntry(text: string, where: string): Entry {
  let parsed: { s?: unknown; e?: unknown; v?: Json };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new CacheError('STORE_IO', `Redis key ${where} does not hold a flow-cache entry`, { text: 'redisForeign', values: { key: where } });
  }
  if (!parsed || typeof parsed !== 'object' || typeof parsed.s !== 'number' || !('v' in parsed)) {
    throw new CacheError('STORE_IO', `Redis key ${where} does not hold a flow-cache entry`, { text: 'redisForeign', values: { key: where } });
  }
  return { value: decodeJson(parsed.v as Json), storedAt: parsed.s, expiresAt: typeof parsed.e === 'number' ? parsed.e : null };
}

/** The text, stamps and PX of a value to write; a bad TTL is INVALID_TTL and nothing is written. */
function makeRecord(value: unknown, ttlSeconds: number | undefined): { text: string; storedAt: number; expiresAt: number | null; px: number } {
  const { storedAt, expiresAt, ttlMs } = stampsOf(ttlSeconds, 1);
  return { text: rowText(encodeValue(value), storedAt, expiresAt), storedAt, expiresAt, px: ttlMs };
}

/** A glob pattern (SCAN MATCH) that matches `text` literally. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * connecting: the first connection is being made; ready: connected and answering; stalled: connected,
 * but a command got no answer within the command timeout (a server stopped or cut off without the
 * connection closing); down: not connected, reconnecting; closed: by its last user.
 */
type State = 'connecting' | 'ready' | 'stalled' | 'down' | 'closed';

/**
 * The wait of one step for the server's answers. The client's own command timeout ends only the
 * wait to send a command, not the wait for its answer: a server that stops answering while the
 * connection stays up would leave a message waiting forever. A step that sends several commands in
 * turn calls `answered()` after each, which starts the wait over, and stops there once its caller
 * has given up (nothing more is written for a message that already failed).
 */
export class AnswerWatch {
  abandoned = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly expire: () => void,
  ) {
    this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.abandoned = true;
      this.expire();
    }, this.ms);
  }

  /** An answer came: the next command gets the full wait again. Throws once the caller has given up. */
  answered(): void {
    if (this.abandoned) throw new CacheError('STORE_DISCONNECTED', 'the caller stopped waiting for this step');
    this.arm();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/**
 * One connection to a Redis server and database, shared by every namespace on it. It reconnects by
 * itself with backoff; while it is down every operation fails at once with STORE_DISCONNECTED (a
 * catchable error for the message that asked), and it says so through 'health' events.
 */
export class RedisBackend extends EventEmitter {
  readonly kind = 'redis' as const;
  /** The server as it may be shown (no user or password). */
  readonly where: string;
  readonly database: number;
  private readonly client: Client;
  private state: State = 'connecting';
  private lastError: Error | undefined;
  private readonly logger: StoreLogger | undefined;
  private readonly connectTimeoutMs: number;
  private readonly commandTimeoutMs: number;
  /** Resolves once the first connection attempt has an outcome (ready, or an error). */
  private readonly firstOutcome: Promise<void>;
  private settleFirst: () => void = () => undefined;
  /** Updates (and writes behind them) per Redis key, so within this process one key changes one at a time. */
  private readonly locks = new KeyQueue();

  constructor(connection: RedisConnection) {
    super();
    const database = connection.database ?? 0;
    this.database = database;
    this.where = `${redactUrl(connection.url)}${database ? ` db ${database}` : ''}`;
    this.logger = connection.logger;
    this.connectTimeoutMs = connection.connectTimeoutMs ?? 5000;
    this.commandTimeoutMs = connection.commandTimeoutMs ?? 5000;
    const maxDelay = connection.maxReconnectDelayMs ?? 5000;
    this.firstOutcome = new Promise((resolve) => {
      this.settleFirst = resolve;
    });
    this.client = createClient({
      url: connection.url,
      username: connection.username || undefined,
      password: connection.password || undefined,
      database,
      // a command asked while the server is away fails at once: the message that asked gets the error
      disableOfflineQueue: true,
      maintNotifications: 'disabled',
      commandOptions: { timeout: this.commandTimeoutMs },
      socket: {
        connectTimeout: this.connectTimeoutMs,
        // 50 ms, 100 ms, 200 ms ... up to maxDelay, with a little jitter so several processes do not knock in step
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 16), maxDelay) + Math.floor(Math.random() * 50),
      },
    } as Parameters<typeof createClient>[0]) as Client;
    // every client error arrives here (a listener is required: without one an 'error' event would crash the process)
    this.client.on('error', (error: unknown) => this.lost(error instanceof Error ? error : new Error(messageOf(error))));
    this.client.on('ready', () => this.ready());
    // the first connect resolves once connected (it keeps retrying until then) and rejects only when closed
    this.client.connect().catch(() => undefined);
  }

  /** False while the server cannot be reached; true while connected or still making the first connection. */
  get healthy(): boolean {
    return this.state === 'ready' || this.state === 'connecting';
  }

  /** Disconnected, and why, while the server cannot be reached or does not answer; ok otherwise. */
  get health(): SpaceHealth {
    return this.state === 'down' || this.state === 'stalled' ? { ok: false, disconnected: true, error: this.lastError } : { ok: true };
  }

  get connected(): boolean {
    return this.state === 'ready';
  }

  private ready(): void {
    if (this.state === 'closed') return;
    const was = this.state;
    this.state = 'ready';
    this.lastError = undefined;
    this.settleFirst();
    if (was === 'down' || was === 'stalled') {
      this.logger?.warn(`Redis ${this.where}: connected again`);
      this.emit('health', { ok: true } satisfies SpaceHealth);
    }
  }

  private lost(error: Error): void {
    if (this.state === 'closed') return;
    const shown = new Error(redactUrl(messageOf(error) || error.name));
    const was = this.state;
    this.lastError = shown;
    // an error while connected that leaves the socket up (a command's own failure) is not a disconnection
    if ((was === 'ready' || was === 'stalled') && this.client.isReady) return;
    this.state = 'down';
    this.settleFirst();
    // a stalled server was already reported as disconnected
    if (was !== 'down' && was !== 'stalled') {
      this.logger?.error(`Redis ${this.where}: disconnected (${shown.message}); reconnecting`);
      this.emit('health', { ok: false, disconnected: true, error: shown } satisfies SpaceHealth);
    }
  }

  /** The error of an operation asked while the server is away. */
  disconnectedError(cause?: unknown): CacheError {
    const why = redactUrl(cause !== undefined ? messageOf(cause) : (this.lastError?.message ?? 'not connected'));
    return new CacheError('STORE_DISCONNECTED', `Redis ${this.where} is disconnected (${why}); reconnecting`, {
      text: 'disconnected',
      values: { where: this.where, cause: why },
    });
  }

  /** Waits for the first connection (at most the connect timeout); fails at once while the server is known to be away. */
  private async usable(): Promise<Client> {
    if (this.state === 'closed') throw new CacheError('STORE_CLOSED', `Redis ${this.where} is closed`, { text: 'redisClosed', values: { where: this.where } });
    if (this.state === 'connecting') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.firstOutcome, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.connectTimeoutMs)))]);
      clearTimeout(timer);
    }
    if (this.state !== 'ready' || !this.client.isReady) throw this.disconnectedError();
    return this.client;
  }

  /**
   * Runs one step against the server; its failures become CacheErrors a flow can branch on. A step
   * waits at most the command timeout for each answer (see AnswerWatch): then it fails as
   * disconnected, and so does every step after it at once, until the server answers again.
   */
  async run<T>(step: (client: Client, watch: AnswerWatch) => Promise<T>): Promise<T> {
    const client = await this.usable();
    let expire: (error: Error) => void = () => undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      expire = reject;
    });
    const watch = new AnswerWatch(this.commandTimeoutMs, () => expire(this.stalled()));
    try {
      return await Promise.race([step(client, watch), expired]);
    } catch (error) {
      throw this.translate(error);
    } finally {
      watch.stop();
    }
  }

  /**
   * A command got no answer in time while the connection stays up: the server is taken as
   * disconnected (every node says so, the next steps fail at once instead of waiting) until it
   * answers a PING, or the connection breaks and the client reconnects.
   */
  private stalled(): CacheError {
    const cause = `no answer within ${this.commandTimeoutMs / 1000} s`;
    if (this.state === 'ready') {
      this.state = 'stalled';
      this.lastError = new Error(cause);
      this.logger?.error(`Redis ${this.where}: disconnected (${cause}); waiting for it to answer`);
      this.emit('health', { ok: false, disconnected: true, error: this.lastError } satisfies SpaceHealth);
      // answered in order: the PING's answer comes once the server has answered everything before it
      this.client.ping().then(
        () => {
          if (this.state === 'stalled') this.ready();
        },
        () => undefined, // the connection broke: the client reconnects, and says so
      );
    }
    return this.disconnectedError(cause);
  }

  private translate(error: unknown): Error {
    if (error instanceof CacheError) return error;
    const message = redactUrl(messageOf(error));
    const name = error instanceof Error ? error.constructor.name : '';
    if (/^OOM\b/.test(message)) {
      return new StoreFullError(0, 0, "Redis's maxmemory is reached and its eviction policy removes nothing", 'redisFull', { where: this.where });
    }
    if (
      this.state !== 'ready' ||
      !this.client.isReady ||
      /ClientOffline|ClientClosed|SocketClosed|Timeout|Disconnects|Connection/.test(name) ||
      /LOADING|MASTERDOWN|READONLY/.test(message)
    ) {
      return this.disconnectedError(message);
    }
    return new CacheError('STORE_IO', `Redis ${this.where}: ${message}`, { text: 'redisFailed', values: { where: this.where, cause: message } });
  }

  /** Runs a script by its SHA-1, loading it first where the server does not know it (a restarted server forgets its scripts). */
  async script(client: Client, source: string, sha: string, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await client.evalSha(sha, { keys, arguments: args });
    } catch (error) {
      if (!/NOSCRIPT/.test(messageOf(error))) throw error;
      return client.eval(source, { keys, arguments: args });
    }
  }

  /** Runs `task` after every earlier task of `key` in this process, so updates of one key never race each other here. */
  withKey<T>(key: string, task: () => Promise<T>): Promise<T> {
    return this.locks.run(key, task);
  }

  busy(key: string): boolean {
    return this.locks.busy(key);
  }

  /**
   * Closes the connection: pending answers are awaited when connected (at most the command timeout:
   * a server that stopped answering does not hold up a redeploy), a reconnection in progress stops.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const connected = this.state === 'ready' && this.client.isReady;
    this.state = 'closed';
    this.settleFirst();
    let timer: NodeJS.Timeout | undefined;
    try {
      const closed = connected
        ? await Promise.race([
            this.client.close().then(() => true),
            new Promise<boolean>((resolve) => {
              timer = setTimeout(() => resolve(false), this.commandTimeoutMs);
            }),
          ])
        : false;
      if (!closed) this.client.destroy();
    } catch {
      try {
        this.client.destroy();
      } catch {
        // already gone
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** The client, for code outside the store that measures or inspects (benchmarks, tests). */
  get raw(): Client {
    return this.client;
  }
}

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
    this.base = `${prefix}${encodeNamespace(name)}`;
  }

  /** The Redis key of a key of this namespace. */
  redisKey(key: string): string {
    checkKey(key);
    return `${this.base}:${key}`;
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
      for await (const keys of client.scanIterator({ MATCH: `${globLiteral(this.base)}:*`, COUNT: SCAN_COUNT })) {
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
      for await (const keys of client.scanIterator({ MATCH: `${globLiteral(this.base)}:*`, COUNT: SCAN_COUNT })) {
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
    const lock = `${this.base}#flight:${createHash('sha256').update(flightKey).digest('hex')}`;
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
