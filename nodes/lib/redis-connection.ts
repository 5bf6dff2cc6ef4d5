// One connection to a Redis server and database, shared by every namespace on it (redis-registry.ts
// hands them out): connecting and reconnecting, whether it is usable, how long a step waits for its
// answers, the errors a flow sees, scripts run by their SHA-1 and the per-key queue of this process.
import { EventEmitter } from 'node:events';
import type { createClient } from '@redis/client';
import { CacheError, messageOf, StoreFullError } from './errors';
import { KeyQueue } from './key-queue';
import type { StoreLogger } from './options';
import { redactUrl } from './redis-url';
import type { SpaceHealth } from './space';

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

export type RedisClient = ReturnType<typeof createClient>;

let clientModule: { createClient: typeof createClient } | undefined;

/**
 * @redis/client, loaded when the first Redis store connects: loading it takes about 170 ms and 27 MiB
 * (Node 24), which a Node-RED that uses only SQLite stores should not pay at start-up.
 */
function redisClientModule(): { createClient: typeof createClient } {
  clientModule ??= require('@redis/client') as { createClient: typeof createClient };
  return clientModule;
}

/** A wait between two tries of a step: a key another process wrote meanwhile, a flight not landed yet. */
export function pause(ms: number): Promise<void> {
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
  private readonly client: RedisClient;
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
    this.client = redisClientModule().createClient({
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
    } as Parameters<typeof createClient>[0]) as RedisClient;
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
  private async usable(): Promise<RedisClient> {
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
  async run<T>(step: (client: RedisClient, watch: AnswerWatch) => Promise<T>): Promise<T> {
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
  async script(client: RedisClient, source: string, sha: string, keys: string[], args: string[]): Promise<unknown> {
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
  get raw(): RedisClient {
    return this.client;
  }
}
