// The Redis client against a real server that goes away in the ways servers do: killed (the
// connection breaks), stopped (SIGSTOP: the connection stays up and nothing answers), unreachable
// from the start. What a namespace's callers see: operations that end with STORE_DISCONNECTED
// instead of waiting forever, health events, and the same client working again once the server is back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CacheError } from '../../nodes/lib/errors';
import { RedisBackend, RedisNamespace } from '../../nodes/lib/redis-store';
import type { SpaceHealth } from '../../nodes/lib/space';
import { RedisServer } from '../support/redis-server';

/** How long a command may wait for its answer here (the default is 5 s). */
const COMMAND_TIMEOUT_MS = 300;

const isDisconnected = (error: unknown) => error instanceof CacheError && error.code === 'STORE_DISCONNECTED';

/** A backend with a short command timeout and a record of its health events and log lines. */
function backend(server: RedisServer) {
  const events: SpaceHealth[] = [];
  const log: string[] = [];
  const redis = new RedisBackend({
    url: server.url,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    maxReconnectDelayMs: 200,
    logger: { warn: (m) => log.push(`warn ${m}`), error: (m) => log.push(`error ${m}`) },
  });
  redis.on('health', (health: SpaceHealth) => events.push(health));
  return { redis, events, log, space: new RedisNamespace(redis, 'faults', 'faults:') };
}

/** Resolves with the next health event of `redis` that satisfies `test` (at once if its health does already). */
function healthBecomes(redis: RedisBackend, ok: boolean): Promise<void> {
  if (redis.health.ok === ok && (ok ? redis.connected : true)) return Promise.resolve();
  return new Promise((resolve) => {
    const listener = (health: SpaceHealth) => {
      if (health.ok === ok) {
        redis.removeListener('health', listener);
        resolve();
      }
    };
    redis.on('health', listener);
  });
}

function increment(space: RedisNamespace, key: string) {
  return space.update(key, (current) => ({ value: ((current?.value as number | undefined) ?? 0) + 1 }));
}

let server: RedisServer;
before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  await server.stop();
});

describe('Redis client when the server goes away', { timeout: 60_000 }, () => {
  it('a server that stops answering (SIGSTOP): the waiting operations fail as disconnected, the next ones at once; it answers again: all works', async () => {
    const { redis, events, log, space } = backend(server);
    try {
      await space.set('k', 1);
      server.pause();
      // each kind of step: one command, an update's read and write, a SCAN loop
      const waiting = [space.get('k'), space.set('k', 2), increment(space, 'n'), space.keys(), space.clear()];
      for (const result of await Promise.allSettled(waiting)) {
        assert.equal(result.status, 'rejected');
        assert.ok(isDisconnected((result as PromiseRejectedResult).reason), String((result as PromiseRejectedResult).reason));
        assert.match(((result as PromiseRejectedResult).reason as Error).message, /no answer within 0\.3 s/);
      }
      assert.deepStrictEqual(
        events.map((e) => [e.ok, e.disconnected]),
        [[false, true]],
        'one event: disconnected',
      );
      assert.equal(redis.healthy, false);
      assert.equal(redis.health.disconnected, true);
      // while it is known not to answer, an operation fails without waiting for it
      const failFast = space.get('k');
      server.resume();
      await assert.rejects(failFast, isDisconnected);
      await healthBecomes(redis, true);
      assert.equal(redis.healthy, true);
      assert.equal(events.length, 2);
      assert.equal(events[1].ok, true);
      // the writes sent before the stop reached the server as it went on; the update gave up before its write
      assert.equal((await space.get('k'))?.value, 2);
      assert.equal((await increment(space, 'n')).entry?.value, 1, 'the update that failed wrote nothing');
      assert.equal(log.filter((line) => /disconnected \(no answer within 0\.3 s\)/.test(line)).length, 1, log.join('\n'));
      assert.ok(
        log.some((line) => /connected again/.test(line)),
        log.join('\n'),
      );
    } finally {
      server.resume();
      await redis.close();
    }
  });

  it('closing while the server does not answer ends (the pending answers are not awaited forever)', async () => {
    const { redis, space } = backend(server);
    await space.set('k', 1);
    server.pause();
    try {
      // an answer is pending when close begins
      const pending = space.get('k').catch(() => undefined);
      await redis.close();
      await pending;
      await assert.rejects(space.get('k'), (error: unknown) => error instanceof CacheError && error.code === 'STORE_CLOSED');
    } finally {
      server.resume();
    }
  });

  it('a killed server: operations fail as disconnected at once; restarted on its port, the client reconnects by itself', async () => {
    const { redis, events, space } = backend(server);
    try {
      await space.set('k', 'before');
      await server.kill('SIGKILL');
      await assert.rejects(space.set('k', 'during'), isDisconnected);
      await assert.rejects(increment(space, 'n'), isDisconnected);
      assert.equal(redis.health.disconnected, true);
      await server.start();
      await healthBecomes(redis, true);
      assert.equal((await increment(space, 'n')).entry?.value, 1);
      assert.deepStrictEqual(
        events.map((e) => e.ok),
        [false, true],
      );
    } finally {
      await redis.close();
    }
  });

  it('unreachable from the start: disconnected, then working once the server starts', async () => {
    const late = await RedisServer.start();
    await late.kill('SIGKILL');
    const { redis, space } = backend(late);
    try {
      await assert.rejects(space.get('k'), isDisconnected);
      assert.equal(redis.health.disconnected, true);
      await late.start();
      await healthBecomes(redis, true);
      await space.set('k', 'here');
      assert.equal((await space.get('k'))?.value, 'here');
    } finally {
      await redis.close();
      await late.stop();
    }
  });
});
