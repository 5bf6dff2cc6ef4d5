// The Redis backend's store figures beside its baseline, raw @redis/client: each case in a fresh process
// on a redis-server started for the run (Debian's, on a free port of 127.0.0.1, no persistence).
// `node --expose-gc dist/bench/redis.js <case> <redis url> [--quick]` prints one case's result as JSON.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createClient } from '@redis/client';
import { messageOf } from '../nodes/lib/errors';
import { RedisBackend, RedisNamespace } from '../nodes/lib/redis-store';
import { RedisServer } from '../test/support/redis-server';
import { IN_FLIGHT, inFlight, KEYS, keyOf, medianOf, sampleValue, timed } from './lib';

const NS = 'flow:bench';
const PREFIX = 'bench:';

export const REDIS_DESCRIPTIONS: Record<string, [string, string]> = {
  'baseline.redis.set.pipelined': ['sets/s', 'raw @redis/client: SET of the same ~100-byte JSON values, 10,000 issued at once (pipelined by the client)'],
  'redis.store.set.concurrent': ['sets/s', 'Redis backend (RedisNamespace): sets of 10,000 keys, 1,000 in flight'],
  'redis.store.get.hot': ['gets/s', 'Redis backend: gets of 100 hot keys, 1,000 in flight'],
  'redis.store.incr.concurrent': ['updates/s', 'Redis backend: 10,000 update() increments issued at once (100 keys), atomic across processes'],
  'redis.store.incr.lost': ['increments', 'Redis backend: increments missing afterwards (must be 0)'],
  'redis.node.counter': ['msgs/s', 'counter on a Redis store (1,000 keys)'],
  'redis.node.cooldown-gate': ['msgs/s', 'cooldown-gate on a Redis store, repeats held back (1,000 armed keys)'],
};

/** The ratios of the Redis figures (none has a target: Redis is a network round trip, not a file). */
export const REDIS_RATIOS: [string, string, string][] = [
  ['redis.store.set.concurrent / baseline.redis.set.pipelined', 'redis.store.set.concurrent', 'baseline.redis.set.pipelined'],
  ['redis.store.set.concurrent / store.set.concurrent', 'redis.store.set.concurrent', 'store.set.concurrent'],
  ['redis.store.incr.concurrent / store.incr.concurrent', 'redis.store.incr.concurrent', 'store.incr.concurrent'],
  ['redis.node.counter / node.change', 'redis.node.counter', 'node.change'],
  ['redis.node.cooldown-gate / node.change', 'redis.node.cooldown-gate', 'node.change'],
  ['redis.node.counter / node.counter', 'redis.node.counter', 'node.counter'],
];

type Case = 'baseline.redis.set.pipelined' | 'redis.store.set.concurrent' | 'redis.store.get.hot' | 'redis.store.incr';
const CASES: Case[] = ['baseline.redis.set.pipelined', 'redis.store.set.concurrent', 'redis.store.get.hot', 'redis.store.incr'];

async function measure(name: Case, url: string, quick: boolean): Promise<unknown> {
  const repeats = 3;
  if (name === 'baseline.redis.set.pipelined') {
    const client = createClient({ url });
    await client.connect();
    try {
      const texts = Array.from({ length: KEYS }, (_, i) => JSON.stringify(sampleValue(i)));
      await Promise.all(texts.map((text, i) => client.set(`raw:${keyOf(i)}`, text)));
      return await medianOf(repeats, () => timed(KEYS, () => Promise.all(texts.map((text, i) => client.set(`raw:${keyOf(i)}`, text)))));
    } finally {
      await client.quit().catch(() => undefined);
    }
  }
  const backend = new RedisBackend({ url });
  const space = new RedisNamespace(backend, NS, PREFIX, 0);
  try {
    await inFlight(KEYS, IN_FLIGHT, (i) => space.set(keyOf(i), sampleValue(i)));
    if (name === 'redis.store.set.concurrent') {
      return await medianOf(repeats, (round) => timed(KEYS, () => inFlight(KEYS, IN_FLIGHT, (i) => space.set(keyOf(i), sampleValue(i + round * KEYS)))));
    }
    if (name === 'redis.store.get.hot') {
      const gets = quick ? 20_000 : 100_000;
      return await medianOf(repeats, () => timed(gets, () => inFlight(gets, IN_FLIGHT, (i) => space.get(keyOf(i % 100)))));
    }
    // 10,000 increments at once over 100 keys; what the server holds afterwards shows whether any was lost
    const total = 10_000;
    const counters = 100;
    const lost: number[] = [];
    const rate = await medianOf(repeats, async (round) => {
      const key = (k: number) => `counter.${round}.${k}`;
      const r = await timed(total, () =>
        Promise.all(
          Array.from({ length: total }, (_, i) => space.update(key(i % counters), (current) => ({ value: ((current?.value as number | undefined) ?? 0) + 1 }))),
        ),
      );
      let sum = 0;
      for (let k = 0; k < counters; k++) sum += ((await space.get(key(k)))?.value as number | undefined) ?? 0;
      lost.push(total - sum);
      return r;
    });
    return { rate, lost: Math.max(...lost) };
  } finally {
    await backend.close();
  }
}

/** A redis-server for the run, or why there is none (the figures are then not measured). */
export async function startBenchRedis(): Promise<{ server: RedisServer } | { missing: string }> {
  try {
    return { server: await RedisServer.start() };
  } catch (error) {
    return { missing: messageOf(error).split('\n')[0] };
  }
}

/** The Redis store figures, each case in a fresh process against `url`. */
export function redisStoreFigures(
  url: string,
  quick: boolean,
  log: (line: string) => void,
): { figures: Record<string, number | null>; notes: Record<string, string> } {
  const figures: Record<string, number | null> = {};
  const notes: Record<string, string> = {};
  for (const name of CASES) {
    const started = Date.now();
    const child = spawnSync(process.execPath, ['--expose-gc', __filename, name, url, ...(quick ? ['--quick'] : [])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const figure = name === 'redis.store.incr' ? 'redis.store.incr.concurrent' : name;
    if (child.status !== 0) {
      figures[figure] = null;
      notes[figure] = `failed: exited with ${child.status ?? child.signal}`;
      log(`${name}: failed`);
      continue;
    }
    const result = JSON.parse(child.stdout) as number | { rate: number; lost: number };
    if (typeof result === 'number') {
      figures[figure] = result;
    } else {
      figures[figure] = result.rate;
      figures['redis.store.incr.lost'] = result.lost;
      if (result.lost > 0) notes['redis.store.incr.lost'] = `${result.lost} increments lost: update() is not atomic`;
    }
    log(`${name}: ${Math.round(typeof result === 'number' ? result : result.rate)}/s (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
  return { figures, notes };
}

if (require.main === module) {
  const [name, url] = process.argv.slice(2) as [Case, string];
  if (!CASES.includes(name) || !url) {
    console.error(`usage: node dist/bench/redis.js <${CASES.join('|')}> <redis url> [--quick]`);
    process.exit(2);
  }
  measure(name, url, process.argv.includes('--quick'))
    .then((result) => {
      console.log(JSON.stringify(result));
      process.exit(0);
    })
    .catch((error: unknown) => {
      console.error(path.basename(__filename), error);
      process.exit(1);
    });
}
