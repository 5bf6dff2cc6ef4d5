// The backends the contract suite runs against: the SQLite store and a real Redis server. Each gives
// namespaces (CacheSpace), a second "process" on the same data where the backend is shared, and a way
// to let time pass for expiry (the injected clock for SQLite, the server's own clock for Redis).
import fs from 'node:fs';
import path from 'node:path';
import { acquireRedis, type RedisLease } from '../../nodes/lib/redis-registry';
import { RedisBackend, RedisNamespace } from '../../nodes/lib/redis-store';
import { CacheNamespace } from '../../nodes/lib/registry';
import type { CacheSpace } from '../../nodes/lib/space';
import { Store } from '../../nodes/lib/store';
import { type ManualClock, tempDir } from '../support/harness';
import { RedisServer } from '../support/redis-server';

export interface BackendFixture {
  readonly name: 'sqlite' | 'redis';
  /** A namespace of the store under test (default TTL in seconds). */
  space(name: string, defaultTtl?: number): CacheSpace;
  /** The same namespace as another process sees it: its own client, or undefined where one process holds the store. */
  otherProcess(name: string): CacheSpace | undefined;
  /** Lets `ms` pass for expiry: the injected clock (SQLite), the server's clock (Redis, real time). */
  elapse(ms: number): Promise<void>;
  /** A TTL short enough for a test to wait out on this backend, in seconds. */
  readonly shortTtl: number;
  close(): Promise<void>;
}

let root: string | undefined;

export async function sqliteFixture(clock: ManualClock): Promise<BackendFixture> {
  root ??= tempDir('flow-cache-contract-');
  const file = path.join(fs.mkdtempSync(path.join(root, 't-')), 'cache.sqlite');
  const store = await Store.open(file, { sweepInterval: 0 });
  return {
    name: 'sqlite',
    space: (name, defaultTtl = 0) => new CacheNamespace(store, name, defaultTtl),
    otherProcess: () => undefined,
    elapse: async (ms) => clock.advance(ms),
    shortTtl: 60,
    close: () => store.close(),
  };
}

/** A Redis fixture on `server`, under a key prefix of its own so tests never see each other's keys. */
export async function redisFixture(server: RedisServer, prefix: string): Promise<BackendFixture> {
  const lease: RedisLease = await acquireRedis({ url: server.url });
  // a second client of its own: what another Node-RED process on the same server would be
  const other = new RedisBackend({ url: server.url });
  return {
    name: 'redis',
    space: (name, defaultTtl = 0) => new RedisNamespace(lease.backend, name, prefix, defaultTtl),
    otherProcess: (name) => new RedisNamespace(other, name, prefix),
    elapse: (ms) => new Promise((resolve) => setTimeout(resolve, ms + 20)),
    shortTtl: 0.3,
    close: async () => {
      await other.close();
      await lease.release();
    },
  };
}

export { RedisServer };
