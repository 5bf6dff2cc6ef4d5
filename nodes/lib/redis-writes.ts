// How a write reaches a Redis server: a set or a delete goes out at once, or behind an update of its key
// still under way in this process; an update is a compare-and-set script, tried again while other
// processes write the key between its read and its write; a clear removes the namespace's keys only.
import { CacheError } from './errors';
import { pause, type RedisBackend } from './redis-connection';
import { makeRecord, parseEntry, sha1 } from './redis-keys';
import { KEYS_PER_COMMAND, scanNamespace } from './redis-queries';
import { namespaceTtl } from './space';
import type { UpdateDecision, UpdateResult } from './store';
import type { Entry } from './store-rows';

/** Attempts of one update when other processes keep writing the key between its read and its write. */
const MAX_UPDATE_ATTEMPTS = 1000;

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
const CAS_SHA = sha1(CAS_SCRIPT);

/** Writes `value` under the Redis key `k` with a TTL in seconds (0 or undefined: none); resolves to the entry written. */
export async function setKey(backend: RedisBackend, k: string, value: unknown, ttlSeconds: number | undefined): Promise<Entry> {
  const record = makeRecord(value, ttlSeconds);
  const write = () => backend.run((client) => (record.px ? client.set(k, record.text, { PX: record.px }) : client.set(k, record.text)));
  // behind an update of the key still under way here, else at once (one connection keeps the order of what follows)
  await (backend.busy(k) ? backend.withKey(k, write) : write());
  return { value, storedAt: record.storedAt, expiresAt: record.expiresAt };
}

/** Deletes the Redis key `k`; resolves to whether it was there. */
export async function deleteKey(backend: RedisBackend, k: string): Promise<boolean> {
  const remove = () => backend.run((client) => client.del(k));
  const removed = await (backend.busy(k) ? backend.withKey(k, remove) : remove());
  return Number(removed) > 0;
}

/** SCAN MATCH over the namespace's keys and UNLINK in batches: the rest of the database is never touched. */
export async function clearNamespace(backend: RedisBackend, base: string): Promise<void> {
  await backend.run(async (client, watch) => {
    let batch: string[] = [];
    for await (const keys of scanNamespace(client, watch, base)) {
      batch.push(...keys);
      if (batch.length >= KEYS_PER_COMMAND) {
        await client.unlink(batch);
        watch.answered();
        batch = [];
      }
    }
    if (batch.length > 0) await client.unlink(batch);
  });
}

/**
 * Atomic read-modify-write of the Redis key `k` (the namespace's `key`) across every process on the
 * server: read the key, let `change` decide, write only if the key still holds what was read (the
 * compare-and-set script), else read again and decide again. Within this process updates of one key
 * run one after another, so only other processes' writes can make an attempt start over. A decision
 * without a TTL gets `defaultTtl`; throwing from `change` writes nothing.
 */
export function updateKey(
  backend: RedisBackend,
  k: string,
  key: string,
  defaultTtl: number,
  change: (current: Entry | undefined) => UpdateDecision,
): Promise<UpdateResult> {
  return backend.withKey(k, () =>
    backend.run(async (client, watch) => {
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
          const record = makeRecord(decision.value, namespaceTtl(decision.ttl, defaultTtl));
          args = ['set', record.text, String(record.px)];
          entry = { value: decision.value, storedAt: record.storedAt, expiresAt: record.expiresAt };
        }
        const expected = text === undefined ? ['0', ''] : ['1', sha1(text)];
        const written = await backend.script(client, CAS_SCRIPT, CAS_SHA, [k], [...expected, ...args]);
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
