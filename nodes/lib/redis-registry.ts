// One Redis client per server, database and user, shared (reference-counted) by every node and
// config node that uses it, as acquireStore shares one SQLite store per file.
import { createHash } from 'node:crypto';
import type { StoreLogger } from './options';
import { RedisBackend, type RedisConnection } from './redis-connection';
import { redactUrl } from './redis-url';

interface Shared {
  backend: RedisBackend;
  users: number;
  /** The loggers of the current users: the backend reports through the first of them. */
  loggers: StoreLogger[];
}

const open = new Map<string, Shared>();
/** Clients whose last user has gone and that are still closing, by the same key. */
const closing = new Map<string, Promise<void>>();

/** A user's hold on a shared Redis client; `release()` closes it when its last user lets go. */
export interface RedisLease {
  backend: RedisBackend;
  release(): Promise<void>;
}

/** What tells two connections apart: the server, the database and who logs in (the password only as a digest). */
function connectionKey(connection: RedisConnection): string {
  const password = connection.password ? createHash('sha256').update(connection.password).digest('hex') : '';
  return JSON.stringify([connection.url, connection.database ?? 0, connection.username ?? '', password]);
}

/**
 * The client for a server, database and user, made (and connecting in the background) on first
 * use. Nothing waits for the connection here: an operation asked before it is up waits for the
 * first attempt, and fails with STORE_DISCONNECTED while the server cannot be reached.
 */
export async function acquireRedis(connection: RedisConnection): Promise<RedisLease> {
  const key = connectionKey(connection);
  let shared = open.get(key);
  if (!shared) {
    const previous = closing.get(key);
    if (previous) await previous;
    shared = open.get(key);
  }
  if (!shared) {
    const loggers: StoreLogger[] = [];
    const logger: StoreLogger = {
      warn: (message) => loggers[0]?.warn(message),
      error: (message) => loggers[0]?.error(message),
    };
    shared = { backend: new RedisBackend({ ...connection, logger }), users: 0, loggers };
    open.set(key, shared);
  }
  const holder = shared;
  holder.users++;
  const own = connection.logger;
  if (own) holder.loggers.push(own);
  let released = false;
  return {
    backend: holder.backend,
    async release() {
      if (released) return;
      released = true;
      holder.users--;
      if (own) {
        const at = holder.loggers.indexOf(own);
        if (at >= 0) holder.loggers.splice(at, 1);
      }
      if (holder.users > 0) return;
      if (open.get(key) === holder) open.delete(key);
      const closed = holder.backend.close().catch((error: unknown) => own?.error(redactUrl(`Redis ${holder.backend.where}: closing failed: ${String(error)}`)));
      closing.set(key, closed);
      await closed;
      if (closing.get(key) === closed) closing.delete(key);
    },
  };
}

/** The servers with a client open now (as they may be shown), for inspection. */
export function openRedisServers(): string[] {
  return [...open.values()].map((shared) => shared.backend.where);
}
