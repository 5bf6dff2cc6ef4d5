// What reads a whole Redis namespace: SCAN MATCH over its keys (the rest of the database is never
// touched) and its entries read by MGET in batches. For inspection and start-up scans, not hot paths.
import type { AnswerWatch, RedisBackend, RedisClient } from './redis-connection';
import { namespacePattern, parseEntry } from './redis-keys';
import type { Entry } from './store-rows';

const SCAN_COUNT = 1000;
/** Keys one MGET or UNLINK carries. */
export const KEYS_PER_COMMAND = 500;

/** The keys of the namespace at `base` as SCAN finds them, a batch at a time; each batch is an answer for the step's watch. */
export async function* scanNamespace(client: RedisClient, watch: AnswerWatch, base: string): AsyncGenerator<string[]> {
  for await (const keys of client.scanIterator({ MATCH: namespacePattern(base), COUNT: SCAN_COUNT })) {
    watch.answered();
    yield keys as string[];
  }
}

/** The Redis keys of the namespace, each once, sorted. */
async function redisKeys(backend: RedisBackend, base: string): Promise<string[]> {
  return backend.run(async (client, watch) => {
    const found = new Set<string>();
    for await (const keys of scanNamespace(client, watch, base)) {
      for (const k of keys) found.add(k);
    }
    return [...found].sort();
  });
}

/** The keys of the namespace at `base` (expired keys are gone: Redis removes them). */
export async function namespaceKeys(backend: RedisBackend, base: string): Promise<string[]> {
  const start = base.length + 1;
  return (await redisKeys(backend, base)).map((k) => k.slice(start));
}

/** Every entry of the namespace at `base`, by key. */
export async function namespaceEntries(backend: RedisBackend, base: string): Promise<[string, Entry][]> {
  const keys = await redisKeys(backend, base);
  const start = base.length + 1;
  const result: [string, Entry][] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_COMMAND) {
    const chunk = keys.slice(i, i + KEYS_PER_COMMAND);
    const texts = await backend.run((client) => client.mGet(chunk));
    texts.forEach((text, j) => {
      // gone (expired, deleted) between the scan and the read
      if (text !== null && text !== undefined) result.push([chunk[j].slice(start), parseEntry(String(text), chunk[j])]);
    });
  }
  return result;
}
